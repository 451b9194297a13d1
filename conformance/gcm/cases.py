"""Parity cases of the GCM subsystem: every kernel of `reference.gcm` against its twin in `implementations.gcm`.

Inputs are flat mappings (arrays, numbers, strings) so the worst example of each case can be saved and
replayed; ``build`` turns them into the kernels' arguments (the grid metrics come from the field's shape).
Grids are drawn from three buckets, so each jitted kernel compiles at most three times per dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

import implementations.gcm as impl
import reference.gcm as ref
from conformance.cases import Case, Inputs, register
from conformance.strategies import fields, finite_floats, log_uniform, shape_buckets
from contracts.gcm.grid import EARTH_RADIUS, Forcing, Grid, State, StepParams, default_k4

GRIDS = ((9, 16), (17, 32), (33, 64))
grid_shapes = shape_buckets(*GRIDS)
RADII = (1.0, EARTH_RADIUS)


def grid_of(spec: Inputs, field: str) -> Grid:
    n_lat, n_lon = np.shape(spec[field])
    return Grid(
        n_lat,
        n_lon,
        radius=float(spec.get("radius", EARTH_RADIUS)),
        coslat_floor=float(spec.get("coslat_floor", 0.2)),
    )


def metric_kwargs(spec: Inputs, field: str) -> dict[str, Any]:
    """``dlat, dlon, coslat, a`` of the grid that ``spec[field]`` lives on, with ``coslat`` in the field's dtype.

    The metric cosine is computed in float64 and rounded to the field dtype, so both sides use the same values.
    """
    g = grid_of(spec, field)
    dtype = np.asarray(spec[field]).dtype
    return {"dlat": g.dlat, "dlon": g.dlon, "coslat": g.coslat.astype(dtype), "a": g.radius}


def _without(spec: Inputs, *keys: str) -> Inputs:
    return {k: v for k, v in spec.items() if k not in keys}


@st.composite
def _on_grid(draw: st.DrawFn, names: tuple[str, ...], magnitude: Any = 1.0, **kw: Any) -> Inputs:
    shape = draw(grid_shapes)
    return {n: draw(fields(shape, magnitude=magnitude, **kw)) for n in names}


# -- stencils -------------------------------------------------------------------------------------------


def _stencil_inputs(names: tuple[str, ...]) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        return st.builds(
            lambda f, radius, floor: {**f, "radius": radius, "coslat_floor": floor},
            _on_grid(names, magnitude=log_uniform(1e-2, 1e3)),
            st.sampled_from(RADII),
            st.sampled_from((0.2, 0.5)),
        )

    return inputs


def _stencil_build(field: str) -> Callable[[Inputs], Inputs]:
    return lambda spec: {**_without(spec, "radius", "coslat_floor"), **metric_kwargs(spec, field)}


LAPLACIAN = Case(
    name="gcm.laplacian_sphere",
    reference=ref.laplacian_sphere,
    implementation=impl.laplacian_sphere,
    inputs=_stencil_inputs(("F",)),
    build=_stencil_build("F"),
)

DIVERGENCE = Case(
    name="gcm.divergence",
    reference=ref.divergence,
    implementation=impl.divergence,
    inputs=_stencil_inputs(("u", "v")),
    build=_stencil_build("u"),
)

VORTICITY = Case(
    name="gcm.vorticity",
    reference=ref.vorticity,
    implementation=impl.vorticity,
    inputs=_stencil_inputs(("u", "v")),
    build=_stencil_build("u"),
)


def _shapiro_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    return st.builds(
        lambda f, n: {**f, "n_passes": n},
        _on_grid(("F",), magnitude=log_uniform(1e-2, 1e3)),
        st.integers(1, 3),
    )


SHAPIRO = Case(
    name="gcm.shapiro_filter",
    reference=ref.shapiro_filter,
    implementation=impl.shapiro_filter,
    inputs=_shapiro_inputs,
)


# -- hyperdiffusion: the field and its increment ---------------------------------------------------------


@st.composite
def _hyper_spec(draw: st.DrawFn, smooth: bool) -> Inputs:
    """Noise fields (the main case) or smooth ones. On a smooth field del^4 is tiny, so the increment falls
    below one float32 ulp of the field: no float32 port can represent it, hence a separate case and tier."""
    shape = draw(grid_shapes)
    grid = Grid(*shape)
    dt = draw(st.sampled_from((60.0, 300.0, 1800.0)))
    sigma4 = draw(finite_floats(0.005, 1.0 / 16.0))
    kinds = ("smooth",) if smooth else ("normal", "uniform")
    field = fields(shape, magnitude=log_uniform(1e-2, 1e2), kinds=kinds, spikes=not smooth)
    spec: Inputs = {"F": draw(field), "dt": dt}
    if draw(st.booleans()):
        spec["k4"] = default_k4(grid, dt, sigma4, factor=draw(st.sampled_from((1.0, 0.5, 0.25))))
    else:  # a scalar coefficient, stable for the metric's smallest zonal spacing
        dx = grid.radius * grid.dlon * grid.coslat_floor
        spec["k4"] = sigma4 * dx**4 / dt
    spec["n_substeps"] = draw(st.integers(1, 3))
    return spec


def _hyper_build(spec: Inputs) -> Inputs:
    k4 = spec["k4"]
    if isinstance(k4, np.ndarray) and k4.ndim:
        k4 = k4.astype(np.asarray(spec["F"]).dtype)
    return {**spec, "k4": k4, **metric_kwargs(spec, "F")}


def _with_increment(fn: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """The hyperdiffused field and the increment it received (the part a float32 port can get wrong)."""

    def run(**kw: Any) -> dict[str, Any]:
        out = fn(**kw)
        return {"field": out, "increment": out - kw["F"]}

    return run


HYPERDIFFUSE = Case(
    name="gcm.hyperdiffuse",
    reference=_with_increment(ref.hyperdiffuse),
    implementation=_with_increment(impl.hyperdiffuse),
    inputs=lambda dtype: _hyper_spec(smooth=False),
    build=_hyper_build,
)

HYPERDIFFUSE_SMOOTH = Case(
    name="gcm.hyperdiffuse.smooth",
    reference=_with_increment(ref.hyperdiffuse),
    implementation=_with_increment(impl.hyperdiffuse),
    inputs=lambda dtype: _hyper_spec(smooth=True),
    build=_hyper_build,
)


# -- advection ------------------------------------------------------------------------------------------


@st.composite
def _advect_spec(draw: st.DrawFn, poles: bool) -> Inputs:
    shape = draw(grid_shapes)
    grid = Grid(*shape)
    speed = draw(finite_floats(1.0, 100.0))
    cfl = draw(finite_floats(0.05, 0.95))
    # Courant number `cfl` for the fastest wind at the equator; 5x that at the metric floor (0.2).
    dt = cfl * grid.radius * grid.dlon / (2.0 * speed)
    wind = fields(shape, magnitude=speed, kinds=("uniform", "smooth"), spikes=False)
    return {
        "field": draw(fields(shape, magnitude=log_uniform(1e-2, 1e3))),
        "u": draw(wind),
        "v": draw(wind),
        "dt": dt,
        "coslat_floor": 1e-6 if poles else 0.2,
    }


def _advect_build(spec: Inputs) -> Inputs:
    m = metric_kwargs(spec, "field")
    return {**_without(spec, "coslat_floor"), **m}


ADVECT = Case(
    name="gcm.advect_semilag",
    reference=ref.advect_semilag,
    implementation=impl.advect_semilag,
    inputs=lambda dtype: _advect_spec(poles=False),
    build=_advect_build,
)

ADVECT_POLES = Case(
    name="gcm.advect_semilag.poles",
    reference=ref.advect_semilag,
    implementation=impl.advect_semilag,
    inputs=lambda dtype: _advect_spec(poles=True),
    build=_advect_build,
)


# -- pointwise physics ----------------------------------------------------------------------------------


def _bounded(shape: tuple[int, int], lo: float, hi: float) -> st.SearchStrategy[np.ndarray]:
    """Values spread over [lo, hi] (uniform or smooth), no spikes: physical ranges."""
    mid, half = (lo + hi) / 2, (hi - lo) / 2
    return fields(shape, magnitude=half, offset=mid, kinds=("uniform",), spikes=False).map(
        lambda a: np.clip(a, lo, hi)
    )


def _physics_inputs(
    ranges: dict[str, tuple[float, float]], scalars: dict[str, st.SearchStrategy[Any]] | None = None
):
    @st.composite
    def spec(draw: st.DrawFn) -> Inputs:
        shape = draw(grid_shapes)
        out: Inputs = {name: draw(_bounded(shape, lo, hi)) for name, (lo, hi) in ranges.items()}
        for name, strat in (scalars or {}).items():
            out[name] = draw(strat)
        return out

    return lambda dtype: spec()


TEMPERATURE = (150.0, 350.0)  # beyond Tetens' clip range [-80, 60] C on both sides

SHORTWAVE = Case(
    name="gcm.shortwave",
    reference=ref.shortwave,
    implementation=impl.shortwave,
    inputs=_physics_inputs({"insolation": (0.0, 1400.0), "albedo": (0.0, 1.0), "cloud": (-0.2, 1.2)}),
)


def _longwave_inputs(v2: bool, balanced: bool) -> Callable[[str], st.SearchStrategy[Inputs]]:
    """Surface and atmosphere temperatures for the longwave cases.

    The main cases keep the atmosphere 5-80 K colder than the surface, as it is, so the net surface flux
    ``eps_s A - U`` is tens to hundreds of W/m^2. The ``balanced`` cases set ``t_atm == t_surf`` under thick
    cloud: the net flux is then a cancellation of two ~300 W/m^2 terms, ill-conditioned relative to its own
    size, and judged by its own (looser) tier.
    """

    @st.composite
    def spec(draw: st.DrawFn) -> Inputs:
        shape = draw(grid_shapes)
        t_surf = draw(_bounded(shape, 200.0, 330.0))
        if balanced:
            t_atm = t_surf.copy()
            cloud = draw(_bounded(shape, 0.7, 1.0))
        else:
            t_atm = t_surf - draw(_bounded(shape, 5.0, 80.0))
            cloud = draw(_bounded(shape, -0.2, 1.2) if not v2 else _bounded(shape, 0.0, 1.0))
        out: Inputs = {"t_surf": t_surf, "t_atm": t_atm, "cloud": cloud}
        if v2:
            out["eps_surface"] = draw(_bounded(shape, 0.9, 1.0))
        return out

    return lambda dtype: spec()


LONGWAVE = [
    Case(
        name=f"gcm.longwave_{variant}{'.balanced' if balanced else ''}",
        reference=getattr(ref, f"longwave_{variant}"),
        implementation=getattr(impl, f"longwave_{variant}"),
        inputs=_longwave_inputs(variant == "v2", balanced),
    )
    for variant in ("v1", "v2")
    for balanced in (False, True)
]

Q_SAT = Case(
    name="gcm.q_sat",
    reference=ref.q_sat,
    implementation=impl.q_sat,
    inputs=_physics_inputs({"t": TEMPERATURE}, {"p": st.sampled_from((1.0e5, 7.0e4, 2.0e3))}),
)

EVAPORATION = Case(
    name="gcm.evaporation",
    reference=ref.evaporation,
    implementation=impl.evaporation,
    inputs=_physics_inputs(
        {"t_surf": (230.0, 320.0), "q": (0.0, 0.03), "wind_speed": (0.0, 40.0), "evap_factor": (0.0, 1.0)}
    ),
)

CONDENSATION = Case(
    name="gcm.condensation",
    reference=ref.condensation,
    implementation=impl.condensation,
    inputs=_physics_inputs(
        {"q": (0.0, 0.03), "t_atm": (230.0, 320.0)}, {"dt": st.sampled_from((60.0, 300.0, 900.0))}
    ),
)


# -- the model step -------------------------------------------------------------------------------------

STEP_GRIDS = shape_buckets((17, 32), (33, 64))
# (longwave, n_substeps, shapiro_passes): the structural variants, kept few (each one compiles).
STEP_VARIANTS = (("v1", 1, 1), ("v2", 2, 0), ("v1", 1, 0))


@st.composite
def _step_spec(draw: st.DrawFn) -> Inputs:
    shape = draw(STEP_GRIDS)
    grid = Grid(*shape)
    seed = draw(st.integers(0, 2**16))
    state = ref.initial_state(grid, seed=seed)
    forcing = ref.default_forcing(grid)
    longwave, n_sub, passes = draw(st.sampled_from(STEP_VARIANTS))
    spec: Inputs = {f"state_{k}": v for k, v in state._asdict().items()}
    spec |= {f"forcing_{k}": v for k, v in forcing._asdict().items()}
    spec |= {
        "dt": draw(st.sampled_from((300.0, 900.0))),
        "advection_blend": draw(st.sampled_from((1.0, 0.2))),
        "longwave": longwave,
        "n_substeps": n_sub,
        "shapiro_passes": passes,
    }
    return spec


def step_kwargs(spec: Inputs) -> Inputs:
    state = State(**{k: spec[f"state_{k}"] for k in State._fields})
    forcing = Forcing(**{k: spec[f"forcing_{k}"] for k in Forcing._fields})
    params = StepParams(
        dt=float(spec["dt"]),
        advection_blend=float(spec["advection_blend"]),
        longwave=str(spec["longwave"]),
        n_substeps=int(spec["n_substeps"]),
        shapiro_passes=int(spec["shapiro_passes"]),
    )
    return {"state": state, "forcing": forcing, "params": params, "grid": Grid(*np.shape(state.u))}


STEP = Case(
    name="gcm.step",
    reference=ref.step,
    implementation=impl.step,
    inputs=lambda dtype: _step_spec(),
    build=step_kwargs,
    examples=0.5,
)


# -- map_coordinates --------------------------------------------------------------------------------------

ALL_MODES = ("constant", "grid-constant", "nearest", "mirror", "reflect", "grid-mirror", "grid-wrap", "wrap")
MODES = {0: ALL_MODES, 1: ALL_MODES, 3: ALL_MODES}
NDIMAGE_SHAPES = shape_buckets((24,), (12, 20), (5, 6, 7))
N_POINTS = 96


@st.composite
def _coords(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    """Points inside, outside (both sides, several periods away), on samples and on half samples."""
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    n = np.asarray(shape, dtype=np.float64)[:, None]
    span = draw(st.sampled_from((1.0, 2.5)))
    pts = rng.uniform(-span * n, (1 + span) * n - 1, size=(len(shape), N_POINTS))
    k = N_POINTS // 4
    pts[:, :k] = np.round(pts[:, :k])  # exactly on samples (and on the seam n - 1, 0, n)
    pts[:, k : 2 * k] = np.round(pts[:, k : 2 * k]) + 0.25  # near but not on half samples
    # Order 0 rounds at half samples (and its mode boundaries sit there): keep every point >= 1e-3 away, so the
    # index is the same whether a side computes it in float32 or float64, with or without FMA.
    frac = pts - np.floor(pts)
    pts[np.abs(frac - 0.5) < 1e-3] += 2e-3
    return pts


def _ndimage_inputs(order: int) -> Callable[[str], st.SearchStrategy[Inputs]]:
    @st.composite
    def spec(draw: st.DrawFn) -> Inputs:
        shape = draw(NDIMAGE_SHAPES)
        out: Inputs = {
            "input": draw(fields(shape, magnitude=log_uniform(1e-2, 1e2), kinds=("normal", "smooth"))),
            "coordinates": draw(_coords(shape)),
            "order": order,
            "mode": draw(st.sampled_from(MODES[order])),
            "cval": draw(st.sampled_from((0.0, -1.5))),
        }
        if order == 3:
            out["prefilter"] = draw(st.booleans())
        return out

    return lambda dtype: spec()


MAP_COORDINATES = [
    Case(
        name=f"gcm.map_coordinates.order{order}",
        reference=ref.map_coordinates,
        implementation=impl.map_coordinates,
        inputs=_ndimage_inputs(order),
    )
    for order in (0, 1, 3)
]


register(
    LAPLACIAN,
    DIVERGENCE,
    VORTICITY,
    SHAPIRO,
    HYPERDIFFUSE,
    HYPERDIFFUSE_SMOOTH,
    ADVECT,
    ADVECT_POLES,
    SHORTWAVE,
    *LONGWAVE,
    Q_SAT,
    EVAPORATION,
    CONDENSATION,
    STEP,
    *MAP_COORDINATES,
)
