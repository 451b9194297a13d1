"""Count JAX compilations and traces in a block (the `_CompileAndCheck` idea of JAX's own test utilities).

Used by tests that a second call with same-shaped inputs compiles nothing (a jit built per call, a
Python scalar that became static, a shape-dependent cache key all show up as compilations).
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator
from typing import Any

COMPILE_EVENT = "/jax/core/compile/backend_compile_duration"
TRACE_EVENT = "/jax/core/compile/jaxpr_trace_duration"


@dataclasses.dataclass
class Counts:
    compiles: int = 0
    traces: int = 0


@contextlib.contextmanager
def counting() -> Iterator[Counts]:
    """``with counting() as c: ...`` then ``c.compiles`` and ``c.traces`` hold what the block caused."""
    import jax.monitoring

    counts = Counts()

    def listener(name: str, *_: Any, **__: Any) -> None:
        if name == COMPILE_EVENT:
            counts.compiles += 1
        elif name == TRACE_EVENT:
            counts.traces += 1

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        yield counts
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
