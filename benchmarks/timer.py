"""The one timer every benchmark module uses: per-call seconds of several callables, measured alike.

- Each callable is warmed up first (a JAX function compiles on its first call), then calibrated: a sample is
  ``number`` calls, enough for about ``sample_s`` seconds (from the median of a few timed calls), so that
  clock resolution and call overhead vanish.
- Samples of the callables are interleaved round by round, the order reversing every round, so that machine
  drift (another process, frequency scaling) hits every callable alike: ratios stay honest on a shared machine.
- With ``lead_in``, each sample starts with that many untimed calls of its own callable: where the callables
  run on different thread pools (PyTorch's OpenMP, onnxruntime's, XLA's), the pool that ran the previous
  sample keeps spinning for a while after it and slows the first calls of the next one, a cost that a
  process running one runtime never pays (measured on the anomaly detector at B=64: the JAX port 4.64 ms
  right after onnxruntime's samples, 4.13 ms with onnxruntime left out).
- The garbage collector is off while a sample runs (a collection inside one sample is noise, not the code's
  cost), and each callable must block on its own result (``jax.block_until_ready``) before it returns.

Results give the median, the minimum and the coefficient of variation of the per-call samples.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from collections.abc import Callable, Mapping
from typing import Any


@dataclasses.dataclass(frozen=True)
class Timing:
    samples: tuple[float, ...]  # seconds per call, one per round
    number: int  # calls per sample

    @property
    def median(self) -> float:
        return statistics.median(self.samples)

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def cv(self) -> float:
        """Coefficient of variation of the samples (standard deviation / mean)."""
        if len(self.samples) < 2:
            return 0.0
        return statistics.stdev(self.samples) / statistics.mean(self.samples)

    def to_dict(self) -> dict[str, float]:
        return {
            "median_s": self.median,
            "min_s": self.min,
            "cv": self.cv,
            "number": self.number,
            "repeat": len(self.samples),
        }


CALIBRATION_CALLS = 3
"""Timed calls that set a callable's calls per sample (fewer where they already fill a sample)."""


def calibrate(
    fn: Callable[[], Any], sample_s: float, warmup: int = 1, clock: Callable[[], float] = time.perf_counter
) -> int:
    """Calls per sample so that one sample takes about ``sample_s`` (after ``warmup`` untimed calls).

    The per-call time is the median of up to `CALIBRATION_CALLS` timed calls, not the first one: the call
    right after a JAX compile still pays first-touch costs (measured on the GCM step at 121x240: about
    3x the steady time), and calibrated on it a sample held 2 calls instead of 6, so the cost of the first
    call after another callable's sample weighed three times as much in every sample (4.6 against 3.1 ms
    per step).
    """
    for _ in range(max(warmup, 1)):
        fn()
    times: list[float] = []
    while not times or (len(times) < CALIBRATION_CALLS and sum(times) < sample_s):
        t0 = clock()
        fn()
        times.append(clock() - t0)
    return max(1, int(sample_s / max(statistics.median(times), 1e-7)))


def _sample(fn: Callable[[], Any], number: int, lead_in: int = 0) -> float:
    enabled = gc.isenabled()
    gc.disable()
    try:
        for _ in range(lead_in):
            fn()
        t0 = time.perf_counter()
        for _ in range(number):
            fn()
        return (time.perf_counter() - t0) / number
    finally:
        if enabled:
            gc.enable()


def measure(
    fns: Mapping[str, Callable[[], Any]],
    *,
    rounds: int = 7,
    sample_s: float = 0.05,
    warmup: int = 1,
    lead_in: int = 0,
) -> dict[str, Timing]:
    """Per-call timings of each callable, interleaved round by round (see the module docstring)."""
    if rounds < 1:
        raise ValueError(f"rounds must be >= 1; got {rounds}")
    if lead_in < 0:
        raise ValueError(f"lead_in must be >= 0; got {lead_in}")
    numbers = {name: calibrate(fn, sample_s, warmup) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    names = list(fns)
    for r in range(rounds):
        for name in names if r % 2 == 0 else names[::-1]:
            samples[name].append(_sample(fns[name], numbers[name], lead_in))
    return {name: Timing(tuple(samples[name]), numbers[name]) for name in fns}


def seconds(fn: Callable[[], Any], *, rounds: int = 7, sample_s: float = 0.05, warmup: int = 1) -> float:
    """Median seconds per call of one callable."""
    return measure({"fn": fn}, rounds=rounds, sample_s=sample_s, warmup=warmup)["fn"].median


def calls(fn: Callable[[], Any], n: int) -> list[float]:
    """The wall time of each of ``n`` consecutive single calls (no warm-up): a first call, then steady ones."""
    out = []
    for _ in range(n):
        enabled = gc.isenabled()
        gc.disable()
        try:
            t0 = time.perf_counter()
            fn()
            out.append(time.perf_counter() - t0)
        finally:
            if enabled:
                gc.enable()
    return out


def threads() -> dict[str, int]:
    """The thread counts every runtime of a benchmark runs with (stated beside its figures): PyTorch's intra-op
    threads and the cores XLA:CPU's thread pool uses (one per core this process may run on)."""
    import os

    import torch

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return {"cores": cores, "torch_intra_op": torch.get_num_threads(), "xla_cpu_pool": cores}


def matmul_peak(sizes: tuple[int, ...] = (1024, 2048)) -> dict[str, float]:
    """This machine's float32 matmul throughput in GFLOP/s, measured now (JAX at 'highest' precision, PyTorch at
    one thread and at its default): ``peak_gflops`` is the best of them, the yardstick of compute-bound rows."""
    import jax
    import jax.numpy as jnp
    import numpy as np
    import torch

    out: dict[str, float] = {}
    dot = jax.jit(lambda x: jnp.dot(x, x, precision="highest"))
    for n in sizes:
        a = np.random.default_rng(0).standard_normal((n, n)).astype(np.float32)
        ja = jnp.asarray(a)
        out[f"jax_dot_{n}"] = 2 * n**3 / seconds(lambda ja=ja: dot(ja).block_until_ready(), rounds=5) / 1e9
        ta = torch.from_numpy(a)
        default_threads = torch.get_num_threads()
        try:
            for t in sorted({1, default_threads}):
                torch.set_num_threads(t)
                out[f"torch_mm_{n}_t{t}"] = 2 * n**3 / seconds(lambda ta=ta: torch.mm(ta, ta), rounds=5) / 1e9
        finally:
            torch.set_num_threads(default_threads)
    out["peak_gflops"] = max(out.values())
    return out


CORE_HOP = r"""
import multiprocessing, os, sys, time
from multiprocessing import shared_memory
import numpy as np

def side(name, core, first, hops):
    os.sched_setaffinity(0, {core})
    shm = shared_memory.SharedMemory(name=name)
    flag = np.ndarray((1,), np.int64, buffer=shm.buf)
    for i in range(first, hops, 2):
        while flag[0] != i:
            pass
        flag[0] = i + 1
    del flag
    shm.close()

if __name__ == "__main__":
    cores, hops = (int(sys.argv[1]), int(sys.argv[2])), int(sys.argv[3])
    shm = shared_memory.SharedMemory(create=True, size=64)
    flag = np.ndarray((1,), np.int64, buffer=shm.buf)
    flag[0] = -1
    fork = multiprocessing.get_context("fork")  # `side` lives in this -c script: a spawned child cannot import it
    sides = [fork.Process(target=side, args=(shm.name, core, k, hops)) for k, core in enumerate(cores)]
    for p in sides:
        p.start()
    time.sleep(0.2)
    t0 = time.perf_counter()
    flag[0] = 0
    for p in sides:
        p.join()
    print((time.perf_counter() - t0) / hops * 1e9)
    del flag
    shm.close()
    shm.unlink()
"""


def core_hop_ns(
    cores: tuple[int, int] | None = None, hops: int = 50_000, timeout_s: float = 60.0
) -> float | None:
    """Nanoseconds for one hand-off of a shared counter between two processes pinned to two cores (the first
    two this process may run on, unless ``cores``), measured in a fresh interpreter: each side spins in Python
    until the counter is its own, then passes it on. Python's own loop is most of it (about 160-180 ns per
    hop on a 2-core AMD EPYC VM); what varies is the cores' distance. On that VM the hop took 240-380 ns in
    the stretches where XLA's two-thread programs ran 1.6x slower (the batched CEM learned dynamics: 70-87 ms
    against 46 ms per call) and 160-180 ns otherwise, while single-thread work on either core kept its speed:
    the host placing the two vCPUs farther apart. A figure of the machine's state, printed beside the rows it
    affects; None where the process has fewer than two cores or no CPU affinity, and None when the hand-offs
    did not finish within ``timeout_s`` (a machine so loaded that each hop waits for a time slice; the
    interpreter and both sides are killed). Runs its own interpreter so that forking never copies a
    multi-threaded runtime (XLA's, PyTorch's)."""
    import os
    import signal
    import subprocess
    import sys

    if cores is None:
        if not hasattr(os, "sched_getaffinity"):
            return None
        mine = sorted(os.sched_getaffinity(0))
        if len(mine) < 2:
            return None
        cores = (mine[0], mine[1])
    # its own session, so that a timeout stops the two spinning sides as well as the interpreter that forked them
    proc = subprocess.Popen(
        [sys.executable, "-c", CORE_HOP, str(cores[0]), str(cores[1]), str(hops)],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        out, err = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.communicate()
        return None
    if proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, proc.args, out, err)
    return float(out.strip().splitlines()[-1])
