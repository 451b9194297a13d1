"""Command line of the CEM reference's weights (`reference.cem.weights`):

    python -m reference.cem weights --task pendulum|cartpole|learned|pointmass --out DIR [--seed N] [--fit-seconds S]

writes the task's PyTorch networks (policy; dynamics MLP for the learned task, fitted for ``--fit-seconds``)
as safetensors with their manifest, for ``python -m implementations.cem export --weights DIR``. Exit status 2
on bad arguments.
"""

from __future__ import annotations

import argparse
import sys
import time

from contracts.cem.config import DEFAULT_CONFIGS, TASKS, CEMInputError
from contracts.cem.networks import DYNAMICS_HIDDEN, POLICY_HIDDEN, read_weights_manifest


def _sizes(text: str) -> tuple[int, ...]:
    try:
        sizes = tuple(int(s) for s in text.split(","))
    except ValueError as e:
        raise argparse.ArgumentTypeError(
            f"expected comma-separated layer widths, e.g. 64,64; got {text!r}"
        ) from e
    if not sizes or min(sizes) < 1:
        raise argparse.ArgumentTypeError(f"layer widths must be >= 1; got {text!r}")
    return sizes


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m reference.cem", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    w = sub.add_parser("weights", help="build (and for the learned task fit) the networks, save them")
    w.add_argument("--task", choices=sorted(TASKS), required=True)
    w.add_argument("--out", required=True, help="weights directory (created)")
    w.add_argument("--seed", type=int, default=0)
    w.add_argument(
        "--fit-seconds", type=float, default=3.0, help="fit time of the learned dynamics (default 3)"
    )
    w.add_argument("--policy-hidden", type=_sizes, default=POLICY_HIDDEN, help="default 64,64")
    w.add_argument("--dynamics-hidden", type=_sizes, default=DYNAMICS_HIDDEN, help="default 128,128")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from reference.cem.weights import write_weights

    start = time.perf_counter()
    try:
        out = write_weights(
            args.out,
            DEFAULT_CONFIGS[args.task],
            seed=args.seed,
            fit_seconds=args.fit_seconds,
            dynamics_hidden=args.dynamics_hidden,
            policy_hidden=args.policy_hidden,
        )
    except CEMInputError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    manifest = read_weights_manifest(out)
    print(f"wrote the {args.task} weights to {out} in {time.perf_counter() - start:.2f} s")
    for _, net in sorted(manifest.networks.items()):
        print(f"  {net.file:24s} MLP {list(net.sizes)}  {net.bytes:9d} bytes  sha256 {net.sha256[:16]}...")
    print(f"export them with `python -m implementations.cem export --weights {out} --out <dir>`")
    return 0


if __name__ == "__main__":
    sys.exit(main())
