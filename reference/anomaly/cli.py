"""Command line of the anomaly reference (PyTorch): train the detector, and export it to its artifacts.

    python -m reference.anomaly train  --out CKPT_DIR [--steps N]
    python -m reference.anomaly export --ckpt CKPT_DIR --format pt2|onnx|ts|all --out DIR

``export`` writes each artifact of the reference with its manifest (`reference.anomaly.export`). The JAX port
exports itself (``python -m implementations.anomaly export``); the health check of artifacts against the
reference is the harness's (``python -m conformance.anomaly.health``). Exit status 2 on a bad checkpoint or a
failed export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.anomaly.artifacts import ExportError, manifest_path
from reference.anomaly.checkpoint import CheckpointError
from reference.anomaly.export import EXPORTED


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m reference.anomaly", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the small detector deterministically and save a checkpoint")
    t.add_argument("--out", required=True, type=Path)
    t.add_argument("--steps", type=int, default=None)
    e = sub.add_parser("export", help="export a checkpoint of the reference to its artifact formats")
    e.add_argument(
        "--ckpt", required=True, type=Path, help="checkpoint directory (model.safetensors + config.json)"
    )
    e.add_argument("--format", required=True, choices=[*EXPORTED, "all"])
    e.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    try:
        if args.command == "train":
            from reference.anomaly.train import train_checkpoint

            kw = {} if args.steps is None else {"steps": args.steps}
            res = train_checkpoint(args.out, **kw)
            print(
                f"checkpoint written to {args.out}; held-out ROC AUC {res.auc:.3f} (untrained {res.auc_untrained:.3f}), "
                f"trained in {res.seconds:.1f} s"
            )
            return 0
        from reference.anomaly.export import export

        formats = EXPORTED if args.format == "all" else (args.format,)
        for fmt, path in export(args.ckpt, formats, args.out).items():
            print(f"{fmt:>5}: {path} (manifest {manifest_path(path).name})")
    except (CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0
