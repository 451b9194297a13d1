"""Implementation side of the anomaly detector's exported artifacts: the runtimes that load them. Each loads one
artifact, checks it against its manifest, validates every window against the manifest's L, D and dtype on the
host, and returns ``(O1, score)`` as float32 NumPy arrays. Which runtime loads which format is the table of
`contracts.anomaly.artifacts`.

- ``torch-export``: ``torch.export.load`` of the ``.pt2``, run under ``no_grad``;
- ``torchscript``: ``torch.jit.load`` of the frozen module, run under ``no_grad`` (the reference's grad mode:
  eager's fused fast path is taken under ``no_grad`` only, and frozen TorchScript then matches it bit for bit);
- ``onnxruntime``: an ``InferenceSession`` on the CPU execution provider;
- ``onnx-reference``: ``onnx.reference.ReferenceEvaluator`` (pure Python);
- ``jax-export``: ``jax.export.deserialize`` of the serialized module, called jitted.

PyTorch and ONNX are imported inside their loaders only: this module, and the ``jax-export`` runtime, work
without them. A corrupt, truncated or modified artifact fails with `ArtifactError` before any library parses it
(its SHA-256 must match the manifest); without a manifest the library's own parse error is wrapped.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from contracts.anomaly.artifacts import RUNTIMES, ArtifactError, check_artifact, read_manifest
from contracts.anomaly.inputs import InputError, validate_window

__all__ = ["RUNTIMES", "ArtifactError", "InputError", "Runtime", "load", "read_manifest"]


class Runtime:
    """One loaded artifact: ``runtime(W) -> (O1, score)``; ``.manifest``, ``.name``, ``.L``, ``.D``."""

    def __init__(
        self, name: str, fn: Callable[[np.ndarray], tuple[Any, Any]], manifest: dict[str, Any]
    ) -> None:
        self.name = name
        self._fn = fn
        self.manifest = manifest
        self.L = int(manifest["static_dims"]["L"])
        self.D = int(manifest["static_dims"]["D"])

    def __call__(self, W: object) -> tuple[np.ndarray, np.ndarray]:
        validate_window(W, self.L, self.D, what=f"the {self.name} artifact")
        x = np.ascontiguousarray(np.asarray(W))
        O1, score = self._fn(x)
        return np.asarray(O1), np.asarray(score)


def _load_pt2(path: Path) -> Callable[[np.ndarray], tuple[Any, Any]]:
    import torch

    try:
        ep = torch.export.load(str(path))
    except Exception as e:
        raise ArtifactError(
            f"{path} is not a loadable torch.export program: {type(e).__name__}: {e}"
        ) from None
    module = ep.module()

    def run(x: np.ndarray) -> tuple[Any, Any]:
        with torch.no_grad():
            O1, score = module(torch.from_numpy(x))
        return O1.numpy(), score.numpy()

    return run


def _load_ts(path: Path) -> Callable[[np.ndarray], tuple[Any, Any]]:
    import torch

    from contracts.anomaly.artifacts import quiet_torchscript

    try:
        with quiet_torchscript():
            module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise ArtifactError(f"{path} is not a loadable TorchScript module: {type(e).__name__}: {e}") from None

    def run(x: np.ndarray) -> tuple[Any, Any]:
        with torch.no_grad():
            O1, score = module(torch.from_numpy(x))
        return O1.numpy(), score.numpy()

    return run


def _load_onnx_model(path: Path) -> Any:
    import onnx

    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model, full_check=True)
    except Exception as e:
        raise ArtifactError(f"{path} is not a valid ONNX model: {type(e).__name__}: {e}") from None
    return model


def _load_ort(path: Path) -> Callable[[np.ndarray], tuple[Any, Any]]:
    import onnxruntime as ort

    _load_onnx_model(path)
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    # onnxruntime's intra-op threads spin after every run by default, taking the cores from whatever the
    # process does next. Measured on the 2-core CPU machine at B=64: the session itself 5.1-5.3 ms without
    # spinning against 5.45-5.48 ms with it, and the JAX port run right after it 3.94 against 4.23-4.26 ms.
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as e:
        raise ArtifactError(f"onnxruntime cannot load {path}: {type(e).__name__}: {e}") from None

    def run(x: np.ndarray) -> tuple[Any, Any]:
        O1, score = sess.run(["O1", "score"], {"W": x})
        return O1, score

    return run


def _load_onnx_reference(path: Path) -> Callable[[np.ndarray], tuple[Any, Any]]:
    from onnx.reference import ReferenceEvaluator

    ev = ReferenceEvaluator(_load_onnx_model(path))

    def run(x: np.ndarray) -> tuple[Any, Any]:
        O1, score = ev.run(["O1", "score"], {"W": x})
        return np.asarray(O1, np.float32), np.asarray(score, np.float32)

    return run


def _load_jax(path: Path) -> Callable[[np.ndarray], tuple[Any, Any]]:
    import jax

    try:
        exported = jax.export.deserialize(bytearray(path.read_bytes()))
    except Exception as e:
        raise ArtifactError(
            f"{path} is not a serialized jax.export module: {type(e).__name__}: {e}"
        ) from None
    call = jax.jit(exported.call)  # jitted once per loaded artifact, not per call

    def run(x: np.ndarray) -> tuple[Any, Any]:
        O1, score = jax.block_until_ready(call(x))
        return np.asarray(O1), np.asarray(score)

    return run


_LOADERS = {
    "torch-export": _load_pt2,
    "torchscript": _load_ts,
    "onnxruntime": _load_ort,
    "onnx-reference": _load_onnx_reference,
    "jax-export": _load_jax,
}


def load(runtime: str, artifact: str | Path, *, verify: bool = True) -> Runtime:
    """Load ``artifact`` in ``runtime`` (a name of `contracts.anomaly.artifacts.RUNTIMES`). ``verify`` checks
    the manifest's format and SHA-256 first."""
    if runtime not in RUNTIMES:
        raise ArtifactError(f"unknown runtime {runtime!r}; runtimes are {', '.join(RUNTIMES)}")
    path = Path(artifact)
    manifest = check_artifact(path, RUNTIMES[runtime].format, verify)
    fn = _LOADERS[runtime](path)
    if "L" not in manifest.get("static_dims", {}):
        raise ArtifactError(f"{path} has no manifest giving its window size (L, D); cannot validate inputs")
    return Runtime(runtime, fn, manifest)
