"""The GCM's input contract: validation shared by the GCM reference and its JAX twin.

Checks run on array metadata (shape, dtype) and on host values; they never run inside jitted code. Both
sides raise the same `GCMInputError` with the same message, so a user sees one contract.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from contracts.gcm.grid import Forcing, GCMInputError, Grid, State, StepParams

FLOAT_DTYPES = ("float32", "float64")


def field_dtype(name: str, x: Any) -> np.dtype:
    dtype = np.dtype(getattr(x, "dtype", np.asarray(x).dtype))
    if dtype.name not in FLOAT_DTYPES:
        raise GCMInputError(f"{name} must be float32 or float64; got dtype {dtype.name}")
    return dtype


def check_fields(
    fields: Mapping[str, Any], shape: tuple[int, ...] | None = None
) -> tuple[tuple[int, ...], np.dtype]:
    """Check that every field is a 2-D float array of one shape and one dtype; return both.

    ``shape`` pins the expected shape (e.g. the grid's); otherwise the first field's shape is used.
    """
    if not fields:
        raise GCMInputError("no fields given")
    ref_name: str | None = None
    ref_dtype: np.dtype | None = None
    for name, x in fields.items():
        x_shape = tuple(np.shape(x))
        if len(x_shape) != 2:
            raise GCMInputError(f"{name} must be a 2-D (n_lat, n_lon) field; got shape {x_shape}")
        dtype = field_dtype(name, x)
        if shape is None:
            shape, ref_name = x_shape, name
        elif x_shape != shape:
            what = f"the shape of {ref_name}" if ref_name else "the grid shape"
            raise GCMInputError(f"{name} has shape {x_shape}, which does not match {what} {shape}")
        if ref_dtype is None:
            ref_dtype, dtype_name = dtype, name
        elif dtype != ref_dtype:
            raise GCMInputError(
                f"all fields must share one dtype: {dtype_name} is {ref_dtype.name} but {name} is {dtype.name}"
            )
        if shape[0] < 3 or shape[1] < 3:
            raise GCMInputError(f"{name} must have at least 3 rows and 3 columns; got shape {shape}")
    assert shape is not None and ref_dtype is not None
    return shape, ref_dtype


def check_grid_args(shape: tuple[int, ...], dlat: Any, dlon: Any, coslat: Any, a: Any) -> None:
    """Check the grid arguments of a stencil against the field shape (mismatched grids are errors)."""
    for name, value in (("dlat", dlat), ("dlon", dlon), ("a", a)):
        check_positive_scalar(name, value)
    c_shape = tuple(np.shape(coslat))
    if c_shape not in ((shape[0],), (shape[0], 1)):
        raise GCMInputError(
            f"coslat has shape {c_shape} but the field has {shape[0]} rows: pass the grid's coslat, "
            f"shape ({shape[0]},)"
        )
    c = np.asarray(coslat)
    if not np.all(np.isfinite(c)) or np.any(c <= 0):
        raise GCMInputError("coslat must be finite and > 0 (clamp it, e.g. Grid.coslat)")
    if not math.isclose(float(dlon) * shape[1], 2 * math.pi, rel_tol=1e-9):
        raise GCMInputError(
            f"dlon={float(dlon)!r} does not match a periodic grid of {shape[1]} columns "
            f"(expected 2*pi/{shape[1]} = {2 * math.pi / shape[1]!r})"
        )
    if not math.isclose(float(dlat) * (shape[0] - 1), math.pi, rel_tol=1e-9):
        raise GCMInputError(
            f"dlat={float(dlat)!r} does not match a pole-to-pole grid of {shape[0]} rows "
            f"(expected pi/{shape[0] - 1} = {math.pi / (shape[0] - 1)!r})"
        )


def scalar(name: str, value: Any) -> float:
    if np.ndim(value) != 0:
        raise GCMInputError(f"{name} must be a scalar; got shape {np.shape(value)}")
    try:
        out = float(value)
    except (TypeError, ValueError) as exc:
        raise GCMInputError(f"{name} must be a real number; got {value!r}") from exc
    if not math.isfinite(out):
        raise GCMInputError(f"{name} must be finite; got {out!r}")
    return out


def check_positive_scalar(name: str, value: Any) -> float:
    out = scalar(name, value)
    if out <= 0:
        raise GCMInputError(f"{name} must be > 0; got {out!r}")
    return out


def check_broadcast_shape(name: str, v_shape: tuple[int, ...], shape: tuple[int, ...]) -> None:
    """A coefficient of shape ``v_shape`` must broadcast to the field shape without changing it."""
    try:
        np.broadcast_shapes(v_shape, shape)
    except ValueError as exc:
        raise GCMInputError(
            f"{name} has shape {v_shape}, not broadcastable to the field shape {shape}"
        ) from exc
    if np.broadcast_shapes(v_shape, shape) != shape:
        raise GCMInputError(f"{name} has shape {v_shape}, which would broadcast the field shape {shape}")


def check_nonnegative(name: str, value: Any, shape: tuple[int, ...]) -> None:
    """A scalar or a field broadcastable to ``shape``, finite and >= 0 (e.g. a diffusion coefficient)."""
    check_broadcast_shape(name, tuple(np.shape(value)), shape)
    arr = np.asarray(value)
    if not np.all(np.isfinite(arr)):
        raise GCMInputError(f"{name} must be finite")
    if np.any(arr < 0):
        where = np.unravel_index(int(np.argmin(arr)), arr.shape) if arr.ndim else ()
        raise GCMInputError(
            f"{name} must be >= 0 (negative diffusion is anti-diffusion and blows up); "
            f"min {float(arr.min())!r} at index {tuple(int(i) for i in where)}"
        )


def check_int(name: str, value: Any, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or int(value) < minimum:
        raise GCMInputError(f"{name} must be an int >= {minimum}; got {value!r}")
    return int(value)


def nonfinite_message(name: str, x: np.ndarray) -> str:
    bad = ~np.isfinite(x)
    count = int(bad.sum())
    first = tuple(int(i) for i in np.argwhere(bad)[0])
    return (
        f"{name} has {count} non-finite value(s); first at index {first} (value {x[first]!r}). "
        "GCM kernels take finite fields only."
    )


def check_finite(fields: Mapping[str, Any]) -> None:
    """Raise on the first field that holds a NaN or an infinity, naming the field and the location."""
    for name, x in fields.items():
        arr = np.asarray(x)
        if not np.isfinite(arr).all():
            raise GCMInputError(nonfinite_message(name, arr))


def check_array(name: str, x: Any) -> tuple[tuple[int, ...], np.dtype]:
    """Check a float array of any shape (0-d included) for a pointwise kernel; return its shape and dtype."""
    dtype = field_dtype(name, x)
    return tuple(np.shape(x)), dtype


def check_model_fields(state: Any, forcing: Any, grid: Any) -> np.dtype:
    """Check the State and Forcing of one model step against the grid; return the common dtype.

    Every field must be a 2-D float array of ``grid.shape`` and all fields share one dtype. Field names in
    messages are ``state.<name>`` and ``forcing.<name>``.
    """
    if not isinstance(grid, Grid):
        raise GCMInputError(f"grid must be a contracts.gcm.grid.Grid; got {type(grid).__name__}")
    if not isinstance(state, State):
        raise GCMInputError(f"state must be a contracts.gcm.grid.State; got {type(state).__name__}")
    if not isinstance(forcing, Forcing):
        raise GCMInputError(f"forcing must be a contracts.gcm.grid.Forcing; got {type(forcing).__name__}")
    _, dtype = check_fields(model_field_dict(state, forcing), shape=grid.shape)
    return dtype


def model_field_dict(state: Any, forcing: Any) -> dict[str, Any]:
    """``{"state.u": ..., ..., "forcing.evap_factor": ...}`` in State then Forcing field order."""
    fields = {f"state.{k}": v for k, v in state._asdict().items()}
    fields.update({f"forcing.{k}": v for k, v in forcing._asdict().items()})
    return fields


def check_step_params(params: Any) -> None:
    if not isinstance(params, StepParams):
        raise GCMInputError(f"params must be a contracts.gcm.grid.StepParams; got {type(params).__name__}")
