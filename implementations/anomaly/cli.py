"""Command line of the anomaly subsystem (the seed's ``itacad export``, rebuilt on `implementations.anomaly`):

    python -m implementations.anomaly train  --out CKPT_DIR [--steps N]
    python -m implementations.anomaly export --ckpt CKPT_DIR --format pt2|onnx|ts|jax|all --out DIR [--no-check]

``export`` writes each artifact with its manifest, then runs the health check: every produced artifact in its
runtime against the reference (PyTorch eager, ``no_grad``) on a random batch and on a batch size different
from the export example's, judged by the project's tier table (case ``anomaly.detect``). It prints the parity
table and exits 1 if any runtime falls below its required tier (2 on a usage or input error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from implementations.anomaly.export import EXAMPLE_BATCH, FORMATS

RUNTIMES_OF = {
    "pt2": ("torch-export",),
    "onnx": ("onnxruntime", "onnx-reference"),
    "ts": ("torchscript",),
    "jax": ("jax-export",),
}
BACKEND_OF = {
    "torch-export": "torch-export",
    "onnxruntime": "onnxruntime",
    "onnx-reference": "onnx-reference",
    "torchscript": "torchscript",
    "jax-export": "jax-export-symbolic",
}
HEALTH_CASE = "anomaly.detect"
HEALTH_BATCHES = (EXAMPLE_BATCH + 3, 1)  # a random batch, and batch sizes other than the example one (2)


def health_check(
    checkpoint: str | Path, artifacts: dict[str, Path], *, seed: int = 0
) -> list[dict[str, object]]:
    """Run every artifact in its runtime(s) against the reference; one row per (runtime, batch size)."""
    import conformance.anomaly.backends  # noqa: F401  (registers the artifact backends)
    from conformance import compare, precision
    from implementations.anomaly.runtimes import load
    from reference.anomaly.checkpoint import load_checkpoint
    from reference.anomaly.model import detect

    precision.apply()
    model = load_checkpoint(checkpoint)
    rng = np.random.default_rng(seed)
    batches = {
        b: rng.standard_normal((b, model.cfg.L, model.cfg.D)).astype(np.float32) for b in HEALTH_BATCHES
    }
    expected = {b: tuple(t.numpy() for t in detect(model, W)) for b, W in batches.items()}
    rows: list[dict[str, object]] = []
    for fmt, path in artifacts.items():
        for rt in RUNTIMES_OF[fmt]:
            runtime = load(rt, path)
            for b, W in batches.items():
                with precision.for_dtype("float32"):
                    res = compare(
                        expected[b], runtime(W), case=HEALTH_CASE, backend=BACKEND_OF[rt], dtype="float32"
                    )
                worst = res.worst
                rows.append(
                    {
                        "runtime": rt,
                        "format": fmt,
                        "batch": b,
                        "tier": res.tier,
                        "required": res.required,
                        "passed": res.passed,
                        "mae": worst.mae if worst else 0.0,
                        "max": worst.max_abs if worst else 0.0,
                        "leaf": worst.path if worst else "",
                    }
                )
    return rows


def format_table(rows: list[dict[str, object]]) -> str:
    head = f"{'runtime':<16}{'format':<7}{'B':>4}  {'max abs':>10}  {'MAE':>10}  {'tier':<10}{'required':<10}verdict"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(
            f"{r['runtime']:<16}{r['format']:<7}{r['batch']:>4}  {r['max']:>10.3e}  {r['mae']:>10.3e}  "
            f"{r['tier']:<10}{r['required']!s:<10}{'PASS' if r['passed'] else 'FAIL'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m implementations.anomaly", description=__doc__.split("\n\n")[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train", help="train the small detector deterministically and save a checkpoint")
    t.add_argument("--out", required=True, type=Path)
    t.add_argument("--steps", type=int, default=None)
    e = sub.add_parser("export", help="export a checkpoint and health-check every artifact")
    e.add_argument(
        "--ckpt", required=True, type=Path, help="checkpoint directory (model.safetensors + config.json)"
    )
    e.add_argument("--format", required=True, choices=[*FORMATS, "all"])
    e.add_argument("--out", required=True, type=Path)
    e.add_argument("--no-check", action="store_true", help="skip the health check")
    args = parser.parse_args(argv)

    from implementations.anomaly.convert import CheckpointError as PortCheckpointError
    from implementations.anomaly.export import ExportError
    from reference.anomaly.checkpoint import CheckpointError

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
        from implementations.anomaly.export import export

        formats = FORMATS if args.format == "all" else (args.format,)
        artifacts = export(args.ckpt, formats, args.out)
        for fmt, path in artifacts.items():
            print(f"{fmt:>5}: {path} (manifest {path.name}.json)")
        if args.no_check:
            return 0
        rows = health_check(args.ckpt, artifacts)
    except (CheckpointError, PortCheckpointError, ExportError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = [r for r in rows if not r["passed"]]
    if failed:
        print(f"health check FAILED: {len(failed)} row(s) below the required tier", file=sys.stderr)
        return 1
    print("health check passed")
    return 0
