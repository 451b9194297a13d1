"""Input checks of the JAX GCM kernels, outside jitted code, raising `contracts.gcm.validate.GCMInputError`.

Shape, dtype and parameter checks read metadata only. Finiteness is checked where the data lives:

- arrays in host memory (NumPy arrays, and JAX arrays on the CPU backend, which NumPy views without a copy)
  are checked with one NumPy pass before dispatch. Measured on a 2-core x86 CPU, x64: 8 us at 121x240 and
  90 us at 481x960, while an ``isfinite(x).all()`` reduction returned by the jitted kernel cost 35-50 us and
  230 us (XLA's CPU reduction is slower than NumPy's) plus a forced device sync;
- arrays on an accelerator are checked inside the jitted kernel, which returns one ``isfinite(x).all()`` flag
  per checked input (fused into the same executable); the wrapper reads that small vector and, only on the
  error path, copies the arrays to the host to name the field and the first bad index.

Either way the message is the one the NumPy reference raises (`contracts.gcm.validate.check_finite`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from contracts.gcm.validate import GCMInputError, check_finite


def x64_enabled() -> bool:
    return bool(jax.config.read("jax_enable_x64"))


def check_x64(dtype: np.dtype) -> None:
    """float64 input while ``jax_enable_x64`` is off would silently be computed in float32: refuse it."""
    if np.dtype(dtype) == np.float64 and not x64_enabled():
        raise GCMInputError(
            "float64 input but jax_enable_x64 is off, so JAX would silently compute in float32: enable x64 "
            "first (jax.config.update('jax_enable_x64', True) or JAX_ENABLE_X64=1), or pass float32 arrays"
        )


def on_host(x: Any) -> bool:
    """True where NumPy can read ``x`` without a device transfer."""
    if isinstance(x, jax.Array):
        try:
            return all(d.platform == "cpu" for d in x.devices())
        except Exception:  # a tracer or a deleted array: let the jitted path deal with it
            return False
    return True


def all_on_host(values: Sequence[Any]) -> bool:
    return all(on_host(x) for x in values)


def finite_flags(*arrays: jax.Array) -> jax.Array:
    """Inside jit: one ``isfinite(x).all()`` flag per array, as a bool vector."""
    return jnp.stack([jnp.isfinite(x).all() for x in arrays])


def raise_on_flags(
    ok: jax.Array, fields: Mapping[str, Any], before: Callable[[], None] | None = None
) -> None:
    """Raise the reference's error if any flag is False (reads the flag vector: one small device sync).

    ``before`` re-runs, on host copies, the value checks that the reference makes before its finiteness check
    (e.g. a negative diffusion map), so that the first error reported is the same on both sides.
    """
    if bool(np.all(np.asarray(ok))):
        return
    if before is not None:
        before()
    check_finite({name: np.asarray(x) for name, x in fields.items()})
    raise GCMInputError("non-finite value in the inputs")  # pragma: no cover - check_finite raised above


def as_dtype(x: Any, dtype: np.dtype) -> Any:
    """``x`` in ``dtype`` without a copy where it already is; NumPy stays NumPy, JAX stays JAX."""
    if isinstance(x, jax.Array):
        return x if x.dtype == dtype else x.astype(dtype)
    return np.asarray(x, dtype=dtype)


def column(coslat: Any, dtype: np.dtype) -> np.ndarray:
    """coslat as an ``(n_lat, 1)`` host column in the field dtype."""
    return np.asarray(coslat, dtype=dtype).reshape(-1, 1)


__all__ = [
    "all_on_host",
    "as_dtype",
    "check_finite",
    "check_x64",
    "column",
    "finite_flags",
    "on_host",
    "raise_on_flags",
    "x64_enabled",
]
