"""Parity cases of the GCM subsystem: every kernel of `reference.gcm` against its twin in `implementations.gcm`.

Inputs are flat mappings (arrays, numbers, strings) so the worst example of each case can be saved and
replayed; ``build`` turns them into the kernels' arguments (the grid metrics come from the field's shape).
Grids are drawn from four buckets (odd and even ``n_lat``), so each jitted kernel compiles at most four times
per dtype.

Every case also lists explicit examples (``explicit``), which every Hypothesis profile runs before its drawn
ones: the structural branches of the kernel (every ``map_coordinates`` mode, the prefilter on and off, the
long-axis prefilter, the ``fori_loop`` substep path, even and odd ``n_lat``, both longwave variants, the OLR
lock, non-default physical parameters), so that the profile CI runs covers them by construction.
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

# (n_lat, n_lon): odd n_lat has an equator row, even n_lat (12) has none
GRIDS = ((9, 16), (12, 24), (17, 32), (33, 64))
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


def _noise(shape: tuple[int, ...], seed: int, magnitude: float = 1.0, offset: float = 0.0) -> np.ndarray:
    """A dense field for an explicit example: white noise plus a smooth large-scale part."""
    rng = np.random.default_rng(seed)
    n_lat, n_lon = shape
    lat = np.linspace(-np.pi / 2, np.pi / 2, n_lat)[:, None]
    lon = 2 * np.pi * np.arange(n_lon)[None, :] / n_lon
    smooth = np.cos(lat) * np.sin(3 * lon + 0.4) + 0.5 * np.sin(2 * lat)
    return offset + magnitude * (smooth + 0.5 * rng.standard_normal(shape))


def _stencil_explicit(names: tuple[str, ...]) -> Callable[[str], list[Inputs]]:
    """Odd and even n_lat, both metric floors, unit and Earth radius."""

    def explicit(dtype: str) -> list[Inputs]:
        out = []
        for k, (shape, radius, floor) in enumerate(
            (((17, 32), EARTH_RADIUS, 0.2), ((12, 24), 1.0, 0.5), ((9, 16), EARTH_RADIUS, 0.5))
        ):
            spec: Inputs = {n: _noise(shape, 10 * k + j, 10.0) for j, n in enumerate(names)}
            out.append({**spec, "radius": radius, "coslat_floor": floor})
        return out

    return explicit


LAPLACIAN = Case(
    name="gcm.laplacian_sphere",
    reference=ref.laplacian_sphere,
    implementation=impl.laplacian_sphere,
    inputs=_stencil_inputs(("F",)),
    build=_stencil_build("F"),
    explicit=_stencil_explicit(("F",)),
)

DIVERGENCE = Case(
    name="gcm.divergence",
    reference=ref.divergence,
    implementation=impl.divergence,
    inputs=_stencil_inputs(("u", "v")),
    build=_stencil_build("u"),
    explicit=_stencil_explicit(("u", "v")),
)

VORTICITY = Case(
    name="gcm.vorticity",
    reference=ref.vorticity,
    implementation=impl.vorticity,
    inputs=_stencil_inputs(("u", "v")),
    build=_stencil_build("u"),
    explicit=_stencil_explicit(("u", "v")),
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
    # one and three passes, odd and even n_lat
    explicit=lambda dtype: [
        {"F": _noise((17, 32), 1, 5.0), "n_passes": 1},
        {"F": _noise((12, 24), 2, 5.0), "n_passes": 3},
    ],
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


def _hyper_explicit(dtype: str) -> list[Inputs]:
    """Scalar and map coefficients, 2 substeps (unrolled) and 5 (the ``fori_loop`` path), even n_lat."""
    out = []
    for k, (shape, n, dt, scalar) in enumerate(
        (((17, 32), 2, 300.0, False), ((12, 24), 5, 1800.0, True), ((9, 16), 1, 60.0, False))
    ):
        grid = Grid(*shape)
        F = np.random.default_rng(100 + k).standard_normal(shape) * 3.0
        if scalar:
            k4: Any = 0.04 * (grid.radius * grid.dlon * grid.coslat_floor) ** 4 / dt
        else:
            k4 = default_k4(grid, dt, 0.04)
        out.append({"F": F, "dt": dt, "k4": k4, "n_substeps": n})
    return out


HYPERDIFFUSE = Case(
    name="gcm.hyperdiffuse",
    reference=_with_increment(ref.hyperdiffuse),
    implementation=_with_increment(impl.hyperdiffuse),
    inputs=lambda dtype: _hyper_spec(smooth=False),
    build=_hyper_build,
    explicit=_hyper_explicit,
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


def _advect_explicit(poles: bool) -> Callable[[str], list[Inputs]]:
    """Winds of both signs crossing the seam column and the pole rows, odd and even n_lat."""

    def explicit(dtype: str) -> list[Inputs]:
        out = []
        for k, shape in enumerate(((17, 32), (12, 24))):
            grid = Grid(*shape)
            speed = 40.0
            dt = 0.6 * grid.radius * grid.dlon / (2.0 * speed)
            out.append(
                {
                    "field": _noise(shape, 200 + k, 20.0),
                    "u": _noise(shape, 210 + k, speed / 1.5),
                    "v": _noise(shape, 220 + k, speed / 1.5),
                    "dt": dt,
                    "coslat_floor": 1e-6 if poles else 0.2,
                }
            )
        return out

    return explicit


ADVECT = Case(
    name="gcm.advect_semilag",
    reference=ref.advect_semilag,
    implementation=impl.advect_semilag,
    inputs=lambda dtype: _advect_spec(poles=False),
    build=_advect_build,
    explicit=_advect_explicit(poles=False),
)

ADVECT_POLES = Case(
    name="gcm.advect_semilag.poles",
    reference=ref.advect_semilag,
    implementation=impl.advect_semilag,
    inputs=lambda dtype: _advect_spec(poles=True),
    build=_advect_build,
    explicit=_advect_explicit(poles=True),
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


def _physics_explicit(
    ranges: dict[str, tuple[float, float]], *scalar_sets: dict[str, Any]
) -> Callable[[str], list[Inputs]]:
    """One example per set of scalar arguments (the defaults, then other values: a port that ignores an
    argument and uses its default fails the second), on an odd and an even grid in turn."""

    def explicit(dtype: str) -> list[Inputs]:
        out = []
        for k, scalars in enumerate(scalar_sets):
            shape = ((17, 32), (12, 24))[k % 2]
            rng = np.random.default_rng(300 + k)
            spec: Inputs = {name: rng.uniform(lo, hi, shape) for name, (lo, hi) in ranges.items()}
            out.append({**spec, **scalars})
        return out

    return explicit


def _pair(default: float, other: float) -> st.SearchStrategy[float]:
    """A scalar argument: its default or another value (so that a port ignoring it is seen)."""
    return st.sampled_from((default, other))


TEMPERATURE = (150.0, 350.0)  # beyond Tetens' clip range [-80, 60] C on both sides

SW_RANGES = {"insolation": (0.0, 1400.0), "albedo": (0.0, 1.0), "cloud": (-0.2, 1.2)}
SHORTWAVE = Case(
    name="gcm.shortwave",
    reference=ref.shortwave,
    implementation=impl.shortwave,
    inputs=_physics_inputs(SW_RANGES, {"a0": _pair(0.06, 0.1), "k_c": _pair(0.2, 0.35)}),
    explicit=_physics_explicit(SW_RANGES, {"a0": 0.06, "k_c": 0.2}, {"a0": 0.1, "k_c": 0.35}),
)

# the longwave parameters: defaults and other values, and the OLR lock (the original's QD_GH_LOCK) off or on
LW_PARAMS = {
    "v1": {"eps0": (0.7, 0.6), "k_c": (0.2, 0.3)},
    "v2": {"eps0": (0.7, 0.6), "tau0": (6.0, 4.0), "k_tau": (1.0, 1.5)},
}
OLR_LOCKS = (0.582, 0.3)


def _longwave_inputs(v2: bool, balanced: bool) -> Callable[[str], st.SearchStrategy[Inputs]]:
    """Surface and atmosphere temperatures for the longwave cases.

    The main cases keep the atmosphere 5-80 K colder than the surface, as it is, so the net surface flux
    ``eps_s A - U`` is tens to hundreds of W/m^2, and draw the parameters (default or not) and the OLR lock
    (absent: off). The ``balanced`` cases set ``t_atm == t_surf`` under thick cloud, with the default
    parameters: the net flux is then a cancellation of two ~300 W/m^2 terms, ill-conditioned relative to its
    own size, and judged by its own (looser) tier.
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
        if not balanced:
            for name, pair in LW_PARAMS["v2" if v2 else "v1"].items():
                out[name] = draw(_pair(*pair))
            if draw(st.booleans()):
                out["olr_lock"] = draw(st.sampled_from(OLR_LOCKS))
        return out

    return lambda dtype: spec()


def _longwave_explicit(v2: bool) -> Callable[[str], list[Inputs]]:
    """Default parameters without the lock; other parameters with each lock value."""

    def explicit(dtype: str) -> list[Inputs]:
        params = LW_PARAMS["v2" if v2 else "v1"]
        out = []
        for k, lock in enumerate((None, *OLR_LOCKS)):
            shape = ((17, 32), (12, 24))[k % 2]
            rng = np.random.default_rng(400 + k)
            t_surf = rng.uniform(200.0, 330.0, shape)
            spec: Inputs = {
                "t_surf": t_surf,
                "t_atm": t_surf - rng.uniform(5.0, 80.0, shape),
                "cloud": rng.uniform(0.0, 1.0, shape),
            }
            if v2:
                spec["eps_surface"] = rng.uniform(0.9, 1.0, shape)
            spec |= {name: pair[0 if lock is None else 1] for name, pair in params.items()}
            if lock is not None:
                spec["olr_lock"] = lock
            out.append(spec)
        return out

    return explicit


LONGWAVE = [
    Case(
        name=f"gcm.longwave_{variant}{'.balanced' if balanced else ''}",
        reference=getattr(ref, f"longwave_{variant}"),
        implementation=getattr(impl, f"longwave_{variant}"),
        inputs=_longwave_inputs(variant == "v2", balanced),
        explicit=None if balanced else _longwave_explicit(variant == "v2"),
    )
    for variant in ("v1", "v2")
    for balanced in (False, True)
]

Q_SAT = Case(
    name="gcm.q_sat",
    reference=ref.q_sat,
    implementation=impl.q_sat,
    inputs=_physics_inputs({"t": TEMPERATURE}, {"p": st.sampled_from((1.0e5, 7.0e4, 2.0e3))}),
    # both sides of the Celsius clip; a pressure low enough for the denominator's floor of 1 Pa to act
    explicit=_physics_explicit({"t": TEMPERATURE}, {"p": 1.0e5}, {"p": 2.0e3}),
)

EVAP_RANGES = {
    "t_surf": (230.0, 320.0),
    "q": (0.0, 0.03),
    "wind_speed": (0.0, 40.0),
    "evap_factor": (0.0, 1.0),
}
EVAPORATION = Case(
    name="gcm.evaporation",
    reference=ref.evaporation,
    implementation=impl.evaporation,
    inputs=_physics_inputs(
        EVAP_RANGES, {"rho": _pair(1.2, 1.0), "c_e": _pair(1.3e-3, 1.1e-3), "p": _pair(1.0e5, 7.0e4)}
    ),
    explicit=_physics_explicit(
        EVAP_RANGES, {"rho": 1.2, "c_e": 1.3e-3, "p": 1.0e5}, {"rho": 1.0, "c_e": 1.1e-3, "p": 7.0e4}
    ),
)

COND_RANGES = {"q": (0.0, 0.03), "t_atm": (230.0, 320.0)}
CONDENSATION = Case(
    name="gcm.condensation",
    reference=ref.condensation,
    implementation=impl.condensation,
    inputs=_physics_inputs(
        COND_RANGES,
        {
            "dt": st.sampled_from((60.0, 300.0, 900.0)),
            "tau": _pair(3600.0, 1800.0),
            "column_mass": _pair(1.0e4, 8.0e3),
            "p": _pair(1.0e5, 7.0e4),
        },
    ),
    explicit=_physics_explicit(
        COND_RANGES,
        {"dt": 300.0, "tau": 3600.0, "column_mass": 1.0e4, "p": 1.0e5},
        {"dt": 900.0, "tau": 1800.0, "column_mass": 8.0e3, "p": 7.0e4},
    ),
)


# -- the model step -------------------------------------------------------------------------------------

STEP_GRIDS = shape_buckets((17, 32), (33, 64))
# (longwave, n_substeps, shapiro_passes): the structural variants, kept few (each one compiles).
STEP_VARIANTS = (("v1", 1, 1), ("v2", 2, 0), ("v1", 1, 0))
# Other values of every number of `StepParams` but dt and advection_blend (drawn on their own): a step drawn
# with them fails a port that uses a parameter's default instead of the value passed (c_h and c_e, equal by
# default, differ here). Traced numbers: no recompilation.
OTHER_PARAMS = {
    "sigma4": 0.03,
    "omega": 1.0e-4,
    "sw_a0": 0.08,
    "sw_kc": 0.25,
    "lw_eps0": 0.65,
    "lw_kc": 0.25,
    "lw_tau0": 5.0,
    "lw_ktau": 1.2,
    "rho_air": 1.1,
    "cp_air": 1005.0,
    "c_h": 1.6e-3,
    "c_e": 1.1e-3,
    "latent_heat": 2.45e6,
    "pressure": 9.5e4,
    "column_mass": 9.0e3,
    "tau_condense": 3000.0,
    "tau_cloud": 9000.0,
    "heat_capacity_surf": 3.0e7,
    "heat_capacity_atm": 8.0e6,
    "drag": 2.0e-6,
}


def _step_inputs(
    shape: tuple[int, int],
    seed: int,
    *,
    dt: float,
    blend: float,
    variant: tuple[str, int, int],
    other_params: bool,
) -> Inputs:
    grid = Grid(*shape)
    state = ref.initial_state(grid, seed=seed)
    forcing = ref.default_forcing(grid)
    longwave, n_sub, passes = variant
    spec: Inputs = {f"state_{k}": v for k, v in state._asdict().items()}
    spec |= {f"forcing_{k}": v for k, v in forcing._asdict().items()}
    spec |= {
        "dt": dt,
        "advection_blend": blend,
        "longwave": longwave,
        "n_substeps": n_sub,
        "shapiro_passes": passes,
    }
    if other_params:
        spec |= {f"p_{k}": v for k, v in OTHER_PARAMS.items()}
    return spec


@st.composite
def _step_spec(draw: st.DrawFn) -> Inputs:
    return _step_inputs(
        draw(STEP_GRIDS),
        draw(st.integers(0, 2**16)),
        dt=draw(st.sampled_from((300.0, 900.0))),
        blend=draw(st.sampled_from((1.0, 0.2))),
        variant=draw(st.sampled_from(STEP_VARIANTS)),
        other_params=draw(st.booleans()),
    )


def _step_explicit(dtype: str) -> list[Inputs]:
    """The default step; other parameters on an even grid (no equator row) with the v2 longwave; and 5
    hyperdiffusion substeps (the ``fori_loop`` path) with two filter passes."""
    return [
        _step_inputs((17, 32), 1, dt=900.0, blend=1.0, variant=("v1", 1, 1), other_params=False),
        _step_inputs((16, 32), 2, dt=300.0, blend=0.2, variant=("v2", 2, 0), other_params=True),
        _step_inputs((17, 32), 3, dt=900.0, blend=0.2, variant=("v1", 5, 2), other_params=True),
    ]


def step_kwargs(spec: Inputs) -> Inputs:
    state = State(**{k: spec[f"state_{k}"] for k in State._fields})
    forcing = Forcing(**{k: spec[f"forcing_{k}"] for k in Forcing._fields})
    params = StepParams(
        dt=float(spec["dt"]),
        advection_blend=float(spec["advection_blend"]),
        longwave=str(spec["longwave"]),
        n_substeps=int(spec["n_substeps"]),
        shapiro_passes=int(spec["shapiro_passes"]),
        **{k: float(spec[f"p_{k}"]) for k in OTHER_PARAMS if f"p_{k}" in spec},
    )
    return {"state": state, "forcing": forcing, "params": params, "grid": Grid(*np.shape(state.u))}


STEP = Case(
    name="gcm.step",
    reference=ref.step,
    implementation=impl.step,
    inputs=lambda dtype: _step_spec(),
    build=step_kwargs,
    examples=0.5,
    explicit=_step_explicit,
)


def _increments(step: Callable[..., Any]) -> Callable[..., dict[str, Any]]:
    """The state increments of one step (new - old, per field, in the fields' dtype).

    One step moves t_surf by 2e-5 to 7e-5 of its range, so a kernel error of a few percent in its tendency
    is below what a comparison of the states resolves; the increments are judged on their own scale."""

    def run(**kw: Any) -> dict[str, Any]:
        new = step(**kw)
        return {k: np.asarray(getattr(new, k)) - np.asarray(getattr(kw["state"], k)) for k in State._fields}

    return run


STEP_TENDENCY = Case(
    name="gcm.step.tendency",
    reference=_increments(ref.step),
    implementation=_increments(impl.step),
    inputs=lambda dtype: _step_spec(),
    build=step_kwargs,
    examples=0.34,
    explicit=_step_explicit,
)


# -- map_coordinates --------------------------------------------------------------------------------------

ALL_MODES = ("constant", "grid-constant", "nearest", "mirror", "reflect", "grid-mirror", "grid-wrap", "wrap")
MODES = {0: ALL_MODES, 1: ALL_MODES, 3: ALL_MODES}
NDIMAGE_SHAPES = shape_buckets((24,), (12, 20), (5, 6, 7))
N_POINTS = 96


def _points(rng: np.random.Generator, shape: tuple[int, ...], span: float) -> np.ndarray:
    """Points inside, outside (both sides, ``span`` periods away), on samples and on half samples."""
    n = np.asarray(shape, dtype=np.float64)[:, None]
    pts = rng.uniform(-span * n, (1 + span) * n - 1, size=(len(shape), N_POINTS))
    k = N_POINTS // 4
    pts[:, :k] = np.round(pts[:, :k])  # exactly on samples (and on the seam n - 1, 0, n)
    pts[:, k : 2 * k] = np.round(pts[:, k : 2 * k]) + 0.25  # near but not on half samples
    # Order 0 rounds at half samples (and its mode boundaries sit there): keep every point >= 1e-3 away, so the
    # index is the same whether a side computes it in float32 or float64, with or without FMA.
    frac = pts - np.floor(pts)
    pts[np.abs(frac - 0.5) < 1e-3] += 2e-3
    return pts


@st.composite
def _coords(draw: st.DrawFn, shape: tuple[int, ...]) -> np.ndarray:
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    return _points(rng, shape, draw(st.sampled_from((1.0, 2.5))))


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


# Longer than the prefilter's dense-matrix limit (1024), so the FFT path of the mirror and reflect
# extensions runs; 'nearest' and 'grid-constant' pad it by 12 and filter the padded axis the same way.
LONG_AXIS = 1030


def _ndimage_explicit(order: int) -> Callable[[str], list[Inputs]]:
    """Every mode (order 3: with the prefilter on and off) on a 2-D input, and for order 3 the long axis in
    every mode whose prefilter has a boundary rule. Coordinates on a 1/64 grid offset by 1/128: exact in
    float32, and never on a half sample."""

    def snap(pts: np.ndarray) -> np.ndarray:
        return np.round(pts * 64.0) / 64.0 + 1.0 / 128.0

    def explicit(dtype: str) -> list[Inputs]:
        out = []
        prefilters = (True, False) if order == 3 else (None,)
        for k, mode in enumerate(MODES[order]):
            for prefilter in prefilters:
                rng = np.random.default_rng(500 + 10 * k + (prefilter is False))
                spec: Inputs = {
                    "input": rng.standard_normal((12, 20)) * 3.0,
                    "coordinates": snap(_points(rng, (12, 20), 1.0)),
                    "order": order,
                    "mode": mode,
                    "cval": -1.5,
                }
                if prefilter is not None:
                    spec["prefilter"] = prefilter
                out.append(spec)
        if order == 3:
            x = np.arange(LONG_AXIS, dtype=np.float64)
            signal = np.sin(2 * np.pi * x / 97.0 + 0.3) + 0.5 * np.cos(2 * np.pi * x / 31.0)
            n = LONG_AXIS
            ends = np.concatenate([np.linspace(-3.0, 9.0, 32), np.linspace(n - 10.0, n + 2.0, 32)])
            rng = np.random.default_rng(600)
            pts = np.concatenate([ends, rng.uniform(-n, 2 * n, N_POINTS - ends.size)])[None, :]
            for mode in ("mirror", "reflect", "nearest", "grid-constant", "wrap"):
                out.append(
                    {
                        "input": signal,
                        "coordinates": snap(pts),
                        "order": 3,
                        "mode": mode,
                        "cval": 0.5,
                        "prefilter": True,
                    }
                )
        return out

    return explicit


MAP_COORDINATES = [
    Case(
        name=f"gcm.map_coordinates.order{order}",
        reference=ref.map_coordinates,
        implementation=impl.map_coordinates,
        inputs=_ndimage_inputs(order),
        explicit=_ndimage_explicit(order),
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
    STEP_TENDENCY,
    *MAP_COORDINATES,
)
