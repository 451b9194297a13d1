"""Benchmarks of the GCM subsystem: the JAX port (`implementations.gcm`) against the NumPy/SciPy reference
(`reference.gcm`) on the CPU.

Two ways to run it:

- ``python -m benchmarks.gcm [--json PATH] [--quick]``: measures every quantity of the performance targets
  in ONE process, NumPy and JAX interleaved, and prints one table (quantity, NumPy/SciPy time, JAX time,
  ratio, target, pass/fail), then exits 0 (the table is a report, not a test; ``--strict`` exits 1 when a
  target is missed). About 1-3 minutes on 2 cores. The 121x240 speed rows then get JAX's time once more
  from a child process pinned to one core (`one_core_rows`), where XLA's thread pool has one thread (JAX's
  best stated thread setting on the small grid), against NumPy's best time.
- asv: the ``Time*`` / ``Track*`` classes below follow asv's conventions (``params``, ``setup``,
  ``time_*``, ``peakmem_*``, ``track_*``); each ``setup`` builds the inputs once and runs one warm-up call
  (JAX compilation) before anything is timed.

What is timed (both sides on the same inputs, the model's own initial state and forcing at dt = 300 s):

- ``step``: one model step as the runner calls it: ``reference.gcm.model._step`` (no validation) against
  ``implementations.gcm.model.step_stacked_jit`` (the stacked device state, donated and advanced by each
  call, plus the fused finiteness flag), followed by ``block_until_ready``.
- ``hyperdiffusion``: the kernel core (one substep, the model's tracer k4 map) as the step uses it.
- ``advection``: departure points plus order-1 ``map_coordinates`` ('grid-wrap'): SciPy against the JAX
  4-tap gather kernel.
- ``map_coordinates order 3``: the public ``map_coordinates`` of SciPy and of `implementations.gcm.ndimage`
  (prefilter on) sampling a 121x240 field at 121*240 scattered points, modes 'grid-wrap' and 'mirror'.
- ``peak memory``: the runner (``python -m reference.gcm run`` for NumPy, ``python -m implementations.gcm
  run`` for JAX, ``--grid 481x960 --steps 20``) in a fresh subprocess per backend, comparing
  ``peak_rss_above_baseline_bytes``, twice, each judged against the target: with ``--exact-rss`` (RSS follows
  live memory: the step's real working set) and with the default allocator (growth after warm-up, which
  hides NumPy's temporaries in the baseline and, for JAX, depends on the malloc arenas that XLA's per-step
  temporary block lands in: the median of `MEMORY_RUNS_DEFAULT_MALLOC` runs, each run shown with the freed
  memory malloc still held at its end, which the runner reads from glibc). See `contracts.gcm.runner` and
  `contracts.gcm.memory`.

Timing method: each callable is calibrated to ~``SAMPLE_S`` per sample (``number`` calls per sample);
samples of all the callables of one quantity are interleaved round by round (the order alternating between
rounds) so that background load hits both sides alike, and each sample starts with `LEAD_IN` untimed calls
(the first multi-threaded JAX step after a NumPy sample is slow); the table reports the median per-call time
(and the minimum in the JSON). The machine this was written on is shared, so single figures move by 10-30 %: judge
ratios, and re-run a marginal one.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import scipy.ndimage

from benchmarks import timer as timing
from contracts.gcm.grid import Grid, StepParams, default_k4
from contracts.gcm.runner import ENTRY_POINTS, parse_grid
from contracts.gcm.setup import default_forcing, initial_state
from implementations.gcm import dynamics as jdyn
from implementations.gcm import model as jmodel
from implementations.gcm import ndimage as jndimage
from implementations.gcm.runner import configure_jax
from reference.gcm import dynamics as rdyn
from reference.gcm import model as rmodel


def _x64() -> None:
    """x64 on (float64 is the benchmarked dtype), before JAX's first computation in the process. Called by
    every asv ``setup`` rather than at import: asv's forkserver imports all benchmark modules into one
    process, so a module-level switch would turn x64 on for the other subsystems' float32 benchmarks too.
    The platform is left to ``JAX_PLATFORMS`` (asv.conf.json's env; a GPU machine sets its own). JAX's
    default asynchronous dispatch is kept for the in-process timings (the runner's command line, timed in
    its own process by the memory and runner rows, turns it off: `configure_jax`)."""
    configure_jax(None, True, cpu_async_dispatch=True)


GRIDS = ("121x240", "481x960")
BACKENDS = ("numpy", "jax")
DT = 300.0
SAMPLE_S = 0.02  # target duration of one timing sample
LEAD_IN = 1
"""Untimed calls that start every timing sample. The runner steps back to back, but in the interleaved
measurement each JAX sample follows a NumPy one, during which the second core idles, and the first
multi-threaded step after such a pause is slow (measured on a 2-core AMD EPYC VM at 481x960: 56-62 ms with
18-64 involuntary context switches after a NumPy step or a 0.2 s sleep, against 36-37 ms with 0-2 back to
back). NumPy gets the same lead-in."""
MEMORY_GRID = "481x960"
MEMORY_STEPS = 20

# quantity -> minimum JAX/NumPy speedup (time ratio numpy / jax), or maximum memory ratio jax / numpy
TARGETS = {
    "step": 3.0,
    "hyperdiffusion": 2.0,
    "advection": 4.0,
    "map_coordinates3": 2.0,
    "peak_memory": 1.5,
}


# --------------------------------------------------------------------------------------------------------
# inputs and callables


def _grid(name: str) -> Grid:
    return Grid(*parse_grid(name))


def _block(x: Any) -> Any:
    return jax.block_until_ready(x)


class _Problem:
    """The model's initial state and forcing on one grid, on the host and on the JAX device."""

    def __init__(self, grid_name: str, dtype: str = "float64") -> None:
        self.grid = _grid(grid_name)
        self.dtype = np.dtype(dtype)
        self.params = StepParams(dt=DT)
        self.state = initial_state(self.grid, 0, self.dtype)
        self.forcing = default_forcing(self.grid, self.dtype)
        self.state_d = jax.device_put(self.state)
        self.forcing_d = jax.device_put(self.forcing)
        dlat, dlon, coslat, a = self.grid.metrics()
        self.metrics = (dlat, dlon, coslat.astype(self.dtype)[:, None], a)
        self.c_d = jnp.asarray(self.metrics[2])


def step_fn(backend: str, p: _Problem) -> Callable[[], Any]:
    if backend == "numpy":
        return lambda: rmodel._step(p.state, p.forcing, p.params, p.grid)
    rows, s, static = jmodel.step_inputs(p.params, p.grid, p.dtype)
    s_d = jax.device_put(s)
    # as the runner steps: the stacked state is donated, each call advances it (it stays finite and bounded
    # for far more steps than a benchmark makes)
    box = [jmodel.stack_state(p.state_d)]

    def jax_step() -> Any:
        box[0], _ok = jmodel.step_stacked_jit(box[0], p.forcing_d, rows, s_d, **static)
        return _block(box[0])

    return jax_step


def hyperdiffusion_fn(backend: str, p: _Problem, n_substeps: int = 1) -> Callable[[], Any]:
    dlat, dlon, c, a = p.metrics
    k4 = default_k4(p.grid, DT, p.params.sigma4, jmodel.K4_FACTOR_TRACER).astype(p.dtype)
    F = p.state.t_atm
    if backend == "numpy":
        return lambda: rdyn._hyperdiffuse(F, k4, DT / n_substeps, n_substeps, dlat, dlon, c, a)
    s = jax.device_put(np.array([DT / n_substeps, dlat, dlon, a], dtype=p.dtype))
    F_d, k4_d = jax.device_put(F), jax.device_put(k4)
    return lambda: _block(jdyn._hyperdiffuse_jit(F_d, k4_d, p.c_d, s, n_substeps=n_substeps, flags=False))


def advection_fn(backend: str, p: _Problem) -> Callable[[], Any]:
    dlat, dlon, c, a = p.metrics
    u, v, F = p.state.u, p.state.v, p.state.t_atm
    if backend == "numpy":

        def numpy_advect() -> np.ndarray:
            jd, id_ = rdyn._departure_points(u, v, DT, a, dlat, dlon, c)
            return rdyn._interpolate(F, jd, id_)

        return numpy_advect
    s = jax.device_put(np.array([DT, a, a * dlat, dlon], dtype=p.dtype))
    F_d, u_d, v_d = p.state_d.t_atm, p.state_d.u, p.state_d.v
    return lambda: _block(jdyn._advect_jit(F_d, u_d, v_d, p.c_d, s, flags=False))


def map_coordinates_inputs(grid_name: str = "121x240", seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """A smooth field plus noise, sampled at every grid point displaced by up to 3 cells (some outside the
    array, so the mode's folding is exercised)."""
    n_lat, n_lon = parse_grid(grid_name)
    rng = np.random.default_rng(seed)
    j, i = np.meshgrid(np.arange(n_lat, dtype=float), np.arange(n_lon, dtype=float), indexing="ij")
    field = np.sin(2 * np.pi * i / n_lon * 3) * np.cos(np.pi * j / n_lat * 2) + 0.1 * rng.standard_normal(
        (n_lat, n_lon)
    )
    coords = np.stack([j + rng.uniform(-3, 3, j.shape), i + rng.uniform(-3, 3, i.shape)])
    return field, coords


def map_coordinates_fn(backend: str, mode: str, grid_name: str = "121x240") -> Callable[[], Any]:
    field, coords = map_coordinates_inputs(grid_name)
    if backend == "numpy":
        return lambda: scipy.ndimage.map_coordinates(field, coords, order=3, mode=mode)
    field_d, coords_d = jax.device_put(field), jax.device_put(coords)
    return lambda: _block(jndimage.map_coordinates(field_d, coords_d, order=3, mode=mode))


# --------------------------------------------------------------------------------------------------------
# timing


def measure_interleaved(
    fns: dict[str, Callable[[], Any]], repeat: int = 7, sample_s: float = SAMPLE_S
) -> dict[str, dict[str, float]]:
    """Per-call time of each callable (the suite's timer: calibrated samples, interleaved round by round,
    each sample after `LEAD_IN` untimed calls)."""
    t = timing.measure(fns, rounds=repeat, sample_s=sample_s, lead_in=LEAD_IN)
    return {name: v.to_dict() for name, v in t.items()}


def _speed_row(quantity: str, label: str, fns: dict[str, Callable[[], Any]], repeat: int) -> dict[str, Any]:
    t = measure_interleaved(fns, repeat)
    ratio = t["numpy"]["median_s"] / t["jax"]["median_s"]
    target = TARGETS.get(quantity)
    return {
        "quantity": label,
        "kind": "speedup",
        "numpy_s": t["numpy"]["median_s"],
        "jax_s": t["jax"]["median_s"],
        "numpy_min_s": t["numpy"]["min_s"],
        "jax_min_s": t["jax"]["min_s"],
        "ratio": ratio,
        "ratio_of_minima": t["numpy"]["min_s"] / t["jax"]["min_s"],
        "target": target,
        "pass": None if target is None else ratio >= target,
    }


# --------------------------------------------------------------------------------------------------------
# memory: the runner in a fresh process per backend


def runner_memory(
    backend: str, grid: str = MEMORY_GRID, steps: int = MEMORY_STEPS, exact_rss: bool = True
) -> dict[str, Any]:
    """Run the backend's runner (``python -m reference.gcm run`` for numpy, ``python -m implementations.gcm
    run`` for jax) in a fresh subprocess and return its JSON result."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "run.json")
        cmd = [sys.executable, "-m", ENTRY_POINTS[backend], "run", "--backend", backend, "--grid", grid]
        cmd += ["--steps", str(steps), "--dtype", "float64", "--json", path]
        if exact_rss:
            cmd.append("--exact-rss")
        # cwd is not the repo root: the child imports the project from the environment (under asv, the
        # commit being benchmarked), never from the working tree
        subprocess.run(cmd, check=True, cwd=tmp, stdout=subprocess.DEVNULL)
        with open(path) as f:
            return json.load(f)


def memory_ratio(res: dict[str, dict[str, Any]]) -> float:
    """JAX / NumPy peak RSS above baseline of two runner results (`runner_memory`, keyed by backend)."""
    return res["jax"]["peak_rss_above_baseline_bytes"] / max(res["numpy"]["peak_rss_above_baseline_bytes"], 1)


MEMORY_RUNS_DEFAULT_MALLOC = 3
"""Runner runs per backend for the default-malloc row: its JAX figure is a whole number (1 to 7, measured) of
XLA's per-step temporary block (481x960 float64: 17.6 MiB), depending on which malloc arenas the steps'
allocations land in, so one run says little; the row reports the median and the range."""


def _memory_row(steps: int, exact_rss: bool) -> dict[str, Any]:
    runs = 1 if exact_rss else MEMORY_RUNS_DEFAULT_MALLOC
    res = {b: [runner_memory(b, steps=steps, exact_rss=exact_rss) for _ in range(runs)] for b in BACKENDS}
    for b in BACKENDS:
        res[b].sort(key=lambda r: r["peak_rss_above_baseline_bytes"])
    each = {b: [r["peak_rss_above_baseline_bytes"] for r in res[b]] for b in BACKENDS}
    # per run, in the same order: the freed memory malloc kept from the baseline to the end of the loop (None
    # where malloc's totals are not readable); a growth made of it is the allocator's, not the program's
    held = {b: [r.get("malloc_free_held_growth_bytes") for r in res[b]] for b in BACKENDS}
    mem = {b: int(np.median(each[b])) for b in BACKENDS}
    ratio = mem["jax"] / max(mem["numpy"], 1)
    mode = (
        "--exact-rss, live memory" if exact_rss else f"default malloc, growth after warm-up, median of {runs}"
    )
    target = TARGETS["peak_memory"]
    return {
        "quantity": f"peak RSS above baseline, runner {MEMORY_GRID} x{steps}, {mode}",
        "kind": "memory",
        "exact_rss": exact_rss,
        "numpy_bytes": mem["numpy"],
        "jax_bytes": mem["jax"],
        "numpy_bytes_each": each["numpy"],
        "jax_bytes_each": each["jax"],
        "numpy_malloc_free_held_growth_each": held["numpy"],
        "jax_malloc_free_held_growth_each": held["jax"],
        "numpy_per_step_s": float(np.median([r["per_step_median_s"] for r in res["numpy"]])),
        "jax_per_step_s": float(np.median([r["per_step_median_s"] for r in res["jax"]])),
        "ratio": ratio,
        "target": target,
        "pass": ratio <= target,
    }


# --------------------------------------------------------------------------------------------------------
# parity of the benchmark's own inputs


def step_parity(grid_name: str, dtype: str = "float64") -> tuple[str, str]:
    """(tier reached, tier required) of the JAX step on the benchmark's inputs (float32 runs against the
    float64 reference on the same values, as the conformance suite does)."""
    from conformance import compare

    p = _Problem(grid_name, dtype)
    ref_p = p if dtype == "float64" else _Problem(grid_name, "float64")
    state64 = type(p.state)(*(np.asarray(x, np.float64) for x in p.state))
    forcing64 = type(p.forcing)(*(np.asarray(x, np.float64) for x in p.forcing))
    expected = rmodel._step(state64, forcing64, ref_p.params, ref_p.grid)
    actual = jax.device_get(step_fn_result(p))
    result = compare(expected._asdict(), actual._asdict(), case="gcm.step", backend="jax-jit", dtype=dtype)
    return result.tier, result.required


def step_fn_result(p: _Problem) -> Any:
    rows, s, static = jmodel.step_inputs(p.params, p.grid, p.dtype)
    return jmodel.step_jit(p.state_d, p.forcing_d, rows, s, in_flags=False, out_flag=False, **static)


# --------------------------------------------------------------------------------------------------------
# asv classes


class TimeStep:
    params = (list(BACKENDS), list(GRIDS), ["float64", "float32"])
    param_names = ("backend", "grid", "dtype")

    def setup(self, backend: str, grid: str, dtype: str) -> None:
        _x64()
        self.fn = step_fn(backend, _Problem(grid, dtype))
        self.fn()  # warm-up: compilation

    def time_step(self, backend: str, grid: str, dtype: str) -> None:
        self.fn()

    def peakmem_step(self, backend: str, grid: str, dtype: str) -> None:
        self.fn()


class TimeHyperdiffusion:
    params = (list(BACKENDS), list(GRIDS))
    param_names = ("backend", "grid")

    def setup(self, backend: str, grid: str) -> None:
        _x64()
        self.fn = hyperdiffusion_fn(backend, _Problem(grid))
        self.fn()

    def time_hyperdiffuse(self, backend: str, grid: str) -> None:
        self.fn()


class TimeAdvection:
    params = (list(BACKENDS), list(GRIDS))
    param_names = ("backend", "grid")

    def setup(self, backend: str, grid: str) -> None:
        _x64()
        self.fn = advection_fn(backend, _Problem(grid))
        self.fn()

    def time_advect(self, backend: str, grid: str) -> None:
        self.fn()


class TimeMapCoordinates:
    params = (list(BACKENDS), ["grid-wrap", "mirror"])
    param_names = ("backend", "mode")

    def setup(self, backend: str, mode: str) -> None:
        _x64()
        self.fn = map_coordinates_fn(backend, mode)
        self.fn()

    def time_map_coordinates_order3(self, backend: str, mode: str) -> None:
        self.fn()


class TrackSpeedup:
    """NumPy time / JAX time of the step, measured interleaved in one process (asv ``track``)."""

    params = (list(GRIDS),)
    param_names = ("grid",)
    unit = "x"
    timeout = 300

    def setup(self, grid: str) -> None:
        _x64()
        p = _Problem(grid)
        self.fns = {b: step_fn(b, p) for b in BACKENDS}

    def track_speedup(self, grid: str) -> float:
        t = measure_interleaved(self.fns, repeat=5)
        return t["numpy"]["median_s"] / t["jax"]["median_s"]


class TrackKernelSpeedup:
    """NumPy/SciPy time / JAX time of each kernel target, measured interleaved in one process (targets:
    hyperdiffusion >= 2x, order-1 advection >= 4x, cubic map_coordinates >= 2x)."""

    params = (
        ["hyperdiffusion", "advection", "map_coordinates3-grid-wrap", "map_coordinates3-mirror"],
        list(GRIDS),
    )
    param_names = ("kernel", "grid")
    unit = "x"
    timeout = 300

    def setup(self, kernel: str, grid: str) -> None:
        _x64()
        if kernel.startswith("map_coordinates3"):
            if grid != GRIDS[0]:  # the scattered-points benchmark is defined on 121x240 only
                raise NotImplementedError
            mode = kernel.split("-", 1)[1]
            self.fns = {b: map_coordinates_fn(b, mode) for b in BACKENDS}
            return
        p = _Problem(grid)
        make = hyperdiffusion_fn if kernel == "hyperdiffusion" else advection_fn
        self.fns = {b: make(b, p) for b in BACKENDS}

    def track_kernel_speedup(self, kernel: str, grid: str) -> float:
        t = measure_interleaved(self.fns, repeat=5)
        return t["numpy"]["median_s"] / t["jax"]["median_s"]


class TrackParity:
    """Tier of the JAX step on the benchmark's inputs, as an index into `conformance.tiers.TIERS`
    (0 = exact, 1 = perfect, ...): a speed-up that breaks parity shows here."""

    params = (list(GRIDS), ["float64", "float32"])
    param_names = ("grid", "dtype")
    unit = "tier index (0 = exact)"
    timeout = 300

    def track_parity_tier(self, grid: str, dtype: str) -> int:
        from conformance.tiers import TIERS

        _x64()

        tier, _ = step_parity(grid, dtype)
        return TIERS.index(tier)


KERNEL_CASES = {  # kernel benchmark -> the tier-table case that judges its output
    "hyperdiffusion": "gcm.hyperdiffuse",
    "advection": "gcm.advect_semilag",
    "map_coordinates3-grid-wrap": "gcm.map_coordinates.order3",
    "map_coordinates3-mirror": "gcm.map_coordinates.order3",
}


def kernel_parity(kernel: str, grid: str) -> tuple[str, str | None]:
    """(tier reached, tier required) of the timed JAX kernel's output against the timed NumPy/SciPy one on
    the same inputs (float64; the benchmark's own callables, so a faster-but-wrong kernel shows here)."""
    from conformance import compare

    if kernel.startswith("map_coordinates3"):
        fns = {b: map_coordinates_fn(b, kernel.split("-", 1)[1], grid) for b in BACKENDS}
    else:
        p = _Problem(grid)
        make = hyperdiffusion_fn if kernel == "hyperdiffusion" else advection_fn
        fns = {b: make(b, p) for b in BACKENDS}
    expected, actual = (np.asarray(jax.device_get(fns[b]())) for b in BACKENDS)
    res = compare(expected, actual, case=KERNEL_CASES[kernel], backend="jax-jit", dtype="float64")
    return res.tier, res.required


class TrackKernelParity:
    """Tier index (conformance.tiers.TIERS, 0 = exact) of each timed kernel against its NumPy/SciPy twin,
    all measured once per asv run (``setup_cache``)."""

    params = (list(KERNEL_CASES), list(GRIDS))
    param_names = ("kernel", "grid")
    unit = "tier index (0 = exact)"
    timeout = 300

    def setup_cache(self) -> dict[str, int]:
        from conformance.tiers import TIERS

        _x64()
        return {
            f"{k}|{g}": TIERS.index(kernel_parity(k, g)[0])
            for k in KERNEL_CASES
            for g in GRIDS
            if not (k.startswith("map_coordinates3") and g != GRIDS[0])
        }

    def setup(self, tiers: dict[str, int], kernel: str, grid: str) -> None:
        if f"{kernel}|{grid}" not in tiers:  # the scattered-points benchmark is defined on 121x240 only
            raise NotImplementedError

    def track_kernel_parity_tier(self, tiers: dict[str, int], kernel: str, grid: str) -> int:
        return tiers[f"{kernel}|{grid}"]


class _Runner:
    """The runner (``python -m reference.gcm run`` / ``python -m implementations.gcm run``, ``--grid 481x960
    --steps 20 --exact-rss``) in a fresh interpreter per backend, once per asv run (``setup_cache``)."""

    timeout = 600

    def setup_cache(self) -> dict[str, dict[str, Any]]:
        return {b: runner_memory(b, steps=MEMORY_STEPS, exact_rss=True) for b in BACKENDS}


class TrackPeakMemory(_Runner):
    """Runner peak RSS above baseline (fresh subprocess), JAX / NumPy (target <= 1.5)."""

    unit = "ratio"

    def track_peak_memory_ratio(self, res: dict[str, dict[str, Any]]) -> float:
        return memory_ratio(res)


class TrackPeakMemoryDefaultMalloc:
    """The same runner under the default malloc (no ``--exact-rss``): growth after warm-up, JAX / NumPy, the
    median of `MEMORY_RUNS_DEFAULT_MALLOC` fresh runs per backend (target <= 1.5)."""

    timeout = 600
    unit = "ratio"

    def setup_cache(self) -> dict[str, Any]:
        return _memory_row(MEMORY_STEPS, exact_rss=False)

    def track_peak_memory_ratio_default_malloc(self, row: dict[str, Any]) -> float:
        return row["ratio"]


class TrackColdStart(_Runner):
    """The JAX runner's cold start in its fresh interpreter: the first step (trace + compile + run) in
    seconds and over the steady per-step median, and the CV of the steady steps."""

    def track_cold_first_step_s(self, res: dict[str, dict[str, Any]]) -> float:
        return res["jax"]["first_step_s"]

    track_cold_first_step_s.unit = "seconds"  # type: ignore[attr-defined]

    def track_cold_first_over_steady(self, res: dict[str, dict[str, Any]]) -> float:
        return res["jax"]["first_step_s"] / res["jax"]["per_step_median_s"]

    track_cold_first_over_steady.unit = "ratio"  # type: ignore[attr-defined]

    def track_steady_cv(self, res: dict[str, dict[str, Any]]) -> float:
        return res["jax"]["per_step_std_s"] / res["jax"]["per_step_mean_s"]

    track_steady_cv.unit = "ratio"  # type: ignore[attr-defined]


# --------------------------------------------------------------------------------------------------------
# one-run report


ONE_CORE_GRID = GRIDS[0]
"""The grid whose rows are measured a second time with the process on one core (`one_core_rows`)."""


def one_core_rows(rows: list[dict[str, Any]], quick: bool = False) -> list[dict[str, Any]]:
    """The `ONE_CORE_GRID` speed rows with JAX on one core: JAX's time from a child process pinned to one core
    before JAX starts (``--pin``; XLA's thread pool then has that core only) against NumPy's best time of the
    two processes (``rows``, this process's table, holds the other). On the small grid XLA's second thread
    cost more than it gained (hyperdiffusion 121x240 on the 2-core AMD EPYC: 0.22 ms on two cores, 0.14 ms
    on one; NumPy 0.40 ms), so these rows give each side its best stated thread setting. NumPy's own time in
    the pinned child is kept as ``numpy_same_core_s``: sharing the core with XLA's threads, its step ran
    slower there (13-14 against 8.4-8.7 ms), so it is not the NumPy figure. Empty where the platform has no
    CPU affinity."""
    if not hasattr(os, "sched_setaffinity"):
        return []
    core = max(os.sched_getaffinity(0))
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "rows.json")
        cmd = [sys.executable, "-m", "benchmarks.gcm", "--pin", str(core), "--json", path]
        # run from the repository, where ``-m benchmarks.gcm`` finds this package
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        subprocess.run(
            [*cmd, *(["--quick"] if quick else [])], check=True, stdout=subprocess.DEVNULL, cwd=root
        )
        with open(path) as f:
            pinned = json.load(f)["rows"]
    both = {r["quantity"]: r for r in rows}
    out = []
    for row in pinned:
        numpy_s = min(row["numpy_s"], both[row["quantity"]]["numpy_s"])
        ratio = numpy_s / row["jax_s"]
        out.append(
            {
                **row,
                "quantity": f"{row['quantity']} [JAX on one core]",
                "numpy_s": numpy_s,
                "numpy_same_core_s": row["numpy_s"],
                "ratio": ratio,
                "ratio_of_minima": None,
                "one_core": core,
                "pass": None if row["target"] is None else ratio >= row["target"],
            }
        )
    return out


def _speed_rows(
    grids: tuple[str, ...], rep: int, add: Callable[[dict[str, Any]], None], float32: bool = True
) -> None:
    """The speed rows of ``grids`` (the float32 step on the first one if ``float32``), each passed to ``add``."""
    problems = {g: _Problem(g) for g in grids}
    for g in grids:
        p = problems[g]
        add(_speed_row("step", f"step {g} float64", {b: step_fn(b, p) for b in BACKENDS}, rep))
    if float32:
        p32 = _Problem(grids[0], "float32")
        fns = {b: step_fn(b, p32) for b in BACKENDS}
        add(_speed_row("step_f32", f"step {grids[0]} float32 (info)", fns, rep))
        del p32
    for g in grids:
        fns = {b: hyperdiffusion_fn(b, problems[g]) for b in BACKENDS}
        add(_speed_row("hyperdiffusion", f"hyperdiffusion {g}", fns, rep))
    for g in grids:
        fns = {b: advection_fn(b, problems[g]) for b in BACKENDS}
        add(_speed_row("advection", f"advection order 1 {g}", fns, rep))
    for mode in ("grid-wrap", "mirror"):
        fns = {b: map_coordinates_fn(b, mode) for b in BACKENDS}
        add(_speed_row("map_coordinates3", f"map_coordinates order 3 '{mode}' 121x240", fns, rep))


def collect(quick: bool = False, pinned: bool = False) -> list[dict[str, Any]]:
    """Every row, each printed as it is measured. ``pinned``: this process runs on one core (``--pin``); only
    the `ONE_CORE_GRID` speed rows are measured."""
    from conformance.tiers import at_least

    rep = 3 if quick else 7
    rows: list[dict[str, Any]] = []

    def add(row: dict[str, Any]) -> None:
        rows.append(row)
        print(_format_row(row), flush=True)

    print(_header(), flush=True)
    if pinned:
        _speed_rows((ONE_CORE_GRID,), rep, add, float32=False)
        return rows
    _speed_rows(GRIDS, rep, add)
    for g in GRIDS:
        tier, required = step_parity(g)
        ok = None if required is None else at_least(tier, required)
        add(
            {
                "quantity": f"step parity {g} float64",
                "kind": "parity",
                "tier": tier,
                "target": required,
                "pass": ok,
            }
        )
    for exact in (True, False):
        add(_memory_row(10 if quick else MEMORY_STEPS, exact_rss=exact))
    for row in one_core_rows(rows, quick):
        add(row)
    return rows


def _header() -> str:
    line = f"{'quantity':72s} {'NumPy/SciPy':>12s} {'JAX':>12s} {'ratio':>7s} {'target':>8s}  result"
    return line + "\n" + "-" * len(line)


def _per_run_line(label: str, numpy_bytes: list[int], jax_bytes: list[int]) -> str:
    """An indented line of a memory row: one figure per run and backend, in MiB."""

    def mib(values: list[int]) -> str:
        return ", ".join(f"{b / 2**20:.1f}" for b in values)

    return f"\n    {label}, MiB: NumPy {mib(numpy_bytes)}; JAX {mib(jax_bytes)}"


def _format_row(row: dict[str, Any]) -> str:
    verdict = {True: "PASS", False: "FAIL", None: "info"}
    if row["kind"] == "speedup":
        target = "-" if row["target"] is None else f">={row['target']:g}x"
        return (
            f"{row['quantity']:72s} {row['numpy_s'] * 1e3:9.3f} ms {row['jax_s'] * 1e3:9.3f} ms "
            f"{row['ratio']:6.2f}x {target:>8s}  {verdict[row['pass']]}"
        )
    if row["kind"] == "memory":
        mib = 2**20
        target = "-" if row["target"] is None else f"<={row['target']:g}x"
        line = (
            f"{row['quantity']:72s} {row['numpy_bytes'] / mib:8.1f} MiB {row['jax_bytes'] / mib:8.1f} MiB "
            f"{row['ratio']:6.2f}x {target:>8s}  {verdict[row['pass']]}"
        )
        if len(row.get("jax_bytes_each", ())) > 1:
            line += _per_run_line("each run", row["numpy_bytes_each"], row["jax_bytes_each"])
            held = {b: row.get(f"{b}_malloc_free_held_growth_each") or [] for b in BACKENDS}
            if all(h and None not in h for h in held.values()):
                line += _per_run_line(
                    "of which freed memory malloc still held at the end", held["numpy"], held["jax"]
                )
        return line
    return (
        f"{row['quantity']:72s} {'':>12s} {row['tier']:>12s} {'':>7s} {row['target']!s:>8s}  "
        f"{verdict[row['pass']]}"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.gcm", description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", metavar="PATH", help="also write the table as JSON")
    parser.add_argument("--quick", action="store_true", help="fewer repeats and runner steps (a smoke run)")
    parser.add_argument("--strict", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--pin", type=int, metavar="CORE", help=argparse.SUPPRESS)  # `one_core_rows`' child
    args = parser.parse_args(argv)
    if args.pin is not None:  # before JAX starts its threads: they inherit the one core
        os.sched_setaffinity(0, {args.pin})
    _x64()
    # the machine's state around the run (`timing.core_hop_ns`): on a 2-core AMD EPYC VM the two-core 121x240
    # kernels ran about 2x slower in 2 of the 3 processes where this hand-off took 277-313 ns, and in none of
    # the 19 where it took 176-245 ns
    hop_before = None if args.pin is not None else timing.core_hop_ns()
    t0 = time.perf_counter()
    rows = collect(args.quick, pinned=args.pin is not None)
    elapsed = time.perf_counter() - t0
    hop_after = None if args.pin is not None else timing.core_hop_ns()
    print(
        f"\n{len(rows)} rows in {elapsed:.0f} s on {jax.devices()[0]} ({os.cpu_count()} CPUs); medians of "
        "interleaved samples, ratio = NumPy time / JAX time (memory: JAX / NumPy)"
    )
    if hop_before is not None and hop_after is not None:
        print(
            f"inter-core hand-off before / after the run: {hop_before:.0f} / {hop_after:.0f} ns (`timer.core_hop_ns`)"
        )
    if args.json:
        meta = {
            "device": str(jax.devices()[0]),
            "cpus": os.cpu_count(),
            "elapsed_s": elapsed,
            "core_hop_ns": (hop_before, hop_after),
        }
        with open(args.json, "w") as f:
            json.dump({"meta": meta, "rows": rows}, f, indent=2)
    failed = [r for r in rows if r.get("pass") is False]
    return 1 if (args.strict and failed) else 0


if __name__ == "__main__":
    sys.exit(main())
