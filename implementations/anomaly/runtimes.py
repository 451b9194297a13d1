"""Runtimes for the exported artifacts of the detector (`implementations.anomaly.export`): each loads one
artifact, checks it against its manifest, validates every window against the manifest's L, D and dtype on the
host, and returns ``(O1, score)`` as float32 NumPy arrays.

- ``torch-export``: ``torch.export.load`` of the ``.pt2``, run under ``no_grad``;
- ``torchscript``: ``torch.jit.load`` of the frozen module, run under ``no_grad`` (the reference's grad mode:
  eager's fused fast path is taken under ``no_grad`` only, and frozen TorchScript then matches it bit for bit);
- ``onnxruntime``: an ``InferenceSession`` on the CPU execution provider;
- ``onnx-reference``: ``onnx.reference.ReferenceEvaluator`` (pure Python);
- ``jax-export``: ``jax.export.deserialize`` of the serialized module, called jitted.

A corrupt, truncated or modified artifact fails with `ArtifactError` before any library parses it (its
SHA-256 must match the manifest); without a manifest the library's own parse error is wrapped.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from implementations.anomaly.export import MANIFEST_VERSION, manifest_path, sha256_file
from reference.anomaly.inputs import InputError, validate_window

RUNTIMES = ("torch-export", "torchscript", "onnxruntime", "onnx-reference", "jax-export")
FORMAT_OF = {
    "torch-export": "pt2",
    "torchscript": "ts",
    "onnxruntime": "onnx",
    "onnx-reference": "onnx",
    "jax-export": "jax",
}

__all__ = ["RUNTIMES", "ArtifactError", "InputError", "Runtime", "load", "read_manifest"]


class ArtifactError(ValueError):
    """An artifact that cannot be used: missing, corrupt, truncated, modified, or of another format/version."""


def read_manifest(artifact: str | Path) -> dict[str, Any]:
    path = manifest_path(artifact)
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"no manifest {path} beside the artifact {artifact}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"manifest {path} is not valid JSON: {e}") from None
    if not isinstance(m, dict) or m.get("manifest_version") != MANIFEST_VERSION:
        raise ArtifactError(
            f"manifest {path} has version {m.get('manifest_version') if isinstance(m, dict) else None!r}; "
            f"this code reads version {MANIFEST_VERSION}"
        )
    return m


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


def _check_file(path: Path, fmt: str, verify: bool) -> dict[str, Any]:
    if not path.is_file():
        raise ArtifactError(f"no artifact file at {path}")
    if not verify:
        try:
            return read_manifest(path)
        except ArtifactError:
            return {"static_dims": {}, "format": fmt}
    m = read_manifest(path)
    if m.get("format") != fmt:
        raise ArtifactError(
            f"{path} is a {m.get('format')!r} artifact according to its manifest, not {fmt!r}"
        )
    digest = sha256_file(path)
    if digest != m.get("artifact_sha256"):
        raise ArtifactError(
            f"{path} does not match its manifest (SHA-256 {digest[:16]}..., manifest {str(m.get('artifact_sha256'))[:16]}...): "
            "the file is corrupt, truncated or was modified after export; re-export it"
        )
    return m


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

    from implementations.anomaly.export import quiet_torchscript

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
    """Load ``artifact`` in ``runtime`` (one of `RUNTIMES`). ``verify`` checks the manifest's SHA-256 first."""
    if runtime not in _LOADERS:
        raise ArtifactError(f"unknown runtime {runtime!r}; runtimes are {', '.join(RUNTIMES)}")
    path = Path(artifact)
    manifest = _check_file(path, FORMAT_OF[runtime], verify)
    fn = _LOADERS[runtime](path)
    if "L" not in manifest.get("static_dims", {}):
        raise ArtifactError(f"{path} has no manifest giving its window size (L, D); cannot validate inputs")
    return Runtime(runtime, fn, manifest)
