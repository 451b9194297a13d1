"""Parity of `implementations.gcm.ndimage.map_coordinates` (JAX) with its SciPy reference twin.

The comparisons live in small helpers (`assert_parity_float64`, `assert_parity_float32`,
`assert_same_error`) so they can move onto the parity harness unchanged. Shapes come from a few fixed
buckets so JAX compiles a bounded number of programs.
"""

from __future__ import annotations

import re
import warnings

import jax
import jax.numpy as jnp
import jax.scipy.ndimage
import numpy as np
import pytest
import scipy.ndimage
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from contracts.gcm.validate import GCMInputError
from implementations.gcm import ndimage as port
from reference.gcm import ndimage as ref

MODES = ref.MODES
SUPPORTED_CASES = [
    (order, mode, prefilter)
    for order, modes in port.SUPPORTED.items()
    for mode in modes
    for prefilter in ((True, False) if order > 1 else (True,))
]
UNSUPPORTED_ORDERS = [o for o in range(ref.MAX_ORDER + 1) if o not in port.SUPPORTED]

# (input shape, output shape) buckets: an odd short axis (where SciPy's 'reflect' prefilter defect shows),
# an axis of length 2, and a 3-D input with a length-1 axis.
BUCKETS_F64 = [((5,), (48,)), ((2, 7), (6, 8)), ((3, 1, 4), (40,))]
BUCKETS_F32 = [((5,), (48,)), ((4, 6), (6, 8))]

F64_TOL = 1e-12  # of the data scale
F32_TOL = 1e-5

FAST = settings(max_examples=8, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# ---------------------------------------------------------------------------------------------------------
# comparison helpers


def data_scale(x: np.ndarray, cval: float) -> float:
    """The magnitude the tolerance is relative to: the largest sample or cval (1 for all-zero data)."""
    return float(max(np.max(np.abs(x)), abs(cval))) or 1.0


def assert_parity_float64(
    x: np.ndarray, coords: np.ndarray, *, order: int, mode: str, cval: float, prefilter: bool
) -> float:
    """The JAX port (x64 on) equals the SciPy reference to F64_TOL of the data scale; returns the error."""
    expected = ref.map_coordinates(x, coords, order=order, mode=mode, cval=cval, prefilter=prefilter)
    with jax.enable_x64(True):
        got = port.map_coordinates(x, coords, order=order, mode=mode, cval=cval, prefilter=prefilter)
        assert got.dtype == jnp.float64
        got = np.asarray(got)
    assert expected.dtype == np.float64 and got.shape == expected.shape == coords.shape[1:]
    np.testing.assert_allclose(got, expected, rtol=0, atol=F64_TOL * data_scale(x, cval))
    return float(np.max(np.abs(got - expected), initial=0.0))


def assert_parity_float32(
    x: np.ndarray, coords: np.ndarray, *, order: int, mode: str, cval: float, prefilter: bool
) -> float:
    """The port on float32 (x64 off, computed in float32) against SciPy in float64 on the same values."""
    assert x.dtype == coords.dtype == np.float32
    cval32 = float(np.float32(cval))
    expected = ref.map_coordinates(
        x.astype(np.float64),
        coords.astype(np.float64),
        order=order,
        mode=mode,
        cval=cval32,
        prefilter=prefilter,
    )
    with jax.enable_x64(False):
        got = port.map_coordinates(x, coords, order=order, mode=mode, cval=cval32, prefilter=prefilter)
        assert got.dtype == jnp.float32
        got = np.asarray(got)
    np.testing.assert_allclose(got, expected, rtol=0, atol=F32_TOL * data_scale(x, cval32))
    return float(np.max(np.abs(got - expected), initial=0.0))


def assert_same_error(exc_type: type[Exception], match: str, *args, **kwargs) -> None:
    """Both twins reject the call with the same exception type and the same message."""
    with pytest.raises(exc_type, match=match) as ref_err:
        ref.map_coordinates(*args, **kwargs)
    with jax.enable_x64(True), pytest.raises(exc_type, match=match) as port_err:
        port.map_coordinates(*args, **kwargs)
    assert str(ref_err.value) == str(port_err.value)


# ---------------------------------------------------------------------------------------------------------
# strategies


def seam_points(n: int) -> list[float]:
    """Coordinates where the modes fold: multiples of every period, the ends, and one ulp either side."""
    periods = {max(n - 1, 1), n, max(2 * n - 2, 1), 2 * n}
    points = set()
    for p in periods:
        for k in range(-3, 4):
            for v in (k * p, k * p - 0.5, k * p + 0.5, k * p - 1.0):
                points.update((v, np.nextafter(v, -np.inf), np.nextafter(v, np.inf)))
    # XLA:CPU flushes subnormals to zero, so +-5e-324 behaves as 0 there but not in SciPy (documented).
    return sorted(p for p in points if p == 0 or abs(p) >= np.finfo(np.float64).tiny)


def coordinate_values(n: int) -> st.SearchStrategy[float]:
    """Float64 coordinates along an axis of length n: anywhere in [-2.5n - 2, 3.5n + 2] (well outside the
    input on both sides), on samples, at half-samples, and at the seams."""
    lo, hi = -2.5 * n - 2, 3.5 * n + 2
    return st.one_of(
        st.floats(lo, hi, allow_nan=False, allow_subnormal=False),
        st.integers(int(lo), int(hi)).map(float),
        st.integers(int(lo), int(hi)).map(lambda k: k + 0.5),
        st.sampled_from(seam_points(n)),
    )


def sample_values(width: int) -> st.SearchStrategy[float]:
    """Samples (and cval) of magnitude 0 or in [2^-10, 100]. XLA:CPU flushes subnormal intermediates to
    zero, so data near the underflow threshold (~1e-300) would lose relative accuracy that SciPy keeps."""
    tiny = 2.0**-10
    return st.one_of(st.just(0.0), st.floats(tiny, 100, width=width), st.floats(-100, -tiny, width=width))


@st.composite
def float64_case(draw, buckets=BUCKETS_F64):
    in_shape, out_shape = draw(st.sampled_from(buckets))
    x = draw(hnp.arrays(np.float64, in_shape, elements=sample_values(64)))
    coords = np.stack(
        [draw(hnp.arrays(np.float64, out_shape, elements=coordinate_values(n))) for n in in_shape]
    )
    cval = draw(sample_values(64))
    return x, coords, cval


@st.composite
def float32_case(draw, buckets=BUCKETS_F32):
    # Coordinates on a 1/64 grid: exact in float32, so folding them in float32 or float64 agrees and the
    # comparison measures the interpolation arithmetic (samples, half-samples and seams included).
    in_shape, out_shape = draw(st.sampled_from(buckets))
    x = draw(hnp.arrays(np.float32, in_shape, elements=sample_values(32)))
    coords = np.stack(
        [
            draw(hnp.arrays(np.int32, out_shape, elements=st.integers(-64 * (2 * n + 2), 64 * (3 * n + 2))))
            for n in in_shape
        ]
    ).astype(np.float32) / np.float32(64)
    cval = draw(sample_values(32))
    return x, coords, cval


# ---------------------------------------------------------------------------------------------------------
# parity


@pytest.mark.parametrize(("order", "mode", "prefilter"), SUPPORTED_CASES)
@FAST
@given(case=float64_case())
def test_float64_matches_scipy(order: int, mode: str, prefilter: bool, case) -> None:
    x, coords, cval = case
    assert_parity_float64(x, coords, order=order, mode=mode, cval=cval, prefilter=prefilter)


@pytest.mark.parametrize(("order", "mode", "prefilter"), SUPPORTED_CASES)
@FAST
@given(case=float32_case())
def test_float32_matches_scipy(order: int, mode: str, prefilter: bool, case) -> None:
    x, coords, cval = case
    assert_parity_float32(x, coords, order=order, mode=mode, cval=cval, prefilter=prefilter)


def test_gcm_sized_grid_wrap_cubic() -> None:
    """The production case: a periodic 2-D field, random departure points, order 3 'grid-wrap'."""
    rng = np.random.default_rng(0)
    shape = (25, 48)
    x = rng.normal(size=shape)
    grid = np.stack(np.meshgrid(*(np.arange(n, dtype=float) for n in shape), indexing="ij"))
    coords = grid + rng.uniform(-3.0, 3.0, size=grid.shape)
    err = assert_parity_float64(x, coords, order=3, mode="grid-wrap", cval=0.0, prefilter=True)
    assert err < 1e-13


@pytest.mark.parametrize(("order", "mode", "prefilter"), SUPPORTED_CASES)
def test_a_length_one_axis_matches_scipy_without_warnings(order: int, mode: str, prefilter: bool) -> None:
    """A degenerate (length-1) axis in every mode: every tap folds onto the one sample, as in SciPy, and the
    fold itself divides by nothing (the mirror period 2n - 2 is 0 there): a port that warns "divide by zero"
    on valid input fails under ``-W error``, so warnings are errors here."""
    x = np.array([[1.5], [-2.0], [0.25]])
    coords = np.array([[0.0, 1.25, 2.0, -0.75, 2.5], [0.0, 0.4, -1.6, 2.2, 0.0]])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        err = assert_parity_float64(x, coords, order=order, mode=mode, cval=0.5, prefilter=prefilter)
    assert err < 1e-13


def test_scipy_reflect_prefilter_defect_is_reproduced() -> None:
    """Canary for scipy#24550: SciPy 1.17's 'reflect' spline does not pass through the samples of a short
    axis (its prefilter reads back a value it already overwrote); the port reproduces that on purpose.
    When this fails because SciPy interpolates exactly, drop `_scipy_reflect_correction`."""
    x = np.array([3.0, -1.0, 2.0])
    at_samples = np.arange(3.0)[None]
    scipy_values = scipy.ndimage.map_coordinates(x, at_samples, order=3, mode="reflect")
    assert np.max(np.abs(scipy_values - x)) > 1e-6
    err = assert_parity_float64(x, at_samples, order=3, mode="reflect", cval=0.0, prefilter=True)
    assert err < 1e-14


# ---------------------------------------------------------------------------------------------------------
# SciPy's mode names are not JAX's


def test_scipy_wrap_is_not_jax_wrap() -> None:
    """Negative control: SciPy 'wrap' has period n - 1, JAX 'wrap' period n; passing the name straight
    through to jax.scipy.ndimage gives different numbers. The port follows SciPy."""
    x = np.array([1.0, 2.0, 4.0, 8.0, 16.0])
    coords = np.array([[-1.5, -0.5, 0.25, 3.5, 4.5, 5.0, 6.25]])
    scipy_wrap = scipy.ndimage.map_coordinates(x, coords, order=1, mode="wrap")
    with jax.enable_x64(True):
        jax_wrap = np.asarray(
            jax.scipy.ndimage.map_coordinates(jnp.asarray(x), list(coords), order=1, mode="wrap")
        )
        ours = np.asarray(port.map_coordinates(x, coords, order=1, mode="wrap"))
    assert np.max(np.abs(jax_wrap - scipy_wrap)) > 1.0
    # JAX's 'wrap' is SciPy's 'grid-wrap' ...
    np.testing.assert_allclose(
        jax_wrap, scipy.ndimage.map_coordinates(x, coords, order=1, mode="grid-wrap"), rtol=0, atol=1e-12
    )
    # ... and the port's 'wrap' is SciPy's.
    np.testing.assert_allclose(ours, scipy_wrap, rtol=0, atol=1e-12)


# ---------------------------------------------------------------------------------------------------------
# what the port does not do


@pytest.mark.parametrize("order", UNSUPPORTED_ORDERS)
@pytest.mark.parametrize("mode", MODES)
def test_unsupported_order_raises_not_implemented(order: int, mode: str) -> None:
    x = np.linspace(0.0, 1.0, 6)
    coords = np.array([[0.5, 2.5]])
    ref.map_coordinates(x, coords, order=order, mode=mode)  # SciPy itself supports it
    supported = ", ".join(str(o) for o in port.SUPPORTED)
    with jax.enable_x64(True), pytest.raises(NotImplementedError, match=f"supported orders are {supported}"):
        port.map_coordinates(x, coords, order=order, mode=mode)


def test_every_mode_is_supported_for_orders_0_1_3() -> None:
    # With every SciPy mode implemented there is no (supported order, unsupported mode) pair to raise on.
    assert set(port.SUPPORTED) == {0, 1, 3}
    assert all(set(modes) == set(MODES) for modes in port.SUPPORTED.values())


def test_unsupported_mode_message_names_the_supported_ones(monkeypatch) -> None:
    # No (order, mode) pair is unsupported today; pin the message such a gap would raise.
    monkeypatch.setitem(port.SUPPORTED, 3, ("grid-wrap", "mirror"))
    with pytest.raises(
        NotImplementedError, match="order=3 supports modes 'grid-wrap', 'mirror'; got 'nearest'"
    ):
        port.map_coordinates(np.zeros(4, np.float32), np.zeros((1, 2), np.float32), order=3, mode="nearest")


def test_output_argument_raises_not_implemented() -> None:
    x = np.linspace(0.0, 1.0, 6)
    coords = np.array([[0.5, 2.5]])
    with jax.enable_x64(True), pytest.raises(NotImplementedError, match="output must be None"):
        port.map_coordinates(x, coords, output=np.empty(2), order=1)


# ---------------------------------------------------------------------------------------------------------
# bad input: both twins, one error


X2 = np.arange(12.0).reshape(3, 4)
C2 = np.zeros((2, 5))


@pytest.mark.parametrize("coords_shape", [(1, 5), (3, 5), (2,)])
def test_bad_coordinate_shape(coords_shape) -> None:
    assert_same_error(ref.MapCoordinatesError, "coordinates", X2, np.zeros(coords_shape), order=1)


def test_complex_coordinates() -> None:
    assert_same_error(ref.MapCoordinatesError, "real numeric", X2, C2.astype(complex), order=1)


@pytest.mark.parametrize("dtype", [np.int64, np.complex128, np.float16, bool])
def test_input_must_be_float32_or_float64(dtype) -> None:
    assert_same_error(ref.MapCoordinatesError, "float32 or float64", X2.astype(dtype), C2, order=1)


def test_input_without_samples() -> None:
    assert_same_error(ref.MapCoordinatesError, "empty axis", np.zeros((3, 0)), C2, order=1)


@pytest.mark.parametrize("order", [1.0, True, "3", None])
def test_order_must_be_an_int(order) -> None:
    assert_same_error(ref.MapCoordinatesError, "order must be an int", X2, C2, order=order)


@pytest.mark.parametrize("order", [-1, 6])
def test_order_out_of_range(order) -> None:
    assert_same_error(ref.MapCoordinatesError, "spline order not supported", X2, C2, order=order)
    with pytest.raises(RuntimeError, match="spline order not supported"):  # what SciPy raises
        scipy.ndimage.map_coordinates(X2, C2, order=order)


@pytest.mark.parametrize("mode", ["periodic", "Wrap", "edge", 3])
def test_unknown_mode_lists_the_valid_ones(mode) -> None:
    valid = ", ".join(repr(m) for m in MODES)
    assert_same_error(
        ref.MapCoordinatesError, re.escape(f"mode must be one of {valid}"), X2, C2, order=1, mode=mode
    )


def test_cval_and_prefilter_types() -> None:
    assert_same_error(ref.MapCoordinatesError, "cval must be a real scalar", X2, C2, order=1, cval=[1.0])
    assert_same_error(ref.MapCoordinatesError, "cval must be a real scalar", X2, C2, order=1, cval="1")
    assert_same_error(ref.MapCoordinatesError, "prefilter must be a bool", X2, C2, order=3, prefilter="yes")


def test_error_class_is_a_value_error_and_a_runtime_error() -> None:
    # ValueError like every GCM input error; RuntimeError like SciPy's own, so SciPy callers keep working.
    assert issubclass(ref.MapCoordinatesError, GCMInputError)
    assert issubclass(ref.MapCoordinatesError, ValueError)
    assert issubclass(ref.MapCoordinatesError, RuntimeError)


def test_float64_without_x64_is_refused() -> None:
    with jax.enable_x64(False), pytest.raises(ValueError, match="64-bit mode is off"):
        port.map_coordinates(X2, C2, order=1)


# ---------------------------------------------------------------------------------------------------------
# dtypes and compilation


@pytest.mark.parametrize("x64", [False, True])
def test_result_dtype_is_the_input_dtype(x64: bool) -> None:
    x = X2.astype(np.float32)
    assert ref.map_coordinates(x, C2, order=3).dtype == np.float32  # SciPy keeps the input dtype too
    with jax.enable_x64(x64):
        assert port.map_coordinates(x, C2, order=3).dtype == jnp.float32
        assert (
            port.map_coordinates(jnp.asarray(x), jnp.asarray(C2, jnp.float32), order=1).dtype == jnp.float32
        )
    with jax.enable_x64(True):
        assert port.map_coordinates(X2, C2.astype(np.float32), order=3).dtype == jnp.float64


def test_cval_and_coordinates_do_not_recompile() -> None:
    x = np.linspace(0.0, 1.0, 9).astype(np.float32)
    coords = np.array([[0.25, 3.5, -2.0]], np.float32)
    port.map_coordinates(x, coords, order=1, mode="constant", cval=0.0)
    before = port._map_coordinates._cache_size()
    for cval in (1.0, -2.5):
        port.map_coordinates(x, coords + cval, order=1, mode="constant", cval=cval)
    assert port._map_coordinates._cache_size() == before
