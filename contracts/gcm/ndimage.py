"""The argument contract of ``map_coordinates`` (GCM interpolation), shared by the SciPy reference
(`reference.gcm.ndimage`) and its JAX twin (`implementations.gcm.ndimage`), so that both raise the same errors.

The contract is SciPy's, narrowed where the port needs it: the input is a float32 or float64 array (SciPy also
takes integers and complex numbers). Bad arguments raise `MapCoordinatesError`, which is a `ValueError` (via
`GCMInputError`, like every GCM input error) and also a `RuntimeError`, the class SciPy itself raises for a bad
order, mode or coordinate shape, so code written against SciPy keeps working. NumPy only.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

from contracts.gcm.validate import FLOAT_DTYPES, GCMInputError

# SciPy's boundary modes; 'grid-mirror' is SciPy's alias of 'reflect'.
MODES = ("constant", "grid-constant", "nearest", "mirror", "reflect", "grid-mirror", "wrap", "grid-wrap")
MAX_ORDER = 5


class MapCoordinatesError(GCMInputError, RuntimeError):
    """Bad argument to ``map_coordinates``: a ValueError (GCMInputError) and, like SciPy's, a RuntimeError."""


class MapCoordinatesArgs(NamedTuple):
    """Checked metadata of a ``map_coordinates`` call."""

    input_shape: tuple[int, ...]
    dtype: np.dtype  # the input's dtype, which is also the output's
    output_shape: tuple[int, ...]  # ``coordinates.shape[1:]``
    order: int
    mode: str
    prefilter: bool


def _dtype_of(x: Any) -> np.dtype:
    # Arrays (NumPy or JAX) carry a dtype; read it without copying the data to the host.
    dtype = getattr(x, "dtype", None)
    return np.dtype(dtype) if dtype is not None else np.asarray(x).dtype


def check_map_coordinates_args(
    input: Any,
    coordinates: Any,
    order: Any = 3,
    mode: Any = "constant",
    cval: Any = 0.0,
    prefilter: Any = True,
) -> MapCoordinatesArgs:
    """Check the arguments of ``map_coordinates`` on metadata only (shapes, dtypes, option values).

    Never reads array values, so it forces no device-to-host copy of a JAX array.
    """
    if isinstance(order, bool) or not isinstance(order, int | np.integer):
        raise MapCoordinatesError(f"order must be an int in 0..{MAX_ORDER}; got {order!r}")
    if not 0 <= int(order) <= MAX_ORDER:
        raise MapCoordinatesError(
            f"spline order not supported: order must be in 0..{MAX_ORDER}; got {order!r}"
        )
    if not isinstance(mode, str) or mode not in MODES:
        valid = ", ".join(repr(m) for m in MODES)
        raise MapCoordinatesError(f"boundary mode not supported: mode must be one of {valid}; got {mode!r}")
    if not isinstance(prefilter, bool | np.bool_):
        raise MapCoordinatesError(f"prefilter must be a bool; got {prefilter!r}")
    if isinstance(cval, str | bytes) or np.ndim(cval) != 0 or _dtype_of(cval).kind not in "biuf":
        raise MapCoordinatesError(f"cval must be a real scalar; got {cval!r}")

    dtype = _dtype_of(input)
    if dtype.name not in FLOAT_DTYPES:
        raise MapCoordinatesError(f"input must be a real float32 or float64 array; got dtype {dtype.name}")
    in_shape = tuple(int(s) for s in np.shape(input))
    if len(in_shape) < 1 or 0 in in_shape:
        raise MapCoordinatesError(
            f"input must have at least one axis and no empty axis; got shape {in_shape}"
        )

    c_dtype = _dtype_of(coordinates)
    if c_dtype.kind not in "biuf":
        raise MapCoordinatesError(f"coordinates must be a real numeric array; got dtype {c_dtype.name}")
    c_shape = tuple(int(s) for s in np.shape(coordinates))
    if len(c_shape) < 2:
        raise MapCoordinatesError(
            f"coordinates must have shape (input.ndim, *output_shape) with at least one output axis; "
            f"got shape {c_shape}"
        )
    if c_shape[0] != len(in_shape):
        raise MapCoordinatesError(
            f"invalid shape for coordinate array: the leading dimension must equal input.ndim = "
            f"{len(in_shape)}; got coordinates of shape {c_shape} for input of shape {in_shape}"
        )
    return MapCoordinatesArgs(in_shape, dtype, c_shape[1:], int(order), mode, bool(prefilter))
