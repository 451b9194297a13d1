"""Instructions per call of hot JAX kernels, counted by valgrind's callgrind: a speed measure that does not
move with the machine's noise, for comparing two commits on a shared machine.

    python -m benchmarks.instructions [--kernel NAME ...] [--json OUT] [--baseline IN --factor 1.02]

Each kernel runs in two fresh interpreters under callgrind, ``low`` and ``high`` calls after the same start-up;
its instructions per call are the difference of the two counts over ``high - low``, so the start-up (about
9.7 G instructions, importing JAX) cancels. Three settings at the edge of the measured process make the count
nearly deterministic, and without them it is not (two runs of 20 calls differed by up to 31 M instructions):

- ``PJRT_NPROC=1``: XLA's CPU client starts one pool thread;
- synchronous dispatch (``jax_cpu_enable_async_dispatch`` off before the first computation), so that the
  kernel runs on the calling thread, whose count alone (callgrind's ``--separate-threads``) is read;
- ``PYTHONHASHSEED=0``: the same dict orders in every start-up.

Measured on a 2-core AMD EPYC VM: the one-fusion kernel 2.30 M instructions per call, two runs of each length
39 K and 6 K apart; the GCM hyperdiffusion at 121x240 0.66 M per call, its runs of each length up to 1.16 M
apart (the pool thread takes part of its work), so 40 extra calls left its figure 9% off (722,558) and 400
give 661,909 and 660,748 in two measurements (0.2% apart): hence ``high`` = 420 by default.
With ``--baseline`` (a JSON written by ``--json``) the exit status is 1 when a kernel's count per call grew by
more than ``--factor``; 2 when valgrind is missing. Each run takes 85-100 s under callgrind.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

KERNELS: dict[str, str] = {
    # each defines ``call()``, one blocking call of the kernel, after the set-up it needs
    "one-fusion": (
        "import numpy as np, jax.numpy as jnp\n"
        "f = jax.jit(lambda a: jnp.sum(jnp.sin(a) * 2.0 + a))\n"
        "a = jnp.asarray(np.random.default_rng(0).standard_normal(1 << 16).astype(np.float32))\n"
        "def call():\n"
        "    f(a).block_until_ready()\n"
    ),
    "gcm.hyperdiffusion.121x240": (
        'jax.config.update("jax_enable_x64", True)\n'
        "from benchmarks import gcm as bg\n"
        'call = bg.hyperdiffusion_fn("jax", bg._Problem("121x240"))\n'
    ),
}

CHILD = """import sys
import jax
jax.config.update("jax_cpu_enable_async_dispatch", False)
{setup}
for _ in range(int(sys.argv[1])):
    call()
"""

ENV = {"PJRT_NPROC": "1", "PYTHONHASHSEED": "0", "JAX_PLATFORMS": "cpu"}


class ValgrindMissing(RuntimeError):
    """valgrind is not on PATH."""


def thread_counts(out_prefix: Path) -> dict[int, int]:
    """Instructions of each thread from callgrind's ``--separate-threads`` files ``<prefix>-NN`` (thread NN,
    1 = the main thread): their ``summary:`` lines."""
    counts = {}
    for path in out_prefix.parent.glob(out_prefix.name + "-*"):
        match = re.search(r"^summary: (\d+)$", path.read_text(), re.M)
        if match is None:
            raise ValueError(f"{path} has no 'summary:' line; is it a callgrind output file?")
        counts[int(path.name.rsplit("-", 1)[1])] = int(match.group(1))
    if 1 not in counts:
        raise ValueError(f"no callgrind output for the main thread at {out_prefix}-01")
    return counts


def count(kernel: str, calls: int, workdir: Path) -> int:
    """The main thread's instructions for one interpreter that runs ``kernel`` ``calls`` times under
    callgrind (start-up included)."""
    # valgrind itself, not a wrapper library: what is read is one thread's total under three settings of the
    # measured process, which a subprocess and callgrind's summary line give directly
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ValgrindMissing(
            "valgrind is not on PATH; install it (e.g. apt install valgrind) to count instructions"
        )
    script = workdir / f"{kernel}.py"
    script.write_text(CHILD.format(setup=KERNELS[kernel]))
    prefix = workdir / f"{kernel}.{calls}"
    subprocess.run(
        [
            valgrind,
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--callgrind-out-file={prefix}",
            sys.executable,
            str(script),
            str(calls),
        ],
        cwd=ROOT,  # the kernels import this repository's packages
        env={**os.environ, **ENV, "PYTHONPATH": str(ROOT)},
        check=True,
        capture_output=True,
    )
    return thread_counts(prefix)[1]


def per_call(kernel: str, low: int = 20, high: int = 420) -> dict[str, float]:
    """``kernel``'s instructions per call: the counts of a ``low``-call and a ``high``-call run, differenced."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; one of {sorted(KERNELS)}")
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high; got low={low}, high={high}")
    with tempfile.TemporaryDirectory() as tmp:
        at_low, at_high = count(kernel, low, Path(tmp)), count(kernel, high, Path(tmp))
    return {
        "low": low,
        "high": high,
        "count_low": at_low,
        "count_high": at_high,
        "per_call": (at_high - at_low) / (high - low),
    }


def regressions(baseline: dict[str, dict], current: dict[str, dict], factor: float) -> list[str]:
    """One line for each kernel of both whose instructions per call grew by more than ``factor``."""
    out = []
    for name in sorted(baseline.keys() & current.keys()):
        before, now = baseline[name]["per_call"], current[name]["per_call"]
        if now > factor * before:
            out.append(
                f"{name}: {before:,.0f} -> {now:,.0f} instructions per call ({now / before:.3f}x > {factor})"
            )
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kernel", action="append", choices=sorted(KERNELS), help="default: all")
    parser.add_argument("--low", type=int, default=20)
    parser.add_argument("--high", type=int, default=420)
    parser.add_argument("--json", metavar="OUT", help="write the counts as JSON (a later --baseline)")
    parser.add_argument("--baseline", metavar="IN", help="compare with this JSON; exit 1 on growth")
    parser.add_argument("--factor", type=float, default=1.02)
    args = parser.parse_args(argv)
    try:
        results = {k: per_call(k, args.low, args.high) for k in args.kernel or sorted(KERNELS)}
    except ValgrindMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    for name, r in results.items():
        print(f"{name:32s} {r['per_call']:>14,.0f} instructions per call ({r['low']} and {r['high']} calls)")
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))
    if args.baseline:
        grown = regressions(json.loads(Path(args.baseline).read_text()), results, args.factor)
        for line in grown:
            print(f"REGRESSION {line}")
        return 1 if grown else 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
