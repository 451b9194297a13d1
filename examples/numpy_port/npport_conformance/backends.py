"""A backend of npport's own: the port mapped over the leading axis with jax.vmap (a batching transform a
port must survive), registered with the parity suite without editing it."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from conformance.backends import Backend, register


def _vmapped(fn: Callable[..., Any]) -> Callable[..., Any]:
    import jax

    mapped = jax.jit(jax.vmap(fn))  # built once per prepared implementation, not per call

    def run(x: Any) -> Any:
        return mapped(x)

    return run


register(Backend("npport-vmap", "the port under jax.vmap over the leading axis", "jax", _vmapped))
