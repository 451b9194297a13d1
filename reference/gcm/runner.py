"""The NumPy backend of the GCM model runner: the reference's model step (`reference.gcm.model`) driven by the
framework-free run loop of `contracts.gcm.runner`. ``python -m reference.gcm run`` is its command line.

The step is the reference's validation-free core (the loop checks the inputs once per run); it allocates a
new state (six fields) per step and never modifies its input. Finiteness is checked on the host after every
step.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import numpy as np

from contracts.gcm.grid import Forcing, Grid, State, StepParams
from contracts.gcm.runner import RunConfig, RunResult, integrate
from reference.gcm import model


class NumpyBackend:
    name = "numpy"

    def __init__(self, grid: Grid, params: StepParams, dtype: np.dtype, state: State, forcing: Forcing):
        self._step = model._step
        self.grid, self.params, self.forcing = grid, params, forcing
        self.state = state
        self.platform, self.device = "cpu", "numpy (host)"

    def advance(self, state: State) -> tuple[State, bool]:
        with np.errstate(all="ignore"):  # a blow-up is reported by the runner, not as warnings
            new = self._step(state, self.forcing, self.params, self.grid)
        return new, all(bool(np.isfinite(x).all()) for x in new)

    @staticmethod
    def keep(state: State) -> State:
        return state  # steps never modify their input

    @staticmethod
    def flags(handles: list[Any]) -> np.ndarray:
        return np.asarray(handles, dtype=bool)

    @staticmethod
    def block(state: State) -> None:
        return None

    @staticmethod
    def to_numpy(state: State) -> State:
        return state


def run(config: RunConfig, clock: Callable[[], float] = time.perf_counter) -> RunResult:
    """Integrate ``config`` with the NumPy reference (see `contracts.gcm.runner.integrate`)."""
    return integrate(config, NumpyBackend, clock)


__all__ = ["NumpyBackend", "run"]
