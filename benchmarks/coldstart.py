"""Cold start of a JAX workload in a fresh interpreter, shared by the subsystem benchmark modules.

The child imports JAX, runs the workload's ``setup`` code (project imports, loading weights, inputs), then
times the first call (trace + XLA compile + run, with the compile seconds reported by ``jax.monitoring``)
and ``calls`` steady-state calls. Reported: import, setup and first-call seconds, compile seconds and
count, steady median, coefficient of variation, first/steady ratio, and compilations after the first call
(a steady state that recompiles shows here). The child starts in a temporary directory, so it imports the
project from the environment (under asv, the commit being benchmarked), never from the working tree.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from conformance.compiles import COMPILE_EVENT  # the event the harness counts compilations by

CHILD = r"""
import json, statistics, sys, time
t0 = time.perf_counter()
import jax
import jax.monitoring
compiles = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **_: compiles.append(secs) if name == sys.argv[4] else None
)
import_s = time.perf_counter() - t0
ns = {"jax": jax}
t = time.perf_counter()
exec(sys.argv[1], ns)
setup_s = time.perf_counter() - t
call = compile(sys.argv[2], "<call>", "exec")
n_setup = len(compiles)
t = time.perf_counter()
exec(call, ns)
first_s = time.perf_counter() - t
first_compiles = compiles[n_setup:]
steady = []
for _ in range(int(sys.argv[3])):
    t = time.perf_counter()
    exec(call, ns)
    steady.append(time.perf_counter() - t)
med = statistics.median(steady)
print(json.dumps({
    "import_s": import_s, "setup_s": setup_s, "first_s": first_s,
    "first_compile_s": sum(first_compiles), "first_compiles": len(first_compiles),
    "steady_median_s": med, "steady_cv": statistics.pstdev(steady) / statistics.fmean(steady),
    "first_over_steady": first_s / med, "steady_compiles": len(compiles) - n_setup - len(first_compiles),
}))
"""


def cold_start(setup: str, call: str, calls: int = 20, env: dict[str, str] | None = None) -> dict[str, float]:
    """Run ``setup`` once and ``call`` (a statement that blocks on its result) ``1 + calls`` times in a fresh
    interpreter; the figures described in the module docstring."""
    out = subprocess.run(
        [sys.executable, "-c", CHILD, setup, call, str(calls), COMPILE_EVENT],
        cwd=tempfile.gettempdir(),
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,  # raised below with the child's stderr
    )
    if out.returncode != 0:
        raise RuntimeError(f"cold-start child failed (exit {out.returncode}):\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


class _ColdStartTracks:
    """asv ``track_*`` methods over a `cold_start` result. A subclass provides ``setup_cache`` and, where the
    result is one entry of a larger cache, overrides `cold`. (The leading underscore keeps asv from
    collecting this base class itself as a benchmark.)"""

    def cold(self, cached: dict) -> dict[str, float]:
        return cached

    def track_cold_load_s(self, cached: dict) -> float:
        """Seconds of the workload's setup in the fresh interpreter (project imports, loading weights)."""
        return self.cold(cached)["setup_s"]

    def track_cold_first_call_s(self, cached: dict) -> float:
        """Seconds of the first call: trace + XLA compile + run."""
        return self.cold(cached)["first_s"]

    def track_cold_compile_s(self, cached: dict) -> float:
        """XLA compile seconds within the first call (jax.monitoring)."""
        return self.cold(cached)["first_compile_s"]

    def track_cold_first_over_steady(self, cached: dict) -> float:
        """First call over the steady-state median."""
        return self.cold(cached)["first_over_steady"]

    def track_steady_cv(self, cached: dict) -> float:
        """Coefficient of variation of the steady-state calls."""
        return self.cold(cached)["steady_cv"]

    def track_steady_recompiles(self, cached: dict) -> int:
        """Compilations after the first call (a steady state that recompiles; must be 0)."""
        return int(self.cold(cached)["steady_compiles"])

    track_cold_load_s.unit = "seconds"  # type: ignore[attr-defined]
    track_cold_first_call_s.unit = "seconds"  # type: ignore[attr-defined]
    track_cold_compile_s.unit = "seconds"  # type: ignore[attr-defined]
    track_cold_first_over_steady.unit = "ratio"  # type: ignore[attr-defined]
    track_steady_cv.unit = "ratio"  # type: ignore[attr-defined]
    track_steady_recompiles.unit = "compilations"  # type: ignore[attr-defined]
