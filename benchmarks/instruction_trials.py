"""Trials of the instruction-count gate (`benchmarks.instructions`): does it stay quiet on unchanged code, and
does it catch a small slowdown in compiled code?

    python -m benchmarks.instruction_trials [--same 3] [--factor 1.02] [--kernel K ...] [--json PATH]

runs the gate's comparison (`instructions.against`, as ``tox -e instructions`` runs it)

- ``--same`` times between HEAD and this working tree, which must be clean (the same code): every kernel
  flagged is a false alarm;
- once between HEAD and a commit on it whose pendulum dynamics step computes one operation more
  (`INJECTED_NEW`: ``+ 0.0 * jnp.tanh(acc)``, which XLA keeps, since ``0 * tanh(x)`` is not 0 for a NaN):
  the gate must flag `INJECTED` and no other kernel.

The slowed-down commit is made with git plumbing (no checkout, no branch) and measured in a git worktree that
is removed afterwards. Prints, and writes as JSON, each trial's ratios and the verdict. Exit 0 when no
false alarm was raised and the slowdown was caught, 1 otherwise, 2 without valgrind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks import gate_trials, instructions

INJECTED = "cem.plan.pendulum"  # the kernel whose code the slowdown trial changes
INJECTED_PATH = "implementations/cem/tasks.py"
INJECTED_OLD = "        omega = x[1] + dt * acc\n"
INJECTED_NEW = "        omega = x[1] + dt * acc + 0.0 * jnp.tanh(acc)\n"


def injected_source(text: str) -> str:
    """The pendulum's dynamics step with one operation more (the same values, more instructions)."""
    if text.count(INJECTED_OLD) != 1:
        raise SystemExit(f"instruction_trials: cannot find the pendulum's step in {INJECTED_PATH}")
    return text.replace(INJECTED_OLD, INJECTED_NEW)


def trial(name: str, base: dict[str, dict], current: dict[str, dict], factor: float) -> dict[str, Any]:
    """One trial's ratios (current / base per call) and the kernels the gate flags at ``factor``."""
    ratios = {k: current[k]["per_call"] / base[k]["per_call"] for k in sorted(base.keys() & current.keys())}
    return {
        "trial": name,
        "ratios": ratios,
        "flagged": [k for k, r in ratios.items() if r > factor],
        "base": base,
        "current": current,
    }


def verdict(trials: list[dict[str, Any]], injected: str = INJECTED) -> dict[str, Any]:
    """A false alarm is a kernel flagged that the trial did not change: any in a same-code trial, any but
    ``injected`` in the slowdown trial. The slowdown is caught only when ``injected`` itself is flagged."""
    untouched = [
        f"{t['trial']}: {k}" for t in trials for k in t["flagged"] if t["trial"] != "slow" or k != injected
    ]
    slow = [t for t in trials if t["trial"] == "slow"]
    moves = [
        abs(r - 1.0) for t in trials for k, r in t["ratios"].items() if t["trial"] != "slow" or k != injected
    ]
    return {
        "false_alarms": len(untouched),
        "flagged_untouched": untouched,
        "same_trials": sum(t["trial"] != "slow" for t in trials),
        "largest_untouched_move": max(moves, default=None),
        "detected": any(injected in t["flagged"] for t in slow),
        "injected_ratio": next((t["ratios"].get(injected) for t in slow), None),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.instruction_trials", description=__doc__.split("\n\n")[0]
    )
    p.add_argument("--same", type=int, default=3, help="same-code trials (default 3)")
    p.add_argument("--factor", type=float, default=1.02, help="the gate's factor (default 1.02)")
    p.add_argument(
        "--kernel",
        action="append",
        choices=sorted(instructions.KERNELS),
        help=f"default: all; {INJECTED} is always measured",
    )
    p.add_argument("--json")
    args = p.parse_args(argv)
    if gate_trials.git("status", "--porcelain", "--untracked-files=no"):
        raise SystemExit("instruction_trials: commit your changes first (the trials compare against HEAD)")
    kernels = sorted(set(args.kernel or instructions.KERNELS) | {INJECTED})
    head = gate_trials.git("rev-parse", "HEAD")
    trials = []
    try:
        for i in range(args.same + 1):
            start = time.perf_counter()
            if i < args.same:
                name = f"same-{i + 1}"
                base, current, _ = instructions.against(head, kernels)
            else:
                name = "slow"
                text = injected_source((instructions.ROOT / INJECTED_PATH).read_text(encoding="utf-8"))
                slow = gate_trials.commit_with(head, INJECTED_PATH, text, "instruction trial: one op more")
                with instructions.checkout(slow) as worktree:
                    base, current, _ = instructions.against(
                        head, kernels, current=instructions.tree(worktree)
                    )
            trials.append(trial(name, base, current, args.factor))
            ratios = ", ".join(f"{k} {r:.4f}x" for k, r in trials[-1]["ratios"].items())
            print(f"{name} ({time.perf_counter() - start:.0f} s): {ratios}", flush=True)
    except instructions.ValgrindMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    summary = {"factor": args.factor, **verdict(trials), "trials": trials}
    move, ratio = summary["largest_untouched_move"], summary["injected_ratio"]
    print(
        f"factor {args.factor}: {summary['false_alarms']} false alarm(s) in {summary['same_trials']} same-code "
        f"trials and the slowdown trial (largest move of unchanged code: "
        f"{'n/a' if move is None else f'{move:.3%}'}); one op more in the pendulum's step: {INJECTED} at "
        f"{'n/a' if ratio is None else f'{ratio:.4f}x'}, {'caught' if summary['detected'] else 'MISSED'}"
    )
    if args.json:
        Path(args.json).write_text(json.dumps(summary, indent=2))
    return 0 if summary["false_alarms"] == 0 and summary["detected"] else 1


if __name__ == "__main__":
    raise SystemExit(main())
