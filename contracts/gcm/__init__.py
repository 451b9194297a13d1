"""Contracts of the GCM subsystem, shared by `reference.gcm` (NumPy/SciPy) and `implementations.gcm` (JAX):
the grid and model data, physical constants, input validation and its error type, the initial state and
forcing, the argument check of ``map_coordinates``, and the framework-free model runner (run loop, memory
figures, command line) each side drives with its own step. NumPy and the standard library only."""

from contracts.gcm.grid import (
    EARTH_RADIUS,
    OMEGA,
    STEFAN_BOLTZMANN,
    Forcing,
    Grid,
    Longwave,
    Shortwave,
    State,
    StepParams,
    coriolis,
    default_k4,
)
from contracts.gcm.setup import default_forcing, initial_state
from contracts.gcm.validate import GCMInputError

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
    "default_forcing",
    "default_k4",
    "initial_state",
]
