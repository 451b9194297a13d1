"""Reference of `implementations.gcm.ndimage`: ``map_coordinates``, a thin wrapper around SciPy's.

``map_coordinates`` checks its arguments with `contracts.gcm.ndimage.check_map_coordinates_args` (the JAX
twin runs the same check, so both raise the same errors) and then calls `scipy.ndimage.map_coordinates`
unchanged. The argument contract, its error type and the mode names are re-exported here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.ndimage

from contracts.gcm.ndimage import (
    MAX_ORDER,
    MODES,
    MapCoordinatesArgs,
    MapCoordinatesError,
    check_map_coordinates_args,
)

__all__ = [
    "MAX_ORDER",
    "MODES",
    "MapCoordinatesArgs",
    "MapCoordinatesError",
    "check_map_coordinates_args",
    "map_coordinates",
]


def map_coordinates(
    input: Any,
    coordinates: Any,
    output: Any = None,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
) -> np.ndarray:
    """`scipy.ndimage.map_coordinates` after the shared argument checks; same signature and result.

    With ``output=None`` the result has the input's dtype (float32 or float64) and shape
    ``coordinates.shape[1:]``. ``output`` is passed on to SciPy; the JAX twin only takes None.
    """
    check_map_coordinates_args(input, coordinates, order, mode, cval, prefilter)
    return scipy.ndimage.map_coordinates(
        np.asarray(input),
        np.asarray(coordinates),
        output=output,
        order=order,
        mode=mode,
        cval=cval,
        prefilter=prefilter,
    )
