"""The JAX backend of the GCM model runner: `implementations.gcm.model`'s stacked, donated step driven by the
framework-free run loop of `contracts.gcm.runner`. ``python -m implementations.gcm run`` is its command line.

The state lives on the device as one stacked ``(6, n_lat, n_lon)`` array (`model.STACK_ORDER`) that each step
donates: the new state is written over the old one (`model.step_stacked_jit`), so a step allocates no new
state. Each step also returns one fused flag "the new state is finite", which the loop reads once per check
window. Call `configure_jax` (platform, x64 for float64) before the first JAX computation.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from contracts.gcm.grid import Forcing, Grid, State, StepParams
from contracts.gcm.runner import PLATFORMS, RunConfig, RunResult, integrate
from implementations.gcm import model
from implementations.gcm._guard import check_x64


def configure_jax(
    platform: str | None = None, enable_x64: bool | None = None, cpu_async_dispatch: bool = False
) -> None:
    """Select the JAX platform and the x64 mode. Platform selection only works before the first JAX
    computation (the original set ``JAX_PLATFORM_NAME`` after importing jax, too late); raises otherwise.

    ``cpu_async_dispatch`` (default off) is the CPU client's dispatch mode, set only while no backend is
    initialised (the client reads it once, when it is created). The run loop reads each step's finite flag
    before it starts the next (``check_every=1``, the CPU default), so asynchronous dispatch overlaps nothing
    there; with it, each step runs on one of the client's worker threads, whose temporary block (17.6 MiB at
    481x960 float64) lands in that thread's malloc arena, and glibc keeps a freed block in each. Measured at
    481x960 float64, 20 or 40 steps under the default malloc: growth after warm-up 52.9-141 MiB asynchronous,
    17.7-35.3 MiB synchronous (freed memory held: 17.6 MiB, one block, in every synchronous run), at the same
    step time (121x240: 2.11-2.24 against 2.14-2.26 ms; 481x960: 26.5-31.2 against 25.9-30.9 ms)."""
    from jax._src import xla_bridge

    if not xla_bridge.backends_are_initialized():
        jax.config.update("jax_cpu_enable_async_dispatch", bool(cpu_async_dispatch))

    if platform is not None:
        if platform not in PLATFORMS:
            raise ValueError(f"platform must be one of {tuple(PLATFORMS)}; got {platform!r}")
        wanted = PLATFORMS[platform]
        if xla_bridge.backends_are_initialized():
            if jax.default_backend() != ("gpu" if wanted == "cuda" else wanted):
                raise RuntimeError(
                    f"JAX already initialised its backend ({jax.default_backend()}); select the platform "
                    "before the first JAX computation"
                )
        else:
            jax.config.update("jax_platforms", wanted)
    if enable_x64 is not None:
        jax.config.update("jax_enable_x64", bool(enable_x64))


class JaxBackend:
    """The stacked device state, donated to and advanced by each step."""

    name = "jax"

    def __init__(self, grid: Grid, params: StepParams, dtype: np.dtype, state: State, forcing: Forcing):
        check_x64(dtype)
        self.rows, self.scalars, self.static = model.step_inputs(params, grid, dtype)
        self._step_jit = model.step_stacked_jit
        self.forcing = jax.device_put(forcing)
        # a device-owned copy (never a view of the caller's host arrays), so that donating it is safe
        self.state = model.stack_state(jax.device_put(state))
        self.scalars = jax.device_put(self.scalars)
        device = jax.devices()[0]
        self.platform, self.device = device.platform, f"{device.platform}:{device.device_kind}"

    def advance(self, state: Any) -> tuple[Any, Any]:
        """One step; ``state`` is donated (deleted) unless the caller passes a copy (`keep`)."""
        return self._step_jit(state, self.forcing, self.rows, self.scalars, **self.static)

    def keep(self, state: Any) -> Any:
        """A copy of ``state`` that survives the donation of ``state`` (the start of a check window)."""
        return jax.numpy.copy(state)

    def flags(self, handles: list[Any]) -> np.ndarray:
        return np.asarray(jax.device_get(handles), dtype=bool)

    def block(self, state: Any) -> None:
        jax.block_until_ready(state)

    def to_numpy(self, state: Any) -> State:
        return State(*(np.asarray(x) for x in model.unstack_state(np.asarray(state))))


def run(config: RunConfig, clock: Callable[[], float] = time.perf_counter) -> RunResult:
    """Integrate ``config`` with the JAX implementation (see `contracts.gcm.runner.integrate`). Call
    `configure_jax` first (platform, x64 for float64), before any JAX computation."""
    return integrate(config, JaxBackend, clock)


__all__ = ["JaxBackend", "configure_jax", "run"]
