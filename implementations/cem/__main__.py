"""Command line of the CEM AOT pipeline (`implementations.cem.export`, `implementations.cem.runtime`):

    python -m implementations.cem export --weights WEIGHTS --out DIR [--task T] [--platforms cpu,cuda]
    python -m implementations.cem bench DIR [--calls N] [--cache-dir D]
    python -m implementations.cem simulate DIR --duration S [--plot PATH] [--cache-dir D]

``export`` needs the networks' weights, which the PyTorch reference writes (``python -m reference.cem weights
--task pendulum|cartpole|learned|pointmass --out WEIGHTS``; an artifact directory holds its own weights too).
``bench`` is the seed's benchmark mode: load time, the first call against the steady state, per-call
statistics (mean, std, coefficient of variation, Hz) of the total and of the CEM stage. ``simulate`` runs the
planner in closed loop on the task's own dynamics (the plant is the JAX task step, the same model the
planner uses), prints the same statistics and writes a plot of the trajectory and the cost. Exit status 2 on
bad arguments or a bad artifact.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from contracts.cem.config import TASKS, CEMInputError
from contracts.cem.networks import read_weights_manifest


def _stats(samples: list[float]) -> dict[str, float]:
    mean = statistics.fmean(samples)
    std = statistics.pstdev(samples) if len(samples) > 1 else 0.0
    return {
        "mean_s": mean,
        "std_s": std,
        "cv": std / mean if mean else float("nan"),
        "hz": 1.0 / mean,
        "min_s": min(samples),
        "max_s": max(samples),
        "median_s": statistics.median(samples),
    }


def _print_stats(label: str, first: float, timings: list[dict[str, float]]) -> dict[str, Any]:
    total = [t["total_time"] for t in timings]
    cem = [t["cem_time"] for t in timings]
    s, c = _stats(total), _stats(cem)
    ratio = first / s["median_s"]
    print(f"{label}: {len(total)} steady calls")
    print(f"  first call      {first * 1e3:9.3f} ms  ({ratio:.2f}x the steady median)")
    print(
        f"  total  mean     {s['mean_s'] * 1e3:9.3f} ms  std {s['std_s'] * 1e3:.3f} ms  CV {s['cv']:.3f} "
        f"(consistency {1 - s['cv']:.1%})  {s['hz']:.1f} Hz"
    )
    print(
        f"  total  median   {s['median_s'] * 1e3:9.3f} ms  min {s['min_s'] * 1e3:.3f}  max {s['max_s'] * 1e3:.3f}"
    )
    print(f"  cem    mean     {c['mean_s'] * 1e3:9.3f} ms  CV {c['cv']:.3f}  (the compiled call alone)")
    return {"first_call_s": first, "first_over_steady": ratio, "total": s, "cem": c}


def cmd_export(args: argparse.Namespace) -> int:
    from implementations.cem import export, runtime

    start = time.perf_counter()
    weights = read_weights_manifest(args.weights)
    if args.task is not None and args.task != weights.task:
        raise CEMInputError(f"--task {args.task} but the weights in {args.weights} are for {weights.task!r}")
    platforms = tuple(args.platforms.split(",")) if args.platforms else None
    out = export.export_weights(args.weights, args.out, platforms=platforms)
    manifest = json.loads((out / runtime.MANIFEST).read_text())
    print(
        f"exported {weights.task} to {out} in {time.perf_counter() - start:.2f} s "
        f"(JAX {manifest['jax_version']}, platforms {manifest['functions']['plan']['platforms']}, "
        f"calling convention {manifest['functions']['plan']['calling_convention_version']})"
    )
    for name, meta in sorted(manifest["files"].items()):
        print(f"  {name:24s} {meta['bytes']:9d} bytes  sha256 {meta['sha256'][:16]}...")
    print(
        "note: a jax.export artifact is compiled by XLA at load; load_pipeline does it before the first call"
    )
    return 0


def _load(args: argparse.Namespace):
    from implementations.cem import runtime

    start = time.perf_counter()
    pipeline = runtime.load_pipeline(args.dir, cache_dir=args.cache_dir)
    load_s = time.perf_counter() - start
    print(
        f"loaded {args.dir} in {load_s:.3f} s (compiled at load"
        f"{', persistent cache ' + str(args.cache_dir) if args.cache_dir else ', no persistent cache'})"
    )
    return pipeline, load_s


def cmd_bench(args: argparse.Namespace) -> int:
    pipeline, load_s = _load(args)
    rng = np.random.default_rng(0)
    nx = pipeline.config.spec.nx
    x0 = np.asarray(pipeline.config.spec.x0, np.float32)
    _, first = pipeline.predict_controls(x0, 0.0, return_timing=True)
    timings = []
    for i in range(args.calls):
        x = (x0 + 0.1 * rng.standard_normal(nx)).astype(np.float32)
        timings.append(pipeline.predict_controls(x, 0.02 * (i + 1), return_timing=True)[1])
    result = _print_stats("bench", first["total_time"], timings)
    result["load_s"] = load_s
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2))
    return 0


def cmd_simulate(args: argparse.Namespace) -> int:
    import jax

    from implementations.cem import tasks

    pipeline, _ = _load(args)
    cfg = pipeline.config
    spec = cfg.spec
    weights = None
    if cfg.task == "learned":
        from implementations.cem import networks

        dyn = read_weights_manifest(args.dir).networks["dynamics"]
        weights = networks.load_weights(Path(args.dir) / dyn.file, networks.dynamics_sizes(dyn.hidden))
    step = jax.jit(lambda x, u: tasks.step(cfg.task, x, u, spec.dt, weights))
    cost = jax.jit(lambda x, u: tasks.running_cost(cfg.task, x, u))
    x = np.asarray(spec.x0, np.float32)
    t, times, states, costs, controls, timings = 0.0, [], [], [], [], []
    first = None
    n_steps = round(args.duration / spec.dt)
    k = 0
    while k < n_steps:
        u, timing = pipeline.predict_controls(x, t, return_timing=True)
        if first is None:
            first = timing["total_time"]
        else:
            timings.append(timing)
        for j in range(pipeline.replan_steps):
            if k >= n_steps:
                break
            x = np.asarray(step(x, u[j]))
            times.append(t + spec.dt)
            states.append(x)
            costs.append(float(cost(x, u[j])))
            controls.append(float(u[j][0]))
            t += spec.dt
            k += 1
        if not np.all(np.isfinite(x)):
            print(f"state became non-finite at t = {t:.2f} s", file=sys.stderr)
            return 1
    _print_stats(
        f"simulate {cfg.task} for {args.duration} s",
        first,
        timings or [{"total_time": first, "cem_time": first}],
    )
    states_a = np.array(states)
    print(
        f"  final state {np.round(states_a[-1], 3).tolist()}, final running cost {costs[-1]:.4f}, "
        f"mean cost over the last second {np.mean(costs[-int(1 / spec.dt) :]):.4f}"
    )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(3, 1, figsize=(8, 8), sharex=True)
        for i in range(spec.nx):
            axes[0].plot(times, states_a[:, i], label=f"x[{i}]")
        axes[0].set_ylabel("state")
        axes[0].legend(loc="upper right")
        axes[1].plot(times, controls)
        axes[1].set_ylabel("control")
        axes[2].plot(times, costs)
        axes[2].set_ylabel("running cost")
        axes[2].set_xlabel("time [s]")
        fig.suptitle(f"CEM ({cfg.task}, {cfg.num_samples} samples, {cfg.spline_type} spline), AOT pipeline")
        fig.tight_layout()
        fig.savefig(args.plot)
        print(f"  plot written to {args.plot}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m implementations.cem", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export the pipeline of a weights directory to an artifact directory")
    e.add_argument(
        "--weights",
        required=True,
        help="weights directory written by `python -m reference.cem weights` (or an artifact directory)",
    )
    e.add_argument("--out", required=True)
    e.add_argument(
        "--task", choices=sorted(TASKS), default=None, help="check that the weights are this task's"
    )
    e.add_argument("--platforms", default=None, help="comma-separated, e.g. cpu,cuda (default: this backend)")
    e.set_defaults(func=cmd_export)
    for name, fn, helptext in (
        ("bench", cmd_bench, "per-call timing statistics of a loaded artifact"),
        ("simulate", cmd_simulate, "closed loop on the task, statistics and a plot"),
    ):
        p = sub.add_parser(name, help=helptext)
        p.add_argument("dir")
        p.add_argument("--cache-dir", default=None, help="JAX persistent compilation cache directory")
        if name == "bench":
            p.add_argument("--calls", type=int, default=50)
            p.add_argument("--json", default=None, help="also write the statistics as JSON")
        else:
            p.add_argument("--duration", type=float, required=True, help="simulated seconds")
            p.add_argument(
                "--plot", default="cem_simulation.png", help="plot file (default cem_simulation.png)"
            )
        p.set_defaults(func=fn)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from implementations.cem.runtime import ArtifactError

    try:
        return args.func(args)
    except (ArtifactError, CEMInputError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
