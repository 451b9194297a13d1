"""Bad input to every public GCM function gives the same clear `GCMInputError` on both sides.

Each row is one way to misuse one function; it runs against the NumPy reference and the JAX twin, which
must raise the same error type with a message that names the offending argument (and, for non-finite
values, the field and the first bad index). Validation happens at the public API, outside jitted code:
the JAX side raises before it compiles anything for the bad call.
"""

from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Callable
from typing import Any

import jax
import numpy as np
import pytest

import implementations.gcm as impl
import reference.gcm as ref
from conformance import compiles
from conformance.exactness import Exactness, assert_bitwise
from contracts.gcm.grid import Grid, State, StepParams

SIDES = {"reference": ref, "implementation": impl}
G = Grid(9, 16)
G2 = Grid(17, 32)
D = G.metrics()  # (dlat, dlon, coslat, a)


def _f(shape: tuple[int, ...] = G.shape, value: float = 1.0, dtype: Any = np.float32) -> np.ndarray:
    rng = np.random.default_rng(0)
    return (value + 0.1 * rng.standard_normal(shape)).astype(dtype)


def _nan_at(index: tuple[int, int], shape: tuple[int, ...] = G.shape) -> np.ndarray:
    x = _f(shape)
    x[index] = np.nan
    return x


def _metrics(grid: Grid = G, dtype: Any = np.float32) -> dict[str, Any]:
    dlat, dlon, c, a = grid.metrics()
    return {"dlat": dlat, "dlon": dlon, "coslat": np.asarray(c, dtype), "a": a}


def _model(grid: Grid = G, dtype: Any = np.float32):
    return ref.initial_state(grid, dtype=dtype), ref.default_forcing(grid, dtype=dtype)


def _with(state: State, **fields: Any) -> State:
    return state._replace(**fields)


# (id, call(m) with m the module under test, message pattern)
Row = tuple[str, Callable[[Any], Any], str]

ROWS: list[Row] = [
    # -- stencils: shapes, grids, scalars, non-finite
    (
        "laplacian.1d",
        lambda m: m.laplacian_sphere(_f((16,)), **_metrics()),
        r"F must be a 2-D \(n_lat, n_lon\) field",
    ),
    ("laplacian.too_small", lambda m: m.laplacian_sphere(_f((2, 16)), **_metrics()), r"at least 3 rows"),
    (
        "laplacian.int_dtype",
        lambda m: m.laplacian_sphere(np.ones(G.shape, np.int32), **_metrics()),
        r"F must be float32 or float64; got dtype int32",
    ),
    (
        "laplacian.grid_mismatch.coslat",
        lambda m: m.laplacian_sphere(_f(G2.shape), **_metrics(G)),
        r"coslat has shape \(9,\) but the field has 17 rows",
    ),
    (
        "laplacian.grid_mismatch.dlon",
        lambda m: m.laplacian_sphere(_f(G.shape), **{**_metrics(G), "dlon": G2.dlon}),
        r"dlon=.* does not match a periodic grid of 16 columns",
    ),
    (
        "laplacian.grid_mismatch.dlat",
        lambda m: m.laplacian_sphere(_f(G.shape), **{**_metrics(G), "dlat": G2.dlat}),
        r"dlat=.* does not match a pole-to-pole grid of 9 rows",
    ),
    (
        "laplacian.radius_zero",
        lambda m: m.laplacian_sphere(_f(), **{**_metrics(), "a": 0.0}),
        r"a must be > 0",
    ),
    (
        "laplacian.coslat_zero",
        lambda m: m.laplacian_sphere(_f(), **{**_metrics(), "coslat": np.zeros(G.n_lat, np.float32)}),
        r"coslat must be finite and > 0",
    ),
    (
        "laplacian.nan",
        lambda m: m.laplacian_sphere(_nan_at((3, 5)), **_metrics()),
        r"F has 1 non-finite value\(s\); first at index \(3, 5\)",
    ),
    (
        "divergence.shape_mismatch",
        lambda m: m.divergence(_f(), _f(G2.shape), **_metrics()),
        r"v has shape \(17, 32\), which does not match the shape of u \(9, 16\)",
    ),
    (
        "vorticity.mixed_dtypes",
        lambda m: m.vorticity(_f(), _f(dtype=np.float64), **_metrics()),
        r"all fields must share one dtype: u is float32 but v is float64",
    ),
    (
        "vorticity.inf",
        lambda m: m.vorticity(
            _f(), np.where(np.eye(9, 16) > 0, np.inf, _f()).astype(np.float32), **_metrics()
        ),
        r"v has 9 non-finite value\(s\); first at index \(0, 0\)",
    ),
    (
        "shapiro.n_passes_negative",
        lambda m: m.shapiro_filter(_f(), -1),
        r"n_passes must be an int >= 0; got -1",
    ),
    (
        "shapiro.n_passes_float",
        lambda m: m.shapiro_filter(_f(), 1.0),
        r"n_passes must be an int >= 0; got 1.0",
    ),
    # -- hyperdiffusion: dt, coefficients, substeps
    (
        "hyperdiffuse.dt_zero",
        lambda m: m.hyperdiffuse(_f(), 1.0, 0.0, 1, **_metrics()),
        r"dt must be > 0; got 0.0",
    ),
    (
        "hyperdiffuse.dt_negative",
        lambda m: m.hyperdiffuse(_f(), 1.0, -60.0, 1, **_metrics()),
        r"dt must be > 0; got -60.0",
    ),
    (
        "hyperdiffuse.dt_nan",
        lambda m: m.hyperdiffuse(_f(), 1.0, math.nan, 1, **_metrics()),
        r"dt must be finite",
    ),
    (
        "hyperdiffuse.k4_negative",
        lambda m: m.hyperdiffuse(_f(), -1.0, 60.0, 1, **_metrics()),
        r"k4 must be >= 0 \(negative diffusion is anti-diffusion",
    ),
    (
        "hyperdiffuse.k4_map_negative",
        lambda m: m.hyperdiffuse(
            _f(), np.where(np.arange(9)[:, None] == 4, -1.0, 1.0) * np.ones(G.shape), 60.0, 1, **_metrics()
        ),
        r"k4 must be >= 0 .* min -1.0 at index \(4, 0\)",
    ),
    (
        "hyperdiffuse.k4_wrong_shape",
        lambda m: m.hyperdiffuse(_f(), np.ones((9, 15)), 60.0, 1, **_metrics()),
        r"k4 has shape \(9, 15\), not broadcastable to the field shape \(9, 16\)",
    ),
    (
        "hyperdiffuse.k4_broadcasts_field",
        lambda m: m.hyperdiffuse(_f(), np.ones((2, 9, 16)), 60.0, 1, **_metrics()),
        r"k4 has shape \(2, 9, 16\), which would broadcast the field shape",
    ),
    (
        "hyperdiffuse.substeps_zero",
        lambda m: m.hyperdiffuse(_f(), 1.0, 60.0, 0, **_metrics()),
        r"n_substeps must be an int >= 1; got 0",
    ),
    (
        "hyperdiffuse.nan",
        lambda m: m.hyperdiffuse(_nan_at((0, 15)), 1.0, 60.0, 1, **_metrics()),
        r"F has 1 non-finite value\(s\); first at index \(0, 15\)",
    ),
    # -- advection
    ("advect.dt_zero", lambda m: m.advect_semilag(_f(), _f(), _f(), 0.0, **_metrics()), r"dt must be > 0"),
    (
        "advect.wind_shape",
        lambda m: m.advect_semilag(_f(), _f((9, 15)), _f(), 60.0, **_metrics()),
        r"u has shape \(9, 15\), which does not match",
    ),
    (
        "advect.wind_nan",
        lambda m: m.advect_semilag(_f(), _f(), _nan_at((8, 0)), 60.0, **_metrics()),
        r"v has 1 non-finite value\(s\); first at index \(8, 0\)",
    ),
    (
        "departure_points.grid",
        lambda m: m.departure_points(_f(G2.shape), _f(G2.shape), 60.0, **_metrics(G)),
        r"coslat has shape \(9,\) but the field has 17 rows",
    ),
    # -- pointwise physics
    ("shortwave.shape_mismatch", lambda m: m.shortwave(_f(), _f((9, 15)), _f()), r"does not match|broadcast"),
    (
        "shortwave.nan",
        lambda m: m.shortwave(_f(), _f(), _nan_at((2, 2))),
        r"cloud has 1 non-finite value\(s\); first at index \(2, 2\)",
    ),
    (
        "longwave_v1.int",
        lambda m: m.longwave_v1(np.full(G.shape, 280), _f(value=250), _f()),
        r"t_surf must be float32 or float64",
    ),
    (
        "longwave_v2.mixed",
        lambda m: m.longwave_v2(_f(value=280), _f(value=250), _f(), _f(dtype=np.float64)),
        r"share one dtype|float64",
    ),
    (
        "longwave_v1.lock_nan",
        lambda m: m.longwave_v1(_f(value=280), _f(value=250), _f(), olr_lock=math.nan),
        r"olr_lock must be finite",
    ),
    ("q_sat.p_negative", lambda m: m.q_sat(_f(value=280), p=-1.0), r"p must be > 0"),
    (
        "q_sat.inf",
        lambda m: m.q_sat(np.full(G.shape, np.inf, np.float32)),
        r"t has 144 non-finite value\(s\)",
    ),
    (
        "evaporation.nan",
        lambda m: m.evaporation(_f(value=290), _f(value=0.01), _nan_at((1, 1)), _f(value=0.5)),
        r"wind_speed has 1 non-finite value\(s\); first at index \(1, 1\)",
    ),
    ("condensation.dt_zero", lambda m: m.condensation(_f(value=0.01), _f(value=280), 0.0), r"dt must be > 0"),
    # -- the model step
    (
        "step.state_shape",
        lambda m: m.step(_with(_model()[0], q=_f((9, 15))), _model()[1], StepParams(), G),
        r"state.q has shape \(9, 15\), which does not match the grid shape \(9, 16\)",
    ),
    (
        "step.grid_mismatch",
        lambda m: m.step(*_model(G), StepParams(), G2),
        r"state.u has shape \(9, 16\), which does not match the grid shape \(17, 32\)",
    ),
    (
        "step.mixed_dtypes",
        lambda m: m.step(_model(dtype=np.float32)[0], _model(dtype=np.float64)[1], StepParams(), G),
        r"all fields must share one dtype: state.u is float32 but forcing.\w+ is float64",
    ),
    (
        "step.nan",
        lambda m: m.step(_with(_model()[0], t_atm=_nan_at((4, 7)) + 250), _model()[1], StepParams(), G),
        r"state.t_atm has 1 non-finite value\(s\); first at index \(4, 7\)",
    ),
    (
        "step.forcing_inf",
        lambda m: m.step(
            _model()[0],
            _model()[1]._replace(insolation=np.full(G.shape, np.inf, np.float32)),
            StepParams(),
            G,
        ),
        r"forcing.insolation has 144 non-finite",
    ),
    (
        "step.params_type",
        lambda m: m.step(*_model(), {"dt": 300.0}, G),
        r"params must be a contracts.gcm.grid.StepParams",
    ),
    (
        "step.grid_type",
        lambda m: m.step(*_model(), StepParams(), (9, 16)),
        r"grid must be a contracts.gcm.grid.Grid",
    ),
    (
        "step.state_type",
        lambda m: m.step(tuple(_model()[0]), _model()[1], StepParams(), G),
        r"state must be a contracts.gcm.grid.State",
    ),
]


@pytest.mark.parametrize("side", list(SIDES))
@pytest.mark.parametrize("row", ROWS, ids=[r[0] for r in ROWS])
def test_bad_input_is_a_clear_error(row: Row, side: str) -> None:
    _, call, pattern = row
    module = SIDES[side]
    with compiles.counting() as counts, pytest.raises(ref.GCMInputError, match=pattern):
        call(module)
    assert counts.compiles == 0, "validation must happen before anything is compiled"


@pytest.mark.parametrize(
    ("field", "value", "pattern"),
    [
        ("dt", 0.0, r"StepParams.dt must be finite and > 0; got 0.0"),
        ("dt", -1.0, r"StepParams.dt must be finite and > 0; got -1.0"),
        ("n_substeps", 0, r"n_substeps must be an int >= 1"),
        ("shapiro_passes", -1, r"shapiro_passes must be an int >= 0"),
        ("longwave", "v3", r"longwave must be .v1. or .v2.; got .v3."),
        ("advection_blend", 1.5, r"advection_blend must be in \[0, 1\]"),
        ("sigma4", -0.1, r"sigma4 must be"),
    ],
)
def test_step_params_are_validated(field: str, value: Any, pattern: str) -> None:
    """StepParams validates on construction: a bad parameter never reaches either model."""
    with pytest.raises(ref.GCMInputError, match=pattern):
        dataclasses.replace(StepParams(), **{field: value})


def test_grid_is_validated() -> None:
    with pytest.raises(ref.GCMInputError, match=r"n_lat"):
        Grid(2, 16)
    with pytest.raises(ref.GCMInputError, match=r"n_lon"):
        Grid(9, 2)
    with pytest.raises(ref.GCMInputError, match=r"radius"):
        Grid(9, 16, radius=-1.0)
    with pytest.raises(ref.GCMInputError, match=r"coslat_floor"):
        Grid(9, 16, coslat_floor=0.0)


def test_float64_with_x64_off_is_refused_not_silently_float32() -> None:
    """Without x64 JAX would compute a float64 input in float32: the JAX side refuses instead."""
    with jax.enable_x64(False):
        with pytest.raises(ref.GCMInputError, match=r"float64 input but jax_enable_x64 is off"):
            impl.laplacian_sphere(_f(dtype=np.float64), **_metrics(dtype=np.float64))
        with pytest.raises(ref.GCMInputError, match=r"float64 input but jax_enable_x64 is off"):
            impl.step(*_model(dtype=np.float64), StepParams(), G)
    # the reference computes float64 regardless
    assert ref.laplacian_sphere(_f(dtype=np.float64), **_metrics(dtype=np.float64)).dtype == np.float64


def test_nonfinite_on_device_input_is_reported_like_the_reference() -> None:
    """A JAX array input is checked by a flag computed inside the kernel (no extra host copy); the error
    still names the field and the first bad index, exactly as the reference does."""
    bad = jax.device_put(_nan_at((6, 9)))
    msgs = []
    for module in (ref, impl):
        with pytest.raises(ref.GCMInputError) as info:
            module.laplacian_sphere(bad, **_metrics())
        msgs.append(str(info.value))
    assert msgs[0] == msgs[1]
    assert re.search(r"first at index \(6, 9\)", msgs[1])


def test_errors_lose_nothing() -> None:
    """A refused call leaves the caller's arrays untouched."""
    x = _nan_at((1, 2))
    before = x.copy()
    for module in (ref, impl):
        with pytest.raises(ref.GCMInputError):
            module.hyperdiffuse(x, 1.0, 60.0, 1, **_metrics())
    assert_bitwise(before, x, why=f"{Exactness.ORDER_INDEPENDENT}: untouched memory")
