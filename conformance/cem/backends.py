"""Backends of the CEM subsystem: ``jax-export``, a function exported with `jax.export`, serialized to bytes,
deserialized and compiled before it is called (what `implementations.cem.runtime.load_pipeline` does with the
artifact files).

``prepare`` works on a traceable function of array arguments (keyword arguments that are not arrays are
treated as static and baked into the export). The AOT pipeline's own test compares whole pipelines
(``conformance/cem/test_aot.py``) under the case ``cem.aot.pipeline``.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

from conformance import backends


def _exported(fn: Callable[..., Any]) -> Callable[..., Any]:
    cache: dict[Any, Callable[..., Any]] = {}

    def run(**kwargs: Any) -> Any:
        import jax
        from jax import export

        arrays = {k: v for k, v in kwargs.items() if isinstance(v, np.ndarray | jax.Array)}
        static = tuple(sorted((k, v) for k, v in kwargs.items() if k not in arrays))
        key = (static, tuple((k, np.shape(v), np.asarray(v).dtype.str) for k, v in sorted(arrays.items())))
        if key not in cache:
            names = sorted(arrays)
            inner = partial(fn, **dict(static))

            def flat(*xs: Any) -> Any:
                return inner(**dict(zip(names, xs, strict=True)))

            specs = [jax.ShapeDtypeStruct(np.shape(arrays[n]), np.asarray(arrays[n]).dtype) for n in names]
            exp = export.deserialize(export.export(jax.jit(flat))(*specs).serialize())
            cache[key] = (names, jax.jit(exp.call).lower(*specs).compile())
        names, compiled = cache[key]
        return compiled(*[arrays[n] for n in names])

    run.__name__ = f"exported_{getattr(fn, '__name__', 'fn')}"
    return run


backends.register(
    backends.Backend(
        "jax-export",
        "a jax.export artifact: exported, serialized, deserialized and compiled at load, then called",
        "jax",
        _exported,
    )
)
