"""Reference (NumPy) of the GCM column physics: shortwave and longwave radiation (two longwave schemes),
Tetens saturation humidity, bulk evaporation and condensation.

All kernels are pointwise. Each public function validates its inputs (`contracts.gcm.validate`) and calls a
private core (``_name``) that the model step reuses. Every parameter is an argument (the original model read
some from environment variables); units are SI. Computation is in the dtype of the input fields, with the
Python-float parameters entering as NumPy weak scalars.
"""

from __future__ import annotations

from typing import Any

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
from contracts.gcm.validate import (
    GCMInputError,
    check_array,
    check_fields,
    check_finite,
    check_positive_scalar,
    scalar,
)

ArrayLike = Any


def _fourth_power(t):
    """``t**4`` as two squarings, so NumPy and XLA round it the same way (pow and integer_pow differ)."""
    return np.square(np.square(t))


def _scalars(**values: Any) -> dict[str, float]:
    return {name: scalar(name, value) for name, value in values.items()}


# --------------------------------------------------------------------------------------------------------
# radiation


def _shortwave(insolation, albedo, cloud, a0: float, k_c: float) -> Shortwave:
    reflected = insolation * albedo
    atmosphere = insolation * np.clip(a0 + k_c * cloud, 0.0, SW_ATM_MAX)
    surface = np.maximum(0.0, insolation - reflected - atmosphere)
    return Shortwave(reflected, atmosphere, surface)


def shortwave(
    insolation: ArrayLike, albedo: ArrayLike, cloud: ArrayLike, a0: float = 0.06, k_c: float = 0.2
) -> Shortwave:
    """Shortwave split: ``R = I alpha``; ``SW_atm = I clip(a0 + k_c C, 0, 0.95)``;
    ``SW_sfc = max(0, I - R - SW_atm)``. Closure ``I = R + SW_atm + SW_sfc`` wherever SW_sfc > 0."""
    fields = {"insolation": insolation, "albedo": albedo, "cloud": cloud}
    check_fields(fields)
    p = _scalars(a0=a0, k_c=k_c)
    check_finite(fields)
    return _shortwave(np.asarray(insolation), np.asarray(albedo), np.asarray(cloud), p["a0"], p["k_c"])


def _olr_lock(lw: Longwave, t_surf, olr_lock: float | None) -> Longwave:
    if olr_lock is None:
        return lw
    return lw._replace(olr=(1.0 - olr_lock) * STEFAN_BOLTZMANN * _fourth_power(t_surf))


def _longwave_v1(t_surf, t_atm, cloud, eps0: float, k_c: float, olr_lock: float | None = None) -> Longwave:
    eps = np.clip(eps0 + k_c * cloud, 0.0, 1.0)
    up = STEFAN_BOLTZMANN * _fourth_power(t_surf)
    a = eps * (STEFAN_BOLTZMANN * _fourth_power(t_atm))
    olr = a + (1.0 - eps) * up
    surface = a - up
    atmosphere = eps * up - 2.0 * a
    return _olr_lock(Longwave(olr, a, surface, atmosphere), t_surf, olr_lock)


def _longwave_v2(
    t_surf, t_atm, cloud, eps_surface, eps0: float, tau0: float, k_tau: float, olr_lock: float | None = None
) -> Longwave:
    eps_a = 1.0 - (1.0 - eps0) * np.exp(-(k_tau * tau0) * cloud)
    up = eps_surface * (STEFAN_BOLTZMANN * _fourth_power(t_surf))
    a = eps_a * (STEFAN_BOLTZMANN * _fourth_power(t_atm))
    upward_into_atm = up + (1.0 - eps_surface) * a  # surface emission plus the reflected part of DLR
    olr = a + (1.0 - eps_a) * upward_into_atm
    surface = eps_surface * a - up
    atmosphere = eps_a * upward_into_atm - 2.0 * a
    return _olr_lock(Longwave(olr, a, surface, atmosphere), t_surf, olr_lock)


def _check_lock(olr_lock: float | None) -> float | None:
    return None if olr_lock is None else scalar("olr_lock", olr_lock)


def longwave_v1(
    t_surf: ArrayLike,
    t_atm: ArrayLike,
    cloud: ArrayLike,
    eps0: float = 0.7,
    k_c: float = 0.2,
    *,
    olr_lock: float | None = None,
) -> Longwave:
    """Grey one-layer longwave: ``eps = clip(eps0 + k_c C, 0, 1)``, ``U = sigma Ts^4``,
    ``A = eps sigma Ta^4``;
    ``OLR = A + (1 - eps) U``, ``DLR = A``, ``LW_sfc = DLR - U`` (net downward), ``LW_atm = eps U - 2 A``.

    Closure ``OLR + LW_sfc + LW_atm = 0``. ``olr_lock`` (the original's QD_GH_LOCK) overwrites OLR by
    ``(1 - olr_lock) sigma Ts^4`` and breaks the closure.
    """
    fields = {"t_surf": t_surf, "t_atm": t_atm, "cloud": cloud}
    check_fields(fields)
    p = _scalars(eps0=eps0, k_c=k_c)
    lock = _check_lock(olr_lock)
    check_finite(fields)
    return _longwave_v1(np.asarray(t_surf), np.asarray(t_atm), np.asarray(cloud), p["eps0"], p["k_c"], lock)


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
    """Longwave with cloud optical depth and surface emissivity:
    ``eps_a = 1 - (1 - eps0) exp(-k_tau tau0 C)``, ``U = eps_s sigma Ts^4``, ``A = eps_a sigma Ta^4``;
    ``OLR = A + (1 - eps_a)(U + (1 - eps_s) A)``, ``DLR = A``, ``LW_sfc = eps_s A - U``,
    ``LW_atm = eps_a (U + (1 - eps_s) A) - 2 A``. Closure ``OLR + LW_sfc + LW_atm = 0`` in exact arithmetic;
    ``olr_lock`` as in `longwave_v1`.
    """
    fields = {"t_surf": t_surf, "t_atm": t_atm, "cloud": cloud, "eps_surface": eps_surface}
    check_fields(fields)
    p = _scalars(eps0=eps0, tau0=tau0, k_tau=k_tau)
    lock = _check_lock(olr_lock)
    check_finite(fields)
    return _longwave_v2(
        np.asarray(t_surf),
        np.asarray(t_atm),
        np.asarray(cloud),
        np.asarray(eps_surface),
        p["eps0"],
        p["tau0"],
        p["k_tau"],
        lock,
    )


# --------------------------------------------------------------------------------------------------------
# humidity


def _q_sat(t, p: float):
    t_c = np.clip(t - 273.15, T_CELSIUS_MIN, T_CELSIUS_MAX)
    e_s = TETENS_A * np.exp(TETENS_B * t_c / (t_c + TETENS_C))
    return np.clip(EPSILON_WATER * e_s / np.maximum(p - 0.378 * e_s, 1.0), 0.0, Q_SAT_MAX)


def q_sat(t: ArrayLike, p: float = 1.0e5) -> np.ndarray:
    """Saturation specific humidity (Tetens): ``T_c = clip(T - 273.15, -80, 60)``,
    ``e_s = 610.94 exp(17.625 T_c / (T_c + 243.04))``, ``q_sat = 0.622 e_s / max(p - 0.378 e_s, 1)`` clipped
    to ``[0, 0.5]``. ``t`` is a float array of any shape (a Python number is taken as float64)."""
    t = np.asarray(t, dtype=np.float64) if isinstance(t, int | float) else t
    check_array("t", t)
    p = check_positive_scalar("p", p)
    check_finite({"t": t})
    return _q_sat(np.asarray(t), p)


def _evaporation(t_surf, q, wind_speed, evap_factor, rho: float, c_e: float, p: float):
    return rho * c_e * wind_speed * np.maximum(0.0, _q_sat(t_surf, p) - q) * evap_factor


def evaporation(
    t_surf: ArrayLike,
    q: ArrayLike,
    wind_speed: ArrayLike,
    evap_factor: ArrayLike,
    rho: float = 1.2,
    c_e: float = 1.3e-3,
    p: float = 1.0e5,
) -> np.ndarray:
    """Bulk evaporation ``E = rho c_e |V| max(0, q_sat(Ts) - q) S`` in kg m^-2 s^-1."""
    fields = {"t_surf": t_surf, "q": q, "wind_speed": wind_speed, "evap_factor": evap_factor}
    check_fields(fields)
    s = _scalars(rho=rho, c_e=c_e)
    p = check_positive_scalar("p", p)
    check_finite(fields)
    return _evaporation(
        np.asarray(t_surf),
        np.asarray(q),
        np.asarray(wind_speed),
        np.asarray(evap_factor),
        s["rho"],
        s["c_e"],
        p,
    )


def _condensation(q, t_atm, dt: float, tau: float, column_mass: float, p: float):
    precip = np.maximum(0.0, q - _q_sat(t_atm, p)) / tau * column_mass
    return precip, q - precip * dt / column_mass


def condensation(
    q: ArrayLike,
    t_atm: ArrayLike,
    dt: float,
    tau: float = 3600.0,
    column_mass: float = 1.0e4,
    p: float = 1.0e5,
) -> tuple[np.ndarray, np.ndarray]:
    """Large-scale condensation: ``P = max(0, q - q_sat(Ta)) / tau * M`` (kg m^-2 s^-1) and
    ``q_new = q - P dt / M``; returns ``(P, q_new)``. Water closure ``(q - q_new) M = P dt``."""
    fields = {"q": q, "t_atm": t_atm}
    check_fields(fields)
    dt = check_positive_scalar("dt", dt)
    tau = check_positive_scalar("tau", tau)
    column_mass = check_positive_scalar("column_mass", column_mass)
    p = check_positive_scalar("p", p)
    check_finite(fields)
    return _condensation(np.asarray(q), np.asarray(t_atm), dt, tau, column_mass, p)


__all__ = [
    "GCMInputError",
    "condensation",
    "evaporation",
    "longwave_v1",
    "longwave_v2",
    "q_sat",
    "shortwave",
]
