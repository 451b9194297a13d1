"""The JAX port of `npport.reference`: same names and signatures, jitted once at module level."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp


@jax.jit
def softplus(x: jax.Array) -> jax.Array:
    """log(1 + exp(x)), without overflow for large x."""
    return jnp.logaddexp(0.0, x)


@partial(jax.jit, static_argnames="axis")
def logsumexp(x: jax.Array, axis: int = -1) -> jax.Array:
    """log(sum(exp(x), axis)), shifted by the maximum."""
    m = jnp.max(x, axis=axis, keepdims=True)
    return jnp.squeeze(m, axis) + jnp.log(jnp.sum(jnp.exp(x - m), axis=axis))
