"""JAX implementation of `reference.gcm.model`: one physics step of the small GCM as a single jitted
function over the whole State/Forcing pytrees, mirroring the reference's order of operations.

Static under jit: the field shape, ``n_substeps``, ``shapiro_passes``, ``longwave``. Traced: every number.
Host-side per (grid, dtype, dt, sigma4, omega) and cached: the per-row constants (coslat, the three default
hyperdiffusion coefficients, cos/sin of the Coriolis rotation), computed with NumPy exactly as the reference
computes them. Scalars that are Python-float subexpressions in the reference (``rho * cp * c_h``, ``1 / (1
+ drag dt)`` ...) are computed on the host the same way and travel packed in one array of the field dtype.
"""

from __future__ import annotations

import functools
import itertools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from contracts.gcm.grid import Forcing, Grid, State, StepParams, coriolis, default_k4
from contracts.gcm.validate import check_model_fields, check_step_params, model_field_dict
from implementations.gcm._guard import all_on_host, check_finite, check_x64, finite_flags, raise_on_flags
from implementations.gcm._numerics import divide_like_numpy, rounded
from implementations.gcm.dynamics import _bilinear, _departure_points, _hyperdiffuse, _interpolate, _shapiro
from implementations.gcm.physics import (
    _condensation_q_sat,
    _evaporation_q_sat,
    _longwave_v1,
    _longwave_v2,
    _q_sat,
    _shortwave,
)

K4_FACTOR_WIND = 1.0
K4_FACTOR_TRACER = 0.5
K4_FACTOR_CLOUD = 0.25
CLOUD_RH0 = 0.6
CLOUD_RH_RANGE = 0.4


class Rows(NamedTuple):
    """Per-row constants, each ``(n_lat, 1)`` in the field dtype."""

    c: Any
    k4_wind: Any
    k4_tracer: Any
    k4_cloud: Any
    cos_f: Any
    sin_f: Any


class Scalars(NamedTuple):
    """The step's numbers as the reference uses them (Python-float subexpressions evaluated on the host)."""

    dt: float
    a: float
    a_dlat: float  # a * dlat, for the departure points
    dlat: float
    dlon: float
    one_minus_b: float
    b: float
    damp: float  # 1 / (1 + drag dt)
    dt_sub: float  # dt / n_substeps
    sw_a0: float
    sw_kc: float
    lw_1: float  # v1: eps0; v2: 1 - eps0
    lw_2: float  # v1: k_c; v2: k_tau * tau0
    sensible: float  # rho cp c_h
    rho_c_e: float  # rho c_e
    pressure: float
    column_mass: float
    tau_condense: float
    latent_heat: float
    heat_capacity_surf: float
    heat_capacity_atm: float
    tau_cloud: float


def _scalars(params: StepParams, grid: Grid) -> Scalars:
    dt = params.dt
    if params.longwave == "v1":
        lw_1, lw_2 = params.lw_eps0, params.lw_kc
    else:
        lw_1, lw_2 = 1.0 - params.lw_eps0, params.lw_ktau * params.lw_tau0
    return Scalars(
        dt=dt,
        a=grid.radius,
        a_dlat=grid.radius * grid.dlat,
        dlat=grid.dlat,
        dlon=grid.dlon,
        one_minus_b=1.0 - params.advection_blend,
        b=params.advection_blend,
        damp=1.0 / (1.0 + params.drag * dt),
        dt_sub=dt / params.n_substeps,
        sw_a0=params.sw_a0,
        sw_kc=params.sw_kc,
        lw_1=lw_1,
        lw_2=lw_2,
        sensible=params.rho_air * params.cp_air * params.c_h,
        rho_c_e=params.rho_air * params.c_e,
        pressure=params.pressure,
        column_mass=params.column_mass,
        tau_condense=params.tau_condense,
        latent_heat=params.latent_heat,
        heat_capacity_surf=params.heat_capacity_surf,
        heat_capacity_atm=params.heat_capacity_atm,
        tau_cloud=params.tau_cloud,
    )


@functools.lru_cache(maxsize=64)
def _packed_scalars(params: StepParams, grid: Grid, dtype_str: str) -> np.ndarray:
    packed = np.array(_scalars(params, grid), dtype=dtype_str)
    packed.flags.writeable = False
    return packed


@functools.lru_cache(maxsize=32)
def _rows_host(grid: Grid, dtype_str: str, dt: float, sigma4: float, omega: float) -> np.ndarray:
    dtype = np.dtype(dtype_str)
    f_dt = coriolis(grid, omega) * dt
    columns = [
        grid.coslat,
        default_k4(grid, dt, sigma4, K4_FACTOR_WIND)[:, 0],
        default_k4(grid, dt, sigma4, K4_FACTOR_TRACER)[:, 0],
        default_k4(grid, dt, sigma4, K4_FACTOR_CLOUD)[:, 0],
        np.cos(f_dt),
        np.sin(f_dt),
    ]
    return np.stack([col.astype(dtype) for col in columns])[:, :, None]  # (6, n_lat, 1)


@functools.lru_cache(maxsize=32)
def _rows_device(grid: Grid, dtype_str: str, dt: float, sigma4: float, omega: float, backend: str) -> Rows:
    del backend  # part of the cache key only
    return Rows(*jnp.asarray(_rows_host(grid, dtype_str, dt, sigma4, omega)))


def step_inputs(params: StepParams, grid: Grid, dtype: np.dtype) -> tuple[Rows, np.ndarray, dict[str, Any]]:
    """The non-field arguments of the jitted step: ``(rows, packed scalars, static settings)``."""
    dtype = np.dtype(dtype)
    rows = _rows_device(grid, dtype.str, params.dt, params.sigma4, params.omega, jax.default_backend())
    s = _packed_scalars(params, grid, dtype.str)
    static = {
        "n_substeps": params.n_substeps,
        "shapiro_passes": params.shapiro_passes,
        "longwave": params.longwave,
    }
    return rows, s, static


# The stacked layout of the state inside the jitted step: the five advected fields first (in the order the
# loops visit them), then t_surf.
STACK_ORDER = ("u", "v", "t_atm", "q", "cloud", "t_surf")
_N_ADVECTED = 5
_BLENDED = np.array([False, False, True, True, False])  # t_atm and q are blended with their old values
_STATE_TO_STACK = tuple(State._fields.index(name) for name in STACK_ORDER)


def stack_state(state: State) -> jax.Array:
    """``(6, n_lat, n_lon)``: the state's fields in `STACK_ORDER` (one copy)."""
    return jnp.stack([state[i] for i in _STATE_TO_STACK])


def unstack_state(x: jax.Array) -> State:
    """The inverse of `stack_state`."""
    return State(**{name: x[k] for k, name in enumerate(STACK_ORDER)})


def _step_stacked(
    x: jax.Array,
    forcing: Forcing,
    rows: Rows,
    s: jax.Array,
    n_substeps: int,
    shapiro_passes: int,
    longwave: str,
) -> jax.Array:
    """The step as in `step`'s docstring, on the stacked state ``x`` (`STACK_ORDER`); returns the new one.

    Memory layout: the advection and the filter are ``fori_loop`` s over the fields that update the stacked
    state in place (``dynamic_update_slice`` on the loop carry), and the hyperdiffusion runs one conditional
    per field whose result is written in place, so one field's stencil temporaries are live at a time and no
    stacked copy is made (the former ``lax.map`` over ``jnp.stack`` ed fields held a stacked input, a
    stacked output and the unstacked results: 24 field-sized temporaries at 481x960 float64). The departure
    points are kept as two fields ``(jd, id)``; each gather recomputes its integer taps and bilinear weights
    from them (a few flops per point, no extra buffers). The loops and conditionals are also stage
    boundaries: XLA's CPU backend drops ``optimization_barrier`` before fusion, and unrolled it fused the
    bilinear sums into every stencil tap of the hyperdiffusion.

    Measured with ``compile().memory_analysis()`` at 481x960 float64 (field = 3.7 MB): `step_stacked_jit`
    (donated) 5 field-sized temporaries and no new output buffer (the output aliases the input);
    `step_jit` 10 temporaries (its stacking copy included) plus the 6 output fields; before this layout,
    24 temporaries plus 6 outputs. Every rewrite here keeps the float64 results bit for bit (same values
    as the former form, checked on 17x32 and 121x240 over three steps for several settings).
    """
    p = Scalars(*s)
    dt = p.dt

    # 1. semi-Lagrangian advection of the five fields from one set of departure points: the tracers in
    # place, the winds into a separate pair (the Coriolis rotation reads both)
    jd, id_ = _departure_points(x[0], x[1], dt, p.a, p.a_dlat, p.dlon, rows.c)

    def advected(k, F):
        # ``+ 0.0 k`` (exact: jd, id >= 0 and finite) keeps XLA from hoisting the taps and weights out of the
        # loop: hoisted, they were four int32 and four float arrays alive across it; recomputed per field
        # they cost a few flops per point next to the gathers.
        zero = k.astype(jd.dtype) * 0.0
        return _interpolate(F[None], *_bilinear(jd + zero, id_ + zero))[0]

    def advect_wind(k, w):
        return lax.dynamic_update_index_in_dim(w, advected(k, lax.dynamic_index_in_dim(w, k, 0, False)), k, 0)

    def advect_tracer(k, x):
        F = lax.dynamic_index_in_dim(x, k, keepdims=False)
        mixed = rounded(p.one_minus_b * F) + rounded(p.b * advected(k, F))
        return lax.dynamic_update_index_in_dim(x, jnp.where(blended[k], mixed, advected(k, F)), k, 0)

    # Order matters for memory: the tracer loop updates x in place first, then the winds are sliced out of
    # it (u, v are still the old ones). Slicing them before the in-place loop made XLA copy the whole
    # stacked state (measured: +6 fields).
    blended = jnp.asarray(_BLENDED)
    x = lax.fori_loop(2, _N_ADVECTED, advect_tracer, x)
    w = lax.fori_loop(0, 2, advect_wind, x[:2])

    # 2. Coriolis rotation, then Rayleigh drag
    u1, v1 = w[0], w[1]
    u2 = (rounded(u1 * rows.cos_f) + rounded(v1 * rows.sin_f)) * p.damp
    v2 = (rounded(-u1 * rows.sin_f) + rounded(v1 * rows.cos_f)) * p.damp
    x = x.at[0].set(u2).at[1].set(v2)

    # 3. hyperdiffusion, one field at a time, each in its own conditional. The conditional's result is
    # materialised and then written into x in place, so each field's stencil is compiled as a computation of
    # its own. As the body of a ``fori_loop`` over the fields (dynamic slice in, dynamic update slice out),
    # the same stencil ran at about half the speed of the stand-alone kernel (one core, 121x240: 284 against
    # 138 us per field). Same values bit for bit and the same temporary memory (481x960 float64: 17.6 MiB);
    # measured on the 2-core AMD EPYC, same process: 121x240 2.56 -> 1.99 ms per step on two cores (2.76 ->
    # 2.00 on one), 481x960 33.0 -> 24.5 ms. Unrolled without the conditionals it was 2.31 ms at 121x240 and
    # held 56 MiB of temporaries at 481x960; a ``vmap`` over the five fields, 3.0 ms. As for the physics
    # below, the predicate is always true for a validated step (dt > 0) and is a runtime value, so XLA
    # cannot inline the branch. The other branch returns the field unchanged (what a zero time step would
    # give); it never runs, and a NaN-filled one made XLA keep one more field-sized temporary.
    k4s = (rows.k4_wind, rows.k4_wind, rows.k4_tracer, rows.k4_tracer, rows.k4_cloud)

    def diffused(F: jax.Array, k4: jax.Array) -> jax.Array:
        return _hyperdiffuse(F, k4, p.dt_sub, n_substeps, p.dlat, p.dlon, rows.c, p.a)

    for k, k4 in enumerate(k4s):
        x = x.at[k].set(lax.cond(p.dt > 0, diffused, lambda F, _: F, x[k], k4))

    # 4. Shapiro filter on the winds
    if shapiro_passes:

        def smooth(k, x):
            F = lax.dynamic_index_in_dim(x, k, keepdims=False)
            return lax.dynamic_update_index_in_dim(x, _shapiro(F, shapiro_passes), k, 0)

        x = lax.fori_loop(0, 2, smooth, x)

    def saturation(x: jax.Array, rows: slice) -> jax.Array:
        """``q_sat(t_surf)`` and ``q_sat(t_atm3)`` on ``rows``, materialised (see the comment below)."""
        return jnp.stack([_q_sat(x[5, rows], p.pressure), _q_sat(x[2, rows], p.pressure)])

    def physics(x: jax.Array, q_sat_surf: jax.Array, q_sat_atm: jax.Array, rows: slice) -> jax.Array:
        # 5. radiation and surface fluxes from (t_surf, t_atm3, q3, cloud3) and (u4, v4)
        u4, v4, t_atm3, q3, cloud3, t_surf = (x[k, rows] for k in range(6))
        frc = Forcing(*(field[rows] for field in forcing))
        sw = _shortwave(frc.insolation, frc.albedo, cloud3, p.sw_a0, p.sw_kc)
        if longwave == "v1":
            lw = _longwave_v1(t_surf, t_atm3, cloud3, p.lw_1, p.lw_2)
        else:
            lw = _longwave_v2(t_surf, t_atm3, cloud3, frc.eps_surface, p.lw_1, p.lw_2)
        wind = jnp.sqrt(rounded(u4 * u4) + rounded(v4 * v4))
        sensible = rounded(p.sensible * wind * (t_surf - t_atm3))
        evap = _evaporation_q_sat(q_sat_surf, q3, wind, frc.evap_factor, p.rho_c_e)
        latent = rounded(p.latent_heat * evap)

        # 6. moisture: condensation against t_atm3, the temperature before this step's heating
        q5 = q3 + divide_like_numpy(rounded(evap * dt), p.column_mass)
        precip, q6 = _condensation_q_sat(q5, q_sat_atm, dt, p.tau_condense, p.column_mass)

        # 7. temperatures
        heating_surf = sw.surface + lw.surface - sensible - latent
        t_surf7 = t_surf + divide_like_numpy(rounded(dt * heating_surf), p.heat_capacity_surf)
        heating_atm = sw.atmosphere + lw.atmosphere + sensible + rounded(p.latent_heat * precip)
        t_atm7 = t_atm3 + divide_like_numpy(rounded(dt * heating_atm), p.heat_capacity_atm)

        # 8. clouds relax towards the relative-humidity diagnostic of (q6, t_atm7)
        rh = q6 / _q_sat(t_atm7, p.pressure)
        cloud_eq = jnp.clip(
            divide_like_numpy(rh - CLOUD_RH0, jnp.asarray(CLOUD_RH_RANGE, rh.dtype)), 0.0, 1.0
        )
        cloud8 = jnp.clip(
            cloud3 + divide_like_numpy(rounded((cloud_eq - cloud3) * dt), p.tau_cloud), 0.0, 1.0
        )

        return t_atm7, q6, cloud8, t_surf7

    # The physics writes four fields of x from all six: computed in place, each of its fusions would read
    # slices that another one overwrites, and XLA copies the whole stacked state (twice, measured) to keep
    # the old values. A conditional's result is always materialised: the four new fields land in their
    # own buffer and are then copied into x in place. The predicate is always true for a validated step
    # (dt > 0); it is a runtime value so that XLA cannot inline the branch.
    # The four fields are one concatenate fusion, which evaluates each output's whole expression on its own:
    # the exponentials of q_sat(t_surf) and q_sat(t_atm3) ran once per output that depends on them (up to
    # three times per point). A first conditional materialises those two fields, so each exponential runs
    # once: same values bit for bit, 3.32 -> 3.09 ms per step at 121x240 and 48.7 -> 39.9 ms at 481x960
    # (2-core CPU machine). The second conditional returns its four fields as a tuple, not stacked: a stacked
    # result was again one concatenate fusion evaluating each output on its own (cloud8 recomputed nearly
    # the whole physics, t_atm7 and t_surf7 the radiation and fluxes); as a tuple they are one multi-output
    # fusion that evaluates the shared terms once per point. They are stacked after the conditional (a copy
    # of four block-sized fields; written into x field by field instead, XLA copied the whole state at
    # 481x960). Same values bit for bit; measured on the 2-core AMD EPYC, same process, interleaved: 3.11
    # -> 2.77 ms per step at 121x240 on one core, 2.71 -> 2.58 ms on two, 35.9 -> 33.1 ms at 481x960; the
    # step's temporary memory at 481x960 is unchanged (17.65 MiB).
    # The physics is pointwise, so on a large grid it runs over blocks of whole rows
    # (`_row_blocks`): its six materialised fields are then block-sized, and the step's temporary memory
    # stays at the advection's five fields (481x960 float64: 17.6 MiB, against 21.1 MiB in one block).
    def nan_fields(n: int, block: slice) -> Any:
        return lambda x, *_: jnp.full((n, block.stop - block.start, x.shape[2]), jnp.nan, x.dtype)

    def nan_tuple(n: int, block: slice) -> Any:
        return lambda x, *_: tuple(
            jnp.full((block.stop - block.start, x.shape[2]), jnp.nan, x.dtype) for _ in range(n)
        )

    for block in _row_blocks(*x.shape[1:]):
        q_sats = lax.cond(p.dt > 0, functools.partial(saturation, rows=block), nan_fields(2, block), x)
        y = lax.cond(
            p.dt > 0, functools.partial(physics, rows=block), nan_tuple(4, block), x, q_sats[0], q_sats[1]
        )
        x = lax.dynamic_update_slice(x, jnp.stack(y), (2, block.start, 0))
    return x


PHYSICS_BLOCK_POINTS = 1 << 17
"""The pointwise physics of a step runs over blocks of whole rows of at most this many grid points (at least
one row each). Grids up to this size (121x240 included) run in one block."""


def _row_blocks(n_lat: int, n_lon: int) -> list[slice]:
    """Static row ranges covering ``n_lat`` rows in nearly equal blocks of at most `PHYSICS_BLOCK_POINTS`
    points (or one row)."""
    n = min(n_lat, max(1, -(-n_lat * n_lon // PHYSICS_BLOCK_POINTS)))
    edges = [n_lat * k // n for k in range(n + 1)]
    return [slice(a, b) for a, b in itertools.pairwise(edges)]


_STATIC = ("n_substeps", "shapiro_passes", "longwave", "in_flags", "out_flag")


def _step_kernel(state, forcing, rows, s, *, n_substeps, shapiro_passes, longwave, in_flags, out_flag):
    """``in_flags``: also return one finiteness flag per input field; ``out_flag``: also return whether the
    new state is finite everywhere."""
    x = _step_stacked(stack_state(state), forcing, rows, s, n_substeps, shapiro_passes, longwave)
    new = unstack_state(x)
    extra = []
    if in_flags:
        extra.append(finite_flags(*state, *forcing))
    if out_flag:
        extra.append(jnp.all(finite_flags(*new)))
    return (new, *extra) if extra else new


def _step_stacked_kernel(x, forcing, rows, s, *, n_substeps, shapiro_passes, longwave):
    """The runner's step: stacked state in (donated), stacked state and its finiteness flag out."""
    new = _step_stacked(x, forcing, rows, s, n_substeps, shapiro_passes, longwave)
    return new, jnp.all(jnp.isfinite(new))


# Built once, here. `step_jit` takes and returns a `State` and leaves its input intact (one stacked copy
# of the state is made inside). `step_stacked_jit` is the runner's form: the state stays stacked between
# steps and is donated, so the new state is written over the old one's buffer (no new state allocation per
# step) and the stacking copy disappears; its input must not be used after the call.
step_jit = jax.jit(_step_kernel, static_argnames=_STATIC)
step_stacked_jit = jax.jit(
    _step_stacked_kernel, static_argnames=("n_substeps", "shapiro_passes", "longwave"), donate_argnums=0
)


def step(state: State, forcing: Forcing, params: StepParams, grid: Grid) -> State:
    """One physics step of the small GCM; the same sequence as `reference.gcm.model.step`:

    1. ``(jd, id) = departure_points(u, v)`` once; ``u1, v1, cloud1 = adv(u), adv(v), adv(cloud)``;
       ``t_atm1 = (1 - b) t_atm + b adv(t_atm)``, ``q1 = (1 - b) q + b adv(q)`` (``b = advection_blend``;
       t_surf is not advected). The five fields share one set of bilinear weights (one batched gather).
    2. ``u2 = (u1 cos(f dt) + v1 sin(f dt)) damp``, ``v2 = (-u1 sin(f dt) + v1 cos(f dt)) damp``,
       ``f = coriolis(grid, omega)``, ``damp = 1 / (1 + drag dt)``.
    3. Hyperdiffusion (``n_substeps`` of ``dt / n_substeps``), ``k4 = default_k4(grid, dt, sigma4, factor)``
       with factor 1 (u2, v2), 0.5 (t_atm1, q1), 0.25 (cloud1) -> u3, v3, t_atm3, q3, cloud3.
    4. Shapiro filter, ``shapiro_passes`` passes, on u3, v3 -> u4, v4.
    5. Shortwave (insolation, albedo, cloud3); longwave v1 (t_surf, t_atm3, cloud3) or v2 (+ eps_surface);
       ``|V| = sqrt(u4^2 + v4^2)``; ``SH = rho cp c_h |V| (t_surf - t_atm3)``;
       ``E = evaporation(t_surf, q3, |V|, evap_factor, rho, c_e, p)``; ``LH = latent_heat E``.
    6. ``q5 = q3 + E dt / column_mass``; ``(P, q6) = condensation(q5, t_atm3, ...)``: condensation reads
       t_atm3, the atmospheric temperature before this step's heating.
    7. ``t_surf7 = t_surf + dt (SW_sfc + LW_sfc - SH - LH) / heat_capacity_surf``;
       ``t_atm7 = t_atm3 + dt (SW_atm + LW_atm + SH + latent_heat P) / heat_capacity_atm``.
    8. ``C* = clip((q6 / q_sat(t_atm7) - 0.6) / 0.4, 0, 1)``; ``cloud8 = clip(cloud3 + (C* - cloud3) dt /
       tau_cloud, 0, 1)``.

    Returns ``State(u4, v4, t_surf7, t_atm7, q6, cloud8)`` as JAX arrays; the input arrays are left intact.
    """
    dtype = check_model_fields(state, forcing, grid)
    check_x64(dtype)
    check_step_params(params)
    fields = model_field_dict(state, forcing)
    on_host = all_on_host(tuple(fields.values()))
    if on_host:
        check_finite(fields)  # before anything is built or compiled for a bad call
    rows, s, static = step_inputs(params, grid, dtype)
    if on_host:
        return step_jit(state, forcing, rows, s, in_flags=False, out_flag=False, **static)
    new, ok = step_jit(state, forcing, rows, s, in_flags=True, out_flag=False, **static)
    raise_on_flags(ok, fields)
    return new
