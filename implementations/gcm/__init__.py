"""JAX implementation of `reference.gcm`, the small lat-lon GCM ported from Qingdai PyGCM: the same public
names and signatures (kernels, one model step; the shared data and checks are `contracts.gcm`'s, re-exported),
plus the JAX backend of the model runner (`implementations.gcm.runner`, ``python -m implementations.gcm
run``). Importing this package imports JAX but initialises no backend, so a runner can still choose the
platform."""

from contracts.gcm.grid import Forcing, Grid, Longwave, Shortwave, State, StepParams, coriolis, default_k4
from contracts.gcm.setup import default_forcing, initial_state
from contracts.gcm.validate import GCMInputError
from implementations.gcm.dynamics import (
    advect_semilag,
    departure_points,
    divergence,
    hyperdiffuse,
    laplacian_sphere,
    shapiro_filter,
    vorticity,
)
from implementations.gcm.model import step
from implementations.gcm.ndimage import map_coordinates
from implementations.gcm.physics import condensation, evaporation, longwave_v1, longwave_v2, q_sat, shortwave

__all__ = [
    "Forcing",
    "GCMInputError",
    "Grid",
    "Longwave",
    "Shortwave",
    "State",
    "StepParams",
    "advect_semilag",
    "condensation",
    "coriolis",
    "default_forcing",
    "default_k4",
    "departure_points",
    "divergence",
    "evaporation",
    "hyperdiffuse",
    "initial_state",
    "laplacian_sphere",
    "longwave_v1",
    "longwave_v2",
    "map_coordinates",
    "q_sat",
    "shapiro_filter",
    "shortwave",
    "step",
    "vorticity",
]
