"""Reference (NumPy/SciPy) of the small lat-lon GCM ported from Qingdai PyGCM: kernels and one model step,
plus the NumPy backend of the model runner (`reference.gcm.runner`, ``python -m reference.gcm run``). The
grid, state, initial state / forcing and input checks it shares with the JAX twin `implementations.gcm` are
`contracts.gcm`'s, re-exported here."""

from contracts.gcm.grid import Forcing, Grid, Longwave, Shortwave, State, StepParams, coriolis, default_k4
from contracts.gcm.setup import default_forcing, initial_state
from contracts.gcm.validate import GCMInputError
from reference.gcm.dynamics import (
    advect_semilag,
    departure_points,
    divergence,
    hyperdiffuse,
    laplacian_sphere,
    shapiro_filter,
    vorticity,
)
from reference.gcm.model import step
from reference.gcm.ndimage import map_coordinates
from reference.gcm.physics import condensation, evaporation, longwave_v1, longwave_v2, q_sat, shortwave

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
