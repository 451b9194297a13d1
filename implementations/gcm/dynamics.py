"""JAX implementation of `reference.gcm.dynamics`: spherical Laplacian, hyperdiffusion, semi-Lagrangian
advection, the Shapiro 1-2-1 filter, divergence and vorticity, with the reference's names and signatures.

Each public function checks its inputs in Python (`implementations.gcm._guard`) and calls one module-level
jitted kernel. Structure is static (``n_substeps``, ``n_passes``, the flag that asks for in-kernel finiteness
flags); numbers are traced: the scalars travel packed in one small array of the field dtype (one transfer
instead of one per Python float, and the dtype of the fields, so float32 stays float32), so a new ``dt``
never recompiles. The private cores (``_laplacian`` ...) are shared with `implementations.gcm.model`.

Rounding: every division and every product that feeds a sum is written so that XLA rounds it as NumPy
does (`implementations.gcm._numerics`: XLA's reciprocal rewrite of divisions and its FMA contraction are
kept out). Measured on the CPU backend in float64: all these kernels equal the NumPy/SciPy reference bit
for bit.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from contracts.gcm.validate import (
    check_broadcast_shape,
    check_fields,
    check_grid_args,
    check_int,
    check_nonnegative,
    check_positive_scalar,
)
from implementations.gcm._guard import (
    all_on_host,
    as_dtype,
    check_finite,
    check_x64,
    column,
    finite_flags,
    raise_on_flags,
)
from implementations.gcm._numerics import divide_like_numpy, mod_like_numpy, rounded

ArrayLike = Any

# floor of cos(lat) in the zonal departure distance (the original model's value)
DEPARTURE_COSLAT_FLOOR = 1e-6


def _pack(dtype: np.dtype, *values: float) -> np.ndarray:
    """Scalars as one host array of the field dtype (the way NumPy casts Python floats against it)."""
    return np.array(values, dtype=dtype)


def _check_stencil(fields: dict[str, ArrayLike], dlat: float, dlon: float, coslat: ArrayLike, a: float):
    shape, dtype = check_fields(fields)
    check_x64(dtype)
    check_grid_args(shape, dlat, dlon, coslat, a)
    return shape, dtype


def _run(kernel, fields: dict[str, ArrayLike], *args: Any, before=None, extra_on_host=(), **static: Any):
    """Call ``kernel(*fields, *args, flags=..., **static)`` with the finiteness policy of `_guard`."""
    values = tuple(fields.values())
    if all_on_host(values + tuple(extra_on_host)):
        if before is not None:
            before()
        check_finite(fields)
        return kernel(*values, *args, flags=False, **static)
    out, ok = kernel(*values, *args, flags=True, **static)
    raise_on_flags(ok, fields, before)
    return out


# --------------------------------------------------------------------------------------------------------
# Laplacian and hyperdiffusion


def _d_phi(F: jax.Array, dlat: jax.Array) -> jax.Array:
    """``np.gradient(F, dlat, axis=0)``: central inside, first-order one-sided on rows 0 and -1."""
    first = divide_like_numpy(F[1:2] - F[0:1], dlat)
    interior = divide_like_numpy(F[2:] - F[:-2], 2.0 * dlat)
    last = divide_like_numpy(F[-1:] - F[-2:-1], dlat)
    return jnp.concatenate([first, interior, last], axis=0)


def _pad_lon(F: jax.Array) -> jax.Array:
    """``F`` with one periodic ghost column on each side, ``(n_lat, n_lon + 2)``: ``[:, 2:]`` is
    ``F[:, i + 1]`` and ``[:, :-2]`` is ``F[:, i - 1]`` (the rolls ``jnp.roll(F, -1 / +1, axis=1)``).

    One concatenate that consumers read through fused slices: measured faster on XLA's CPU backend than
    two ``jnp.roll`` (each a pair of materialised slices plus a concatenate) or pad-and-select shifts.
    """
    return jnp.concatenate([F[:, -1:], F, F[:, :1]], axis=1)


def _pad_lat_nearest(F: jax.Array) -> jax.Array:
    """``F`` with its first and last rows repeated, ``(n_lat + 2, n_lon)`` ('nearest' edges)."""
    return jnp.concatenate([F[:1], F, F[-1:]], axis=0)


def _laplacian(F: jax.Array, dlat: jax.Array, dlon: jax.Array, c: jax.Array, a: jax.Array) -> jax.Array:
    merid = divide_like_numpy(_d_phi(rounded(c * _d_phi(F, dlat)), dlat), c)
    Fx = _pad_lon(F)
    zonal = divide_like_numpy(Fx[:, 2:] - 2.0 * F + Fx[:, :-2], c * c * (dlon * dlon))
    return divide_like_numpy(merid + zonal, a * a)


def _hyperdiffuse(
    F: jax.Array, k4: jax.Array, dt_sub: jax.Array, n_substeps: int, dlat, dlon, c, a
) -> jax.Array:
    def substep(F: jax.Array) -> jax.Array:
        return F - rounded(k4 * _laplacian(_laplacian(F, dlat, dlon, c, a), dlat, dlon, c, a) * dt_sub)

    if n_substeps <= 4:  # unrolled: XLA fuses across substeps
        for _ in range(n_substeps):
            F = substep(F)
        return F
    return lax.fori_loop(0, n_substeps, lambda _, F: substep(F), F)


@functools.partial(jax.jit, static_argnames=("flags",))
def _laplacian_jit(F, c, s, *, flags: bool):
    dlat, dlon, a = s[0], s[1], s[2]
    out = _laplacian(F, dlat, dlon, c, a)
    return (out, finite_flags(F)) if flags else out


@functools.partial(jax.jit, static_argnames=("n_substeps", "flags"))
def _hyperdiffuse_jit(F, k4, c, s, *, n_substeps: int, flags: bool):
    dt_sub, dlat, dlon, a = s[0], s[1], s[2], s[3]
    out = _hyperdiffuse(F, k4, dt_sub, n_substeps, dlat, dlon, c, a)
    if not flags:
        return out
    k4_ok = jnp.all(jnp.isfinite(k4) & (k4 >= 0))
    return out, jnp.concatenate([finite_flags(F), k4_ok[None]])


def laplacian_sphere(F: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float) -> jax.Array:
    """Spherical Laplacian ``a^-2 [(1/c) Dphi(c Dphi F) + d_lambda_lambda F / (c^2 dlon^2)]``.

    ``Dphi`` has ``np.gradient(., dlat, axis=0)`` semantics (central inside, first-order one-sided on rows 0
    and -1); ``d_lambda_lambda`` is the periodic 3-point roll stencil (period ``n_lon``). Non-finite input is
    an error, never zeroed.
    """
    fields = {"F": F}
    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    s = _pack(dtype, float(dlat), float(dlon), float(a))
    return _run(_laplacian_jit, fields, column(coslat, dtype), s)


def hyperdiffuse(
    F: ArrayLike,
    k4: ArrayLike,
    dt: float,
    n_substeps: int,
    dlat: float,
    dlon: float,
    coslat: ArrayLike,
    a: float,
) -> jax.Array:
    """Explicit biharmonic diffusion: ``n_substeps`` times ``F <- F - k4 lap(lap(F)) dt_sub``,
    ``dt_sub = dt / n_substeps``; ``k4`` a scalar or an ``(n_lat, n_lon)`` map, >= 0; ``dt > 0``;
    ``n_substeps`` an int >= 1 (static: each count compiles once)."""
    fields = {"F": F}
    shape, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    n = check_int("n_substeps", n_substeps, 1)
    if all_on_host((k4,)):
        check_nonnegative("k4", k4, shape)
        before = None
    else:  # a device map: its shape here, its values (finite, >= 0) from the kernel's flags
        check_broadcast_shape("k4", tuple(np.shape(k4)), shape)

        def before() -> None:
            check_nonnegative("k4", np.asarray(k4), shape)

    return _run(
        _hyperdiffuse_jit,
        fields,
        as_dtype(k4, dtype),
        column(coslat, dtype),
        _pack(dtype, dt / n, float(dlat), float(dlon), float(a)),
        before=before,
        extra_on_host=(k4,),
        n_substeps=n,
    )


# --------------------------------------------------------------------------------------------------------
# semi-Lagrangian advection


def _departure_points(u, v, dt, a, a_dlat, dlon, c) -> tuple[jax.Array, jax.Array]:
    """See `departure_points`; ``a_dlat`` is the host product ``a * dlat`` (a Python-float subexpression
    in the reference, so it is rounded once in float64 and then cast, as NumPy does)."""
    n_lat, n_lon = u.shape
    j = jnp.arange(n_lat, dtype=u.dtype)[:, None]
    i = jnp.arange(n_lon, dtype=u.dtype)[None, :]
    jd = jnp.clip(j - divide_like_numpy(v * dt, a_dlat), 0, n_lat - 1)
    id_ = mod_like_numpy(
        i - divide_like_numpy(u * dt, a * jnp.maximum(c, DEPARTURE_COSLAT_FLOOR) * dlon), n_lon
    )
    return jd, id_


def _bilinear(jd: jax.Array, id_: jax.Array):
    """Flat gather indices of the 4 neighbours and SciPy's order-1 weights (``w0 = 1 - t``, ``w1 = 1 - w0``).

    Longitude wraps with period ``n_lon`` (what JAX's ``map_coordinates`` calls 'wrap' and SciPy calls
    'grid-wrap'); ``jd`` is clamped, so the row above ``n_lat - 1`` only ever carries weight 0.
    """
    n_lat, n_lon = jd.shape
    j0f = jnp.floor(jd)
    wj0 = 1.0 - (jd - j0f)
    wj1 = 1.0 - wj0
    i0f = jnp.floor(id_)
    wi0 = 1.0 - (id_ - i0f)
    wi1 = 1.0 - wi0
    j0 = j0f.astype(jnp.int32)
    i0 = i0f.astype(jnp.int32)
    i0 = jnp.where(i0 >= n_lon, i0 - n_lon, i0)  # id == n_lon (a rounded tiny negative) is column 0
    i1 = jnp.where(i0 + 1 >= n_lon, 0, i0 + 1)
    j1 = jnp.minimum(j0 + 1, n_lat - 1)
    r0 = j0 * n_lon
    r1 = j1 * n_lon
    idx = tuple((r + i).reshape(-1) for r, i in ((r0, i0), (r0, i1), (r1, i0), (r1, i1)))
    return idx, (wj0, wj1, wi0, wi1)


def _interpolate(fields: jax.Array, idx, weights) -> jax.Array:
    """Bilinear values of a ``(B, n_lat, n_lon)`` stack at one set of departure points.

    Sums the 4 taps in SciPy's order, ``((f00 wj0 wi0 + f01 wj0 wi1) + f10 wj1 wi0) + f11 wj1 wi1``.
    """
    flat = fields.reshape(fields.shape[0], -1)
    wj0, wj1, wi0, wi1 = weights

    def tap(k: int) -> jax.Array:
        return flat.at[:, idx[k]].get(mode="promise_in_bounds").reshape(fields.shape)

    return (
        (rounded(tap(0) * wj0 * wi0) + rounded(tap(1) * wj0 * wi1)) + rounded(tap(2) * wj1 * wi0)
    ) + rounded(tap(3) * wj1 * wi1)


@functools.partial(jax.jit, static_argnames=("flags",))
def _departure_points_jit(u, v, c, s, *, flags: bool):
    out = _departure_points(u, v, s[0], s[1], s[2], s[3], c)
    return (out, finite_flags(u, v)) if flags else out


@functools.partial(jax.jit, static_argnames=("flags",))
def _advect_jit(field, u, v, c, s, *, flags: bool):
    idx, w = _bilinear(*_departure_points(u, v, s[0], s[1], s[2], s[3], c))
    out = _interpolate(field[None], idx, w)[0]
    return (out, finite_flags(field, u, v)) if flags else out


def departure_points(
    u: ArrayLike, v: ArrayLike, dt: float, a: float, dlat: float, dlon: float, coslat: ArrayLike
) -> tuple[jax.Array, jax.Array]:
    """Index-space departure points ``(jd, id)``: ``jd = j - v dt / (a dlat)`` clamped to
    ``[0, n_lat - 1]``; ``id = i - u dt / (a max(c, 1e-6) dlon)`` reduced like ``np.mod(., n_lon)``."""
    fields = {"u": u, "v": v}
    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    s = _pack(dtype, dt, float(a), float(a) * float(dlat), float(dlon))
    return _run(_departure_points_jit, fields, column(coslat, dtype), s)


def advect_semilag(
    field: ArrayLike,
    u: ArrayLike,
    v: ArrayLike,
    dt: float,
    a: float,
    dlat: float,
    dlon: float,
    coslat: ArrayLike,
) -> jax.Array:
    """Bilinear semi-Lagrangian advection: SciPy's ``map_coordinates(field, [jd, id], order=1,
    mode='grid-wrap', prefilter=False)`` at the `departure_points`, as a direct 4-tap gather (measured faster
    than ``jax.scipy.ndimage.map_coordinates(order=1, mode='wrap')``, whose 'wrap' is SciPy's 'grid-wrap')."""
    fields = {"field": field, "u": u, "v": v}
    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    dt = check_positive_scalar("dt", dt)
    s = _pack(dtype, dt, float(a), float(a) * float(dlat), float(dlon))
    return _run(_advect_jit, fields, column(coslat, dtype), s)


# --------------------------------------------------------------------------------------------------------
# filter, divergence, vorticity


def _shapiro(F: jax.Array, n_passes: int) -> jax.Array:
    """SciPy's symmetric correlate1d: ``x[i] w0 + (x[i-1] + x[i+1]) w1`` per axis."""
    for _ in range(n_passes):
        Fx = _pad_lon(F)
        F = F * 0.5 + (Fx[:, :-2] + Fx[:, 2:]) * 0.25
        Fy = _pad_lat_nearest(F)
        F = F * 0.5 + (Fy[:-2] + Fy[2:]) * 0.25
    return F


@functools.partial(jax.jit, static_argnames=("n_passes", "flags"))
def _shapiro_jit(F, *, n_passes: int, flags: bool):
    out = _shapiro(F, n_passes)
    return (out, finite_flags(F)) if flags else out


def shapiro_filter(F: ArrayLike, n_passes: int = 1) -> jax.Array:
    """1-2-1 smoothing (1/4, 1/2, 1/4) along longitude with periodic wrap, then along latitude with 'nearest'
    edges, ``n_passes`` times (static; 0 returns the input values)."""
    fields = {"F": F}
    _, dtype = check_fields(fields)
    check_x64(dtype)
    n = check_int("n_passes", n_passes, 0)
    return _run(_shapiro_jit, fields, n_passes=n)


def _d_lambda(F: jax.Array, dlon: jax.Array) -> jax.Array:
    Fx = _pad_lon(F)
    return divide_like_numpy(Fx[:, 2:] - Fx[:, :-2], 2.0 * dlon)


def _d_phi_interior(F: jax.Array, dlat: jax.Array) -> jax.Array:
    zero = jnp.zeros_like(F[:1])
    return jnp.concatenate([zero, divide_like_numpy(F[2:] - F[:-2], 2.0 * dlat), zero], axis=0)


def _zero_poles(F: jax.Array) -> jax.Array:
    return F.at[0].set(0.0).at[-1].set(0.0)


def _divergence(u, v, dlat, dlon, c, a) -> jax.Array:
    return _zero_poles(divide_like_numpy(_d_lambda(u, dlon) + _d_phi_interior(rounded(v * c), dlat), a * c))


def _vorticity(u, v, dlat, dlon, c, a) -> jax.Array:
    return _zero_poles(divide_like_numpy(_d_lambda(v, dlon) - _d_phi_interior(rounded(u * c), dlat), a * c))


@functools.partial(jax.jit, static_argnames=("flags",))
def _divergence_jit(u, v, c, s, *, flags: bool):
    out = _divergence(u, v, s[0], s[1], c, s[2])
    return (out, finite_flags(u, v)) if flags else out


@functools.partial(jax.jit, static_argnames=("flags",))
def _vorticity_jit(u, v, c, s, *, flags: bool):
    out = _vorticity(u, v, s[0], s[1], c, s[2])
    return (out, finite_flags(u, v)) if flags else out


def divergence(
    u: ArrayLike, v: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float
) -> jax.Array:
    """Horizontal divergence ``(du/dlambda + d(v c)/dphi) / (a c)``; pole rows set to 0."""
    fields = {"u": u, "v": v}
    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    s = _pack(dtype, float(dlat), float(dlon), float(a))
    return _run(_divergence_jit, fields, column(coslat, dtype), s)


def vorticity(u: ArrayLike, v: ArrayLike, dlat: float, dlon: float, coslat: ArrayLike, a: float) -> jax.Array:
    """Relative vorticity ``(dv/dlambda - d(u c)/dphi) / (a c)``; pole rows set to 0."""
    fields = {"u": u, "v": v}
    _, dtype = _check_stencil(fields, dlat, dlon, coslat, a)
    s = _pack(dtype, float(dlat), float(dlon), float(a))
    return _run(_vorticity_jit, fields, column(coslat, dtype), s)
