"""Model runner of the small GCM (seed milestones M3/M4): integrate N steps with the NumPy reference or the
JAX implementation, time them and measure their memory; importable, so tests can run it in-process.

``python -m implementations.gcm run ...`` (see `implementations.gcm.__main__`) is a thin wrapper around
`configure_jax` and `run`.

Timing: the first step is timed on its own (for JAX it includes tracing and compilation); the remaining
steps run in windows of ``check_every`` steps and each window's wall time divided by its length is one
per-step sample (mean / median / std / min over the samples). The default ``check_every=1`` gives
single-step samples; on the 2-core CPU this was developed on it was also the fastest (121x240 float64: 5.9
ms per step against 9.2 ms when dispatching 10 steps ahead, where the queued work competes with XLA's
worker threads). On an accelerator a larger window removes the per-step sync.

Non-finite values: each JAX step also returns one fused flag "the new state is finite"; the loop reads the
flags of a window in one transfer at the window's end (no other host sync inside the loop). On a bad flag
the window is replayed from its first state (kept, the step is deterministic) to the first bad step, whose
state is searched on the host for the first non-finite value. The NumPy backend checks each step on the
host. `run` then stops and reports the step, the field, the (row, column) index and its lat/lon.

Memory: the peak resident set above a baseline taken after setup and the first step. On Linux the kernel's
high-water mark is reset (``echo 5 > /proc/self/clear_refs``) at the baseline and read (``VmHWM``) at the
end; elsewhere ``resource.getrusage`` gives a process-lifetime peak and the report says it was not reset.
Both backends are measured the same way, and what the figure means depends on the allocator:

- default (glibc's dynamic mmap threshold): memory that step 1 touched and freed stays in the heap and is
  part of the baseline, so the figure is the allocator's *growth* after warm-up, not the working set.
  NumPy's ~40 field-sized temporaries per step are mostly hidden this way; XLA's single temp block (JAX)
  lands in whichever per-thread malloc arena runs the step and fragments, so its figure wanders between
  runs (measured at 481x960 float64: 32 to 106 MiB for the same program, NumPy a steady 24.7 MiB).
- ``--exact-rss`` (`exact_rss_malloc`): every allocation of 1 MiB or more is its own mapping, returned on
  free, so RSS follows live memory and the figure is the step's real working set (481x960 float64,
  measured: NumPy 141 MiB, JAX 10 MiB). Use it to compare memory; its NumPy step times include the page
  faults of every temporary and are not comparable with the default run's.

The JAX backend keeps the state stacked on the device and donates it to each step (`model.step_stacked_jit`),
so a step allocates no new state; NumPy allocates a new state (six fields) per step.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import dataclasses
import math
import resource
import sys
import time
from collections.abc import Callable
from typing import Any

import numpy as np

from reference.gcm.grid import Forcing, Grid, State, StepParams
from reference.gcm.setup import default_forcing, initial_state
from reference.gcm.validate import check_finite, check_model_fields, check_step_params, model_field_dict

BACKENDS = ("numpy", "jax")
PLATFORMS = {"cpu": "cpu", "gpu": "cuda", "tpu": "tpu"}
DTYPES = ("float64", "float32")


# --------------------------------------------------------------------------------------------------------
# configuration


@dataclasses.dataclass(frozen=True)
class RunConfig:
    """One integration. ``state`` overrides `initial_state` (e.g. to start from a given or broken state);
    ``params`` overrides ``StepParams(dt=dt)`` (its ``dt`` wins over ``dt``)."""

    backend: str = "numpy"
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
        if self.backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}; got {self.backend!r}")
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
        for name, (lo, hi) in self.field_ranges.items():
            lines.append(f"  {name:7s} [{lo:.6g}, {hi:.6g}]")
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------------------
# JAX set-up (must run before JAX initialises a backend)


def configure_jax(platform: str | None = None, enable_x64: bool | None = None) -> None:
    """Select the JAX platform and the x64 mode. Platform selection only works before the first JAX
    computation (the original set ``JAX_PLATFORM_NAME`` after importing jax, too late); raises otherwise."""
    import jax
    from jax._src import xla_bridge

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


# --------------------------------------------------------------------------------------------------------
# memory


def _status_kib(key: str) -> int | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def current_rss_bytes() -> int:
    kib = _status_kib("VmRSS")
    if kib is not None:
        return kib * 1024
    return _getrusage_peak_bytes()  # no /proc: the best available figure


def _getrusage_peak_bytes() -> int:
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return int(peak) if sys.platform == "darwin" else int(peak) * 1024


def reset_peak_rss() -> bool:
    """Reset the kernel's resident-set high-water mark (Linux); False where that is not possible."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def tune_malloc() -> bool:
    """glibc only: one malloc arena, no mmap for large blocks, no trimming. Freed memory then stays in the
    process and is reused, so large per-step temporaries (XLA's CPU temp buffer above 32 MiB, NumPy's big
    arrays) stop costing page faults every step. Call it before JAX starts its threads. Peak-memory figures
    change meaning: memory touched once stays resident. Returns False where it is not available."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(name)
        m_trim_threshold, m_mmap_max, m_arena_max = -1, -4, -8
        return bool(
            libc.mallopt(m_arena_max, 1)
            and libc.mallopt(m_mmap_max, 0)
            and libc.mallopt(m_trim_threshold, 2**31 - 1)
        )
    except (OSError, AttributeError):
        return False


def exact_rss_malloc(threshold: int = 2**20) -> bool:
    """glibc only: serve every allocation of ``threshold`` bytes or more by its own ``mmap`` and unmap it on
    free (a fixed M_MMAP_THRESHOLD also turns off glibc's dynamic threshold). The resident set then follows
    live memory, so the peak above baseline is the step's real working set for every backend alike, instead
    of the allocator's growth after warm-up (see the module docstring). Call it before JAX starts its
    threads. Returns False where it is not available."""
    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    try:
        m_mmap_threshold = -3
        return bool(ctypes.CDLL(name).mallopt(m_mmap_threshold, int(threshold)))
    except (OSError, AttributeError):
        return False


def peak_rss_bytes() -> int:
    kib = _status_kib("VmHWM")
    return kib * 1024 if kib is not None else _getrusage_peak_bytes()


# --------------------------------------------------------------------------------------------------------
# backends


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


def _validate(state: State, forcing: Forcing, params: StepParams, grid: Grid) -> None:
    """The step's input checks, once per run (the loop then steps without re-validating)."""
    check_model_fields(state, forcing, grid)
    check_step_params(params)
    check_finite(model_field_dict(state, forcing))


class _NumpyBackend:
    name = "numpy"

    def __init__(self, grid: Grid, params: StepParams, dtype: np.dtype, state: State, forcing: Forcing):
        from reference.gcm import model

        _validate(state, forcing, params, grid)
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


class _JaxBackend:
    """The state lives on the device as one stacked ``(6, n_lat, n_lon)`` array (`model.STACK_ORDER`) that
    each step donates: the new state is written over the old one (`model.step_stacked_jit`)."""

    name = "jax"

    def __init__(self, grid: Grid, params: StepParams, dtype: np.dtype, state: State, forcing: Forcing):
        import jax

        from implementations.gcm import model
        from implementations.gcm._guard import check_x64

        _validate(state, forcing, params, grid)
        check_x64(dtype)
        self._jax = jax
        self._model = model
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
        return self._jax.numpy.copy(state)

    def flags(self, handles: list[Any]) -> np.ndarray:
        return np.asarray(self._jax.device_get(handles), dtype=bool)

    def block(self, state: Any) -> None:
        self._jax.block_until_ready(state)

    def to_numpy(self, state: Any) -> State:
        return State(*(np.asarray(x) for x in self._model.unstack_state(np.asarray(state))))


# --------------------------------------------------------------------------------------------------------
# the integration


def run(config: RunConfig, clock: Callable[[], float] = time.perf_counter) -> RunResult:
    """Integrate ``config.steps`` steps and return timings, memory and (if any) the first non-finite value.

    For the JAX backend call `configure_jax` first (platform, x64 for float64), before any JAX computation.
    """
    grid = config.grid
    params = config.step_params
    dtype = np.dtype(config.dtype)
    state0 = config.state if config.state is not None else initial_state(grid, config.seed, dtype)
    forcing = default_forcing(grid, dtype)
    bad0 = first_nonfinite(state0, grid, 0)
    backend_cls = _JaxBackend if config.backend == "jax" else _NumpyBackend
    if bad0 is not None:
        return _result(config, grid, backend_cls.name, "-", "-", 0, 0.0, [], 0.0, 0, 0, False, bad0, state0)

    backend = backend_cls(grid, params, dtype, state0, forcing)
    state = backend.state

    # step 1: compile + run for JAX, timed on its own; then the baseline for memory
    t0 = clock()
    state, ok = backend.advance(state)
    backend.block(state)
    first_step_s = clock() - t0
    steps_done = 1
    nonfinite = None
    if not bool(backend.flags([ok])[0]):
        nonfinite = first_nonfinite(backend.to_numpy(state), grid, 1)

    baseline = current_rss_bytes()
    hwm_reset = reset_peak_rss()

    samples: list[float] = []
    loop_start = clock()
    while nonfinite is None and steps_done < config.steps:
        window = min(config.check_every, config.steps - steps_done)
        window_start_step = steps_done
        # JAX donates each step's input; a window of several steps keeps a copy of its first state to
        # replay (a one-step window needs none: its only step is the bad one)
        window_start_state = backend.keep(state) if window > 1 else None
        handles = []
        t0 = clock()
        for _ in range(window):
            state, ok = backend.advance(state)
            handles.append(ok)
        flags = backend.flags(handles)  # the window's only host sync
        backend.block(state)
        elapsed = clock() - t0
        if not flags.all():
            first_bad = int(np.argmin(flags))
            if window_start_state is not None:
                replay = window_start_state
                for _ in range(first_bad + 1):  # deterministic replay up to the first bad step
                    replay, _ = backend.advance(replay)
                state = replay
            steps_done = window_start_step + first_bad + 1
            nonfinite = first_nonfinite(backend.to_numpy(state), grid, steps_done)
            break
        samples.append(elapsed / window)
        steps_done += window
    loop_s = clock() - loop_start

    peak = peak_rss_bytes()
    return _result(
        config,
        grid,
        backend.name,
        backend.platform,
        backend.device,
        steps_done,
        first_step_s,
        samples,
        loop_s,
        baseline,
        peak,
        hwm_reset,
        nonfinite,
        backend.to_numpy(state),
    )


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


def parse_grid(text: str) -> tuple[int, int]:
    """``"121x240"`` -> ``(121, 240)``."""
    try:
        n_lat, n_lon = (int(x) for x in text.lower().split("x"))
    except ValueError as exc:
        raise ValueError(f"grid must look like 121x240; got {text!r}") from exc
    Grid(n_lat, n_lon)  # validates
    return n_lat, n_lon


__all__ = [
    "BACKENDS",
    "DTYPES",
    "PLATFORMS",
    "NonFinite",
    "RunConfig",
    "RunResult",
    "configure_jax",
    "current_rss_bytes",
    "exact_rss_malloc",
    "first_nonfinite",
    "parse_grid",
    "peak_rss_bytes",
    "reset_peak_rss",
    "run",
    "tune_malloc",
]
