"""The anomaly subsystem's artifact health check (harness): every exported artifact, in each of its runtimes,
against the reference (PyTorch eager, ``no_grad``) on a random batch and on a batch size other than the export
example's, judged by the project's tier table (case ``anomaly.detect``).

    python -m conformance.anomaly.health --ckpt CKPT_DIR ARTIFACT [ARTIFACT ...]
    python -m conformance.anomaly.health --ckpt CKPT_DIR --export pt2|onnx|ts|jax|all --out DIR

The first form checks artifacts already written (their format is read from the file suffix, by the table of
`contracts.anomaly.artifacts`); the second exports the checkpoint first, each format by its own side's
exporter (`conformance.anomaly.backends.export`). It prints the parity table and exits 1 if any runtime falls
below its required tier (2 on a usage, checkpoint, export or artifact error).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

from contracts.anomaly.artifacts import EXAMPLE_BATCH, FORMATS, ArtifactError, ExportError, format_of_path

HEALTH_CASE = "anomaly.detect"
HEALTH_BATCHES = (EXAMPLE_BATCH + 3, 1)  # a random batch, and batch sizes other than the example one


def health_check(
    checkpoint: str | Path, artifacts: dict[str, Path], *, seed: int = 0
) -> list[dict[str, object]]:
    """Run every artifact (``{format: path}``) in its runtime(s) against the reference; one row per
    (runtime, batch size)."""
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
        for rt in FORMATS[fmt].runtimes:
            runtime = load(rt.name, path)
            for b, W in batches.items():
                with precision.for_dtype("float32"):
                    res = compare(
                        expected[b], runtime(W), case=HEALTH_CASE, backend=rt.backend, dtype="float32"
                    )
                worst = res.worst
                rows.append(
                    {
                        "runtime": rt.name,
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
        prog="python -m conformance.anomaly.health", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument(
        "--ckpt", required=True, type=Path, help="checkpoint directory (model.safetensors + config.json)"
    )
    parser.add_argument("artifacts", nargs="*", type=Path, help="artifact files to check (manifests beside)")
    parser.add_argument("--export", choices=[*FORMATS, "all"], help="export the checkpoint first")
    parser.add_argument("--out", type=Path, help="directory of the exported artifacts (with --export)")
    args = parser.parse_args(argv)
    if bool(args.export) == bool(args.artifacts) or bool(args.export) != bool(args.out):
        parser.error("give either artifact files, or --export FORMAT with --out DIR")

    from implementations.anomaly.convert import CheckpointError as PortCheckpointError
    from reference.anomaly.checkpoint import CheckpointError

    try:
        if args.export:
            from conformance.anomaly.backends import export

            formats = tuple(FORMATS) if args.export == "all" else (args.export,)
            artifacts = export(args.ckpt, formats, args.out)
            for fmt, path in artifacts.items():
                print(f"{fmt:>5}: {path} (manifest {path.name}.json)")
        else:
            artifacts = {format_of_path(p).name: p for p in args.artifacts}
            if len(artifacts) != len(args.artifacts):
                parser.error("give one artifact per format")
        rows = health_check(args.ckpt, artifacts)
    except (CheckpointError, PortCheckpointError, ExportError, ArtifactError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(format_table(rows))
    failed = [r for r in rows if not r["passed"]]
    if failed:
        print(f"health check FAILED: {len(failed)} row(s) below the required tier", file=sys.stderr)
        return 1
    print("health check passed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
