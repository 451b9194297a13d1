"""Benchmarks of the anomaly subsystem: latency of every runtime of the detector (PyTorch eager reference,
TorchScript, torch.export, onnxruntime, the JAX port jitted, the deserialized jax.export) at B=1 and B=64,
relative to PyTorch eager measured in the same run, and export time per format.

asv: ``time_*`` methods of `Latency` (parameterised by runtime and batch) and `track_export_seconds`.
Standalone: ``python benchmarks/anomaly.py`` prints the ratios table (one process, one run).
"""

from __future__ import annotations

import statistics
import tempfile
import time
from functools import cache
from pathlib import Path

import numpy as np

RUNTIMES = ("torch-eager", "torchscript", "torch-export", "onnxruntime", "jax-jit", "jax-export")
BATCHES = (1, 64)
FORMAT_OF = {"torchscript": "ts", "torch-export": "pt2", "onnxruntime": "onnx", "jax-export": "jax"}


@cache
def _setup() -> tuple[Path, dict[str, Path], dict[str, float]]:
    from implementations.anomaly.export import export
    from reference.anomaly.checkpoint import save_checkpoint
    from reference.anomaly.config import SMALL
    from reference.anomaly.model import build

    root = Path(tempfile.mkdtemp(prefix="anomaly-bench-"))
    ckpt = save_checkpoint(build(SMALL, seed=0), root / "ckpt")
    artifacts, seconds = {}, {}
    for fmt in ("pt2", "onnx", "ts", "jax"):
        t0 = time.perf_counter()
        artifacts[fmt] = export(ckpt, (fmt,), root / "out")[fmt]
        seconds[fmt] = time.perf_counter() - t0
    return ckpt, artifacts, seconds


@cache
def runner(name: str):
    import jax

    ckpt, artifacts, _ = _setup()
    if name == "torch-eager":
        from reference.anomaly.checkpoint import load_checkpoint
        from reference.anomaly.model import detect

        model = load_checkpoint(ckpt)
        return lambda W: detect(model, W)
    if name == "jax-jit":
        from implementations.anomaly.convert import Detector

        det = Detector(ckpt)
        return lambda W: jax.block_until_ready(det(W))
    from implementations.anomaly.runtimes import load

    return load("jax-export" if name == "jax-export" else name, artifacts[FORMAT_OF[name]])


def latency(name: str, B: int, repeats: int = 30) -> float:
    """Median seconds per call after warm-up (outputs are host arrays or blocked JAX arrays)."""
    fn = runner(name)
    W = np.random.default_rng(0).standard_normal((B, 16, 8)).astype(np.float32)
    for _ in range(3):
        fn(W)
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn(W)
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


class Latency:
    params = (list(RUNTIMES), list(BATCHES))
    param_names = ("runtime", "batch")

    def setup(self, name: str, B: int) -> None:
        self.fn = runner(name)
        self.W = np.random.default_rng(0).standard_normal((B, 16, 8)).astype(np.float32)
        self.fn(self.W)

    def time_call(self, name: str, B: int) -> None:
        self.fn(self.W)


def track_export_seconds_pt2() -> float:
    return _setup()[2]["pt2"]


def track_export_seconds_onnx() -> float:
    return _setup()[2]["onnx"]


def track_export_seconds_ts() -> float:
    return _setup()[2]["ts"]


def track_export_seconds_jax() -> float:
    return _setup()[2]["jax"]


def main() -> None:
    from conformance import precision

    precision.apply()
    _, _, seconds = _setup()
    print("export seconds: " + ", ".join(f"{k} {v:.2f}" for k, v in seconds.items()))
    base = {B: latency("torch-eager", B) for B in BATCHES}
    print(f"{'runtime':<14}" + "".join(f"{'B=' + str(B) + ' ms':>12}{'speedup':>9}" for B in BATCHES))
    for name in RUNTIMES:
        row = f"{name:<14}"
        for B in BATCHES:
            t = base[B] if name == "torch-eager" else latency(name, B)
            row += f"{1e3 * t:>12.3f}{base[B] / t:>8.2f}x"
        print(row)


if __name__ == "__main__":
    main()
