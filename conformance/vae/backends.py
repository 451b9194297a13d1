"""Backends of the VAE subsystem: ``jax-sharded`` (the NNX port run batch-sharded over several devices).

Its parity runs in a subprocess (simulated CPU devices need XLA_FLAGS before JAX starts); the backend's
``prepare`` is the identity, the comparison is unsharded (expected) against sharded (actual).
"""

from __future__ import annotations

from conformance.backends import Backend, register

register(
    Backend(
        "jax-sharded",
        "the JAX port batch-sharded over several devices (simulated CPU devices in tests), never along time",
        "jax",
        lambda fn: fn,
    )
)
