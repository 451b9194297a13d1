"""The GCM's initial state and boundary forcing (plain NumPy), shared by the reference and the JAX twin.

`initial_state` draws smooth, physically plausible fields plus small seeded noise; `default_forcing` builds
annual-mean insolation and land/ocean/ice surface properties. Both are deterministic functions of their
arguments (``numpy.random.default_rng(seed)``), so both backends integrate from identical arrays.
"""

from __future__ import annotations

import numpy as np

from contracts.gcm.constants import (
    EPSILON_WATER,
    Q_SAT_MAX,
    T_CELSIUS_MAX,
    T_CELSIUS_MIN,
    TETENS_A,
    TETENS_B,
    TETENS_C,
)
from contracts.gcm.grid import Forcing, Grid, State

SOLAR_CONSTANT = 1361.0  # W/m^2

# surface types: (albedo, longwave emissivity, evaporation availability)
OCEAN = (0.07, 0.98, 1.0)
LAND = (0.25, 0.96, 0.35)
ICE = (0.60, 0.99, 0.05)

# idealised continents: (centre latitude, centre longitude, half-width lat, half-width lon), degrees
_CONTINENTS = (
    (48.0, 90.0, 22.0, 55.0),  # Eurasia
    (8.0, 20.0, 28.0, 22.0),  # Africa
    (45.0, 260.0, 20.0, 30.0),  # North America
    (-18.0, 300.0, 28.0, 15.0),  # South America
    (-25.0, 135.0, 10.0, 18.0),  # Australia
)


def _saturation_humidity(t: np.ndarray, p: float) -> np.ndarray:
    """Tetens saturation humidity, the formula and constants of the physics' ``q_sat`` (NumPy, same order of
    operations), used here only to start the humidity below saturation."""
    t_c = np.clip(t - 273.15, T_CELSIUS_MIN, T_CELSIUS_MAX)
    e_s = TETENS_A * np.exp(TETENS_B * t_c / (t_c + TETENS_C))
    return np.clip(EPSILON_WATER * e_s / np.maximum(p - 0.378 * e_s, 1.0), 0.0, Q_SAT_MAX)


def _lat_lon(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Latitude and longitude in radians as ``(n_lat, 1)`` and ``(1, n_lon)``."""
    return np.deg2rad(grid.lat)[:, None], np.deg2rad(grid.lon)[None, :]


def surface_types(grid: Grid) -> tuple[np.ndarray, np.ndarray]:
    """Boolean ``(land, ice)`` masks, ``(n_lat, n_lon)``: smooth idealised continents, Antarctica and polar
    ice (ice where |lat| > 70 degrees or on land south of 65 S; ice wins over land)."""
    lat = grid.lat[:, None]
    lon = grid.lon[None, :]
    blob = np.zeros(grid.shape)
    for clat, clon, wlat, wlon in _CONTINENTS:
        dlon = (lon - clon + 180.0) % 360.0 - 180.0  # periodic distance in longitude
        blob = np.maximum(blob, np.exp(-(((lat - clat) / wlat) ** 2) - (dlon / wlon) ** 2))
    land = (blob > 0.5) | (lat < -65.0)
    ice = (np.abs(lat) > 70.0) | (land & (lat < -65.0))
    return land & ~ice, np.broadcast_to(ice, grid.shape).copy()


def default_forcing(grid: Grid, dtype: np.dtype | type = np.float64) -> Forcing:
    """Annual-mean top-of-atmosphere insolation and surface properties on ``grid``.

    Insolation: ``S0/4 (1 - 0.482 P2(sin lat))`` with ``S0 = 1361 W/m^2`` (annual mean by latitude, about 422
    W/m^2 at the equator and 176 at the poles), uniform in longitude. Albedo, emissivity and evaporation
    availability follow the ocean / land / ice masks of `surface_types`.
    """
    dtype = np.dtype(dtype)
    sin_lat = grid.sinlat[:, None]
    p2 = 0.5 * (3.0 * sin_lat**2 - 1.0)
    insolation = np.broadcast_to(SOLAR_CONSTANT / 4.0 * (1.0 - 0.482 * p2), grid.shape)
    land, ice = surface_types(grid)
    props = np.empty((3, *grid.shape))
    for k in range(3):
        props[k] = np.where(ice, ICE[k], np.where(land, LAND[k], OCEAN[k]))
    return Forcing(
        insolation=np.ascontiguousarray(insolation, dtype=dtype),
        albedo=props[0].astype(dtype),
        eps_surface=props[1].astype(dtype),
        evap_factor=props[2].astype(dtype),
    )


def initial_state(grid: Grid, seed: int = 0, dtype: np.dtype | type = np.float64) -> State:
    """A smooth, physically plausible initial state plus small seeded noise.

    - u: westerly jets of 18 m/s at 45 N/S, 6 m/s easterly trades, a zonal wave-4 of 1.5 m/s;
    - v: a 2 m/s wave-3 pattern vanishing at the poles and the equator;
    - t_surf: 242 K at the poles to 300 K at the equator, 2 K cooler over ice;
    - t_atm: 14 to 20 K below t_surf (about 222 to 286 K);
    - q: 60 % of q_sat(t_atm) (below saturation everywhere);
    - cloud: 0.35 +- 0.25 by latitude, in [0, 1];
    - noise (``default_rng(seed)``): 0.3 m/s on the winds, 0.2 K on the temperatures, 1 % on q, 0.02 on
      cloud, then q and cloud clipped back into range.

    With `default_forcing` and the default `StepParams`, 100 steps of 300 s on 121x240 stay finite and
    bounded on both backends.
    """
    dtype = np.dtype(dtype)
    rng = np.random.default_rng(seed)
    phi, lam = _lat_lon(grid)
    cos2 = np.cos(phi) ** 2
    abs_lat = np.abs(np.rad2deg(phi))
    _, ice = surface_types(grid)

    def noise(scale: float) -> np.ndarray:
        return scale * rng.standard_normal(grid.shape)

    u = (
        18.0 * np.exp(-(((abs_lat - 45.0) / 15.0) ** 2))
        - 6.0 * np.exp(-((abs_lat / 12.0) ** 2))
        + 1.5 * cos2 * np.sin(4.0 * lam)
        + noise(0.3)
    )
    v = 2.0 * np.sin(2.0 * phi) * np.cos(phi) * np.cos(3.0 * lam) + noise(0.3)
    t_surf = 242.0 + 58.0 * cos2 - 2.0 * ice + noise(0.2)
    t_atm = t_surf - 14.0 - 6.0 * np.sin(phi) ** 2 + noise(0.2)
    q = np.clip(0.6 * _saturation_humidity(t_atm, 1.0e5) * (1.0 + noise(0.01)), 0.0, None)
    cloud = np.clip(0.35 + 0.25 * np.cos(4.0 * phi) + noise(0.02), 0.0, 1.0)
    fields = (u, v, t_surf, t_atm, q, cloud)
    return State(*(np.ascontiguousarray(np.broadcast_to(f, grid.shape), dtype=dtype) for f in fields))
