"""Command line of the GCM model runner (`implementations.gcm.runner`):

    python -m implementations.gcm run --backend numpy|jax --grid 121x240 --steps N --dt 300 \
        --dtype float64|float32 --platform cpu|gpu|tpu [--json PATH]

The backend defaults to the environment variable ``GCM_BACKEND`` (read once, here; default ``numpy``).
``--platform`` and, for float64, x64 are set on JAX before its first computation. Exit status 0 when every
step stayed finite, 1 when the run stopped at a non-finite value, 2 on bad arguments or inputs.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from implementations.gcm import runner


def build_parser(default_backend: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m implementations.gcm", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="integrate the model and report time per step and peak memory")
    r.add_argument(
        "--backend",
        choices=runner.BACKENDS,
        default=default_backend,
        help=f"numpy reference or JAX implementation (default from GCM_BACKEND: {default_backend})",
    )
    r.add_argument("--grid", default="121x240", help="n_lat x n_lon, e.g. 121x240 (default)")
    r.add_argument("--steps", type=int, default=10, help="number of steps (default 10)")
    r.add_argument("--dt", type=float, default=300.0, help="time step in seconds (default 300)")
    r.add_argument("--dtype", choices=runner.DTYPES, default="float64")
    r.add_argument(
        "--platform",
        choices=tuple(runner.PLATFORMS),
        default="cpu",
        help="JAX platform, set before JAX initialises (ignored by the numpy backend)",
    )
    r.add_argument("--seed", type=int, default=0, help="seed of the initial-state noise")
    r.add_argument("--longwave", choices=("v1", "v2"), default="v1")
    r.add_argument("--n-substeps", type=int, default=1, help="hyperdiffusion substeps")
    r.add_argument(
        "--check-every",
        type=int,
        default=1,
        help="steps between non-finite checks, i.e. host syncs (default 1: on a 2-core CPU, dispatching 10 "
        "steps ahead was measured slower, 9.2 vs 5.9 ms per step); timing samples are windows of this "
        "many steps",
    )
    r.add_argument(
        "--tune-malloc",
        action="store_true",
        help="glibc: keep freed memory for reuse (no per-step page faults on large temporaries); "
        "peak memory then counts memory touched once",
    )
    r.add_argument(
        "--exact-rss",
        action="store_true",
        help="glibc: map every allocation of 1 MiB or more on its own (M_MMAP_THRESHOLD), so that the resident "
        "set follows live memory and the peak above baseline is the step's real working set; large "
        "temporaries then pay page faults every step (NumPy's per-step time suffers most)",
    )
    r.add_argument("--json", metavar="PATH", help="also write the result as JSON")
    return parser


def main(argv: list[str] | None = None) -> int:
    default_backend = os.environ.get("GCM_BACKEND", "numpy")  # the one environment read, at the edge
    if default_backend not in runner.BACKENDS:
        print(f"GCM_BACKEND must be one of {runner.BACKENDS}; got {default_backend!r}", file=sys.stderr)
        return 2
    args = build_parser(default_backend).parse_args(argv)
    try:
        n_lat, n_lon = runner.parse_grid(args.grid)
        from reference.gcm.grid import StepParams

        params = StepParams(dt=args.dt, longwave=args.longwave, n_substeps=args.n_substeps)
        config = runner.RunConfig(
            backend=args.backend,
            n_lat=n_lat,
            n_lon=n_lon,
            steps=args.steps,
            dt=args.dt,
            dtype=args.dtype,
            seed=args.seed,
            check_every=args.check_every,
            params=params,
        )
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.tune_malloc and args.exact_rss:
        print("error: --tune-malloc and --exact-rss exclude each other", file=sys.stderr)
        return 2
    if args.tune_malloc and not runner.tune_malloc():
        print("warning: --tune-malloc is not available here (glibc only); ignored", file=sys.stderr)
    if args.exact_rss and not runner.exact_rss_malloc():
        print("warning: --exact-rss is not available here (glibc only); ignored", file=sys.stderr)
    if config.backend == "jax":
        runner.configure_jax(platform=args.platform, enable_x64=args.dtype == "float64")
    try:
        result = runner.run(config)
    except ValueError as exc:  # GCMInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result.to_dict(), f, indent=2)
    return 0 if result.ok else 1


if __name__ == "__main__":
    sys.exit(main())
