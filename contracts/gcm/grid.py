"""The contract of the GCM's data: the lat-lon sphere grid, model state, forcing and step parameters that the
GCM reference and its JAX twin share.

Plain data only (NumPy, no JAX): both `reference.gcm` and `implementations.gcm` import it.

Grid convention (stated once, used everywhere):

- Arrays are ``(n_lat, n_lon)``; row 0 is the south pole, row ``n_lat - 1`` the north pole:
  ``lat = linspace(-90, 90, n_lat)`` puts both poles on grid rows, ``dlat = pi / (n_lat - 1)``.
- Longitude does **not** repeat its first meridian: ``lon = arange(n_lon) * 360 / n_lon`` and
  ``dlon = 2 pi / n_lon``, so the zonal direction is exactly periodic with period ``n_lon``. A zonal
  ``np.roll`` is then a true periodic stencil. (The original PyGCM included the 360-degree endpoint and
  rolled over ``n_lon`` columns anyway, a seam defect that this convention removes.)
- Metric terms use ``coslat = max(cos(lat), coslat_floor)``; with the default floor of 0.2 the operators
  are true spherical operators for ``|lat| < 78.46`` degrees and regularised poleward of that.
"""

from __future__ import annotations

import dataclasses
import math
from typing import NamedTuple

import numpy as np

from contracts.gcm.constants import EARTH_RADIUS, OMEGA, STEFAN_BOLTZMANN

__all__ = [
    "EARTH_RADIUS",
    "OMEGA",
    "STEFAN_BOLTZMANN",
    "Forcing",
    "GCMInputError",
    "Grid",
    "Longwave",
    "Shortwave",
    "State",
    "StepParams",
    "coriolis",
    "default_k4",
]


class GCMInputError(ValueError):
    """Bad input to a GCM kernel: wrong shape, dtype, grid, parameter, or a non-finite value."""


@dataclasses.dataclass(frozen=True)
class Grid:
    """A regular lat-lon grid with pole rows and a non-repeating periodic longitude."""

    n_lat: int
    n_lon: int
    radius: float = EARTH_RADIUS
    coslat_floor: float = 0.2

    def __post_init__(self) -> None:
        if not isinstance(self.n_lat, int) or isinstance(self.n_lat, bool) or self.n_lat < 5:
            raise GCMInputError(f"Grid.n_lat must be an int >= 5 (both poles are rows); got {self.n_lat!r}")
        if (
            not isinstance(self.n_lon, int)
            or isinstance(self.n_lon, bool)
            or self.n_lon < 4
            or self.n_lon % 2
        ):
            raise GCMInputError(f"Grid.n_lon must be an even int >= 4; got {self.n_lon!r}")
        if not (math.isfinite(self.radius) and self.radius > 0):
            raise GCMInputError(f"Grid.radius must be finite and > 0; got {self.radius!r}")
        if not (0.0 < self.coslat_floor <= 1.0):
            raise GCMInputError(f"Grid.coslat_floor must be in (0, 1]; got {self.coslat_floor!r}")

    @property
    def shape(self) -> tuple[int, int]:
        return (self.n_lat, self.n_lon)

    @property
    def dlat(self) -> float:
        """Latitude spacing in radians."""
        return math.pi / (self.n_lat - 1)

    @property
    def dlon(self) -> float:
        """Longitude spacing in radians."""
        return 2.0 * math.pi / self.n_lon

    @property
    def lat(self) -> np.ndarray:
        """Latitudes of the rows in degrees, south pole first."""
        return np.linspace(-90.0, 90.0, self.n_lat)

    @property
    def lon(self) -> np.ndarray:
        """Longitudes of the columns in degrees, without the repeated 360-degree meridian."""
        return np.arange(self.n_lon) * (360.0 / self.n_lon)

    @property
    def coslat(self) -> np.ndarray:
        """Metric cosine of latitude, clamped below at ``coslat_floor``; shape ``(n_lat,)``, float64."""
        return np.maximum(np.cos(np.deg2rad(self.lat)), self.coslat_floor)

    @property
    def sinlat(self) -> np.ndarray:
        return np.sin(np.deg2rad(self.lat))

    def metrics(self) -> tuple[float, float, np.ndarray, float]:
        """``(dlat, dlon, coslat, radius)``: the grid arguments of the stencil kernels, in their order."""
        return self.dlat, self.dlon, self.coslat, self.radius


class State(NamedTuple):
    """Prognostic fields of the small model, each ``(n_lat, n_lon)``."""

    u: np.ndarray  # zonal wind, m/s
    v: np.ndarray  # meridional wind, m/s
    t_surf: np.ndarray  # surface temperature, K
    t_atm: np.ndarray  # atmospheric temperature, K
    q: np.ndarray  # specific humidity, kg/kg
    cloud: np.ndarray  # cloud fraction, 0..1


class Forcing(NamedTuple):
    """Fixed boundary fields of the small model, each ``(n_lat, n_lon)``."""

    insolation: np.ndarray  # top-of-atmosphere shortwave, W/m^2
    albedo: np.ndarray  # surface albedo, 0..1
    eps_surface: np.ndarray  # surface longwave emissivity (ocean 0.98, land 0.96, ice 0.99)
    evap_factor: np.ndarray  # surface evaporation availability, 0..1


class Shortwave(NamedTuple):
    reflected: np.ndarray
    atmosphere: np.ndarray
    surface: np.ndarray


class Longwave(NamedTuple):
    olr: np.ndarray  # outgoing longwave at the top
    dlr: np.ndarray  # downward longwave at the surface
    surface: np.ndarray  # net downward longwave absorbed by the surface
    atmosphere: np.ndarray  # net longwave absorbed by the atmosphere


@dataclasses.dataclass(frozen=True)
class StepParams:
    """Parameters of one physics step. Every setting a kernel uses comes from here, never the environment.

    ``n_substeps`` and ``longwave`` change the structure of the computation (static under jit); all other
    fields are plain numbers.
    """

    dt: float = 300.0  # s
    sigma4: float = 0.02  # dimensionless hyperdiffusion strength (k4 = sigma4 dx^4 / dt)
    n_substeps: int = 1
    longwave: str = "v1"  # "v1" or "v2"
    advection_blend: float = 1.0  # fraction of the advected field taken by t_atm and q
    shapiro_passes: int = 1  # 1-2-1 filter passes applied to the winds
    omega: float = OMEGA
    # radiation
    sw_a0: float = 0.06
    sw_kc: float = 0.2
    lw_eps0: float = 0.7
    lw_kc: float = 0.2
    lw_tau0: float = 6.0
    lw_ktau: float = 1.0
    # boundary layer and moisture
    rho_air: float = 1.2  # kg/m^3
    cp_air: float = 1004.0  # J/(kg K)
    c_h: float = 1.3e-3  # sensible heat exchange coefficient
    c_e: float = 1.3e-3  # evaporation exchange coefficient
    latent_heat: float = 2.5e6  # J/kg
    pressure: float = 1.0e5  # Pa
    column_mass: float = 1.0e4  # kg/m^2 of air carrying q
    tau_condense: float = 3600.0  # s
    tau_cloud: float = 10800.0  # s
    heat_capacity_surf: float = 4.0e7  # J/(m^2 K), a 10 m mixed layer
    heat_capacity_atm: float = 1.0e7  # J/(m^2 K)
    drag: float = 1.0e-6  # s^-1, Rayleigh drag on the winds

    def __post_init__(self) -> None:
        if not (math.isfinite(self.dt) and self.dt > 0):
            raise GCMInputError(f"StepParams.dt must be finite and > 0; got {self.dt!r}")
        if not (math.isfinite(self.sigma4) and self.sigma4 >= 0):
            raise GCMInputError(f"StepParams.sigma4 must be finite and >= 0; got {self.sigma4!r}")
        if not isinstance(self.n_substeps, int) or self.n_substeps < 1:
            raise GCMInputError(f"StepParams.n_substeps must be an int >= 1; got {self.n_substeps!r}")
        if self.longwave not in ("v1", "v2"):
            raise GCMInputError(f"StepParams.longwave must be 'v1' or 'v2'; got {self.longwave!r}")
        if not isinstance(self.shapiro_passes, int) or self.shapiro_passes < 0:
            raise GCMInputError(f"StepParams.shapiro_passes must be an int >= 0; got {self.shapiro_passes!r}")
        if not (0.0 <= self.advection_blend <= 1.0):
            raise GCMInputError(f"StepParams.advection_blend must be in [0, 1]; got {self.advection_blend!r}")
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, float) and not math.isfinite(value):
                raise GCMInputError(f"StepParams.{field.name} must be finite; got {value!r}")

    # fields that are static under jit (structure), the rest are traced numbers
    STATIC_FIELDS = ("n_substeps", "longwave", "shapiro_passes")


def default_k4(grid: Grid, dt: float, sigma4: float = 0.02, factor: float = 1.0) -> np.ndarray:
    """The default hyperdiffusion coefficient map ``sigma4 * dx_min^4 / dt * factor``, shape ``(n_lat, n_lon)``.

    ``dx_min = min(a dlat, a dlon max(cos(lat), 1e-3))`` per row, as in the original model.
    """
    if not (math.isfinite(dt) and dt > 0):
        raise GCMInputError(f"dt must be finite and > 0; got {dt!r}")
    if not (math.isfinite(sigma4) and sigma4 >= 0):
        raise GCMInputError(f"sigma4 must be finite and >= 0; got {sigma4!r}")
    coslat_true = np.maximum(np.cos(np.deg2rad(grid.lat)), 1e-3)
    dx = np.minimum(grid.radius * grid.dlat, grid.radius * grid.dlon * coslat_true)
    row = sigma4 * dx**4 / dt * factor
    return np.broadcast_to(row[:, None], grid.shape).copy()


def coriolis(grid: Grid, omega: float = OMEGA) -> np.ndarray:
    """Coriolis parameter ``2 omega sin(lat)`` per row, shape ``(n_lat,)``."""
    return 2.0 * omega * grid.sinlat
