"""Rounding helpers of the JAX GCM kernels: make XLA round like NumPy where it otherwise would not.

XLA's CPU backend differs from NumPy's evaluation in two ways that matter for parity:

- it always contracts ``a * b + c`` into one fused multiply-add (one rounding instead of two). Harmless
  for most sums, but after cancellation (``eps_s A - U`` in the longwave, the bilinear sum, ``F - k4 lap2
  dt``) the result can move by hundreds of ulp of itself. `rounded` hides a product from the contraction;
- its algebraic simplifier rewrites ``x / broadcast(d)`` as ``x * broadcast(1 / d)`` (two roundings).
  `divide_like_numpy` keeps the division where a one-ulp difference would be amplified (coordinates).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax


def rounded(p: jax.Array) -> jax.Array:
    """``p`` (a product), rounded to its dtype before it is added to anything, as NumPy does.

    The select (``p`` where ``p == p``, else NaN: the value and NaN are unchanged) stands between the multiply
    and the add, so LLVM does not fuse them into an FMA. Measured: bit-identical ``x * y - z``, at no
    measurable cost.
    """
    return jnp.where(p == p, p, jnp.nan)  # noqa: PLR0124 (the self-comparison is the point)


def divide_like_numpy(x: jax.Array, d: jax.Array) -> jax.Array:
    """``x / d`` with ``d`` broadcast against ``x``, rounded once like NumPy.

    The optimization barrier hides the broadcast from the simplifier's reciprocal rewrite (the CPU backend
    removes the barrier after simplification, so nothing is materialised). Measured: bit-identical
    departure points with it, 0.1 % of them one ulp off without.
    """
    return x / lax.optimization_barrier(jnp.broadcast_to(d, x.shape))


def mod_like_numpy(x: jax.Array, n: int) -> jax.Array:
    """``np.mod(x, n)`` for a positive integer ``n``, bit for bit, without a libm ``fmod`` per element.

    ``k = floor(x / n)`` (one correctly rounded division) is the true floor or one more, never one less;
    ``x - k n`` is then exact, and the rare ``k`` one too large gives a negative value that ``+ n`` rounds
    exactly like NumPy's ``fmod(x, n) + n``.
    """
    k = jnp.floor(divide_like_numpy(x, jnp.asarray(n, x.dtype)))
    r = x - k * n
    return jnp.where(r < 0, r + n, r)
