"""JAX implementation of `reference.gcm.ndimage`: ``map_coordinates`` with `scipy.ndimage` semantics.

``jax.scipy.ndimage.map_coordinates`` stops at order 1 and its mode names do not mean what SciPy's do
(JAX 'wrap' is SciPy 'grid-wrap', JAX 'constant' is SciPy 'grid-constant'; SciPy 'wrap' has period
``n - 1``, see scipy#2640 and jax#21624). This module reproduces SciPy 1.17's own algorithm instead:

Supported (every SciPy mode name; 'grid-mirror' is SciPy's alias of 'reflect'):

=====  ==================================================================================================
order  modes
=====  ==================================================================================================
0, 1   'constant', 'grid-constant', 'nearest', 'mirror', 'reflect', 'grid-mirror', 'wrap', 'grid-wrap'
3      'constant', 'grid-constant', 'nearest', 'mirror', 'reflect', 'grid-mirror', 'wrap', 'grid-wrap',
       with ``prefilter`` True or False
=====  ==================================================================================================

Orders 2, 4 and 5 and a non-None ``output`` raise NotImplementedError. Results have the input's dtype and are
computed in it (float32 stays float32); float64 needs ``jax_enable_x64``.

How SciPy evaluates one output point, per axis of length ``n`` (``ni_interpolation.c``), reproduced below:

1. ``cc = map_coordinate(c)``: fold the coordinate into the input by the mode's symmetry (none for
   'nearest' and 'grid-constant'; for 'constant' a point outside ``[0, n - 1]`` returns ``cval``).
2. ``start = floor(cc) - order // 2`` (odd order) or ``floor(cc + 0.5)`` (order 0), and the
   ``order + 1`` B-spline weights of ``cc - floor(cc)``.
3. Taps ``start .. start + order`` outside ``[0, n)`` are folded again by the mode's *tap* rule, which is
   not always the coordinate rule: 'wrap' and 'constant' fold taps by 'mirror'; 'grid-constant' reads
   ``cval`` there; 'nearest' clamps.
4. For order > 1 with ``prefilter``, the input is first replaced by its B-spline coefficients
   (`_spline_prefilter`), after padding 12 samples ('nearest': edge values, 'grid-constant': ``cval``).

Step 3 is done once per array, not per point: the coefficient array is extended by ``order + 1`` samples
on every side by the tap rule, so every tap is an in-range read at a fixed offset from one base index.

Known differences from SciPy, all outside what the parity tests draw:

- XLA:CPU flushes subnormal floats to zero. A coordinate of magnitude below 2.2e-308 (float64) acts as
  exactly 0 (SciPy folds -5e-324 to the far end in 'wrap', or returns cval in 'constant'), and data near
  the underflow threshold loses relative accuracy in the prefilter.
- float32 folds (and for 'nearest'/'grid-constant' shifts) coordinates in float32, SciPy in float64, so a
  folded coordinate carries up to half an ulp of its new value (3e-5 sample spacings near 960), the
  resolution of a float32 coordinate that size. On a 481 x 960 field that is ~1e-6 of the data scale for
  a smooth field and up to 4e-5 for white noise. In the discontinuous cases (order 0 at a half-sample,
  'wrap' at its seam) a float32 coordinate within an ulp of the jump can land on the other side.
- SciPy 1.17's 'reflect' prefilter has an O(|z|^(2n)) defect on short axes (scipy#24550); it is
  reproduced on purpose (`_scipy_reflect_correction`) and has to go once SciPy ships the fix.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from contracts.gcm.ndimage import check_map_coordinates_args

__all__ = ["SUPPORTED", "map_coordinates"]

_ALL_MODES = ("constant", "grid-constant", "nearest", "mirror", "reflect", "grid-mirror", "wrap", "grid-wrap")
# (order -> modes) this port computes exactly as SciPy does; anything else raises NotImplementedError.
SUPPORTED: dict[int, tuple[str, ...]] = {0: _ALL_MODES, 1: _ALL_MODES, 3: _ALL_MODES}

# The pole of the cubic B-spline interpolation filter, sqrt(3) - 2 (Unser et al. 1991).
_POLE = float(np.sqrt(3.0) - 2.0)
# SciPy pads this many samples before prefiltering 'nearest' and 'grid-constant' (_prepad_for_spline_filter).
_NPAD = 12
# Boundary extension that SciPy's prefilter (apply_filter in ni_splines.c) assumes, per mode.
_PREFILTER_EXTENSION = {
    "constant": "mirror",
    "grid-constant": "mirror",  # on the cval-padded array
    "nearest": "reflect",  # on the edge-padded array
    "mirror": "mirror",
    "reflect": "reflect",
    "wrap": "mirror",
    "grid-wrap": "periodic",
}


def _check_supported(order: int, mode: str, output: Any) -> None:
    if output is not None:
        raise NotImplementedError("output must be None: the JAX port returns a new array")
    if order not in SUPPORTED:
        orders = ", ".join(str(o) for o in SUPPORTED)
        raise NotImplementedError(f"order={order} is not supported; supported orders are {orders}")
    if mode not in SUPPORTED[order]:
        modes = ", ".join(repr(m) for m in SUPPORTED[order])
        raise NotImplementedError(f"order={order} supports modes {modes}; got {mode!r}")


# ---------------------------------------------------------------------------------------------------------
# Index maps. Each replicates SciPy's map_coordinate(), including its C casts to npy_intp (truncation toward
# zero, hence jnp.trunc) and its half-open ranges, so that points at the seam land on the same sample.


def _div(c: jax.Array, d: int) -> jax.Array:
    """``c / d`` as an IEEE division, like C's.

    XLA rewrites a division by a constant into a multiplication by its reciprocal, whose rounding can differ
    by an ulp; truncated, that quotient moves a coordinate one ulp below a period multiple (e.g. 'wrap' at
    ``3 (n - 1) - 1 ulp``) to the other end of the input. Behind an optimization barrier the divisor is
    no longer a known constant, so XLA keeps the division.
    """
    return c / jax.lax.optimization_barrier(jnp.full(c.shape, d, c.dtype))


def _map_coordinate(c: jax.Array, n: int, mode: str) -> jax.Array:
    """Fold float coordinates ``c`` into the input along an axis of length ``n`` (SciPy step 1).

    Points already inside ``[0, n - 1]`` are left alone. For 'mirror' (whole-sample symmetry, period
    ``2n - 2``) a point in ``(n - 1, n)`` is also left alone, as in SciPy; its taps are folded later.
    """
    if mode in ("nearest", "grid-constant", "constant"):
        return c  # 'constant' is masked by the caller; the other two extend taps, not coordinates
    below, above = c < 0, c > n - 1
    if n == 1:
        return jnp.where(below | above, jnp.zeros_like(c), c)
    # One truncated division per point: only the branch the point takes is computed.
    if mode == "mirror":  # x[-k] = x[k]: period 2n - 2
        s2 = 2 * n - 2
        q = jnp.trunc(_div(jnp.abs(c), s2))
        lo = s2 * q + c  # in (-s2, 0]
        lo = jnp.where(lo <= 1 - n, lo + s2, -lo)
        hi = c - s2 * q
        hi = jnp.where(hi >= n, s2 - hi, hi)
    elif mode == "reflect":  # x[-1 - k] = x[k]: period 2n
        s2 = 2 * n
        q = jnp.trunc(_div(jnp.abs(c), s2))
        lo = jnp.where(c < -s2, s2 * q + c, c)
        # SciPy maps a tiny negative t to 1e-15 - 1 rather than -t - 1 ~ -1, keeping cc strictly above -1.
        lo = jnp.where(lo < -n, lo + s2, jnp.where(lo > -1e-15, 1e-15, -lo) - 1)
        hi = c - s2 * q
        hi = jnp.where(hi >= n, s2 - hi - 1, hi)
    elif mode == "wrap":  # SciPy's 'wrap': period n - 1, the first and last samples are the same point
        sz = n - 1
        q = jnp.trunc(_div(jnp.abs(c), sz))
        lo = c + sz * (q + 1)  # in (0, sz]
        hi = c - sz * q  # in [0, sz)
    elif mode == "grid-wrap":  # period n
        q = jnp.trunc(_div(jnp.where(below, -1 - c, c), n))
        lo = c + n * (q + 1)
        hi = c - n * q
    else:  # pragma: no cover - the wrapper rejects other modes
        raise AssertionError(mode)
    return jnp.where(below, lo, jnp.where(above, hi, c))


def _tap_index(idx: np.ndarray, n: int, mode: str) -> np.ndarray:
    """Fold integer taps into ``[0, n)`` by the mode's tap rule (SciPy step 3), in NumPy at trace time."""
    if n == 1:
        return np.zeros_like(idx)
    rule = {"constant": "mirror", "wrap": "mirror"}.get(mode, mode)
    if rule == "nearest":
        return np.clip(idx, 0, n - 1)
    if rule == "mirror":  # whole-sample symmetric: ... 2 1 | 0 1 2 ... n-1 | n-2 ...
        r = np.mod(idx, 2 * n - 2)
        return np.where(r >= n, 2 * n - 2 - r, r)
    if rule == "reflect":  # half-sample symmetric: ... 1 0 | 0 1 ... n-1 | n-1 ...
        r = np.mod(idx, 2 * n)
        return np.where(r >= n, 2 * n - 1 - r, r)
    if rule == "grid-wrap":
        return np.mod(idx, n)
    raise AssertionError(rule)  # pragma: no cover - 'grid-constant' pads with cval instead


# ---------------------------------------------------------------------------------------------------------
# Cubic B-spline prefilter.
#
# The cubic B-spline through samples x solves  (c[i-1] + 4 c[i] + c[i+1]) / 6 = x[i]  with c extended
# beyond the ends by a symmetry. Each symmetry makes the extended system circulant:
#   periodic ('grid-wrap'):                   period n,       c[i + n] = c[i]
#   mirror (whole-sample: 'mirror', ...):     period 2n - 2,  c = c[0..n-1] + c[n-2..1]
#   reflect (half-sample: 'reflect', ...):    period 2n,      c = c[0..n-1] + c[n-1..0]
# A circulant matrix is diagonal in the DFT basis with eigenvalues (4 + 2 cos(2 pi k / m)) / 6 >= 1/3, so
# dividing the extended signal's spectrum by them solves the system exactly (up to rounding, ~1e-15 in
# float64). SciPy's recursive filter (two first-order passes with the pole above, started from closed-form
# boundary sums) computes the same exact solution, except for the one defect handled by
# `_scipy_reflect_correction`.


def _bspline_eigenvalues_full(m: int) -> np.ndarray:
    k = np.arange(m)  # fft frequencies
    return (4.0 + 2.0 * np.cos(2.0 * np.pi * k / m)) / 6.0


def _bspline_eigenvalues(m: int) -> np.ndarray:
    return _bspline_eigenvalues_full(m)[: m // 2 + 1]  # rfft frequencies


def _broadcast_along(v: np.ndarray, axis: int, ndim: int, dtype: Any) -> jax.Array:
    shape = [1] * ndim
    shape[axis] = v.size
    return jnp.asarray(v.reshape(shape), dtype=dtype)


def _circulant_solve(ext: jax.Array, axis: int) -> jax.Array:
    m = ext.shape[axis]
    inv = _broadcast_along(1.0 / _bspline_eigenvalues(m), axis, ext.ndim, ext.dtype)
    return jnp.fft.irfft(jnp.fft.rfft(ext, axis=axis) * inv, n=m, axis=axis)


def _scipy_reflect_correction(n: int) -> tuple[np.ndarray, np.ndarray]:
    """SciPy's half-sample prefilter as a rank-one update of the exact one: ``exact + u * (v . x)``.

    SciPy <= 1.17 (``_init_causal_reflect``, fixed upstream for scipy#24550) accumulates the causal
    start value in ``c[0]`` and reads ``c[0]`` back on its last iteration, where the formula wants the
    original ``x[0]``. That adds ``eps = v . x`` to the causal start value, with
    ``eps = z^(2n) / (1 - z^(2n)) * 6 * (z^n x[n-1] + sum_{i=1}^{n-2} z^i (x[i] + z^n x[n-1-i]))``
    (6 is the filter gain), and the two recursive passes carry it to the output as ``u * eps``. The
    error is O(|z|^(2n)) relative: 2e-4 at n = 2, 1e-15 at n = 13; `_spline_prefilter` applies this only
    while it is above rounding.
    """
    z = _POLE
    zn = z**n
    a = np.zeros(n)
    a[n - 1] += zn
    for i in range(1, n - 1):
        a[i] += z**i
        a[n - 1 - i] += z**i * zn
    v = 6.0 * z ** (2 * n) / (1.0 - z ** (2 * n)) * a
    # Response of the rest of the filter to a unit change of the causal start value.
    causal = z ** np.arange(n)  # c+[i] = x[i] + z c+[i-1] carries it as z^i
    u = np.zeros(n)
    u[n - 1] = z / (z - 1.0) * causal[n - 1]  # SciPy's anticausal start value: z / (z - 1) c+[n-1]
    for i in range(n - 2, -1, -1):  # c[i] = z (c[i+1] - c+[i])
        u[i] = z * (u[i + 1] - causal[i])
    return u, v


_REFLECT_CORRECTION_BELOW = 20  # |z|^(2n) < 1e-22 from here on: below float64 rounding


# Up to this length a mirror/reflect prefilter is one matrix product with its exact inverse (n^2 values at
# most 8 MB): the FFT of the extended signal (2n - 2 or 2n samples) is fast only for smooth lengths, and
# 2 * 240 - 2 = 478 = 2 * 239 made 'mirror' on a 240-column grid 5x slower than 'grid-wrap' (measured).
_DENSE_PREFILTER_MAX = 1024
assert _DENSE_PREFILTER_MAX >= _REFLECT_CORRECTION_BELOW  # the reflect correction lives in the dense matrices


@functools.cache
def _prefilter_matrix_host(n: int, extension: str) -> np.ndarray:
    """``P`` with ``c = P @ x`` the B-spline coefficients of ``x`` (length ``n``) under the extension:
    the inverse of ``(c[i-1] + 4 c[i] + c[i+1]) / 6`` with the boundary rule, plus SciPy's reflect defect."""
    a = (np.diag(np.full(n, 4.0)) + np.diag(np.ones(n - 1), 1) + np.diag(np.ones(n - 1), -1)) / 6.0
    if extension == "mirror":  # c[-1] = c[1], c[n] = c[n-2]
        a[0, 1] = a[n - 1, n - 2] = 2.0 / 6.0
    else:  # reflect: c[-1] = c[0], c[n] = c[n-1]
        a[0, 0] = a[n - 1, n - 1] = 5.0 / 6.0
    p = np.linalg.solve(a, np.eye(n))
    if extension == "reflect" and n < _REFLECT_CORRECTION_BELOW:
        u, v = _scipy_reflect_correction(n)
        p = p + np.outer(u, v)
    return p


def _prefilter_matrix(n: int, extension: str, dtype: str) -> jax.Array:
    return jnp.asarray(_prefilter_matrix_host(n, extension), dtype=dtype)


def _apply_along(p: jax.Array, x: jax.Array, axis: int) -> jax.Array:
    """``sum_j p[i, j] x[..., j, ...]`` along ``axis``, at full precision (no TF32/bf16 passes)."""
    y = jnp.tensordot(x, p, axes=([axis], [1]), precision=jax.lax.Precision.HIGHEST)
    return jnp.moveaxis(y, -1, axis)


def _spline_prefilter(x: jax.Array, extension: str) -> jax.Array:
    """Cubic B-spline coefficients of ``x`` along every axis, for the given boundary extension."""
    if extension == "periodic":
        # The N-D filter is the product of the per-axis ones, so one N-D transform does every axis.
        spectrum = jnp.fft.rfftn(x)
        for axis, n in enumerate(x.shape):
            eig = _bspline_eigenvalues(n) if axis == x.ndim - 1 else _bspline_eigenvalues_full(n)
            spectrum = spectrum * _broadcast_along(1.0 / eig, axis, x.ndim, x.dtype)
        return jnp.fft.irfftn(spectrum, s=x.shape)
    for axis in range(x.ndim):
        n = x.shape[axis]
        if n == 1:
            continue  # a single sample is its own coefficient (SciPy skips such axes too)
        if n <= _DENSE_PREFILTER_MAX:
            x = _apply_along(_prefilter_matrix(n, extension, np.dtype(x.dtype).name), x, axis)
            continue
        if extension == "mirror":
            inner = jax.lax.slice_in_dim(x, 1, n - 1, axis=axis)
            ext = jnp.concatenate([x, jnp.flip(inner, axis)], axis=axis)
        else:  # reflect
            ext = jnp.concatenate([x, jnp.flip(x, axis)], axis=axis)
        # SciPy's reflect defect needs no correction here: it matters only below _REFLECT_CORRECTION_BELOW
        # samples, which take the dense path above.
        x = jax.lax.slice_in_dim(_circulant_solve(ext, axis), 0, n, axis=axis)
    return x


# ---------------------------------------------------------------------------------------------------------
# Interpolation.


def _bspline_weights(t: jax.Array, order: int) -> list[jax.Array]:
    """Weights of taps ``start .. start + order`` at fractional offset ``t``, as SciPy writes them."""
    if order == 1:
        w0 = 1.0 - t
        return [w0, 1.0 - w0]
    y, z = t, 1.0 - t
    w1 = (y * y * (y - 2.0) * 3.0 + 4.0) / 6.0
    w2 = (z * z * (z - 2.0) * 3.0 + 4.0) / 6.0
    w0 = z * z * z / 6.0
    return [w0, w1, w2, 1.0 - w0 - w1 - w2]  # SciPy makes them sum to one this way


def _extend(coeffs: jax.Array, pad: int, mode: str, cval: jax.Array) -> jax.Array:
    """Extend ``coeffs`` by ``pad`` samples on each side of every axis by the mode's tap rule."""
    if mode == "grid-constant":
        return jnp.pad(coeffs, pad, mode="constant", constant_values=cval)
    for axis, n in enumerate(coeffs.shape):
        idx = _tap_index(np.arange(-pad, n + pad), n, mode)
        coeffs = jnp.take(coeffs, jnp.asarray(idx, dtype=jnp.int32), axis=axis)
    return coeffs


def _gather(flat: jax.Array, idx: jax.Array) -> jax.Array:
    # Indices are in range by construction (clipped starts on the extended array): skip JAX's negative-index
    # wrapping and bounds handling.
    return flat.at[idx].get(mode="promise_in_bounds", wrap_negative_indices=False)


def _interpolate(coeffs: jax.Array, coords: jax.Array, cval: jax.Array, order: int, mode: str) -> jax.Array:
    shape = coeffs.shape
    pad = order + 1  # clipped starts lie in [-pad, n], so taps lie in [-pad, n + order]
    flat = _extend(coeffs, pad, mode, cval).reshape(-1)
    ext_strides = np.cumprod((1, *(n + 2 * pad for n in shape[:0:-1])))[::-1]  # C order

    base = jnp.zeros(coords.shape[1:], jnp.int32)
    weights: list[list[jax.Array]] = []
    outside = jnp.zeros(coords.shape[1:], bool)
    for axis, n in enumerate(shape):
        c = coords[axis]
        if mode == "constant":
            # SciPy 'constant' returns cval for any point outside [0, n - 1] along any axis, without
            # blending towards cval (that is 'grid-constant'); inside, taps are mirrored.
            off = (c < 0) | (c > n - 1)
            outside = outside | off
            c = jnp.where(off, jnp.zeros_like(c), c)
        cc = _map_coordinate(c, n, mode)
        if order % 2:
            fl = jnp.floor(cc)
            weights.append(_bspline_weights(cc - fl, order))
            start = fl - order // 2
        else:
            start = jnp.floor(cc + 0.5)
        # Only 'nearest' and 'grid-constant' leave cc unfolded; there every start beyond the clip reads the
        # same taps (all edge values, or all cval), so clipping changes nothing but keeps int32 in range.
        start = jnp.clip(start, -pad, n).astype(jnp.int32)
        base = base + (start + pad) * int(ext_strides[axis])

    if order == 0:
        result = _gather(flat, base)
    else:
        # sum over taps (j_0, ..., j_{d-1}) of prod_k w_k[j_k] * coeffs[start + j], nested so the innermost
        # axis is summed first. Separate scalar gathers at fixed offsets fuse into one loop with the
        # weighting; XLA:CPU runs this far faster than a (..., 4, 4) window gather.
        def accumulate(axis: int, offset: int) -> jax.Array:
            total = None
            for j in range(order + 1):
                off = offset + j * int(ext_strides[axis])
                term = _gather(flat, base + off) if axis == len(shape) - 1 else accumulate(axis + 1, off)
                term = term * weights[axis][j]
                total = term if total is None else total + term
            return total

        result = accumulate(0, 0)
    if mode == "constant":
        result = jnp.where(outside, cval, result)
    return result


@functools.partial(jax.jit, static_argnames=("order", "mode", "prefilter"))
def _map_coordinates(
    input: jax.Array, coordinates: jax.Array, cval: jax.Array, *, order: int, mode: str, prefilter: bool
) -> jax.Array:
    coeffs, coords = input, coordinates.astype(input.dtype)  # computed in the input's precision
    if order > 1 and prefilter:
        if mode in ("nearest", "grid-constant"):
            # SciPy's prefilter has no exact rule for these two; it pads 12 samples and filters the padded
            # array (as 'reflect' for 'nearest', as 'mirror' for 'grid-constant'), then shifts coordinates.
            if mode == "nearest":
                coeffs = jnp.pad(coeffs, _NPAD, mode="edge")
            else:
                coeffs = jnp.pad(coeffs, _NPAD, mode="constant", constant_values=cval)
            coords = coords + _NPAD
        coeffs = _spline_prefilter(coeffs, _PREFILTER_EXTENSION[mode])
    return _interpolate(coeffs, coords, cval, order, mode)


def map_coordinates(
    input: Any,
    coordinates: Any,
    output: None = None,
    order: int = 3,
    mode: str = "constant",
    cval: float = 0.0,
    prefilter: bool = True,
) -> jax.Array:
    """Interpolate ``input`` at ``coordinates`` like `scipy.ndimage.map_coordinates`.

    ``coordinates`` has shape ``(input.ndim, *out_shape)`` (array index units); the result has shape
    ``out_shape`` and the input's dtype (float32 or float64). See the module docstring for the supported
    ``(order, mode)`` pairs; the others raise NotImplementedError.
    """
    args = check_map_coordinates_args(input, coordinates, order, mode, cval, prefilter)
    _check_supported(args.order, args.mode, output)
    if args.dtype == np.float64 and jax.dtypes.canonicalize_dtype(np.float64) != np.float64:
        raise ValueError(
            "input is float64 but JAX 64-bit mode is off, so it would be computed in float32: enable it "
            "(jax.config.update('jax_enable_x64', True) or `with jax.enable_x64(True):`) or pass float32"
        )
    mode = "reflect" if args.mode == "grid-mirror" else args.mode  # SciPy's alias; one compilation for both
    # NumPy and JAX arrays go to the jitted function as they are (its C++ dispatch moves NumPy data far
    # faster than jnp.asarray); the coordinates are cast to the input's dtype inside it.
    x = input if isinstance(input, np.ndarray | jax.Array) else np.asarray(input)
    coords = coordinates if isinstance(coordinates, np.ndarray | jax.Array) else np.asarray(coordinates)
    return _map_coordinates(
        x, coords, np.asarray(cval, dtype=args.dtype), order=args.order, mode=mode, prefilter=args.prefilter
    )
