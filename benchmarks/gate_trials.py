"""Trials of the speed gate: how often does it fail on unchanged code, and does it catch a real slowdown?

    python -m benchmarks.gate_trials [--same 3] [--factor 1.2] [--slowdown 1.3] [--bench REGEX] [--json PATH]

runs the gate (`asv continuous` through `benchmarks.machine`, with ``--interleave-rounds`` so that machine
drift hits both commits alike, and ``--cpu-affinity`` on the last core this process may use, as `tox -e
perfgate` runs; ``--all-cores`` for every allowed core) between the current
commit and

- ``--same`` commits with the same tree (an empty commit on top): every failure is a false alarm;
- one commit that makes `implementations.cem.runtime.Pipeline.predict_controls` exactly ``--slowdown`` times
  slower (a busy wait for the extra fraction of the call's own duration): the gate must fail on it, on the
  ``cem.TimePipeline`` benchmark.

The trial commits are made with git plumbing (no checkout; the working tree is untouched), live on branches
``gate-trial/*`` for the run and are deleted afterwards. Prints, and writes as JSON, each trial's exit status
and the before/after ratio of every benchmark asv compared.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

# JAX-side benchmarks that each take well under a second per sample: the implementation side the gate
# protects, small enough that a trial takes minutes, not the full suite's 12.
DEFAULT_BENCH = (
    r"cem[.]TimePipeline[.]time_predict_controls"
    r"|gcm[.]TimeHyperdiffusion[.]time_hyperdiffuse[(]'jax'"
    r"|gcm[.]TimeAdvection[.]time_advect[(]'jax'"
    r"|gcm[.]TimeStep[.]time_step[(]'jax', '121x240'"
    r"|anomaly[.]Latency[.]time_call[(]'(jax-jit|jax-export|onnxruntime)'"
)

SLOW_PATH = "implementations/cem/runtime.py"
INJECTED = "cem.TimePipeline.time_predict_controls"  # the benchmark that times the slowed-down method
SLOW_OLD = (
    "    def predict_controls(self, state: Any, current_time: float, return_timing: bool = False) -> Any:\n"
)


def git(*args: str, env: dict[str, str] | None = None, stdin: str | None = None) -> str:
    return subprocess.run(
        ["git", *args], cwd=ROOT, env=env, input=stdin, capture_output=True, text=True, check=True
    ).stdout.strip()


def _slow_source(text: str, factor: float) -> str:
    """``predict_controls`` renamed and wrapped by a twin that busy-waits ``factor - 1`` of its duration."""
    if text.count(SLOW_OLD) != 1:
        raise SystemExit(f"gate_trials: cannot find predict_controls in {SLOW_PATH}")
    wrapper = (
        "    def predict_controls(self, state: Any, current_time: float, return_timing: bool = False) -> Any:\n"
        "        import time as _t\n"
        "\n"
        "        t0 = _t.perf_counter()\n"
        "        out = self._predict_controls_fast(state, current_time, return_timing)\n"
        f"        until = t0 + {factor!r} * (_t.perf_counter() - t0)\n"
        "        while _t.perf_counter() < until:\n"
        "            pass\n"
        "        return out\n"
        "\n"
    )
    return text.replace(SLOW_OLD, wrapper + SLOW_OLD.replace("predict_controls", "_predict_controls_fast"))


def commit_with(head: str, path: str, text: str, message: str) -> str:
    """A commit on ``head`` whose file ``path`` holds ``text``, made with git plumbing (a private index; no
    checkout, the working tree and the index are untouched). Reachable from no ref until one is made."""
    blob = git("hash-object", "-w", "--stdin", stdin=text)
    with tempfile.TemporaryDirectory() as tmp:
        env = {**os.environ, "GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git("read-tree", head, env=env)
        git("update-index", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git("write-tree", env=env)
    return git("commit-tree", tree, "-p", head, "-m", message)


def make_commits(same: int, slowdown: float) -> dict[str, str]:
    """Branch name -> commit: ``same`` empty commits on HEAD and one with the injected slowdown."""
    head = git("rev-parse", "HEAD")
    tree = git("rev-parse", "HEAD^{tree}")
    out = {}
    for i in range(same):
        sha = git("commit-tree", tree, "-p", head, "-m", f"gate trial: same code {i + 1}")
        out[f"gate-trial/same-{i + 1}"] = sha
    slow = _slow_source((ROOT / SLOW_PATH).read_text(encoding="utf-8"), slowdown)
    out["gate-trial/slow"] = commit_with(
        head, SLOW_PATH, slow, f"gate trial: predict_controls {slowdown}x slower"
    )
    for name, sha in out.items():
        git("branch", "-f", name, sha)
    return out


_ROW = re.compile(r"^\s*([+\-x!]?)\s+(\S+)\s+(\S+)\s+([\d.]+|n/a|~?[\d.]+)\s+(\S+.*)$")


def _cells(line: str) -> tuple[str, ...] | None:
    """(mark, before, after, ratio, benchmark) of one comparison row: asv 0.6 prints a Markdown table
    (``| Change | Before | After | Ratio | Benchmark |``), older versions aligned columns."""
    if line.lstrip().startswith("|"):
        cells = tuple(c.strip() for c in line.strip().strip("|").split("|"))
        return cells if len(cells) == 5 else None
    m = _ROW.match(line)
    return m.groups() if m else None


def parse(output: str) -> list[dict[str, Any]]:
    """asv continuous's comparison rows: mark, before, after, ratio, benchmark (rows with a ratio only)."""
    rows = []
    for line in output.splitlines():
        cells = _cells(line)
        if not cells or not re.match(r"^[~]?[\d.]+$", cells[3]):
            continue
        mark, before, after, ratio, name = cells
        if "." not in name:
            continue
        rows.append(
            {"mark": mark, "before": before, "after": after, "ratio": float(ratio.lstrip("~")), "bench": name}
        )
    return rows


def verdict(trials: list[dict[str, Any]], injected: str = INJECTED) -> dict[str, Any]:
    """What the trials say about the gate. A false alarm is a benchmark the gate flags as slower ("+") that the
    trial did not touch: any flag in a same-code trial, and a flag on another benchmark than ``injected`` in
    the slowdown trial. The slowdown is detected only when ``injected`` itself is flagged."""
    flagged = [(t["trial"], r["bench"]) for t in trials for r in t["rows"] if r["mark"] == "+"]
    untouched = [(tr, b) for tr, b in flagged if "same" in tr or not b.startswith(injected)]
    same = [t for t in trials if "same" in t["trial"]]
    return {
        "false_alarms": len(untouched),
        "flagged_untouched": [f"{tr}: {b}" for tr, b in untouched],
        "same_trials": len(same),
        "same_failed": [t["trial"] for t in same if t["exit"] != 0],
        "detected": any(tr.endswith("slow") and b.startswith(injected) for tr, b in flagged),
        "injected_ratio": next(
            (
                r["ratio"]
                for t in trials
                if t["trial"].endswith("slow")
                for r in t["rows"]
                if r["bench"].startswith(injected)
            ),
            None,
        ),
    }


def run_gate(
    base: str, head: str, factor: float, bench: str, rounds: int, all_cores: bool = False
) -> dict[str, Any]:
    cores = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else []
    if cores and not all_cores:
        # one core, as `tox -e perfgate` runs: XLA's threads then share it with the caller, and the 0.45 ms
        # predict_controls call is steadier (IQR/median 0.08 against 0.19 on two cores)
        cores = cores[-1:]
    cmd = [sys.executable, "-m", "benchmarks.machine", "continuous", "--interleave-rounds"]
    cmd += [
        "--factor",
        str(factor),
        "--split",
        "--no-only-changed",
        "--bench",
        bench,
        "-a",
        f"rounds={rounds}",
    ]
    if cores:
        cmd += ["--cpu-affinity", ",".join(map(str, cores))]
    cmd += [base, head]
    start = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    output = proc.stdout + proc.stderr
    return {
        "command": " ".join(cmd),
        "exit": proc.returncode,
        "seconds": time.perf_counter() - start,
        "rows": parse(output),
        "decreased": "PERFORMANCE DECREASED" in output.upper(),
        "tail": output[-3000:],
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.gate_trials", description=__doc__.split("\n\n")[0])
    p.add_argument("--same", type=int, default=3, help="same-code trials (default 3)")
    p.add_argument("--factor", type=float, default=1.2, help="the gate's factor (default 1.2)")
    p.add_argument("--slowdown", type=float, default=1.3, help="the injected slowdown (default 1.3)")
    p.add_argument("--rounds", type=int, default=4, help="asv rounds per benchmark (interleaved; default 4)")
    p.add_argument("--bench", default=DEFAULT_BENCH)
    p.add_argument("--all-cores", action="store_true", help="run asv on every allowed core, not the last one")
    p.add_argument("--json")
    args = p.parse_args(argv)
    if git("status", "--porcelain", "--untracked-files=no"):
        raise SystemExit("gate_trials: commit your changes first (the trials compare against HEAD)")
    base = git("rev-parse", "HEAD")
    branches = make_commits(args.same, args.slowdown)
    trials = []
    try:
        for name, sha in branches.items():
            r = run_gate(base, sha, args.factor, args.bench, args.rounds, args.all_cores)
            r["trial"] = name
            trials.append(r)
            worst = max((row["ratio"] for row in r["rows"]), default=float("nan"))
            print(
                f"{name}: exit {r['exit']}, {len(r['rows'])} benchmarks, largest ratio {worst:.2f}, "
                f"{r['seconds']:.0f} s",
                flush=True,
            )
    finally:
        for name in branches:
            git("branch", "-D", name)
    broken = [t["trial"] for t in trials if not t["rows"]]
    if broken:  # asv compared nothing: neither a false alarm nor a detection
        print("\n".join(t["tail"] for t in trials if not t["rows"]), file=sys.stderr)
        raise SystemExit(f"gate_trials: no benchmark was compared in {', '.join(broken)} (see above)")
    summary = {"factor": args.factor, "slowdown": args.slowdown, **verdict(trials), "trials": trials}
    print(
        f"factor {args.factor}: {summary['false_alarms']} false alarm(s) ({len(summary['flagged_untouched'])} flagged "
        f"untouched benchmarks in all trials, {len(summary['same_failed'])} of {summary['same_trials']} same-code "
        f"trials failed); injected {args.slowdown}x slowdown {'detected' if summary['detected'] else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["false_alarms"] == 0 and not summary["same_failed"] and summary["detected"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
