"""The command line of the GCM model runner, shared by both sides (each runs its own backend):

    python -m reference.gcm run        [options]    the NumPy reference
    python -m implementations.gcm run  [options]    the JAX implementation (adds --platform cpu|gpu|tpu)

    options: --grid 121x240 --steps N --dt 300 --dtype float64|float32 [--json PATH] ...

The backend may also be named by ``--backend`` or by the environment variable ``GCM_BACKEND`` (read once,
here, at the edge; the flag wins). Each entry point runs only its own backend and refuses another one, naming
the command that runs it. Exit status 0 when every step stayed finite, 1 when the run stopped at a non-finite
value, 2 on bad arguments, environment or inputs. Framework-free: the side passes its ``run`` function (and,
for JAX, the platform/x64 set-up that must precede its first computation).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable

from contracts.common import write_text
from contracts.gcm.grid import StepParams
from contracts.gcm.memory import exact_rss_malloc, tune_malloc
from contracts.gcm.runner import BACKENDS, DTYPES, ENTRY_POINTS, PLATFORMS, RunConfig, RunResult, parse_grid

Configure = Callable[[str | None, bool | None], None]  # (platform, enable_x64)


def build_parser(backend: str, *, platforms: bool) -> argparse.ArgumentParser:
    prog = f"python -m {ENTRY_POINTS[backend]}"
    parser = argparse.ArgumentParser(prog=prog, description=f"The GCM model runner ({backend} backend).")
    sub = parser.add_subparsers(dest="command", required=True)
    r = sub.add_parser("run", help="integrate the model and report time per step and peak memory")
    r.add_argument(
        "--backend",
        choices=BACKENDS,
        default=None,
        help=f"the backend to run; this entry point runs {backend} only (default: GCM_BACKEND, else {backend})",
    )
    r.add_argument("--grid", default="121x240", help="n_lat x n_lon, e.g. 121x240 (default)")
    r.add_argument("--steps", type=int, default=10, help="number of steps (default 10)")
    r.add_argument("--dt", type=float, default=300.0, help="time step in seconds (default 300)")
    r.add_argument("--dtype", choices=DTYPES, default="float64")
    if platforms:
        r.add_argument(
            "--platform",
            choices=tuple(PLATFORMS),
            default="cpu",
            help="JAX platform, set before JAX initialises (default cpu)",
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


def main(
    argv: list[str] | None,
    *,
    backend: str,
    run: Callable[[RunConfig], RunResult],
    configure: Configure | None = None,
) -> int:
    """Parse ``argv``, run ``run`` (the side's `integrate` with its backend) and report; the exit status.

    ``configure(platform, enable_x64)`` runs before ``run`` when given (JAX: before its first computation);
    it also adds the ``--platform`` option."""
    from_env = os.environ.get("GCM_BACKEND")  # the one environment read, at the edge
    if from_env is not None and from_env not in BACKENDS:
        print(f"GCM_BACKEND must be one of {BACKENDS}; got {from_env!r}", file=sys.stderr)
        return 2
    args = build_parser(backend, platforms=configure is not None).parse_args(argv)
    wanted = args.backend or from_env or backend
    if wanted != backend:
        source = "--backend" if args.backend else "GCM_BACKEND"
        print(
            f"error: {source} asks for the {wanted} backend, but this is the {backend} runner; "
            f"run `python -m {ENTRY_POINTS[wanted]} run`",
            file=sys.stderr,
        )
        return 2
    try:
        n_lat, n_lon = parse_grid(args.grid)
        params = StepParams(dt=args.dt, longwave=args.longwave, n_substeps=args.n_substeps)
        config = RunConfig(
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
    if args.tune_malloc and not tune_malloc():
        print("warning: --tune-malloc is not available here (glibc only); ignored", file=sys.stderr)
    if args.exact_rss and not exact_rss_malloc():
        print("warning: --exact-rss is not available here (glibc only); ignored", file=sys.stderr)
    if configure is not None:
        configure(args.platform, args.dtype == "float64")
    try:
        result = run(config)
    except ValueError as exc:  # GCMInputError is a ValueError
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(result.summary())
    if args.json:
        write_text(args.json, json.dumps(result.to_dict(), indent=2))
    return 0 if result.ok else 1
