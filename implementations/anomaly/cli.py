"""Command line of the anomaly detector's JAX port: export the port of a checkpoint with ``jax.export``.

    python -m implementations.anomaly export --ckpt CKPT_DIR --out DIR [--format jax]

Writes ``anomaly.jaxexport`` and its manifest (`implementations.anomaly.export`); needs neither PyTorch nor
SciPy. Training and the reference's exports are ``python -m reference.anomaly train|export``; the health check
of artifacts against the reference is ``python -m conformance.anomaly.health``. Exit status 2 on a bad
checkpoint or a failed export.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from contracts.anomaly.artifacts import ExportError, formats_of, manifest_path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m implementations.anomaly", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    e = sub.add_parser("export", help="export the JAX port of a checkpoint (jax.export, symbolic batch)")
    e.add_argument(
        "--ckpt", required=True, type=Path, help="checkpoint directory (model.safetensors + config.json)"
    )
    exported = formats_of("implementation")
    e.add_argument("--format", choices=[*exported, "all"], default="all")
    e.add_argument("--out", required=True, type=Path)
    args = parser.parse_args(argv)

    from implementations.anomaly.convert import CheckpointError
    from implementations.anomaly.export import export

    formats = exported if args.format == "all" else (args.format,)
    try:
        artifacts = export(args.ckpt, formats, args.out)
    except (CheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for fmt, path in artifacts.items():
        print(f"{fmt:>5}: {path} (manifest {manifest_path(path).name})")
    return 0
