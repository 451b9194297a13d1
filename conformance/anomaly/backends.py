"""Backends of the anomaly subsystem: the exported artifacts of the reference detector, each run in its own
runtime (`implementations.anomaly.runtimes`), and the deserialized ``jax.export`` module of the JAX port.

``prepare`` receives the case's implementation, a detector bound to a checkpoint (it has a ``checkpoint``
attribute: the directory of ``model.safetensors`` + ``config.json``), exports that checkpoint to the backend's
format once per process (cached, in a temporary directory), loads the artifact and returns its runtime.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from conformance.backends import Backend, register

# backend -> (export format, runtime)
ARTIFACT_BACKENDS: dict[str, tuple[str, str]] = {
    "torchscript": ("ts", "torchscript"),
    "torch-export": ("pt2", "torch-export"),
    "onnxruntime": ("onnx", "onnxruntime"),
    "onnx-reference": ("onnx", "onnx-reference"),
    "jax-export-symbolic": ("jax", "jax-export"),
}

_DIRS: list[str] = []


def _cleanup() -> None:
    for d in _DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


@cache
def artifact(checkpoint: str, fmt: str) -> Path:
    """Export ``checkpoint`` to ``fmt`` once per process; the path of the artifact (manifest beside it)."""
    from implementations.anomaly.export import export

    out = tempfile.mkdtemp(prefix=f"anomaly-{fmt}-")
    _DIRS.append(out)
    return export(checkpoint, (fmt,), out)[fmt]


@cache
def runtime(checkpoint: str, backend: str) -> Callable[..., Any]:
    from implementations.anomaly.runtimes import load

    fmt, rt = ARTIFACT_BACKENDS[backend]
    return load(rt, artifact(checkpoint, fmt))


def _preparer(backend: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def prepare(impl: Callable[..., Any]) -> Callable[..., Any]:
        ckpt = getattr(impl, "checkpoint", None)
        if ckpt is None:
            raise TypeError(
                f"backend {backend!r} runs an exported artifact of a checkpoint; the case's implementation must "
                f"have a 'checkpoint' attribute (got {impl!r})"
            )
        return runtime(str(ckpt), backend)

    return prepare


_DESCRIPTIONS = {
    "torchscript": "frozen TorchScript of the reference (script, freeze), run under no_grad",
    "torch-export": "the reference's torch.export program (.pt2, dynamic batch), saved and loaded",
    "onnxruntime": "the reference's ONNX export (dynamo exporter) on onnxruntime's CPU provider",
    "onnx-reference": "the reference's ONNX export on onnx.reference.ReferenceEvaluator (pure Python)",
    "jax-export-symbolic": "the JAX port serialized with jax.export (symbolic batch), deserialized and called",
}
_FRAMEWORK = {
    "torchscript": "torch",
    "torch-export": "torch",
    "onnxruntime": "onnx",
    "onnx-reference": "onnx",
    "jax-export-symbolic": "jax",
}

for _name in ARTIFACT_BACKENDS:
    register(Backend(_name, _DESCRIPTIONS[_name], _FRAMEWORK[_name], _preparer(_name)))
