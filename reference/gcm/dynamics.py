"""Reference (NumPy/SciPy) of the GCM dynamics kernels: spherical Laplacian, hyperdiffusion, semi-Lagrangian
advection, the Shapiro 1-2-1 filter, divergence and vorticity.

Readable first: every kernel is a few plain NumPy/SciPy calls. Each public function validates its inputs
(`contracts.gcm.validate`) and then calls a private core (``_name``) that the model step reuses on already
validated fields. Fields are ``(n_lat, n_lon)`` arrays on the grid of `contracts.gcm.grid` (pole rows,
non-repeating periodic longitude); every kernel computes in the dtype of its input fields.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from contracts.gcm.validate import (
    check_fields,
    check_finite,
    check_grid_args,
    check_int,
    check_nonnegative,
    check_positive_scalar,
)

ArrayLike = Any

# the 1-2-1 weights of the Shapiro filter
SHAPIRO_WEIGHTS = np.array([0.25, 0.5, 0.25])
# floor of cos(lat) in the zonal departure distance (the original model's value)
DEPARTURE_COSLAT_FLOOR = 1e-6


def _column(coslat: ArrayLike, dtype: np.dtype) -> np.ndarray:
    """coslat as an ``(n_lat, 1)`` column in the field dtype."""
    return np.asarray(coslat, dtype=dtype).reshape(-1, 1)


def _check_stencil(fields: dict[str, ArrayLike], dlat: float, dlon: float, coslat: ArrayLike, a: float):
    shape, dtype = check_fields(fields)
    check_grid_args(shape, dlat, dlon, coslat, a)
    return shape, dtype


# --------------------------------------------------------------------------------------------------------
# Laplacian and hyperdiffusion


def _d_phi(F: np.ndarray, dlat: float) -> np.ndarray:
    """Meridional derivative: central inside, first-order one-sided on the pole rows (np.gradient)."""
    return np.gradient(F, dlat, axis=0)


def _laplacian(F: np.ndarray, dlat: float, dlon: float, c: np.ndarray, a: float) -> np.ndarray:
    merid = _d_phi(c * _d_phi(F, dlat), dlat) / c
    zonal = (np.roll(F, -1, axis=1) - 2.0 * F + np.roll(F, 1, axis=1)) / (c * c * (dlon * dlon))
    return (merid + zonal) / (a * a)


def laplacian_sphere(F: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float) -> np.ndarray:
    """Spherical Laplacian ``a^-2 [(1/c) Dphi(c Dphi F) + d_lambda_lambda F / (c^2 dlon^2)]``.

    ``Dphi`` is ``np.gradient(., dlat, axis=0)`` (central inside, first-order one-sided on rows 0 and -1);
    ``d_lambda_lambda`` is the periodic 3-point stencil ``F[i+1] - 2 F[i] + F[i-1]`` (period ``n_lon``).
    ``c`` is the (clamped) ``coslat`` of the grid. Non-finite input is an error, never zeroed.
    """
    _, dtype = _check_stencil({"F": F}, dlat, dlon, coslat, a)
    check_finite({"F": F})
    return _laplacian(np.asarray(F), float(dlat), float(dlon), _column(coslat, dtype), float(a))


def _hyperdiffuse(
    F: np.ndarray,
    k4: ArrayLike,
    dt_sub: float,
    n_substeps: int,
    dlat: float,
    dlon: float,
    c: np.ndarray,
    a: float,
) -> np.ndarray:
    for _ in range(n_substeps):
        F = F - k4 * _laplacian(_laplacian(F, dlat, dlon, c, a), dlat, dlon, c, a) * dt_sub
    return F


def hyperdiffuse(
    F: ArrayLike,
    k4: ArrayLike,
    dt: float,
    n_substeps: int,
    dlat: float,
    dlon: float,
    coslat: ArrayLike,
    a: float,
) -> np.ndarray:
    """Explicit biharmonic diffusion: ``n_substeps`` times ``F <- F - k4 lap(lap(F)) dt_sub``.

    ``dt_sub = dt / n_substeps`` (a Python float); ``k4`` is a scalar or an ``(n_lat, n_lon)`` map, >= 0;
    ``dt > 0``; ``n_substeps`` an int >= 1.
    """
    shape, dtype = _check_stencil({"F": F}, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    n = check_int("n_substeps", n_substeps, 1)
    check_nonnegative("k4", k4, shape)
    check_finite({"F": F})
    k4 = np.asarray(k4, dtype=dtype)
    return _hyperdiffuse(
        np.asarray(F), k4, dt / n, n, float(dlat), float(dlon), _column(coslat, dtype), float(a)
    )


# --------------------------------------------------------------------------------------------------------
# semi-Lagrangian advection


def _departure_points(
    u: np.ndarray, v: np.ndarray, dt: float, a: float, dlat: float, dlon: float, c: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    n_lat, n_lon = u.shape
    j = np.arange(n_lat, dtype=u.dtype)[:, None]
    i = np.arange(n_lon, dtype=u.dtype)[None, :]
    jd = np.clip(j - v * dt / (a * dlat), 0, n_lat - 1)
    id_ = np.mod(i - u * dt / (a * np.maximum(c, DEPARTURE_COSLAT_FLOOR) * dlon), n_lon)
    return jd, id_


def departure_points(
    u: ArrayLike, v: ArrayLike, dt: float, a: float, dlat: float, dlon: float, coslat: ArrayLike
) -> tuple[np.ndarray, np.ndarray]:
    """Index-space departure points ``(jd, id)`` of one semi-Lagrangian step, each ``(n_lat, n_lon)``.

    ``jd = j - v dt / (a dlat)`` clamped to ``[0, n_lat - 1]`` (no pole-to-pole wrap: latitude behaves like
    'nearest'); ``id = i - u dt / (a max(c, 1e-6) dlon)`` reduced modulo ``n_lon`` with ``np.mod`` into
    ``[0, n_lon]`` (``n_lon`` itself only by rounding of a tiny negative value; it is column 0).
    """
    _, dtype = _check_stencil({"u": u, "v": v}, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    check_finite({"u": u, "v": v})
    return _departure_points(
        np.asarray(u), np.asarray(v), dt, float(a), float(dlat), float(dlon), _column(coslat, dtype)
    )


def _interpolate(field: np.ndarray, jd: np.ndarray, id_: np.ndarray) -> np.ndarray:
    """Bilinear interpolation at the departure points; periodic in longitude ('grid-wrap', period n_lon).

    ``jd`` is already clamped, so the wrap never acts on latitude.
    """
    return ndimage.map_coordinates(field, [jd, id_], order=1, mode="grid-wrap", prefilter=False)


def advect_semilag(
    field: ArrayLike,
    u: ArrayLike,
    v: ArrayLike,
    dt: float,
    a: float,
    dlat: float,
    dlon: float,
    coslat: ArrayLike,
) -> np.ndarray:
    """Bilinear semi-Lagrangian advection of ``field`` by ``(u, v)`` over ``dt``.

    ``map_coordinates(field, [jd, id], order=1, mode='grid-wrap', prefilter=False)`` at the
    `departure_points`. SciPy's 'grid-wrap' has period ``n_lon`` (its 'wrap' would have period
    ``n_lon - 1``, right only for a grid that repeats its first meridian, which this one does not).
    """
    _, dtype = _check_stencil({"field": field, "u": u, "v": v}, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    check_finite({"field": field, "u": u, "v": v})
    jd, id_ = _departure_points(
        np.asarray(u), np.asarray(v), dt, float(a), float(dlat), float(dlon), _column(coslat, dtype)
    )
    return _interpolate(np.asarray(field), jd, id_)


# --------------------------------------------------------------------------------------------------------
# filter, divergence, vorticity


def _shapiro(F: np.ndarray, n_passes: int) -> np.ndarray:
    weights = SHAPIRO_WEIGHTS.astype(F.dtype)
    for _ in range(n_passes):
        # for filters SciPy's 'wrap' is periodic with period n (unlike map_coordinates' 'wrap')
        F = ndimage.convolve1d(F, weights, axis=1, mode="wrap")
        F = ndimage.convolve1d(F, weights, axis=0, mode="nearest")
    return F


def shapiro_filter(F: ArrayLike, n_passes: int = 1) -> np.ndarray:
    """1-2-1 smoothing (weights 1/4, 1/2, 1/4): along longitude with periodic wrap, then along latitude with
    'nearest' edges (the pole row is its own neighbour), repeated ``n_passes`` times (0 returns a copy)."""
    check_fields({"F": F})
    n = check_int("n_passes", n_passes, 0)
    check_finite({"F": F})
    return _shapiro(np.array(F), n)


def _d_lambda(F: np.ndarray, dlon: float) -> np.ndarray:
    """Periodic central difference in longitude."""
    return (np.roll(F, -1, axis=1) - np.roll(F, 1, axis=1)) / (2.0 * dlon)


def _d_phi_interior(F: np.ndarray, dlat: float) -> np.ndarray:
    """Central difference in latitude on rows 1..n-2; the pole rows are 0."""
    out = np.zeros_like(F)
    out[1:-1] = (F[2:] - F[:-2]) / (2.0 * dlat)
    return out


def _zero_poles(F: np.ndarray) -> np.ndarray:
    F[0] = 0.0
    F[-1] = 0.0
    return F


def _divergence(
    u: np.ndarray, v: np.ndarray, dlat: float, dlon: float, c: np.ndarray, a: float
) -> np.ndarray:
    return _zero_poles((_d_lambda(u, dlon) + _d_phi_interior(v * c, dlat)) / (a * c))


def _vorticity(u: np.ndarray, v: np.ndarray, dlat: float, dlon: float, c: np.ndarray, a: float) -> np.ndarray:
    return _zero_poles((_d_lambda(v, dlon) - _d_phi_interior(u * c, dlat)) / (a * c))


def divergence(
    u: ArrayLike, v: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float
) -> np.ndarray:
    """Horizontal divergence ``(du/dlambda + d(v c)/dphi) / (a c)``; pole rows set to 0."""
    _, dtype = _check_stencil({"u": u, "v": v}, dlat, dlon, coslat, a)
    check_finite({"u": u, "v": v})
    return _divergence(
        np.asarray(u), np.asarray(v), float(dlat), float(dlon), _column(coslat, dtype), float(a)
    )


def vorticity(
    u: ArrayLike, v: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float
) -> np.ndarray:
    """Relative vorticity ``(dv/dlambda - d(u c)/dphi) / (a c)``; pole rows set to 0."""
    _, dtype = _check_stencil({"u": u, "v": v}, dlat, dlon, coslat, a)
    check_finite({"u": u, "v": v})
    return _vorticity(
        np.asarray(u), np.asarray(v), float(dlat), float(dlon), _column(coslat, dtype), float(a)
    )
