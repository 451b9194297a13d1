"""Benchmarks of the CEM subsystem (JAX CEM and its `jax.export` AOT pipeline vs the PyTorch reference).

Run as a script for the issue's performance figures, all measured in one run on this machine:

    python -m benchmarks.cem [--calls 300] [--quick]

- cold start, each in a fresh subprocess: `load_pipeline` time without a persistent compilation cache, with
  a cold one (populating it) and with a warm one; the first ``predict_controls`` call over the steady-state
  median (target <= 1.2x after load), with and without the load-time warm-up run;
- steady state of the default pendulum pipeline: per-call mean, CV (target <= 5 %) and rate (>= 30 Hz), in
  this process and in a fresh one pinned to one core, each beside the machine's own floor at that call length
  (the CV of a fixed single-thread NumPy workload as long as the call: back to back in this process, and
  after each call in the pinned one, where a one-fusion XLA program as long as the call is timed too);
- at the control rate: the median and p90 call when calls come on a fixed 50 Hz schedule, against the
  same calls back to back, the first call after load over the paced call, and how much slower a fixed
  single-thread NumPy workload runs paced on this machine (`paced_state`);
- learned-dynamics task: JAX ``optimize`` vs the batched PyTorch reference on identical work (same config,
  same injected noise, float32), and JAX's throughput as a fraction of this machine's float32 matmul peak
  (the best of jnp.dot and torch.mm on 1024^2 and 2048^2 matrices, measured in the same run); batched over
  32 problems, also against a 2048^2 jnp.dot timed right after each call, with the inter-core hand-off time
  before and after it (`learned_batched`, `benchmarks.timer.core_hop_ns`).

The asv entry points (``track_*``) return the same figures. Times use ``perf_counter`` around
``block_until_ready``; nothing here asserts a time.
"""

from __future__ import annotations

import argparse
import functools
import gc
import itertools
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import timer as timing

POLICY_HIDDEN = (64, 64)  # the policy MLP of the benchmark's artifact

COLD_START = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np
from implementations.cem import runtime
t_import = time.perf_counter() - t0
cache = sys.argv[2] if sys.argv[2] != "-" else None
warmup = sys.argv[3] == "1"
t = time.perf_counter()
p = runtime.load_pipeline(sys.argv[1], cache_dir=cache, warmup=warmup)
load = time.perf_counter() - t
x = np.asarray(p.config.spec.x0, np.float32)
calls = []
for i in range(int(sys.argv[4])):
    _, timing = p.predict_controls(x, 0.02 * i, return_timing=True)
    calls.append((timing["total_time"], timing["cem_time"]))
print(json.dumps({"import_s": t_import, "load_s": load, "first_s": calls[0][0], "steady": [c[0] for c in calls[1:]],
                  "first_compiled_s": calls[0][1], "steady_compiled": [c[1] for c in calls[1:]]}))
"""


STEADY_PINNED = r"""
import gc, json, os, sys, time
os.sched_setaffinity(0, {int(sys.argv[2])})  # before JAX starts its threads: they inherit the one core
import numpy as np
from implementations.cem import runtime
p = runtime.load_pipeline(sys.argv[1])
rng = np.random.default_rng(0)
x0 = np.asarray(p.config.spec.x0, np.float32)
settle = []
for i in range(20):
    t0 = time.perf_counter()
    p.predict_controls(x0, 0.02 * i)
    settle.append(time.perf_counter() - t0)
# the floor: np.sin over an array sized to last as long as a settled call, run after each call (sized here,
# as `_sized_workload` sizes it: this child imports the project from the environment, not `benchmarks`)
w = np.random.default_rng(1).standard_normal(1 << 16)
np.sin(w)
t0 = time.perf_counter()
np.sin(w)
per_element = (time.perf_counter() - t0) / w.size
settled = float(np.median(settle[10:]))
w = np.random.default_rng(1).standard_normal(max(1024, int(settled / per_element)))
for _ in range(20):
    np.sin(w)
# XLA's floor: the smallest XLA program of the same length, one fusion (the sum of sin over a float32 array,
# a scalar out, so no output buffer to fault in), dispatched as the call is. Sized where it runs: a first size
# from a small probe, then 30 rounds of the timed loop below (call, NumPy floor, XLA floor; not kept) and one
# rescale, because the array runs slower after the other two have used the caches than back to back
import jax, jax.numpy as jnp
xla_sin = jax.jit(lambda a: jnp.sum(jnp.sin(a)))

def xla_array(n):
    a = jnp.asarray(np.random.default_rng(2).standard_normal(max(1024, n)).astype(np.float32))
    for _ in range(5):
        xla_sin(a).block_until_ready()
    return a

def timed_round(i, wx):
    x = (x0 + 0.1 * rng.standard_normal(x0.shape)).astype(np.float32)
    call = p.predict_controls(x, 0.02 * (i + 20), return_timing=True)[1]["total_time"]
    t0 = time.perf_counter()
    np.sin(w)
    t1 = time.perf_counter()
    xla_sin(wx).block_until_ready()
    return call, t1 - t0, time.perf_counter() - t1

wx = xla_array(1 << 18)
t0 = time.perf_counter()
xla_sin(wx).block_until_ready()
wx = xla_array(int(settled / (time.perf_counter() - t0) * wx.size))
first = [timed_round(i, wx) for i in range(30)]
wx = xla_array(int(np.median([r[0] for r in first]) / np.median([r[2] for r in first]) * wx.size))
gc.collect()
gc.disable()
rounds = [timed_round(30 + i, wx) for i in range(int(sys.argv[3]))]
totals, floor, xla_floor = ([r[k] for r in rounds] for k in range(3))
print(json.dumps({"calls": totals, "floor": floor, "xla_floor": xla_floor}))
"""


def export_pendulum(out: Path) -> Path:
    """The benchmark's artifact: the default pendulum planner, its policy written by the PyTorch reference
    (``python -m reference.cem weights``) beside ``out`` and exported by the JAX side."""
    from contracts.cem.config import DEFAULT_CONFIGS
    from implementations.cem import export
    from reference.cem.weights import write_weights

    weights = write_weights(
        out.parent / f"{out.name}-weights", DEFAULT_CONFIGS["pendulum"], policy_hidden=POLICY_HIDDEN
    )
    return export.export_weights(weights, out)


def _child(script: str, *args: object) -> Any:
    """Run ``script`` in a fresh interpreter with ``args`` and return the JSON of its last output line."""
    out = subprocess.run(
        [sys.executable, "-c", script, *map(str, args)],
        # not the repo root: the child imports the project from the environment (under asv, the commit
        # being benchmarked), never from the working tree
        cwd=tempfile.gettempdir(),
        env={**os.environ, "JAX_PLATFORMS": os.environ.get("JAX_PLATFORMS", "cpu")},
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _fresh_process(artifact: Path, cache: Path | None, warmup: bool, calls: int) -> dict:
    return _child(COLD_START, artifact, cache or "-", "1" if warmup else "0", calls)


def _summary(samples: list[float]) -> dict[str, float]:
    mean = statistics.fmean(samples)
    std = statistics.pstdev(samples)
    q1, med, q3 = np.percentile(samples, [25, 50, 75])
    return {
        "mean_s": mean,
        "median_s": float(med),
        "cv": std / mean,
        "iqr_over_median": float((q3 - q1) / med),
        "share_over_1_2x_median": float(np.mean(np.asarray(samples) > 1.2 * med)),
        "hz": 1.0 / mean,
    }


def cold_start(artifact: Path, calls: int, repeats: int = 5) -> dict:
    """Each mode ``repeats`` times, each in a fresh process; medians over the repeats (sub-millisecond calls
    on a shared machine: a single first call is at the mercy of the scheduler)."""
    modes = {
        "no cache": (False, True),
        "cache warm": (True, True),
        "no cache, no warm-up run": (False, False),
    }
    out: dict = {}
    with tempfile.TemporaryDirectory() as cache_dir:
        cache = Path(cache_dir)
        populate = _fresh_process(artifact, cache, True, calls)  # fills the persistent cache
        out["cache cold (populating)"] = _one(populate)
        for name, (use_cache, warmup) in modes.items():
            runs = [
                _one(_fresh_process(artifact, cache if use_cache else None, warmup, calls))
                for _ in range(repeats)
            ]
            out[name] = {k: float(np.median([r[k] for r in runs])) for k in runs[0]}
            out[name]["first_over_steady_each"] = [round(r["first_over_steady"], 2) for r in runs]
    return out


def _one(r: dict) -> dict:
    med = float(np.median(r["steady"]))
    compiled = float(np.median(r["steady_compiled"]))
    return {
        "load_s": r["load_s"],
        "first_s": r["first_s"],
        "steady_median_s": med,
        "first_over_steady": r["first_s"] / med,
        # the compiled call alone, without the host work around it (on the first call it also runs the
        # policy network, the warm start)
        "first_over_steady_compiled_call": r["first_compiled_s"] / compiled,
    }


def _perturbed_states(x0: np.ndarray, n: int) -> list[np.ndarray]:
    """``n`` plant states near ``x0`` (Gaussian, scale 0.1, seed 0): the inputs of the closed-loop calls."""
    rng = np.random.default_rng(0)
    return [(x0 + 0.1 * rng.standard_normal(x0.shape)).astype(np.float32) for _ in range(n)]


def steady_state(artifact: Path, calls: int) -> dict:
    from implementations.cem import runtime

    p = runtime.load_pipeline(artifact)
    x0 = np.asarray(p.config.spec.x0, np.float32)
    for i in range(20):  # settle
        p.predict_controls(x0, 0.02 * i)
    totals = []
    gc.collect()
    gc.disable()  # the collector's pauses are not the pipeline's (measured: CV 0.27-0.34 with it, 0.16-0.25 without)
    try:
        for i, x in enumerate(_perturbed_states(x0, calls)):
            totals.append(p.predict_controls(x, 0.02 * (i + 20), return_timing=True)[1]["total_time"])
    finally:
        gc.enable()
    out = {"config": p.config.to_json(), "gc_during_timing": False, **_summary(totals)}
    out["floor"] = noise_floor(out["median_s"], calls)
    return out


def _sized_workload(seconds: float) -> np.ndarray:
    """An array whose ``np.sin`` takes about ``seconds`` on one thread (warmed up)."""
    x = np.random.default_rng(0).standard_normal(1 << 16)
    t0 = time.perf_counter()
    np.sin(x)
    n = max(1024, int(len(x) * seconds / max(time.perf_counter() - t0, 1e-9)))
    x = np.random.default_rng(0).standard_normal(n)
    for _ in range(20):
        np.sin(x)
    return x


def noise_floor(seconds: float, calls: int) -> dict[str, float]:
    """The machine's own jitter at this call length: `_summary` of ``calls`` timings of a fixed single-thread
    NumPy workload (``np.sin`` over an array sized to take about ``seconds``), garbage collector off, in this
    process. A multi-threaded pipeline call with three host round trips cannot be steadier than this; the
    CEM CV is read against it."""
    x = _sized_workload(seconds)
    gc.collect()
    gc.disable()
    try:
        totals = paced_durations(lambda _: np.sin(x), calls, 0.0)
    finally:
        gc.enable()
    return _summary(totals)


CONTROL_HZ = 50.0
"""The control rate of `paced_state`: a planner called on a fixed 20 ms schedule, as in closed loop."""


def paced_durations(
    fn: Callable[[int], Any],
    calls: int,
    period_s: float,
    clock: Callable[[], float] = time.perf_counter,
    sleep: Callable[[float], None] = time.sleep,
) -> list[float]:
    """The duration of each of ``calls`` calls ``fn(i)`` started on a fixed schedule, one every ``period_s``
    seconds (``0`` runs them back to back). A call that overruns its slot starts the next one at once, and
    the schedule does not drift with the calls' own durations."""
    out = []
    due = clock()
    for i in range(calls):
        t0 = clock()
        fn(i)
        out.append(clock() - t0)
        if period_s > 0:
            due += period_s
            wait = due - clock()
            if wait > 0:
                sleep(wait)
    return out


def paced_state(artifact: Path, calls: int, hz: float = CONTROL_HZ) -> dict:
    """The pipeline as a controller runs it: loaded afresh (warm-up included), its first call, then ``calls``
    calls at ``hz`` on a fixed schedule, then as many back to back; garbage collector off. Beside them, a fixed
    single-thread NumPy workload as long as the back-to-back call, timed both ways: how much slower this
    machine runs any work that starts after an idle gap (frequency, caches, idle cores woken)."""
    from implementations.cem import runtime

    p = runtime.load_pipeline(artifact)
    x0 = np.asarray(p.config.spec.x0, np.float32)
    inputs = _perturbed_states(x0, calls)

    plant_step = itertools.count(1)  # plant time keeps advancing across the paced and back-to-back calls

    def call(i: int) -> None:
        p.predict_controls(inputs[i % calls], 0.02 * next(plant_step))

    gc.collect()
    gc.disable()
    try:
        t0 = time.perf_counter()
        p.predict_controls(x0, 0.0)
        first = time.perf_counter() - t0
        paced = paced_durations(call, calls, 1.0 / hz)
        back = paced_durations(call, calls, 0.0)
        x = _sized_workload(statistics.median(back))
        machine_paced = paced_durations(lambda _: np.sin(x), calls, 1.0 / hz)
        machine_back = paced_durations(lambda _: np.sin(x), calls, 0.0)
    finally:
        gc.enable()
    out = {
        "hz": hz,
        "first_s": first,
        "paced": {**_summary(paced), "p90_s": float(np.percentile(paced, 90))},
        "back_to_back": _summary(back),
        "machine_paced_over_back_to_back": statistics.median(machine_paced) / statistics.median(machine_back),
    }
    out["paced_over_back_to_back"] = out["paced"]["median_s"] / out["back_to_back"]["median_s"]
    out["first_over_paced"] = first / out["paced"]["median_s"]
    return out


def steady_state_pinned(artifact: Path, calls: int, cpu: int | None = None) -> dict | None:
    """`steady_state` in a fresh process pinned to one core (the last one, unless ``cpu``), so that XLA's
    threads and the caller share it; None where the platform has no CPU affinity. Its ``floor`` is the
    machine's jitter on that core over the same seconds: a fixed single-thread NumPy workload as long as the
    call, run after each call (interleaved, so that a noisy stretch of the machine hits both alike). The
    call's CV can be read against it: a core whose floor CV is above 0.05 is not quiet enough to show the
    CV target. Its ``xla_floor`` is the same for the smallest XLA program of that length (one fusion, the sum
    of ``sin`` over a float32 array), dispatched as the call is and timed after the NumPy floor: the part of
    the call's CV that any XLA program of that length has on this core. Measured on a 2-core AMD EPYC VM, 600
    calls in each of 10 processes: call CV 0.072-0.175, NumPy floor 0.044-0.117, XLA floor 0.046-0.075; the
    call's CV was 1.24-2.33x the XLA floor's in every process (1.31-1.99x in 14 more with an earlier sizing),
    so what the call adds is its own program's, not the dispatch that every XLA program pays."""
    if not hasattr(os, "sched_setaffinity"):
        return None
    cpu = max(os.sched_getaffinity(0)) if cpu is None else cpu
    res = _child(STEADY_PINNED, artifact, cpu, calls)
    return {
        "cpu": cpu,
        "gc_during_timing": False,
        **_summary(res["calls"]),
        "floor": _summary(res["floor"]),
        "xla_floor": _summary(res["xla_floor"]),
    }


def _time(fn, repeats: int) -> float:
    return timing.seconds(fn, rounds=repeats, sample_s=0.0)


def learned_problem(
    hidden: tuple[int, ...] = (128, 128),
) -> tuple[dict, Callable[[], Any], Callable[[], Any]]:
    """The learned-dynamics task's default config with a seeded MLP and injected noise: the config and two
    callables doing identical work, JAX ``optimize`` (blocked, returns its outputs) and the PyTorch
    reference's (no_grad, on the calling thread settings)."""
    import jax
    import torch

    import implementations.cem as impl
    import reference.cem as ref
    from contracts.cem.config import DEFAULT_CONFIGS
    from reference.cem import networks

    torch.backends.cuda.matmul.allow_tf32 = False
    jax.config.update("jax_default_matmul_precision", "highest")
    cfg = DEFAULT_CONFIGS["learned"]
    model = networks.init_mlp(networks.dynamics_sizes(hidden), 0)
    w = {k: v.numpy() for k, v in networks.state_dict(model).items()}
    wt = {k: torch.from_numpy(v) for k, v in w.items()}
    rng = np.random.default_rng(0)
    K, nu = cfg.num_knots, cfg.spec.nu
    x0 = np.float32([0.1, 0.0])
    tk = (cfg.plan_horizon * np.arange(K) / (K - 1)).astype(np.float32)
    mean = np.zeros((K, nu), np.float32)
    std = np.full((K, nu), cfg.sigma_start, np.float32)
    noise = rng.standard_normal((cfg.iterations, cfg.num_samples, K, nu)).astype(np.float32)
    t = np.float32(0.02)
    args_t = [torch.from_numpy(a) for a in (x0, tk, mean, std, noise)]

    def run_jax() -> Any:
        return jax.block_until_ready(impl.optimize(x0, t, tk, mean, std, noise, cfg, w))

    def run_torch() -> Any:
        with torch.no_grad():
            return ref.optimize(args_t[0], float(t), args_t[1], args_t[2], args_t[3], args_t[4], cfg, wt)

    return cfg, run_jax, run_torch


def learned_vs_torch(repeats: int) -> dict:
    import torch

    from reference.cem import networks

    hidden = (128, 128)
    cfg, run_jax, run_torch = learned_problem(hidden)

    def run_torch_out():
        before = torch.get_num_threads()
        torch.set_num_threads(1)  # as the conformance case runs it (same float32 results)
        try:
            return run_torch()
        finally:
            torch.set_num_threads(before)

    jax_s = _time(run_jax, repeats)
    tier, required = learned_parity(run_jax(), run_torch_out())
    # PyTorch's OpenMP pool collapses when the cores are oversubscribed (measured: a 256x128x128 matmul took
    # 32 ms with 2 threads on a loaded 2-core machine, 0.4 ms with 1): the reference gets its best setting.
    default_threads = torch.get_num_threads()
    torch_by_threads = {}
    for threads in sorted({1, default_threads}):
        torch.set_num_threads(threads)
        torch_by_threads[threads] = _time(run_torch, max(3, repeats // 4))
    torch.set_num_threads(default_threads)
    best_threads = min(torch_by_threads, key=torch_by_threads.get)
    torch_s = torch_by_threads[best_threads]
    sizes = networks.dynamics_sizes(hidden)
    macs = sum(a * b for a, b in itertools.pairwise(sizes))
    flops = 2 * macs * cfg.num_samples * cfg.ctrl_steps * cfg.iterations
    return {
        "config": cfg.to_json(),
        "hidden": hidden,
        "jax_s": jax_s,
        "torch_s": torch_s,
        "jax_speedup_over_torch": torch_s / jax_s,
        "mlp_flops_per_optimize": flops,
        "jax_gflops": flops / jax_s / 1e9,
        "torch_threads": best_threads,
        "torch_s_by_threads": torch_by_threads,
        "parity_tier": tier,
        "parity_required": required,
    }


def aot_parity(artifact: Path, calls: int = 20) -> tuple[str, str | None]:
    """(tier reached, tier required) of the loaded AOT pipeline against the same pipeline built with
    ``jax.jit`` from the artifact's own weights, driven through the same closed loop of ``calls`` states
    (the controls and the carried planner state, judged as the ``cem.aot.pipeline`` case; the PRNG keys
    must be bitwise equal, or the tier is "fail")."""
    from conformance import compare, precision
    from implementations.cem import export, networks, runtime

    loaded = runtime.load_pipeline(artifact)
    cfg = loaded.config
    policy = networks.load_weights(
        Path(artifact) / "policy.safetensors", networks.policy_sizes(cfg, POLICY_HIDDEN)
    )
    jitted = export.jit_pipeline(cfg, None, policy, replan_steps=loaded.replan_steps, key=0)

    def drive(p: Any) -> dict[str, np.ndarray]:
        x0 = np.asarray(cfg.spec.x0, np.float32)
        out: dict[str, list[np.ndarray]] = {"controls": [], "tk": [], "mean": [], "std": [], "key": []}
        for i, x in enumerate(_perturbed_states(x0, calls)):
            out["controls"].append(p.predict_controls(x, 0.02 * i))
            for k in ("tk", "mean", "std", "key"):
                out[k].append(getattr(p.state, k))
        return {k: np.stack(v) for k, v in out.items()}

    expected, actual = drive(jitted), drive(loaded)
    if np.any(expected.pop("key") != actual.pop("key")):  # integer keys
        return "severe", "exact"  # a different PRNG stream: nothing downstream is comparable
    with precision.for_dtype("float32"):
        res = compare(expected, actual, case="cem.aot.pipeline", backend="jax-export", dtype="float32")
    return res.tier, res.required


@functools.cache
def _batched_optimize() -> Callable[..., Any]:
    """``optimize`` over P independent problems (initial states and noise differ; knots, weights and config
    shared) in one program: `jax.vmap` of the planner's own jitted-function body, jitted once (cached). Each
    rollout step is then one (P * N, hidden) matmul chain instead of P chains of (N, hidden). It is a
    benchmark-level transformation of the same function, so it needs no twin in the reference; its slices are
    checked against single `optimize` calls in `learned_batched`."""
    import jax

    from implementations.cem import planner

    def batched(x0s, t, tk, mean, std, noises, config, weights):
        def one(x0, noise):
            return planner._optimize(x0, t, tk, mean, std, noise, config, weights)

        return jax.vmap(one)(x0s, noises)

    return jax.jit(batched, static_argnames=("config",))


def learned_batched(problems: int = 32, repeats: int = 10, hidden: tuple[int, ...] = (128, 128)) -> dict:
    """GFLOP/s of the learned-dynamics planner batched over ``problems`` problems, and the tier of its first
    problem against the single-problem ``optimize`` on the same inputs (the same function, vmapped)."""
    import jax

    import implementations.cem as impl
    from conformance import compare, precision
    from contracts.cem.config import DEFAULT_CONFIGS
    from reference.cem import networks

    jax.config.update("jax_default_matmul_precision", "highest")
    cfg = DEFAULT_CONFIGS["learned"]
    w = {
        k: v.numpy()
        for k, v in networks.state_dict(networks.init_mlp(networks.dynamics_sizes(hidden), 0)).items()
    }
    rng = np.random.default_rng(1)
    K, nu = cfg.num_knots, cfg.spec.nu
    x0s = (0.3 * rng.standard_normal((problems, cfg.spec.nx))).astype(np.float32)
    noises = rng.standard_normal((problems, cfg.iterations, cfg.num_samples, K, nu)).astype(np.float32)
    tk = (cfg.plan_horizon * np.arange(K) / (K - 1)).astype(np.float32)
    mean = np.zeros((K, nu), np.float32)
    std = np.full((K, nu), cfg.sigma_start, np.float32)
    t = np.float32(0.02)
    fn = _batched_optimize()
    args = (x0s, t, tk, mean, std, noises)

    def run() -> Any:
        return jax.block_until_ready(fn(*args, config=cfg, weights=w))

    run()  # compiled before the machine's state is read
    hop_before = timing.core_hop_ns(timeout_s=10.0)
    seconds = _time(run, repeats)
    sizes = networks.dynamics_sizes(hidden)
    macs = sum(a * b for a, b in itertools.pairwise(sizes))
    flops = 2 * macs * cfg.num_samples * cfg.ctrl_steps * cfg.iterations * problems
    fractions = _fractions_of_interleaved_dot(run, flops, repeats)
    hop_after = timing.core_hop_ns(timeout_s=10.0)
    out = run()
    single = impl.optimize(x0s[0], t, tk, mean, std, noises[0], cfg, w)
    keys = ("tk", "mean", "std", "costs")
    with precision.for_dtype("float32"):
        res = compare(
            {k: np.asarray(single[k]) for k in keys},
            {k: np.asarray(out[k][0]) for k in keys},
            case="cem.iteration.learned",
            backend="jax-jit",
            dtype="float32",
        )
    return {
        "problems": problems,
        "seconds": seconds,
        "gflops": flops / seconds / 1e9,
        "slice_tier": res.tier,
        "fraction_of_interleaved_dot": float(np.median(fractions)),
        "fraction_of_interleaved_dot_range": (min(fractions), max(fractions)),
        # the machine's state around the measurement (`benchmarks.timer.core_hop_ns`; None on one core)
        "core_hop_ns": (hop_before, hop_after),
    }


INTERLEAVED_DOT_N = 2048


def _fractions_of_interleaved_dot(run: Callable[[], Any], flops: float, rounds: int) -> list[float]:
    """Per round, the throughput of one ``run()`` (``flops`` of work) over that of a float32
    ``jnp.dot`` of two `INTERLEAVED_DOT_N`-square matrices at 'highest' precision timed right after it. The
    matmul peak of `benchmarks.timer.matmul_peak` is measured once, seconds away; this yardstick sees the
    same stretch of the machine as the call, so a slow stretch of a shared machine shows in both instead of
    in the fraction."""
    import jax
    import jax.numpy as jnp

    n = INTERLEAVED_DOT_N
    a = jnp.asarray(np.random.default_rng(0).standard_normal((n, n)).astype(np.float32))
    dot = _square_dot()
    dot(a).block_until_ready()
    out = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        run()
        t_run = time.perf_counter() - t0
        t0 = time.perf_counter()
        jax.block_until_ready(dot(a))
        t_dot = time.perf_counter() - t0
        out.append((flops / t_run) / (2 * n**3 / t_dot))
    return out


@functools.cache
def _square_dot() -> Callable[[Any], Any]:
    import jax
    import jax.numpy as jnp

    return jax.jit(lambda x: jnp.dot(x, x, precision="highest"))


def learned_parity(actual: dict, expected: dict) -> tuple[str, str | None]:
    """(tier reached, tier required) of the JAX learned-dynamics ``optimize`` against the PyTorch reference on
    the benchmark's own inputs (same injected noise, float32 both, as the conformance suite judges CEM). The
    learned config runs one iteration after the warm start, so it is judged as ``cem.iteration.learned``."""
    from conformance import compare, precision

    keys = ("tk", "mean", "std", "costs")
    with precision.for_dtype("float32"):
        res = compare(
            {k: np.asarray(expected[k]) for k in keys},
            {k: np.asarray(actual[k]) for k in keys},
            case="cem.iteration.learned",
            backend="jax-jit",
            dtype="float32",
        )
    return res.tier, res.required


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="CEM benchmarks (ratios measured in one run)")
    parser.add_argument("--calls", type=int, default=300, help="steady-state calls (default 300)")
    parser.add_argument("--quick", action="store_true", help="fewer calls and repeats")
    parser.add_argument("--json", default=None)
    args = parser.parse_args(argv)
    calls = 60 if args.quick else args.calls
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "platform": sys.platform, "loadavg_at_start": os.getloadavg()}
    }
    with tempfile.TemporaryDirectory() as tmp:
        art = export_pendulum(Path(tmp) / "pendulum")
        results["cold_start"] = cold_start(art, 30)
        results["steady_pendulum"] = steady_state(art, calls)
        results["steady_pinned"] = steady_state_pinned(art, calls)
        results["paced"] = paced_state(art, 30 if args.quick else 100)
    results["learned"] = learned_vs_torch(10 if args.quick else 30)
    results["matmul"] = timing.matmul_peak()
    results["learned"]["fraction_of_matmul_peak"] = (
        results["learned"]["jax_gflops"] / results["matmul"]["peak_gflops"]
    )
    results["learned_batched"] = batched = learned_batched(repeats=5 if args.quick else 10)
    batched["fraction_of_matmul_peak"] = batched["gflops"] / results["matmul"]["peak_gflops"]

    print(
        f"CEM benchmarks on {os.cpu_count()} CPU(s); load average at start "
        f"{results['machine']['loadavg_at_start'][0]:.2f}, at end {os.getloadavg()[0]:.2f}"
    )
    print("cold start (fresh process each):")
    for name, r in results["cold_start"].items():
        each = f" (each run: {r['first_over_steady_each']})" if "first_over_steady_each" in r else ""
        print(
            f"  {name:26s} load {r['load_s']:7.3f} s   first call {r['first_s'] * 1e3:7.3f} ms   "
            f"steady median {r['steady_median_s'] * 1e3:6.3f} ms   first/steady {r['first_over_steady']:5.2f}x{each}; "
            f"compiled call alone {r['first_over_steady_compiled_call']:5.2f}x"
        )
    s = results["steady_pendulum"]
    print(
        f"steady state, default pendulum ({s['config']['num_samples']} samples, {s['config']['num_knots']} "
        f"{s['config']['spline_type']} knots, {s['config']['iterations']} iteration; garbage collector off while "
        "timing, no CPU pinning):"
    )
    print(
        f"  mean {s['mean_s'] * 1e3:.3f} ms  median {s['median_s'] * 1e3:.3f} ms  CV {s['cv']:.3f}  "
        f"IQR/median {s['iqr_over_median']:.3f}  {s['hz']:.0f} Hz (target >= 30 Hz, CV <= 0.05)"
    )
    pin = results["steady_pinned"]
    if pin is not None:
        print(
            f"  pinned to CPU {pin['cpu']} (fresh process, XLA's threads on the same core): mean "
            f"{pin['mean_s'] * 1e3:.3f} ms  median {pin['median_s'] * 1e3:.3f} ms  CV {pin['cv']:.3f}  "
            f"IQR/median {pin['iqr_over_median']:.3f}  calls over 1.2x the median {pin['share_over_1_2x_median']:.1%}"
        )
        pf = pin["floor"]
        print(
            f"  that core's floor over the same seconds (fixed single-thread NumPy work after each call, median "
            f"{pf['median_s'] * 1e3:.3f} ms): CV {pf['cv']:.3f}  IQR/median {pf['iqr_over_median']:.3f}  "
            f"calls over 1.2x the median {pf['share_over_1_2x_median']:.1%}"
        )
        px = pin["xla_floor"]
        print(
            f"  XLA's floor on that core (one jitted fusion, sum of sin, after each call, median "
            f"{px['median_s'] * 1e3:.3f} ms): CV {px['cv']:.3f}  IQR/median {px['iqr_over_median']:.3f}  "
            f"calls over 1.2x the median {px['share_over_1_2x_median']:.1%}"
        )
    fl = s["floor"]
    print(
        f"  the machine's floor at this call length (fixed single-thread NumPy work, median "
        f"{fl['median_s'] * 1e3:.3f} ms, collector off): CV {fl['cv']:.3f}  IQR/median {fl['iqr_over_median']:.3f}"
    )
    pc = results["paced"]
    print(
        f"at the control rate ({pc['hz']:.0f} Hz, calls on a fixed schedule, collector off, a fresh load): median "
        f"{pc['paced']['median_s'] * 1e3:.3f} ms  p90 {pc['paced']['p90_s'] * 1e3:.3f} ms  CV {pc['paced']['cv']:.3f};"
        f" back to back {pc['back_to_back']['median_s'] * 1e3:.3f} ms ({pc['paced_over_back_to_back']:.2f}x faster)"
    )
    print(
        f"  first call after that load {pc['first_s'] * 1e3:.3f} ms = {pc['first_over_paced']:.2f}x the paced call; "
        f"the machine: a fixed single-thread NumPy workload runs {pc['machine_paced_over_back_to_back']:.2f}x "
        "slower paced than back to back"
    )
    learned = results["learned"]
    print(
        f"learned dynamics ({learned['config']['num_samples']} samples x {25} steps, MLP {learned['hidden']}):"
    )
    print(
        f"  JAX optimize {learned['jax_s'] * 1e3:.3f} ms, PyTorch reference {learned['torch_s'] * 1e3:.3f} ms "
        f"(best of threads {learned['torch_s_by_threads']}: {learned['torch_threads']}): "
        f"JAX {learned['jax_speedup_over_torch']:.2f}x faster; parity tier {learned['parity_tier']} "
        f"(required {learned['parity_required']})"
    )
    print(
        f"  JAX {learned['jax_gflops']:.2f} GFLOP/s of MLP work = {learned['fraction_of_matmul_peak']:.1%} of the "
        f"matmul peak {results['matmul']['peak_gflops']:.1f} GFLOP/s ({results['matmul']})"
    )
    print(
        f"  batched formulation, {batched['problems']} problems in one program (vmap): {batched['seconds'] * 1e3:.2f} ms, "
        f"{batched['gflops']:.1f} GFLOP/s = {batched['fraction_of_matmul_peak']:.1%} of the matmul peak "
        f"(target >= 50%); against a {INTERLEAVED_DOT_N}^2 jnp.dot timed after each call: "
        f"{batched['fraction_of_interleaved_dot']:.1%} (rounds {batched['fraction_of_interleaved_dot_range'][0]:.1%}-"
        f"{batched['fraction_of_interleaved_dot_range'][1]:.1%}); problem 0 against a single optimize call: "
        f"{batched['slice_tier']}"
    )
    hops = batched["core_hop_ns"]
    if None not in hops:
        print(
            f"  inter-core hand-off before / after it: {hops[0]:.0f} / {hops[1]:.0f} ns (`timer.core_hop_ns`: "
            "where the host places the two cores farther apart, this rises and the two-thread program slows)"
        )
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0


# -- asv entry points -------------------------------------------------------------------------------------


def _export_artifact() -> Path:
    return export_pendulum(Path(tempfile.mkdtemp()) / "pendulum")


class _Cached:
    """All the derived figures, measured once per asv run in ``setup_cache`` (cold starts in fresh
    interpreters, steady state, the learned task against PyTorch, the AOT tier) on an artifact exported there."""

    timeout = 600

    def setup_cache(self) -> dict:
        art = _export_artifact()
        return {
            "cold": cold_start(art, 20),
            "steady": steady_state(art, 100),
            "pinned": steady_state_pinned(art, 300),
            "paced": paced_state(art, 100),
            "learned": learned_vs_torch(10),
            "learned_batched": learned_batched(repeats=5),
            "aot_tier": aot_parity(art),
        }


class CEM(_Cached):
    def track_aot_parity_tier(self, r: dict) -> int:
        """Tier index (conformance.tiers.TIERS, 0 = exact) of the loaded AOT pipeline vs the jitted one."""
        from conformance.tiers import TIERS

        return TIERS.index(r["aot_tier"][0])

    def track_first_over_steady_no_cache(self, r: dict) -> float:
        return r["cold"]["no cache"]["first_over_steady"]

    def track_load_s_no_cache(self, r: dict) -> float:
        return r["cold"]["no cache"]["load_s"]

    def track_load_s_warm_cache(self, r: dict) -> float:
        return r["cold"]["cache warm"]["load_s"]

    def track_steady_cv(self, r: dict) -> float:
        return r["steady"]["cv"]

    def track_steady_cv_pinned(self, r: dict) -> float:
        """CV of the steady call in a process pinned to one core (nan without CPU affinity)."""
        return float("nan") if r["pinned"] is None else r["pinned"]["cv"]

    def track_noise_floor_cv_pinned(self, r: dict) -> float:
        """CV of the fixed NumPy workload run after each pinned call (`steady_state_pinned`'s floor; nan
        without CPU affinity): whether the core was quiet enough for `track_steady_cv_pinned`'s target."""
        return float("nan") if r["pinned"] is None else r["pinned"]["floor"]["cv"]

    def track_xla_floor_cv_pinned(self, r: dict) -> float:
        """CV of the one-fusion XLA program run after each pinned call (`steady_state_pinned`'s
        ``xla_floor``; nan without CPU affinity): the part of the call's CV that XLA's dispatch has alone."""
        return float("nan") if r["pinned"] is None else r["pinned"]["xla_floor"]["cv"]

    def track_steady_ms_pinned(self, r: dict) -> float:
        return float("nan") if r["pinned"] is None else 1e3 * r["pinned"]["median_s"]

    def track_paced_ms(self, r: dict) -> float:
        """Median call at the control rate (`paced_state`)."""
        return 1e3 * r["paced"]["paced"]["median_s"]

    def track_first_over_paced(self, r: dict) -> float:
        """The first call after load over the median call at the control rate."""
        return r["paced"]["first_over_paced"]

    def track_noise_floor_cv(self, r: dict) -> float:
        """CV of a fixed single-thread NumPy workload as long as the steady call (`noise_floor`)."""
        return r["steady"]["floor"]["cv"]

    def track_steady_hz(self, r: dict) -> float:
        return r["steady"]["hz"]

    def track_learned_jax_speedup_over_torch(self, r: dict) -> float:
        return r["learned"]["jax_speedup_over_torch"]

    def track_learned_batched_fraction_of_interleaved_dot(self, r: dict) -> float:
        """The batched learned-dynamics planner's throughput over a 2048^2 jnp.dot timed after each call
        (`learned_batched`; target >= 0.5 of the matmul peak)."""
        return r["learned_batched"]["fraction_of_interleaved_dot"]

    def track_learned_batched_core_hop_ns(self, r: dict) -> float:
        """The inter-core hand-off around the batched measurement, the mean of before and after
        (`benchmarks.timer.core_hop_ns`; nan on one core): the machine's state that the batched row follows."""
        hops = r["learned_batched"]["core_hop_ns"]
        return float("nan") if None in hops else float(np.mean(hops))

    def track_learned_parity_tier(self, r: dict) -> int:
        """Tier index (conformance.tiers.TIERS, 0 = exact) of the timed JAX optimize vs PyTorch."""
        from conformance.tiers import TIERS

        return TIERS.index(r["learned"]["parity_tier"])

    def track_first_over_steady_warm_cache(self, r: dict) -> float:
        return r["cold"]["cache warm"]["first_over_steady"]

    def track_first_over_steady_compiled_call_no_cache(self, r: dict) -> float:
        """The first call's compiled ``plan`` (policy included) over the steady one's, host work left out."""
        return r["cold"]["no cache"]["first_over_steady_compiled_call"]


class TimePipeline:
    """One ``predict_controls`` of the loaded AOT pendulum pipeline in steady state (the carried planner
    state advances with every call, as in closed loop). Its own ``setup_cache`` only exports (seconds), so
    that the speed gate (``time_*`` only) does not pay for `_Cached`'s measurements."""

    timeout = 600

    def setup_cache(self) -> str:
        return str(_export_artifact())

    def setup(self, artifact: str) -> None:
        from implementations.cem import runtime

        self.p = runtime.load_pipeline(artifact)
        self.x = np.asarray(self.p.config.spec.x0, np.float32)
        self.i = 0
        for _ in range(20):  # settle
            self.time_predict_controls(artifact)

    def time_predict_controls(self, artifact: str) -> None:
        self.i += 1
        self.p.predict_controls(self.x, 0.02 * self.i)


class TimeLearned:
    """One ``optimize`` of the learned-dynamics task: JAX against the PyTorch reference (one thread: the
    conformance setting, and the stable one on shared cores) on identical work."""

    params = (["jax", "torch"],)
    param_names = ("backend",)

    def setup(self, backend: str) -> None:
        import torch

        torch.set_num_threads(1)
        _, run_jax, run_torch = learned_problem()
        self.fn = run_jax if backend == "jax" else run_torch
        self.fn()

    def time_optimize(self, backend: str) -> None:
        self.fn()


if __name__ == "__main__":
    sys.exit(main())
