"""The asv suite in `benchmarks/` is well formed and safe to pre-import.

asv's forkserver imports every benchmark module into one process and forks a child per benchmark, so a
module that configures JAX at import (x64, a platform) or starts its backend changes every other
subsystem's benchmarks (gcm used to turn x64 on for the float32 cem/vae/anomaly benchmarks) and makes the
forks unsafe. `asv check` validates what discovery sees: that every module imports, and the argument
counts of ``setup``/``setup_cache``/benchmark methods against ``params`` (counts only: with a
``setup_cache`` it accepts one argument fewer, so a dropped last parameter passes; an extra one fails).
Both tests were seen failing on those mutations (x64 switched on at gcm's import; an extra argument).
"""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

PROBE = """
import json
import re
import benchmarks.gcm, benchmarks.cem, benchmarks.vae, benchmarks.anomaly
import jax
from jax._src import xla_bridge
print(json.dumps({"backends": xla_bridge.backends_are_initialized(), "x64": bool(jax.config.jax_enable_x64)}))
"""


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("JAX_ENABLE_X64", "JAX_PLATFORMS")}
    env["JAX_PLATFORMS"] = "cpu"
    # asv discards PYTHONPATH and reads ASV_PYTHONPATH instead: this checkout's packages come first, so the
    # check imports the project as it is here even where another copy of it is installed in the environment
    env["ASV_PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("ASV_PYTHONPATH", "")) if p)
    return env


def test_importing_every_benchmark_module_leaves_jax_unconfigured() -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE], cwd=ROOT, env=_env(), capture_output=True, text=True, check=True
    )
    state = json.loads(out.stdout.strip().splitlines()[-1])
    assert state == {"backends": False, "x64": False}, (
        f"importing the benchmark modules changed JAX's process state: {state}; configure JAX in setup()"
    )


def test_asv_check_finds_no_problems() -> None:
    pytest.importorskip("asv")
    out = subprocess.run(
        [sys.executable, "-m", "asv", "check", "--python=same", "--config", str(ROOT / "asv.conf.json")],
        cwd=ROOT,
        env=_env(),
        capture_output=True,
        text=True,
        check=False,  # the assertion shows asv's output
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "No problems found" in out.stdout, out.stdout + out.stderr


def test_the_convolution_limit_reproducer_computes_one_convolution_every_way() -> None:
    """`benchmarks.conv_limit` compares six JAX forms of the same convolution (the Winograd one included):
    they must be that convolution (against a float64 NumPy sum over the 27 taps), or its table would compare
    different work. Odd output sizes (4 x 5) exercise the Winograd form's padded tiles."""
    import jax
    import numpy as np

    from benchmarks import conv_limit
    from conformance.exactness import assert_within

    rng = np.random.default_rng(0)
    x = rng.standard_normal((1, 5, 6, 7, 3)).astype(np.float32)
    k = rng.standard_normal((3, 3, 3, 3, 4)).astype(np.float32)
    expected = np.zeros((1, 3, 4, 5, 4))
    for a in range(3):
        for i in range(3):
            for j in range(3):
                expected += x[:, a : a + 3, i : i + 4, j : j + 5].astype(np.float64) @ k[a, i, j].astype(
                    np.float64
                )
    for name, f in conv_limit.forms().items():
        got = np.asarray(jax.block_until_ready(f(jax.numpy.asarray(x), jax.numpy.asarray(k))))
        assert got.shape == expected.shape, name
        assert_within(expected.astype(np.float32), got, "perfect")


# Attributes that asv reads from a benchmark, then its class, then its module (asv_runner's
# `_get_first_attr`): a module-level name such as ``timer`` (an imported module) silently becomes every
# benchmark's clock, and every time_* benchmark fails at run time while `asv check` still passes.
ASV_SETTINGS = (
    "timer",
    "number",
    "repeat",
    "rounds",
    "sample_time",
    "warmup_time",
    "min_run_count",
    "timeout",
)


def test_no_benchmark_inherits_a_wrong_asv_setting_from_its_module_or_class() -> None:
    import importlib
    import inspect
    import numbers

    for path in sorted((ROOT / "benchmarks").glob("*.py")):
        if path.name.startswith("_"):
            continue
        module = importlib.import_module(f"benchmarks.{path.stem}")
        owners: list[object] = [module]
        owners += [
            c for _, c in inspect.getmembers(module, inspect.isclass) if c.__module__ == module.__name__
        ]
        for owner in owners:
            for name in ASV_SETTINGS:
                value = getattr(owner, name, None)
                if value is None:
                    continue
                where = module.__name__ + ("" if owner is module else f".{owner.__name__}") + f".{name}"  # type: ignore[attr-defined]
                if name == "timer":
                    assert callable(value) and isinstance(value(), float), (
                        f"{where} is not a clock: {value!r}"
                    )
                else:  # a number; ``repeat`` may be asv's (min_repeat, max_repeat, max_time)
                    items = value if name == "repeat" and isinstance(value, tuple) else (value,)
                    assert all(isinstance(v, numbers.Real) for v in items), (
                        f"{where} is not a number: {value!r}"
                    )


def test_asv_runs_a_time_benchmark_to_a_number(tmp_path) -> None:
    """asv's own runner on one cheap benchmark, in this environment (`asv run --python=same`): it fails when
    asv cannot time the suite's benchmarks at all (seen: a module-level ``timer`` import became asv's clock).

    asv refuses to run on a machine it has no ``~/.asv-machine.json`` for (a fresh clone on a fresh machine,
    seen failing this test), so the run registers a machine of its own in a temporary home directory."""
    pytest.importorskip("asv")
    env = {**_env(), "HOME": str(tmp_path)}
    subprocess.run(
        [sys.executable, "-m", "asv", "machine", "--yes", "--machine", "parity-test"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        check=True,
    )
    out = subprocess.run(
        [
            *(sys.executable, "-m", "asv", "run", "--python=same", "--quick", "--dry-run", "--show-stderr"),
            *("--machine", "parity-test"),
            *(
                "--bench",
                r"gcm[.]TimeHyperdiffusion[.]time_hyperdiffuse",
                "--config",
                str(ROOT / "asv.conf.json"),
            ),
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    text = out.stdout + out.stderr
    assert out.returncode == 0, text
    assert "failed" not in text and re.search(r"jax\s+[\d.]+±[\d.]+[mμu]?s", text), text


def test_gate_trials_read_asv_comparison_rows() -> None:
    """The gate trials judge asv's comparison table: asv 0.6's Markdown rows (with and without a change mark)
    are read, rows without a ratio (benchmarks not selected) are not."""
    from benchmarks import gate_trials

    table = """
| Change   | Before [d0e39d8f] <main>   | After [64cd4fcf] <gate-trial/same-1>   | Ratio   | Benchmark (Parameter) |
|----------|----------------------------|----------------------------------------|---------|-----------------------|
|          | 279\u00b120\u03bcs                   | 285\u00b110\u03bcs                               | 1.02    | anomaly.Latency.time_call('jax-export', 1) |
| +        | 4.55\u00b10.07ms                | 6.31\u00b10.08ms                            | 1.39    | cem.TimePipeline.time_predict_controls |
|          | n/a                        | n/a                                    | n/a     | anomaly.Latency.time_call('torch-eager', 1) |
"""
    rows = gate_trials.parse(table)
    assert [(r["mark"], r["ratio"], r["bench"]) for r in rows] == [
        ("", 1.02, "anomaly.Latency.time_call('jax-export', 1)"),
        ("+", 1.39, "cem.TimePipeline.time_predict_controls"),
    ]


def test_gate_trials_count_a_flag_on_an_untouched_benchmark_as_a_false_alarm() -> None:
    """Seen in a trial: the slowdown trial failed, but on an untouched benchmark (noise), while the slowed-down
    one was not flagged. That is a false alarm and a miss, not a detection."""
    from benchmarks import gate_trials

    def row(bench: str, ratio: float, mark: str = "") -> dict:
        return {"mark": mark, "before": "1ms", "after": "1ms", "ratio": ratio, "bench": bench}

    injected = gate_trials.INJECTED
    noisy = "anomaly.Latency.time_call('jax-export', 1)"
    same = {"trial": "gate-trial/same-1", "exit": 0, "rows": [row(injected, 1.01), row(noisy, 1.1)]}
    slow = {"trial": "gate-trial/slow", "exit": 1, "rows": [row(injected, 1.34), row(noisy, 1.24, "+")]}
    v = gate_trials.verdict([same, slow])
    assert (v["false_alarms"], v["detected"], v["injected_ratio"]) == (1, False, 1.34)
    slow["rows"] = [row(injected, 1.34, "+"), row(noisy, 1.02)]
    v = gate_trials.verdict([same, slow])
    assert (v["false_alarms"], v["detected"], v["same_failed"]) == (0, True, [])


def test_instruction_trials_inject_one_operation_that_keeps_the_values() -> None:
    """The instruction gate's slowdown trial changes the pendulum's dynamics step so that it computes the same
    values with one operation more, which XLA keeps in the compiled program (a tanh it cannot fold away)."""
    import importlib.util

    import jax
    import numpy as np

    from benchmarks import instruction_trials as trials
    from implementations.cem import tasks

    source = (ROOT / trials.INJECTED_PATH).read_text(encoding="utf-8")
    slow = trials.injected_source(source)
    assert slow.count(trials.INJECTED_NEW) == 1 and trials.INJECTED_OLD not in slow
    spec = importlib.util.spec_from_loader("injected_tasks", loader=None)
    injected = importlib.util.module_from_spec(spec)
    exec(compile(slow, "injected_tasks", "exec"), injected.__dict__)
    x, u = np.array([0.3, -1.2], np.float32), np.array([0.7], np.float32)
    programs, values = {}, {}
    for name, module in (("as is", tasks), ("injected", injected)):
        fn = jax.jit(lambda x, u, m=module: m.step("pendulum", x, u, 0.05))
        values[name] = np.asarray(fn(x, u))
        programs[name] = fn.lower(x, u).compile().as_text()
    # two compiled programs: equal up to float32 rounding (a fused multiply-add may differ by an ulp)
    np.testing.assert_allclose(values["injected"], values["as is"], rtol=1e-6)
    assert "tanh" in programs["injected"] and "tanh" not in programs["as is"]
    with pytest.raises(SystemExit, match="cannot find the pendulum's step"):
        trials.injected_source(slow)


def test_instruction_trials_count_an_untouched_kernel_flagged_as_a_false_alarm() -> None:
    """A kernel flagged in a same-code trial, or in the slowdown trial but not the injected one, is a false
    alarm; the slowdown is caught only when the injected kernel itself is flagged."""
    from benchmarks import instruction_trials as trials

    def counts(**per_call: float) -> dict:
        return {k.replace("_", "."): {"per_call": v} for k, v in per_call.items()}

    base = counts(one_fusion=1000.0, cem_plan_pendulum=2000.0)
    same = trials.trial("same-1", base, counts(one_fusion=1003.0, cem_plan_pendulum=2001.0), 1.02)
    slow = trials.trial("slow", base, counts(one_fusion=1000.0, cem_plan_pendulum=2100.0), 1.02)
    assert slow["flagged"] == ["cem.plan.pendulum"] and slow["ratios"]["cem.plan.pendulum"] == 1.05
    v = trials.verdict([same, slow], injected="cem.plan.pendulum")
    assert (v["false_alarms"], v["detected"], v["injected_ratio"], v["same_trials"]) == (0, True, 1.05, 1)
    assert v["largest_untouched_move"] == pytest.approx(0.003)
    noisy = trials.trial("same-2", base, counts(one_fusion=1030.0, cem_plan_pendulum=2000.0), 1.02)
    missed = trials.trial("slow", base, counts(one_fusion=1025.0, cem_plan_pendulum=2010.0), 1.02)
    v = trials.verdict([same, noisy, missed], injected="cem.plan.pendulum")
    assert v["false_alarms"] == 2 and not v["detected"]
    assert v["flagged_untouched"] == ["same-2: one.fusion", "slow: one.fusion"]


def test_the_timer_lead_in_calls_start_every_sample_untimed() -> None:
    """``lead_in`` untimed calls precede the ``number`` timed calls of every sample, so a sample's time is the
    timed calls' only: a callable whose first two calls of each sample are slow measures as fast."""
    import time

    from benchmarks import timer as timing

    state = {"calls": 0, "since_other": 0}

    def other() -> None:
        state["since_other"] = 0

    def slow_start() -> None:
        state["calls"] += 1
        state["since_other"] += 1
        if state["since_other"] <= 2:  # the first two calls after another callable ran
            time.sleep(0.02)

    t = timing.measure(
        {"slow_start": slow_start, "other": other}, rounds=3, sample_s=0.0, warmup=1, lead_in=2
    )
    assert t["slow_start"].number == 1 and max(t["slow_start"].samples) < 0.01
    without = timing.measure({"slow_start": slow_start, "other": other}, rounds=3, sample_s=0.0, lead_in=0)
    assert min(without["slow_start"].samples) >= 0.02
    with pytest.raises(ValueError, match="lead_in must be >= 0"):
        timing.measure({"other": other}, lead_in=-1)


def test_the_timer_calibrates_on_the_median_of_several_calls_not_on_one_slow_call() -> None:
    """A callable whose first call after the warm-up is slow (first-touch costs after a JAX compile) gets as
    many calls per sample as its steady time allows: calibrated on that one slow call, a sample held 2 calls
    where it should hold about 25."""
    from benchmarks import timer as timing

    state = {"calls": 0, "now": 0.0}

    def slow_then_steady() -> None:  # advances a fake clock: the test does not depend on real sleeps
        state["calls"] += 1
        state["now"] += 0.02 if state["calls"] <= 2 else 0.002

    def clock() -> float:
        return state["now"]

    number = timing.calibrate(slow_then_steady, sample_s=0.05, warmup=1, clock=clock)
    assert state["calls"] == 1 + timing.CALIBRATION_CALLS
    assert 15 <= number <= 25
    # a call that already fills a sample is timed once
    state["calls"] = 0
    assert (
        timing.calibrate(slow_then_steady, sample_s=0.01, warmup=1, clock=clock) == 1 and state["calls"] == 2
    )


def test_paced_calls_keep_a_fixed_schedule_and_start_late_calls_at_once() -> None:
    """`benchmarks.cem.paced_durations`: each call starts on its 20 ms slot (the waits make up for the
    calls' own durations), a call that overruns its slot is followed at once, and the schedule then stays
    where it was (no drift); period 0 never sleeps."""
    from benchmarks.cem import paced_durations

    now = [0.0]
    starts: list[float] = []
    sleeps: list[float] = []
    work = [0.005, 0.03, 0.005, 0.002]

    def fn(i: int) -> None:
        starts.append(now[0])
        now[0] += work[i]

    def sleep(s: float) -> None:
        sleeps.append(s)
        now[0] += s

    out = paced_durations(fn, 4, 0.02, clock=lambda: now[0], sleep=sleep)
    assert out == pytest.approx(work)
    assert starts == pytest.approx([0.0, 0.02, 0.05, 0.06])
    assert sleeps == pytest.approx([0.015, 0.005, 0.018])
    now[0], starts[:], sleeps[:] = 0.0, [], []
    assert paced_durations(fn, 4, 0.0, clock=lambda: now[0], sleep=sleep) == pytest.approx(work)
    assert sleeps == [] and starts == pytest.approx([0.0, 0.005, 0.035, 0.04])


def test_onnxruntime_op_profile_names_the_fused_attention(tmp_path, monkeypatch) -> None:
    """The profile behind the onnxruntime row: per-operator times from onnxruntime's profiler,
    the four attentions as fused Attention nodes, and no profile file left in the working directory."""
    from benchmarks import anomaly

    monkeypatch.chdir(tmp_path)
    rows = anomaly.onnxruntime_op_profile(B=2, runs=2)
    ops = {op: (us, n) for op, us, n in rows}
    assert ops["Attention"][1] == 4 and "Softmax" not in ops
    assert all(us > 0 and n >= 1 for us, n in ops.values())
    assert [us for _, us, _ in rows] == sorted((us for _, us, _ in rows), reverse=True)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="no CPU affinity on this platform")
def test_gcm_one_core_rows_take_jax_from_the_pinned_child_and_numpy_at_its_best(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """`benchmarks.gcm.one_core_rows` runs ``python -m benchmarks.gcm --pin CORE`` from the repository and
    judges the child's JAX time against the faster of the two NumPy times (the child's, slowed by sharing
    its core with XLA's threads, or this process's)."""
    from benchmarks import gcm

    seen: list[tuple[list[str], str]] = []

    def fake_run(cmd: list[str], **kw: object) -> subprocess.CompletedProcess:
        seen.append((cmd, str(kw["cwd"])))
        path = cmd[cmd.index("--json") + 1]
        pinned = [
            {"quantity": "hyperdiffusion 121x240", "numpy_s": 0.5, "jax_s": 0.2, "target": 2.0},
            {"quantity": "step 121x240 float64", "numpy_s": 12.0, "jax_s": 3.0, "target": 3.0},
        ]
        Path(path).write_text(json.dumps({"rows": pinned}))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(gcm.subprocess, "run", fake_run)
    here = [
        {"quantity": "hyperdiffusion 121x240", "numpy_s": 0.4, "jax_s": 0.25, "target": 2.0},
        {"quantity": "step 121x240 float64", "numpy_s": 8.7, "jax_s": 3.3, "target": 3.0},
    ]
    rows = gcm.one_core_rows(here, quick=True)
    core = max(os.sched_getaffinity(0))
    [(cmd, cwd)] = seen
    assert cmd[1:5] == ["-m", "benchmarks.gcm", "--pin", str(core)] and "--quick" in cmd
    assert Path(cwd) == ROOT
    got = {
        r["quantity"]: (r["numpy_s"], r["numpy_same_core_s"], r["jax_s"], r["ratio"], r["pass"]) for r in rows
    }
    assert got == {
        "hyperdiffusion 121x240 [JAX on one core]": (0.4, 0.5, 0.2, pytest.approx(2.0), True),
        "step 121x240 float64 [JAX on one core]": (8.7, 12.0, 3.0, pytest.approx(2.9), False),
    }


def test_gcm_memory_row_pairs_each_run_with_the_memory_malloc_held(monkeypatch: pytest.MonkeyPatch) -> None:
    """The default-malloc memory row reports each run's growth beside the freed memory malloc still held at
    the end of that run (the runner's ``malloc_free_held_growth_bytes``), both in the same run order."""
    from benchmarks import gcm

    mib = 2**20
    runs = {"numpy": [(25, -3), (24, -4), (26, -2)], "jax": [(88, 88), (53, 52), (70, 70)]}
    calls = {b: iter(v) for b, v in runs.items()}

    def fake_memory(backend: str, steps: int, exact_rss: bool) -> dict:
        peak, held = next(calls[backend])
        return {
            "peak_rss_above_baseline_bytes": peak * mib,
            "malloc_free_held_growth_bytes": held * mib,
            "per_step_median_s": 0.1,
        }

    monkeypatch.setattr(gcm, "runner_memory", fake_memory)
    row = gcm._memory_row(steps=20, exact_rss=False)
    assert row["jax_bytes"] == 70 * mib and row["numpy_bytes"] == 25 * mib
    assert row["jax_bytes_each"] == [53 * mib, 70 * mib, 88 * mib]
    assert row["jax_malloc_free_held_growth_each"] == [52 * mib, 70 * mib, 88 * mib]
    assert row["numpy_malloc_free_held_growth_each"] == [-4 * mib, -3 * mib, -2 * mib]
    text = gcm._format_row(row)
    assert "each run, MiB: NumPy 24.0, 25.0, 26.0; JAX 53.0, 70.0, 88.0" in text
    assert "malloc still held at the end, MiB: NumPy -4.0, -3.0, -2.0; JAX 52.0, 70.0, 88.0" in text
    row["jax_malloc_free_held_growth_each"] = [None, None, None]  # no mallinfo2: the line is left out
    assert "malloc still held" not in gcm._format_row(row)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity"), reason="needs CPU affinity")
def test_pinned_steady_state_times_the_floor_after_each_call(tmp_path) -> None:
    """`benchmarks.cem.steady_state_pinned`: the pinned child times every pipeline call and, after each, the
    fixed NumPy workload and the one-fusion XLA program, each sized to the settled call; all three come back
    summarised, one sample per call."""
    from benchmarks import cem

    art = cem.export_pendulum(tmp_path / "pendulum")
    calls = 7
    res = cem._child(cem.STEADY_PINNED, art, max(os.sched_getaffinity(0)), calls)
    assert len(res["calls"]) == len(res["floor"]) == len(res["xla_floor"]) == calls
    assert all(t > 0 for t in res["calls"] + res["floor"] + res["xla_floor"])
    out = cem.steady_state_pinned(art, calls)
    assert out["cpu"] == max(os.sched_getaffinity(0))
    for summary in (out, out["floor"], out["xla_floor"]):
        assert summary["median_s"] > 0 and math.isfinite(summary["cv"])


def test_dispatch_memory_reproducer_runs_each_mode_and_reports_the_block() -> None:
    """`benchmarks.dispatch_memory`: each mode runs in its own interpreter and reports the temporary block it
    steps (JAX: XLA's own figure, at least the part of the state it covers; NumPy: that part), the growth,
    and malloc's held memory where glibc is there to ask; an unknown mode is refused before anything runs."""
    from benchmarks import dispatch_memory

    covered = int(1.0 * 2**20 / 8) * 8
    for mode in dispatch_memory.MODES:
        r = dispatch_memory.run_once(mode, 1.0, 3)
        assert r["block_bytes"] >= covered if mode.startswith("jax") else r["block_bytes"] == covered
        assert r["growth_bytes"] >= 0
        if sys.platform.startswith("linux"):
            assert r["held_bytes"] is not None
    with pytest.raises(ValueError, match="mode must be one of"):
        dispatch_memory.run_once("jax-eager", 1.0, 3)


def test_learned_batched_reports_its_slice_tier_and_a_fraction_per_round(monkeypatch) -> None:
    """`benchmarks.cem.learned_batched` at a small size: problem 0 of the vmapped planner matches a single
    ``optimize`` call to the strictest graded tier (the batched matmuls may round differently), and the
    interleaved yardstick gives one positive fraction per round, whose median is the reported figure (a
    smaller square matmul keeps the test short)."""
    from benchmarks import cem

    monkeypatch.setattr(cem, "INTERLEAVED_DOT_N", 256)
    r = cem.learned_batched(problems=2, repeats=3, hidden=(16, 16))
    assert r["problems"] == 2 and r["slice_tier"] in ("exact", "perfect")
    low, high = r["fraction_of_interleaved_dot_range"]
    assert 0 < low <= r["fraction_of_interleaved_dot"] <= high
    assert len(r["core_hop_ns"]) == 2  # before and after; each None where the probe cannot run (below)
    assert all(hop is None or 0 < hop < 1e6 for hop in r["core_hop_ns"])


def test_core_hop_passes_a_counter_between_two_cores_and_needs_two(monkeypatch) -> None:
    """`benchmarks.timer.core_hop_ns`: a positive, bounded hand-off time between two cores, for a short run;
    None where the process may use one core only. Its negative control hands the counter on wrongly (two ahead),
    so that the second side never sees its turn: the probe gives None at its timeout and leaves no spinning
    process."""
    from benchmarks import timer

    if not hasattr(os, "sched_getaffinity") or len(os.sched_getaffinity(0)) < 2:
        pytest.skip("needs two cores and CPU affinity")
    hop = timer.core_hop_ns(hops=2000, timeout_s=60)
    assert hop is not None and 0 < hop < 1e6
    marker = f"# negative control {os.getpid()}"
    broken = timer.CORE_HOP.replace("flag[0] = i + 1", "flag[0] = i + 2") + marker
    assert broken != timer.CORE_HOP + marker
    monkeypatch.setattr(timer, "CORE_HOP", broken)
    assert timer.core_hop_ns(hops=2000, timeout_s=2) is None
    left = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                left += [pid] if marker.encode() in f.read() else []
        except OSError:
            pass
    assert not left, f"spinning sides left behind: {left}"
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0}, raising=False)
    assert timer.core_hop_ns() is None


def test_instruction_counts_read_each_threads_totals_and_refuse_a_file_without_them(tmp_path) -> None:
    """`benchmarks.instructions.thread_counts`: callgrind's ``--separate-threads`` files ``<prefix>-NN`` give
    one count per thread (their ``totals:`` lines; ``summary:`` reads 0 when instrumentation was switched on
    during the run), the main thread's under 1; a file without a totals line, or no main-thread file, is
    refused by name."""
    from benchmarks import instructions

    prefix = tmp_path / "k.20"
    (tmp_path / "k.20-01").write_text(
        "version: 1\ncmd: python k.py 20\nsummary: 9706042186\ntotals: 9706042186\n"
    )
    (tmp_path / "k.20-02").write_text("version: 1\nsummary: 0\ntotals: 163000000\n")
    (tmp_path / "k.60-01").write_text("totals: 1\n")  # another run's file: not read
    assert instructions.thread_counts(prefix) == {1: 9706042186, 2: 163000000}
    (tmp_path / "k.20-03").write_text("version: 1\nsummary: 5\n")
    with pytest.raises(ValueError, match=r"k\.20-03 has no 'totals:' line"):
        instructions.thread_counts(prefix)
    with pytest.raises(ValueError, match="no callgrind output for the main thread"):
        instructions.thread_counts(tmp_path / "other")


CALLGRIND_THREAD = """version: 1
creator: callgrind-3.19.0
positions: line
events: Ir
summary: 0

ob=(1) /lib/libc.so.6
fl=(1) malloc.c
fn=(1) malloc
10 400
+2 100
cfn=(2) Eigen::ThreadPoolTempl<tsl::thread::EigenEnvironment>::MaybeGetTask(Task*)
calls=3 7
* 9000
fn=(2)
5 7000
fn=(3) _PyEval_EvalFrameDefault
1 1000
cfn=(1)
calls=1 10
0 500
-1 1
+4
fn=(1)
12 {more}

totals: {totals}
"""


def test_instruction_function_costs_read_callgrinds_format_and_leave_out_the_pool(tmp_path) -> None:
    """`benchmarks.instructions.function_costs` reads each function's own instructions from a callgrind file
    (names given once by id, reused by id; the line after ``calls=`` is the callee's inclusive cost and is
    not the caller's), and they add up to the file's totals; `counted` sums every thread's files without
    the thread pool's functions (its spinning varies from run to run). A file whose sum disagrees with its
    totals, or that uses a function id before naming it, is refused."""
    from benchmarks import instructions

    (tmp_path / "k-01").write_text(CALLGRIND_THREAD.format(more=50, totals=8551))
    costs = instructions.function_costs(tmp_path / "k-01")
    pool = "Eigen::ThreadPoolTempl<tsl::thread::EigenEnvironment>::MaybeGetTask(Task*)"
    assert costs == {"malloc": 550, pool: 7000, "_PyEval_EvalFrameDefault": 1001}
    (tmp_path / "k-02").write_text(CALLGRIND_THREAD.format(more=0, totals=8501))
    assert instructions.counted(tmp_path / "k") == (550 + 1001) + (500 + 1001)
    (tmp_path / "k-03").write_text(CALLGRIND_THREAD.format(more=0, totals=9000))
    with pytest.raises(ValueError, match=r"k-03: the functions' costs do not add up"):
        instructions.counted(tmp_path / "k")
    (tmp_path / "k-03").write_text(
        CALLGRIND_THREAD.format(more=0, totals=8501).replace("fn=(1) malloc", "fn=(1)")
    )
    with pytest.raises(ValueError, match=r"function \(1\) is used before it is named"):
        instructions.function_costs(tmp_path / "k-03")
    with pytest.raises(ValueError, match="no callgrind output"):
        instructions.counted(tmp_path / "other")


def test_instructions_per_call_difference_two_runs_and_flag_growth_beyond_the_factor(monkeypatch) -> None:
    """`benchmarks.instructions.per_call` is the count of the longer run minus the shorter one over the extra
    calls (the start-up cancels), at the kernel's own call counts by default; `regressions` flags a kernel
    whose count per call grew by more than the factor and passes one within it; bad arguments and a missing
    valgrind are refused clearly."""
    from benchmarks import instructions

    start_up, cost = 9_700_000_000, 2_300_000
    runs = []

    def fake_count(kernel, calls, workdir, source=None):
        runs.append(calls)
        return start_up + calls * cost

    monkeypatch.setattr(instructions, "count", fake_count)
    monkeypatch.setattr(instructions, "toggles", lambda: False)  # every instruction counted: two runs
    r = instructions.per_call("one-fusion", 20, 60)
    assert r["per_call"] == cost and r["count_high"] - r["count_low"] == 40 * cost
    kernel = instructions.KERNELS["vae.resnet_block.32ch"]
    r = instructions.per_call("vae.resnet_block.32ch")
    assert (r["low"], r["high"]) == (kernel.low, kernel.high) and r["per_call"] == cost
    # only the calls counted: one run of the kernel's calls, none of 0 calls
    monkeypatch.setattr(instructions, "toggles", lambda: True)
    monkeypatch.setattr(
        instructions, "count", lambda kernel, calls, workdir, source=None: runs.append(calls) or calls * cost
    )
    runs.clear()
    r = instructions.per_call("vae.resnet_block.32ch")
    assert runs == [kernel.high] and (r["low"], r["count_low"], r["per_call"]) == (0, 0, cost)
    base = {"one-fusion": {"per_call": 2_300_000}, "gcm.hyperdiffusion.121x240": {"per_call": 670_000}}
    now = {"one-fusion": {"per_call": 2_990_000}, "gcm.hyperdiffusion.121x240": {"per_call": 675_000}}
    grown = instructions.regressions(base, now, 1.02)
    assert (
        len(grown) == 1 and grown[0].startswith("one-fusion: 2,300,000 -> 2,990,000") and "1.300x" in grown[0]
    )
    assert instructions.regressions(base, base, 1.02) == []
    with pytest.raises(ValueError, match="unknown kernel"):
        instructions.per_call("no-such-kernel")
    with pytest.raises(ValueError, match="need 0 <= low < high"):
        instructions.per_call("one-fusion", 60, 20)
    monkeypatch.undo()
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    assert instructions.main(["--kernel", "one-fusion"]) == 2
    assert instructions.main(["--kernel", "one-fusion", "--against", "HEAD"]) == 2


def test_instructions_against_a_commit_measures_its_worktree_and_gates_on_growth(
    tmp_path, monkeypatch, capsys
) -> None:
    """``--against REV`` measures each kernel in a git worktree of REV (here of a scratch repository, so the
    test does not depend on how this checkout was made) and in the working tree: a kernel that grew beyond
    the factor exits 1, one within it 0; a kernel that fails at REV (added since) has no base and does not
    fail the gate; an unknown REV is refused by name (exit 3). The worktree is gone afterwards."""
    from benchmarks import instructions

    repo = tmp_path / "repo"
    (repo / "benchmarks").mkdir(parents=True)
    env = {**os.environ, "GIT_AUTHOR_NAME": "t", "GIT_AUTHOR_EMAIL": "t@t.invalid"}
    env |= {"GIT_COMMITTER_NAME": "t", "GIT_COMMITTER_EMAIL": "t@t.invalid"}
    git = ["git", "-c", "init.defaultBranch=main"]
    subprocess.run([*git, "init", "-q"], cwd=repo, env=env, check=True)
    for version in ("one", "two"):
        (repo / "benchmarks" / "instructions.py").write_text(version)
        for cmd in (["add", "."], ["commit", "-qm", version]):
            subprocess.run([*git, *cmd], cwd=repo, env=env, check=True)
    monkeypatch.setattr(instructions, "ROOT", repo)
    trees = []

    def fake_per_call(kernel, low=None, high=None, source=None):
        if source is None:  # the working tree
            return {"low": 20, "high": 420, "per_call": {"one-fusion": 2_990_000}.get(kernel, 1_000_000)}
        root = source.path
        trees.append(root)
        assert source.packages["implementations"] == root / "implementations"
        assert (root / "benchmarks" / "instructions.py").read_text() == "one"  # the commit asked for
        if kernel == "cem.plan.pendulum":
            raise instructions.KernelFailed(f"kernel {kernel!r} failed in {root} (exit 1):\nImportError")
        return {"low": 20, "high": 420, "per_call": {"one-fusion": 2_300_000}.get(kernel, 1_000_000)}

    monkeypatch.setattr(instructions, "_valgrind", lambda: "valgrind")
    monkeypatch.setattr(instructions, "per_call", fake_per_call)
    argv = ["--against", "HEAD~1", "--kernel", "cem.plan.pendulum", "--kernel", "anomaly.detector.B1"]
    assert instructions.main(argv) == 0
    out = capsys.readouterr().out
    assert "anomaly.detector.B1" in out and "1.0000x" in out
    assert "cem.plan.pendulum                no base (kernel 'cem.plan.pendulum' failed in" in out
    assert instructions.main([*argv, "--kernel", "one-fusion"]) == 1
    assert "REGRESSION one-fusion: 2,300,000 -> 2,990,000" in capsys.readouterr().out
    assert instructions.main([*argv, "--kernel", "one-fusion", "--factor", "1.35"]) == 0
    assert trees and not any(tree.exists() for tree in trees)
    listed = subprocess.run(["git", "worktree", "list"], cwd=repo, capture_output=True, text=True, check=True)
    assert listed.stdout.count("\n") == 1  # the repository's own tree only
    assert instructions.main(["--against", "no-such-commit-xyz"]) == 3
    assert "'no-such-commit-xyz' is not a commit" in capsys.readouterr().err


def test_instructions_baseline_from_an_against_run_gates_on_the_tree_it_measured(
    tmp_path, monkeypatch, capsys
) -> None:
    """A JSON that ``--against`` wrote (``{"base", "current"}``, as `tox -e instructions` writes it) is a
    valid ``--baseline``: its measured tree's counts are compared, so growth beyond the factor exits 1
    instead of passing with no kernel compared; a flat JSON from a plain run works the same."""
    from benchmarks import instructions

    monkeypatch.setattr(
        instructions,
        "per_call",
        lambda kernel, low=None, high=None, root=None: {"low": 0, "high": 420, "per_call": 2_990_000},
    )
    counts = {"one-fusion": {"low": 0, "high": 420, "per_call": 2_300_000}}
    for name, data in (("against.json", {"base": {}, "current": counts}), ("plain.json", counts)):
        (tmp_path / name).write_text(json.dumps(data))
        argv = ["--kernel", "one-fusion", "--baseline", str(tmp_path / name)]
        assert instructions.main(argv) == 1
        assert "REGRESSION one-fusion: 2,300,000 -> 2,990,000" in capsys.readouterr().out
        assert instructions.main([*argv, "--factor", "1.35"]) == 0


def test_instruction_child_refuses_a_project_imported_from_another_tree(tmp_path) -> None:
    """The measured interpreter checks that the project's packages came from the tree it measures (with an
    editable install of another tree first on the path, that tree would be counted silently), and that a
    package the measured project lacks was not imported at all; with the right tree it runs its calls."""
    from benchmarks import instructions

    script = tmp_path / "child.py"
    marker = tmp_path / "calls"
    script.write_text(
        instructions.child_script(
            instructions.Kernel(
                "import benchmarks.timer\n"
                "def call():\n"
                f"    with open({str(marker)!r}, 'a') as fh:\n"
                "        fh.write('.')\n"
            )
        )
    )
    env = {**os.environ, "PYTHONPATH": str(instructions.ROOT), "JAX_PLATFORMS": "cpu"}
    other = instructions.tree(tmp_path)
    wrong = subprocess.run(
        [sys.executable, *other.argv(script, 3, False)], env=env, capture_output=True, text=True, check=False
    )
    assert wrong.returncode == 1 and "benchmarks was imported from" in wrong.stderr
    assert f"not from {os.path.realpath(tmp_path / 'benchmarks')}" in wrong.stderr and not marker.exists()
    right = subprocess.run(
        [sys.executable, *instructions.tree().argv(script, 3, False)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert right.returncode == 0, right.stderr
    assert marker.read_text() == "......"  # three warm-up calls, then the three counted
    # a project without a package (an older commit's layout, under asv) must not get one from elsewhere
    older = instructions.Source(instructions.ROOT, {**instructions.tree().packages, "benchmarks": None})
    absent = subprocess.run(
        [sys.executable, *older.argv(script, 3, False)], env=env, capture_output=True, text=True, check=False
    )
    assert absent.returncode == 1 and "the measured project has no benchmarks" in absent.stderr


def test_instruction_child_refuses_a_host_array_handed_to_jax_in_a_call(tmp_path) -> None:
    """XLA:CPU aliases a host array on a 64-byte boundary and copies any other, so a kernel that hands JAX a
    NumPy array in each call counts differently from process to process (the VAE block: +0.53% when its
    input was not aligned). The child fails such a kernel unless it declares ``host_inputs``; one that does
    can put its arrays on a boundary with ``aligned``, which copies values, dtype and shape."""
    from benchmarks import instructions

    setup = (
        "f = jax.jit(lambda a: a + 1)\n"
        "a = np.ones(4, np.float32)\n"
        "for src in (np.arange(12.0).reshape(3, 4)[:, 1:], np.arange(5, dtype=np.int8), np.float32(2)):\n"
        "    b = aligned(src)\n"
        "    assert b.ctypes.data % 64 == 0 and b.dtype == src.dtype and b.shape == np.shape(src)\n"
        "    assert (b == src).all()\n"
        "def call():\n"
        "    f(a).block_until_ready()\n"
    )
    env = {**os.environ, "PYTHONPATH": str(instructions.ROOT), **instructions.ENV}
    runs = {}
    for host_inputs in (False, True):
        script = tmp_path / f"child_{host_inputs}.py"
        script.write_text(instructions.child_script(instructions.Kernel(setup, host_inputs=host_inputs)))
        runs[host_inputs] = subprocess.run(
            [sys.executable, *instructions.tree().argv(script, 2, False)],
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
    assert runs[False].returncode == 1 and "Disallowed host-to-device transfer" in runs[False].stderr
    assert runs[True].returncode == 0, runs[True].stderr[-2000:]


def _stand_in_valgrind(tmp_path: Path, start_up: int, per_call: int) -> Path:
    """An executable standing in for valgrind: it runs the measured command natively and writes a callgrind
    main-thread file whose ``totals:`` is ``start_up + per_call * calls`` (the child's first argument)."""
    fake = tmp_path / "valgrind"
    fake.write_text(
        f"#!{sys.executable}\n"
        "import subprocess, sys\n"
        "args = sys.argv[1:]\n"
        "prefix = next(a.split('=', 1)[1] for a in args if a.startswith('--callgrind-out-file='))\n"
        "command = [a for a in args if not a.startswith('--')]\n"
        "rc = subprocess.run(command).returncode\n"
        f"open(prefix + '-01', 'w').write(f'totals: {{{start_up} + {per_call} * int(command[2])}}\\n')\n"
        "sys.exit(rc)\n"
    )
    fake.chmod(0o755)
    return fake


def test_instruction_count_reports_a_failing_kernel_with_its_stderr(tmp_path, monkeypatch) -> None:
    """`count` runs the kernel under valgrind (here a stand-in that runs the command and writes callgrind's
    per-thread summary) and reads the main thread's count; a kernel whose interpreter fails raises
    `KernelFailed` with the end of its stderr, not a bare CalledProcessError, and one whose setup cannot
    import what it names (an older commit) `KernelUnavailable`. asv's `TrackInstructions` skips the latter
    and a machine without valgrind, and fails on the former."""
    from benchmarks import instructions

    fake = _stand_in_valgrind(tmp_path, start_up=1000, per_call=7)
    real_valgrind = instructions._valgrind
    monkeypatch.setattr(instructions, "_valgrind", lambda: str(fake))
    monkeypatch.setattr(instructions, "toggles", lambda: False)  # the stand-in answers no client request
    monkeypatch.setitem(instructions.KERNELS, "test.ok", instructions.Kernel("def call():\n    pass\n"))
    monkeypatch.setitem(instructions.KERNELS, "test.broken", instructions.Kernel("def call():\n    1 / 0\n"))
    monkeypatch.setitem(
        instructions.KERNELS,
        "test.older",  # a commit from before the kernel's code: its setup cannot import it
        instructions.Kernel("from implementations.cem.export import planner_v2\n"),
    )
    assert instructions.per_call("test.ok", 2, 5)["per_call"] == 7
    with pytest.raises(
        instructions.KernelFailed, match=r"(?s)'test\.broken' failed in .*ZeroDivision"
    ) as exc:
        instructions.count("test.broken", 2, tmp_path)
    assert not isinstance(exc.value, instructions.KernelUnavailable)
    with pytest.raises(
        instructions.KernelUnavailable, match=r"(?s)unavailable here: ImportError.*planner_v2"
    ):
        instructions.count("test.older", 2, tmp_path)
    # asv: a kernel its commit cannot run, or no valgrind, is skipped ("n/a"); any other failure fails
    bench = instructions.TrackInstructions()
    with pytest.raises(NotImplementedError, match="planner_v2"):
        bench.setup("test.older")
    with pytest.raises(instructions.KernelFailed, match="ZeroDivision"):
        bench.setup("test.broken")
    bench.setup("test.ok")
    assert bench.track_instructions_per_call("test.ok") == 7
    monkeypatch.setattr(instructions, "_valgrind", real_valgrind)
    monkeypatch.setattr(instructions.shutil, "which", lambda name: None)
    with pytest.raises(NotImplementedError, match="valgrind is not on PATH"):
        bench.setup("test.ok")


def test_instruction_kernels_under_asv_import_the_installed_project_and_this_checkouts_setups(
    tmp_path,
) -> None:
    """Under asv the project is the benchmarked commit's wheel in the environment and ``benchmarks`` is this
    checkout's. `installed` gives the measured interpreter exactly that: a process whose project comes from a
    stand-in for site-packages (a copy of the packages) runs a kernel whose child imports ``implementations``
    from that copy and ``benchmarks`` from this checkout, and the child's origin check accepts it; told to
    expect this checkout's ``implementations`` instead, the same child is refused."""
    from benchmarks import instructions

    site, bench = tmp_path / "site", tmp_path / "bench"
    for name in instructions.PROJECT_PACKAGES:
        if name != "benchmarks":
            shutil.copytree(
                instructions.ROOT / name, site / name, ignore=shutil.ignore_patterns("__pycache__")
            )
    bench.mkdir()
    (bench / "benchmarks").symlink_to(instructions.ROOT / "benchmarks")
    fake = _stand_in_valgrind(tmp_path, start_up=0, per_call=10)
    where = tmp_path / "where.json"
    setup = (
        "import json, pathlib, benchmarks.timer, implementations.gcm\n"
        "def call():\n"
        f"    pathlib.Path({str(where)!r}).write_text(\n"
        "        json.dumps([benchmarks.timer.__file__, implementations.gcm.__file__]))\n"
    )
    parent = (
        "import json\n"
        "from pathlib import Path\n"
        "from benchmarks import instructions as ins\n"
        f"ins._valgrind = lambda: {str(fake)!r}\n"
        "ins.toggles = lambda: False\n"
        f"ins.KERNELS['test.where'] = ins.Kernel({setup!r})\n"
        f"source = ins.installed(Path({str(tmp_path / 'shim')!r}))\n"
        "print(json.dumps({k: str(v) for k, v in source.packages.items()}))\n"
        "print(ins.per_call('test.where', 1, 3, source)['per_call'])\n"
        "try:\n"
        "    checkout = {**source.packages, 'implementations': ins.ROOT / 'implementations'}\n"
        "    ins.per_call('test.where', 1, 3, ins.Source(source.path, checkout))\n"
        "except ins.KernelFailed as exc:\n"
        "    print(str(exc).splitlines()[-1])\n"
    )
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(site), str(bench)]), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, "-c", parent], cwd=tmp_path, env=env, capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr[-2000:]
    packages, per_call, refused = run.stdout.strip().splitlines()
    packages = json.loads(packages)
    assert packages["benchmarks"] == str(instructions.ROOT / "benchmarks")
    assert packages["implementations"] == str((site / "implementations").resolve())
    assert float(per_call) == 10.0
    timer_file, gcm_file = json.loads(where.read_text())
    assert os.path.realpath(timer_file) == str(instructions.ROOT / "benchmarks" / "timer.py")
    assert gcm_file.startswith(str(site / "implementations"))
    assert "implementations was imported from" in refused and str(site) in refused


@pytest.mark.skipif(
    not __import__("benchmarks.instructions").instructions.toggles(),
    reason="the client request is machine code for x86-64 Linux",
)
def test_instruction_child_refuses_to_toggle_callgrind_when_not_under_it(tmp_path) -> None:
    """Outside valgrind the client request returns its default value, and the child stops with that said
    rather than running calls whose instructions nobody counts."""
    from benchmarks import instructions

    script = tmp_path / "child.py"
    script.write_text(instructions.child_script(instructions.Kernel("def call():\n    pass\n")))
    env = {**os.environ, "PYTHONPATH": str(instructions.ROOT), "JAX_PLATFORMS": "cpu"}
    run = subprocess.run(
        [sys.executable, *instructions.tree().argv(script, 5, True)],
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert run.returncode == 1 and "callgrind did not answer its client request" in run.stderr


@pytest.mark.skipif(
    __import__("shutil").which("valgrind") is None
    or not __import__("benchmarks.instructions").instructions.toggles(),
    reason="needs valgrind on x86-64 Linux (CI has none; the gate is run where it is installed)",
)
def test_instruction_counts_of_toggled_calls_are_exact_and_grow_with_the_work(monkeypatch) -> None:
    """Under callgrind, with instrumentation switched on around the calls only: two runs of the same kernel
    count the same instructions per call to 0.1%, and a kernel doing 1.3x the work counts 1.2-1.4x."""
    from benchmarks import instructions

    for name, n in (("test.sum", 3000), ("test.sum.more", 3900)):
        setup = f"def call():\n    sum(i * i for i in range({n}))\n"
        monkeypatch.setitem(instructions.KERNELS, name, instructions.Kernel(setup, high=40))
    first, again = (instructions.per_call("test.sum")["per_call"] for _ in range(2))
    more = instructions.per_call("test.sum.more")["per_call"]
    assert first > 3000 * 50  # a generator step and a multiply-add per element: hundreds of instructions
    assert abs(again - first) <= 1e-3 * first
    assert 1.2 < more / first < 1.4


@pytest.mark.parametrize("kernel", sorted(__import__("benchmarks.instructions").instructions.KERNELS))
def test_every_instruction_kernel_runs_without_valgrind(kernel: str) -> None:
    """Each registered kernel's interpreter (setup, warm-up, calls; the project imported from this tree) runs
    natively with the gate's settings, so a change that breaks a kernel's setup fails here, on CI, which
    has no valgrind to run the gate itself."""
    from benchmarks import instructions

    with tempfile.TemporaryDirectory() as tmp:
        script = Path(tmp) / "child.py"
        script.write_text(instructions.child_script(instructions.KERNELS[kernel]))
        run = subprocess.run(
            [sys.executable, *instructions.tree().argv(script, 2, False)],
            cwd=instructions.ROOT,
            env={**os.environ, **instructions.ENV, "PYTHONPATH": str(instructions.ROOT)},
            capture_output=True,
            text=True,
            check=False,
            timeout=300,
        )
    assert run.returncode == 0, run.stderr[-2000:]
