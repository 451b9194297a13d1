"""Reference (NumPy/SciPy) of one physics step of the small GCM, composed from the reference kernels.

The step validates its inputs once and then calls the private cores of `reference.gcm.dynamics` and
`reference.gcm.physics`; its exact order of operations is written in `step`'s docstring and mirrored
operation for operation by `implementations.gcm.model.step`.
"""

from __future__ import annotations

import numpy as np

from contracts.gcm.grid import Forcing, Grid, State, StepParams, coriolis, default_k4
from contracts.gcm.validate import check_finite, check_model_fields, check_step_params, model_field_dict
from reference.gcm.dynamics import _departure_points, _hyperdiffuse, _interpolate, _shapiro
from reference.gcm.physics import _condensation, _evaporation, _longwave_v1, _longwave_v2, _q_sat, _shortwave

# hyperdiffusion strength of each field relative to the winds (the original model's factors)
K4_FACTOR_WIND = 1.0
K4_FACTOR_TRACER = 0.5  # t_atm and q
K4_FACTOR_CLOUD = 0.25
# relative humidity at which clouds start to form and the range over which they reach full cover
CLOUD_RH0 = 0.6
CLOUD_RH_RANGE = 0.4


def _step(state: State, forcing: Forcing, params: StepParams, grid: Grid) -> State:
    dtype = state.u.dtype
    dt = params.dt
    dlat, dlon, coslat, a = grid.metrics()
    c = coslat.astype(dtype)[:, None]
    u, v, t_surf, t_atm, q, cloud = state
    b = params.advection_blend

    # 1. semi-Lagrangian advection from one set of departure points
    jd, id_ = _departure_points(u, v, dt, a, dlat, dlon, c)
    u1 = _interpolate(u, jd, id_)
    v1 = _interpolate(v, jd, id_)
    cloud1 = _interpolate(cloud, jd, id_)
    t_atm1 = (1.0 - b) * t_atm + b * _interpolate(t_atm, jd, id_)
    q1 = (1.0 - b) * q + b * _interpolate(q, jd, id_)

    # 2. Coriolis rotation by f dt, then implicit Rayleigh drag
    f_dt = coriolis(grid, params.omega) * dt
    cos_f = np.cos(f_dt).astype(dtype)[:, None]
    sin_f = np.sin(f_dt).astype(dtype)[:, None]
    damp = 1.0 / (1.0 + params.drag * dt)
    u2 = (u1 * cos_f + v1 * sin_f) * damp
    v2 = (-u1 * sin_f + v1 * cos_f) * damp

    # 3. hyperdiffusion
    n = params.n_substeps
    dt_sub = dt / n

    def k4(factor: float) -> np.ndarray:
        return default_k4(grid, dt, params.sigma4, factor).astype(dtype)

    k4_wind, k4_tracer, k4_cloud = k4(K4_FACTOR_WIND), k4(K4_FACTOR_TRACER), k4(K4_FACTOR_CLOUD)
    u3 = _hyperdiffuse(u2, k4_wind, dt_sub, n, dlat, dlon, c, a)
    v3 = _hyperdiffuse(v2, k4_wind, dt_sub, n, dlat, dlon, c, a)
    t_atm3 = _hyperdiffuse(t_atm1, k4_tracer, dt_sub, n, dlat, dlon, c, a)
    q3 = _hyperdiffuse(q1, k4_tracer, dt_sub, n, dlat, dlon, c, a)
    cloud3 = _hyperdiffuse(cloud1, k4_cloud, dt_sub, n, dlat, dlon, c, a)

    # 4. Shapiro filter on the winds
    u4 = _shapiro(u3, params.shapiro_passes)
    v4 = _shapiro(v3, params.shapiro_passes)

    # 5. radiation and surface fluxes, all from (t_surf, t_atm3, q3, cloud3) and the winds u4, v4
    sw = _shortwave(forcing.insolation, forcing.albedo, cloud3, params.sw_a0, params.sw_kc)
    if params.longwave == "v1":
        lw = _longwave_v1(t_surf, t_atm3, cloud3, params.lw_eps0, params.lw_kc)
    else:
        lw = _longwave_v2(
            t_surf, t_atm3, cloud3, forcing.eps_surface, params.lw_eps0, params.lw_tau0, params.lw_ktau
        )
    wind = np.sqrt(u4 * u4 + v4 * v4)
    sensible = params.rho_air * params.cp_air * params.c_h * wind * (t_surf - t_atm3)
    evap = _evaporation(t_surf, q3, wind, forcing.evap_factor, params.rho_air, params.c_e, params.pressure)
    latent = params.latent_heat * evap

    # 6. moisture: evaporation moistens the column, then condensation against t_atm3 (before heating)
    q5 = q3 + evap * dt / params.column_mass
    precip, q6 = _condensation(q5, t_atm3, dt, params.tau_condense, params.column_mass, params.pressure)

    # 7. temperatures
    t_surf7 = t_surf + dt * (sw.surface + lw.surface - sensible - latent) / params.heat_capacity_surf
    t_atm7 = t_atm3 + dt * (sw.atmosphere + lw.atmosphere + sensible + params.latent_heat * precip) / (
        params.heat_capacity_atm
    )

    # 8. clouds relax towards the relative-humidity diagnostic of the new (q6, t_atm7)
    rh = q6 / _q_sat(t_atm7, params.pressure)
    cloud_eq = np.clip((rh - CLOUD_RH0) / CLOUD_RH_RANGE, 0.0, 1.0)
    cloud8 = np.clip(cloud3 + (cloud_eq - cloud3) * dt / params.tau_cloud, 0.0, 1.0)

    return State(u=u4, v=v4, t_surf=t_surf7, t_atm=t_atm7, q=q6, cloud=cloud8)


def step(state: State, forcing: Forcing, params: StepParams, grid: Grid) -> State:
    """One physics step of the small GCM. With ``dt = params.dt``, ``b = params.advection_blend``,
    ``(dlat, dlon, c, a) = grid.metrics()`` and every field computed in the state's dtype:

    1. ``(jd, id) = departure_points(u, v)`` once; ``u1, v1, cloud1 = adv(u), adv(v), adv(cloud)``;
       ``t_atm1 = (1 - b) t_atm + b adv(t_atm)``, ``q1 = (1 - b) q + b adv(q)``; t_surf is not advected.
    2. ``f = coriolis(grid, omega)`` per row; ``u2 = (u1 cos(f dt) + v1 sin(f dt)) damp``,
       ``v2 = (-u1 sin(f dt) + v1 cos(f dt)) damp`` with ``damp = 1 / (1 + drag dt)``.
    3. Hyperdiffusion, ``n_substeps`` substeps of ``dt / n_substeps``, with
       ``k4 = default_k4(grid, dt, sigma4, factor)``: factor 1 for u2, v2 (-> u3, v3), 0.5 for t_atm1, q1
       (-> t_atm3, q3), 0.25 for cloud1 (-> cloud3).
    4. Shapiro filter, ``shapiro_passes`` passes, on u3, v3 (-> u4, v4).
    5. ``sw = shortwave(insolation, albedo, cloud3)``; ``lw = longwave_v1(t_surf, t_atm3, cloud3)`` or
       ``longwave_v2(t_surf, t_atm3, cloud3, eps_surface)``; ``|V| = sqrt(u4^2 + v4^2)``;
       ``SH = rho cp c_h |V| (t_surf - t_atm3)``;
       ``E = evaporation(t_surf, q3, |V|, evap_factor, rho, c_e, p)``;
       ``LH = latent_heat E``.
    6. ``q5 = q3 + E dt / column_mass``; ``(P, q6) = condensation(q5, t_atm3, dt, tau_condense, column_mass,
       p)``: condensation reads the atmospheric temperature **before** this step's heating (t_atm3, the same
       temperature as radiation and the surface fluxes; all physics tendencies come from one state).
    7. ``t_surf7 = t_surf + dt (SW_sfc + LW_sfc - SH - LH) / heat_capacity_surf``;
       ``t_atm7 = t_atm3 + dt (SW_atm + LW_atm + SH + latent_heat P) / heat_capacity_atm``.
    8. ``C* = clip((q6 / q_sat(t_atm7, p) - 0.6) / 0.4, 0, 1)`` (the new humidity and temperature);
       ``cloud8 = clip(cloud3 + (C* - cloud3) dt / tau_cloud, 0, 1)``.

    Returns ``State(u4, v4, t_surf7, t_atm7, q6, cloud8)``. Radiation uses ``olr_lock=None`` (the OLR does
    not enter the step). Raises `GCMInputError` on fields that do not match ``grid.shape``, mixed dtypes, or
    non-finite values (naming the field and the first bad index).
    """
    check_model_fields(state, forcing, grid)
    check_step_params(params)
    fields = model_field_dict(state, forcing)
    check_finite(fields)
    state = State(*(np.asarray(x) for x in state))
    forcing = Forcing(*(np.asarray(x) for x in forcing))
    return _step(state, forcing, params, grid)
