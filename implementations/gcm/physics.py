"""JAX implementation of `reference.gcm.physics`: shortwave and longwave radiation, Tetens saturation
humidity, bulk evaporation and condensation, with the reference's names and signatures.

Pointwise kernels, one module-level jit each. Parameters are traced (packed in one array of the field dtype),
so new values never recompile; ``olr_lock`` switches a static flag (None or a number). Operations follow
the reference's order; ``t**4`` is two squarings on both sides.
"""

from __future__ import annotations

import functools
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from contracts.gcm.constants import (
    EPSILON_WATER,
    Q_SAT_MAX,
    STEFAN_BOLTZMANN,
    SW_ATM_MAX,
    T_CELSIUS_MAX,
    T_CELSIUS_MIN,
    TETENS_A,
    TETENS_B,
    TETENS_C,
)
from contracts.gcm.grid import Longwave, Shortwave
from contracts.gcm.validate import check_array, check_fields, check_positive_scalar, scalar
from implementations.gcm._guard import all_on_host, check_finite, check_x64, finite_flags, raise_on_flags
from implementations.gcm._numerics import divide_like_numpy, rounded

ArrayLike = Any


def _pack(dtype: np.dtype, *values: float) -> np.ndarray:
    return np.array(values, dtype=dtype)


def _prepare(fields: dict[str, ArrayLike]) -> np.dtype:
    _, dtype = check_fields(fields)
    check_x64(dtype)
    return dtype


def _run(kernel, fields: dict[str, ArrayLike], *args: Any, **static: Any):
    values = tuple(fields.values())
    if all_on_host(values):
        check_finite(fields)
        return kernel(*values, *args, flags=False, **static)
    out, ok = kernel(*values, *args, flags=True, **static)
    raise_on_flags(ok, fields)
    return out


def _fourth_power(t: jax.Array) -> jax.Array:
    return jnp.square(jnp.square(t))


# --------------------------------------------------------------------------------------------------------
# radiation


def _shortwave(insolation, albedo, cloud, a0, k_c) -> Shortwave:
    reflected = insolation * albedo
    atmosphere = rounded(insolation * jnp.clip(a0 + rounded(k_c * cloud), 0.0, SW_ATM_MAX))
    surface = jnp.maximum(0.0, insolation - rounded(reflected) - atmosphere)
    return Shortwave(reflected, atmosphere, surface)


def _olr_lock(lw: Longwave, t_surf, olr_lock) -> Longwave:
    """``olr_lock`` is None or the host value ``(1 - lock) * sigma`` (a Python-float product)."""
    if olr_lock is None:
        return lw
    return lw._replace(olr=olr_lock * _fourth_power(t_surf))


def _longwave_v1(t_surf, t_atm, cloud, eps0, k_c, olr_lock=None) -> Longwave:
    eps = jnp.clip(eps0 + rounded(k_c * cloud), 0.0, 1.0)
    up = rounded(STEFAN_BOLTZMANN * _fourth_power(t_surf))
    a = rounded(eps * (STEFAN_BOLTZMANN * _fourth_power(t_atm)))
    olr = a + rounded((1.0 - eps) * up)
    surface = a - up
    atmosphere = rounded(eps * up) - 2.0 * a
    return _olr_lock(Longwave(olr, a, surface, atmosphere), t_surf, olr_lock)


def _longwave_v2(t_surf, t_atm, cloud, eps_surface, one_minus_eps0, k_tau_tau0, olr_lock=None) -> Longwave:
    """``one_minus_eps0 = 1 - eps0`` and ``k_tau_tau0 = k_tau * tau0`` are host (Python-float) values."""
    eps_a = 1.0 - rounded(one_minus_eps0 * jnp.exp(-k_tau_tau0 * cloud))
    up = rounded(eps_surface * (STEFAN_BOLTZMANN * _fourth_power(t_surf)))
    a = rounded(eps_a * (STEFAN_BOLTZMANN * _fourth_power(t_atm)))
    upward_into_atm = up + rounded((1.0 - eps_surface) * a)
    olr = a + rounded((1.0 - eps_a) * upward_into_atm)
    surface = rounded(eps_surface * a) - up
    atmosphere = rounded(eps_a * upward_into_atm) - 2.0 * a
    return _olr_lock(Longwave(olr, a, surface, atmosphere), t_surf, olr_lock)


@functools.partial(jax.jit, static_argnames=("flags",))
def _shortwave_jit(insolation, albedo, cloud, s, *, flags: bool):
    out = _shortwave(insolation, albedo, cloud, s[0], s[1])
    return (out, finite_flags(insolation, albedo, cloud)) if flags else out


@functools.partial(jax.jit, static_argnames=("lock", "flags"))
def _longwave_v1_jit(t_surf, t_atm, cloud, s, *, lock: bool, flags: bool):
    out = _longwave_v1(t_surf, t_atm, cloud, s[0], s[1], s[2] if lock else None)
    return (out, finite_flags(t_surf, t_atm, cloud)) if flags else out


@functools.partial(jax.jit, static_argnames=("lock", "flags"))
def _longwave_v2_jit(t_surf, t_atm, cloud, eps_surface, s, *, lock: bool, flags: bool):
    out = _longwave_v2(t_surf, t_atm, cloud, eps_surface, s[0], s[1], s[2] if lock else None)
    return (out, finite_flags(t_surf, t_atm, cloud, eps_surface)) if flags else out


def shortwave(
    insolation: ArrayLike, albedo: ArrayLike, cloud: ArrayLike, a0: float = 0.06, k_c: float = 0.2
) -> Shortwave:
    """Shortwave split: ``R = I alpha``; ``SW_atm = I clip(a0 + k_c C, 0, 0.95)``;
    ``SW_sfc = max(0, I - R - SW_atm)``."""
    fields = {"insolation": insolation, "albedo": albedo, "cloud": cloud}
    dtype = _prepare(fields)
    s = _pack(dtype, scalar("a0", a0), scalar("k_c", k_c))
    return _run(_shortwave_jit, fields, s)


def _lock_value(olr_lock: float | None) -> float:
    return 0.0 if olr_lock is None else (1.0 - scalar("olr_lock", olr_lock)) * STEFAN_BOLTZMANN


def longwave_v1(
    t_surf: ArrayLike,
    t_atm: ArrayLike,
    cloud: ArrayLike,
    eps0: float = 0.7,
    k_c: float = 0.2,
    *,
    olr_lock: float | None = None,
) -> Longwave:
    """Grey one-layer longwave (see `reference.gcm.physics.longwave_v1`): ``eps = clip(eps0 + k_c C, 0, 1)``;
    ``OLR = A + (1 - eps) U``, ``DLR = A``, ``LW_sfc = A - U``, ``LW_atm = eps U - 2 A``; ``olr_lock`` sets
    ``OLR = (1 - olr_lock) sigma Ts^4``."""
    fields = {"t_surf": t_surf, "t_atm": t_atm, "cloud": cloud}
    dtype = _prepare(fields)
    s = _pack(dtype, scalar("eps0", eps0), scalar("k_c", k_c), _lock_value(olr_lock))
    return _run(_longwave_v1_jit, fields, s, lock=olr_lock is not None)


def longwave_v2(
    t_surf: ArrayLike,
    t_atm: ArrayLike,
    cloud: ArrayLike,
    eps_surface: ArrayLike,
    eps0: float = 0.7,
    tau0: float = 6.0,
    k_tau: float = 1.0,
    *,
    olr_lock: float | None = None,
) -> Longwave:
    """Longwave with cloud optical depth and surface emissivity (see `reference.gcm.physics.longwave_v2`)."""
    fields = {"t_surf": t_surf, "t_atm": t_atm, "cloud": cloud, "eps_surface": eps_surface}
    dtype = _prepare(fields)
    eps0, tau0, k_tau = scalar("eps0", eps0), scalar("tau0", tau0), scalar("k_tau", k_tau)
    s = _pack(dtype, 1.0 - eps0, k_tau * tau0, _lock_value(olr_lock))
    return _run(_longwave_v2_jit, fields, s, lock=olr_lock is not None)


# --------------------------------------------------------------------------------------------------------
# humidity


def _q_sat(t, p):
    """``p`` is a traced scalar of the field dtype."""
    t_c = jnp.clip(t - 273.15, T_CELSIUS_MIN, T_CELSIUS_MAX)
    e_s = TETENS_A * jnp.exp(TETENS_B * t_c / (t_c + TETENS_C))
    return jnp.clip(EPSILON_WATER * e_s / jnp.maximum(p - rounded(0.378 * e_s), 1.0), 0.0, Q_SAT_MAX)


def _evaporation(t_surf, q, wind_speed, evap_factor, rho_c_e, p):
    """``rho_c_e = rho * c_e`` is a host (Python-float) product."""
    return _evaporation_q_sat(_q_sat(t_surf, p), q, wind_speed, evap_factor, rho_c_e)


def _evaporation_q_sat(q_sat_surf, q, wind_speed, evap_factor, rho_c_e):
    """`_evaporation` given ``q_sat(t_surf, p)``."""
    return rho_c_e * wind_speed * jnp.maximum(0.0, q_sat_surf - q) * evap_factor


def _condensation(q, t_atm, dt, tau, column_mass, p):
    return _condensation_q_sat(q, _q_sat(t_atm, p), dt, tau, column_mass)


def _condensation_q_sat(q, q_sat_atm, dt, tau, column_mass):
    """`_condensation` given ``q_sat(t_atm, p)``."""
    precip = divide_like_numpy(jnp.maximum(0.0, q - q_sat_atm), tau) * column_mass
    return precip, q - divide_like_numpy(rounded(precip * dt), column_mass)


@functools.partial(jax.jit, static_argnames=("flags",))
def _q_sat_jit(t, s, *, flags: bool):
    out = _q_sat(t, s[0])
    return (out, finite_flags(t)) if flags else out


@functools.partial(jax.jit, static_argnames=("flags",))
def _evaporation_jit(t_surf, q, wind_speed, evap_factor, s, *, flags: bool):
    out = _evaporation(t_surf, q, wind_speed, evap_factor, s[0], s[1])
    return (out, finite_flags(t_surf, q, wind_speed, evap_factor)) if flags else out


@functools.partial(jax.jit, static_argnames=("flags",))
def _condensation_jit(q, t_atm, s, *, flags: bool):
    out = _condensation(q, t_atm, s[0], s[1], s[2], s[3])
    return (out, finite_flags(q, t_atm)) if flags else out


def q_sat(t: ArrayLike, p: float = 1.0e5) -> jax.Array:
    """Saturation specific humidity (Tetens), clipped to ``[0, 0.5]``. ``t`` is a float array of any shape;
    a Python number becomes JAX's default float (float64 with x64 on, else float32)."""
    if isinstance(t, int | float):
        t = jnp.asarray(float(t))
    _, dtype = check_array("t", t)
    check_x64(dtype)
    p = check_positive_scalar("p", p)
    return _run(_q_sat_jit, {"t": t}, _pack(dtype, p))


def evaporation(
    t_surf: ArrayLike,
    q: ArrayLike,
    wind_speed: ArrayLike,
    evap_factor: ArrayLike,
    rho: float = 1.2,
    c_e: float = 1.3e-3,
    p: float = 1.0e5,
) -> jax.Array:
    """Bulk evaporation ``E = rho c_e |V| max(0, q_sat(Ts) - q) S``."""
    fields = {"t_surf": t_surf, "q": q, "wind_speed": wind_speed, "evap_factor": evap_factor}
    dtype = _prepare(fields)
    rho, c_e = scalar("rho", rho), scalar("c_e", c_e)
    p = check_positive_scalar("p", p)
    return _run(_evaporation_jit, fields, _pack(dtype, rho * c_e, p))


def condensation(
    q: ArrayLike,
    t_atm: ArrayLike,
    dt: float,
    tau: float = 3600.0,
    column_mass: float = 1.0e4,
    p: float = 1.0e5,
) -> tuple[jax.Array, jax.Array]:
    """Large-scale condensation ``P = max(0, q - q_sat(Ta)) / tau * M`` and ``q_new = q - P dt / M``;
    returns ``(P, q_new)``."""
    fields = {"q": q, "t_atm": t_atm}
    dtype = _prepare(fields)
    dt = check_positive_scalar("dt", dt)
    tau = check_positive_scalar("tau", tau)
    column_mass = check_positive_scalar("column_mass", column_mass)
    p = check_positive_scalar("p", p)
    return _run(_condensation_jit, fields, _pack(dtype, dt, tau, column_mass, p))
