"""The GCM model runner, framework-free: integrate N steps with a step function the caller injects (the NumPy
reference's or the JAX implementation's), time them, measure their memory, and stop at the first non-finite
value. NumPy and the standard library only; `reference.gcm.runner` and `implementations.gcm.runner` supply
the backend, and `contracts.gcm.cli` is the command line both sides share.

Timing: the first step is timed on its own (for JAX it includes tracing and compilation); the remaining
steps run in windows of ``check_every`` steps and each window's wall time divided by its length is one
per-step sample (mean / median / std / min over the samples). The default ``check_every=1`` gives
single-step samples; on the 2-core CPU this was developed on it was also the fastest (121x240 float64: 5.9
ms per step against 9.2 ms when dispatching 10 steps ahead, where the queued work competes with XLA's
worker threads). On an accelerator a larger window removes the per-step sync.

Non-finite values: each step also returns a flag "the new state is finite" (a fused device flag for JAX,
a host check for NumPy); the loop reads the flags of a window in one transfer at the window's end (no other
host sync inside the loop). On a bad flag the window is replayed from its first state (kept, the step is
deterministic) to the first bad step, whose state is searched on the host for the first non-finite value.
`integrate` then stops and reports the step, the field, the (row, column) index and its lat/lon.

Memory: the peak resident set above a baseline taken after setup and the first step (`contracts.gcm.memory`
says what that figure means under each allocator setting).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from typing import Any, ClassVar, Protocol

import numpy as np

from contracts.gcm.grid import Forcing, Grid, State, StepParams
from contracts.gcm.memory import (
    MallocTotals,
    malloc_totals,
    peak_rss_bytes,
    reset_peak_rss,
    settled_rss_bytes,
)
from contracts.gcm.setup import default_forcing, initial_state
from contracts.gcm.validate import check_finite, check_model_fields, check_step_params, model_field_dict

BACKENDS = ("numpy", "jax")
# the package whose ``python -m <package> run`` runs each backend
ENTRY_POINTS = {"numpy": "reference.gcm", "jax": "implementations.gcm"}
PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
DTYPES = ("float64", "float32")


# --------------------------------------------------------------------------------------------------------
# configuration and result


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One integration. ``state`` overrides `initial_state` (e.g. to start from a given or broken state);
    ``params`` overrides ``StepParams(dt=dt)`` (its ``dt`` wins over ``dt``)."""

    n_lat: int = 121
    n_lon: int = 240
    steps: int = 10
    dt: float = 300.0
    dtype: str = "float64"
    seed: int = 0
    check_every: int = 1
    params: StepParams | None = None
    state: State | None = None

    def __post_init__(self) -> None:
        if self.dtype not in DTYPES:
            raise ValueError(f"dtype must be one of {DTYPES}; got {self.dtype!r}")
        if not isinstance(self.steps, int) or self.steps < 1:
            raise ValueError(f"steps must be an int >= 1; got {self.steps!r}")
        if not isinstance(self.check_every, int) or self.check_every < 1:
            raise ValueError(f"check_every must be an int >= 1; got {self.check_every!r}")

    @property
    def grid(self) -> Grid:
        return Grid(self.n_lat, self.n_lon)

    @property
    def step_params(self) -> StepParams:
        return self.params if self.params is not None else StepParams(dt=self.dt)


@dataclasses.dataclass
class NonFinite:
    """Where the integration first produced a non-finite value (step 0 is the initial state)."""

    step: int
    field: str
    row: int
    col: int
    lat_deg: float
    lon_deg: float
    value: float

    def describe(self) -> str:
        return (
            f"non-finite {self.field} = {self.value!r} after step {self.step} "
            f"at (row {self.row}, col {self.col}), "
            f"lat {self.lat_deg:.3f} deg, lon {self.lon_deg:.3f} deg"
        )


@dataclasses.dataclass
class RunResult:
    backend: str
    grid: str
    dtype: str
    dt: float
    steps_requested: int
    steps_done: int
    platform: str
    device: str
    check_every: int
    first_step_s: float
    per_step_mean_s: float | None
    per_step_median_s: float | None
    per_step_std_s: float | None
    per_step_min_s: float | None
    per_step_samples: int
    loop_s: float
    baseline_rss_bytes: int
    peak_rss_above_baseline_bytes: int
    peak_rss_bytes: int
    hwm_reset: bool
    nonfinite: NonFinite | None
    field_ranges: dict[str, tuple[float, float]]
    # glibc malloc's change from the baseline to the end of the loop (`contracts.gcm.memory.malloc_totals`;
    # None where not available): memory still in use, and freed memory malloc keeps in its heaps. A growth of
    # the resident set that shows up only in the second is the allocator's, not the program's.
    malloc_in_use_growth_bytes: int | None = None
    malloc_free_held_growth_bytes: int | None = None

    @property
    def ok(self) -> bool:
        return self.nonfinite is None

    def to_dict(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["ok"] = self.ok
        return out

    def summary(self) -> str:
        ms = 1e3
        lines = [
            f"backend {self.backend} on {self.device} | grid {self.grid} | {self.dtype} | dt {self.dt:g} s",
            f"steps: {self.steps_done} of {self.steps_requested}"
            + ("" if self.ok else f"  STOPPED: {self.nonfinite.describe()}"),
            f"first step (compile + run for jax): {self.first_step_s * ms:.2f} ms",
        ]
        if self.per_step_samples:
            lines.append(
                f"per step over {self.per_step_samples} sample(s) of {self.check_every} step(s): "
                f"mean {self.per_step_mean_s * ms:.3f} ms, median {self.per_step_median_s * ms:.3f} ms, "
                f"std {self.per_step_std_s * ms:.3f} ms, min {self.per_step_min_s * ms:.3f} ms"
            )
        lines.append(
            f"peak memory above baseline: {self.peak_rss_above_baseline_bytes / 2**20:.1f} MiB "
            f"(baseline {self.baseline_rss_bytes / 2**20:.1f} MiB, peak {self.peak_rss_bytes / 2**20:.1f} MiB"
            + (")" if self.hwm_reset else "; high-water mark not resettable, process-lifetime peak)")
        )
        if self.malloc_in_use_growth_bytes is not None and self.malloc_free_held_growth_bytes is not None:
            lines.append(
                f"malloc from the baseline to the end of the loop: in use "
                f"{self.malloc_in_use_growth_bytes / 2**20:+.1f} MiB, freed but held "
                f"{self.malloc_free_held_growth_bytes / 2**20:+.1f} MiB"
            )
        for name, (lo, hi) in self.field_ranges.items():
            lines.append(f"  {name:7s} [{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)


def parse_grid(text: str) -> tuple[int, int]:
    """``"121x240"`` -> ``(121, 240)``."""
    try:
        n_lat, n_lon = (int(x) for x in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"grid must look like 121x240; got {text!r}") from exc
    Grid(n_lat, n_lon)  # validates
    return n_lat, n_lon


# --------------------------------------------------------------------------------------------------------
# the backend a side injects


class Backend(Protocol):
    """What the loop needs of a backend. Constructed as ``Backend(grid, params, dtype, state, forcing)`` on
    inputs the loop has already checked (`check_run_inputs`); ``state`` is then the backend's own copy of
    the initial state, in whatever form its steps take."""

    name: ClassVar[str]  # one of BACKENDS
    platform: str
    device: str
    state: Any

    def advance(self, state: Any) -> tuple[Any, Any]:
        """One step: the new state and a handle of its "all finite" flag (may consume ``state``)."""
        ...

    def keep(self, state: Any) -> Any:
        """A copy of ``state`` that survives `advance` consuming ``state`` (the start of a check window)."""
        ...

    def flags(self, handles: list[Any]) -> np.ndarray:
        """The flags of ``handles`` as one bool array on the host (the window's only host sync)."""
        ...

    def block(self, state: Any) -> None:
        """Wait until ``state`` is computed."""
        ...

    def to_numpy(self, state: Any) -> State:
        """``state`` as a `State` of host arrays."""
        ...


def first_nonfinite(state: State, grid: Grid, step: int) -> NonFinite | None:
    """The first non-finite value of ``state`` in field order, then row-major order."""
    for name, x in state._asdict().items():
        arr = np.asarray(x)
        bad = ~np.isfinite(arr)
        if bad.any():
            row, col = (int(i) for i in np.argwhere(bad)[0])
            return NonFinite(
                step=step,
                field=name,
                row=row,
                col=col,
                lat_deg=float(grid.lat[row]),
                lon_deg=float(grid.lon[col]),
                value=float(arr[row, col]),
            )
    return None


def check_run_inputs(state: State, forcing: Forcing, params: StepParams, grid: Grid) -> None:
    """The step's input checks, once per run (the loop then steps without re-validating)."""
    check_model_fields(state, forcing, grid)
    check_step_params(params)
    check_finite(model_field_dict(state, forcing))


# --------------------------------------------------------------------------------------------------------
# the integration


def integrate(
    config: RunConfig, backend: type[Backend], clock: Callable[[], float] = time.perf_counter
) -> RunResult:
    """Integrate ``config.steps`` steps with ``backend`` and return timings, memory and (if any) the first
    non-finite value. ``backend`` is a `Backend` class (its ``name`` is reported)."""
    grid = config.grid
    params = config.step_params
    dtype = np.dtype(config.dtype)
    state0 = config.state if config.state is not None else initial_state(grid, config.seed, dtype)
    forcing = default_forcing(grid, dtype)
    bad0 = first_nonfinite(state0, grid, 0)
    if bad0 is not None:
        return _result(config, grid, backend.name, "-", "-", 0, 0.0, [], 0.0, 0, 0, False, bad0, state0)

    check_run_inputs(state0, forcing, params, grid)
    stepper = backend(grid, params, dtype, state0, forcing)
    state = stepper.state

    # step 1: compile + run for JAX, timed on its own; then the baseline for memory
    t0 = clock()
    state, ok = stepper.advance(state)
    stepper.block(state)
    first_step_s = clock() - t0
    steps_done = 1
    nonfinite = None
    if not bool(stepper.flags([ok])[0]):
        nonfinite = first_nonfinite(stepper.to_numpy(state), grid, 1)

    baseline = settled_rss_bytes()  # after the first step's temporaries are freed (JAX frees them late)
    hwm_reset = reset_peak_rss()
    malloc_baseline = malloc_totals()

    samples: list[float] = []
    loop_start = clock()
    while nonfinite is None and steps_done < config.steps:
        window = min(config.check_every, config.steps - steps_done)
        window_start_step = steps_done
        # a backend may consume each step's input; a window of several steps keeps a copy of its first state
        # to replay (a one-step window needs none: its only step is the bad one)
        window_start_state = stepper.keep(state) if window > 1 else None
        handles = []
        t0 = clock()
        for _ in range(window):
            state, ok = stepper.advance(state)
            handles.append(ok)
        flags = stepper.flags(handles)  # the window's only host sync
        stepper.block(state)
        elapsed = clock() - t0
        if not flags.all():
            first_bad = int(np.argmin(flags))
            if window_start_state is not None:
                replay = window_start_state
                for _ in range(first_bad + 1):  # deterministic replay up to the first bad step
                    replay, _ = stepper.advance(replay)
                state = replay
            steps_done = window_start_step + first_bad + 1
            nonfinite = first_nonfinite(stepper.to_numpy(state), grid, steps_done)
            break
        samples.append(elapsed / window)
        steps_done += window
    loop_s = clock() - loop_start

    peak = peak_rss_bytes()
    settled_rss_bytes()  # as for the baseline: let the last step's temporaries be freed before malloc is read
    malloc_growth = _malloc_growth(malloc_baseline, malloc_totals())
    result = _result(
        config,
        grid,
        stepper.name,
        stepper.platform,
        stepper.device,
        steps_done,
        first_step_s,
        samples,
        loop_s,
        baseline,
        peak,
        hwm_reset,
        nonfinite,
        stepper.to_numpy(state),
    )
    result.malloc_in_use_growth_bytes, result.malloc_free_held_growth_bytes = malloc_growth
    return result


def _malloc_growth(before: MallocTotals | None, after: MallocTotals | None) -> tuple[int | None, int | None]:
    """(in use, freed but held) of ``after`` minus ``before``; (None, None) where malloc was not readable."""
    if before is None or after is None:
        return None, None
    return after.in_use_bytes - before.in_use_bytes, after.free_held_bytes - before.free_held_bytes


def _result(
    config: RunConfig,
    grid: Grid,
    backend: str,
    platform: str,
    device: str,
    steps_done: int,
    first_step_s: float,
    samples: list[float],
    loop_s: float,
    baseline: int,
    peak: int,
    hwm_reset: bool,
    nonfinite: NonFinite | None,
    state: State,
) -> RunResult:
    arr = np.asarray(samples, dtype=np.float64)

    def stat(fn) -> float | None:
        return float(fn(arr)) if arr.size else None

    ranges = {}
    for name, x in state._asdict().items():
        a = np.asarray(x, dtype=np.float64)
        finite = a[np.isfinite(a)]
        ranges[name] = (float(finite.min()), float(finite.max())) if finite.size else (math.nan, math.nan)
    return RunResult(
        backend=backend,
        grid=f"{grid.n_lat}x{grid.n_lon}",
        dtype=config.dtype,
        dt=config.step_params.dt,
        steps_requested=config.steps,
        steps_done=steps_done,
        platform=platform,
        device=device,
        check_every=config.check_every,
        first_step_s=first_step_s,
        per_step_mean_s=stat(np.mean),
        per_step_median_s=stat(np.median),
        per_step_std_s=stat(np.std),
        per_step_min_s=stat(np.min),
        per_step_samples=int(arr.size),
        loop_s=loop_s,
        baseline_rss_bytes=baseline,
        peak_rss_above_baseline_bytes=max(0, peak - baseline),
        peak_rss_bytes=peak,
        hwm_reset=hwm_reset,
        nonfinite=nonfinite,
        field_ranges=ranges,
    )


__all__ = [
    "BACKENDS",
    "DTYPES",
    "ENTRY_POINTS",
    "PLATFORMS",
    "Backend",
    "NonFinite",
    "RunConfig",
    "RunResult",
    "check_run_inputs",
    "first_nonfinite",
    "integrate",
    "parse_grid",
]
