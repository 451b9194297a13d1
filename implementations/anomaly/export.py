"""Exported artifacts of the reference detector (`reference.anomaly.model.ExportWrapper`) and of the JAX port
(`implementations.anomaly.model`), each with a JSON manifest.

Formats (all with a dynamic batch and static L, D; the example batch is 2, since a batch-1 example lets the
tracer 0/1-specialise the "dynamic" batch: the original's D4):

- ``pt2``: ``torch.export`` (non-strict), saved with ``torch.export.save``. The primary artifact.
- ``onnx``: ``torch.onnx.export(dynamo=True)`` at opset 20, checked with ``onnx.checker`` (full check); only if
  that fails, the legacy TorchScript-based exporter at opset 17, and the manifest says so and why.
- ``ts``: TorchScript: ``script`` (then ``trace`` if scripting fails), then ``freeze``. Its deprecation warnings
  are handled here and never reach the caller's log.
- ``jax``: ``jax.export`` of the jitted port with a symbolic batch dimension, weights closed over.

Manifest: format, exporter, opset, input/output names, shapes and dtypes, dynamic dimensions, L and D, the
example batch, library versions, the checkpoint's parameter checksum and the artifact's SHA-256 (a corrupt or
modified artifact is refused before any runtime parses it). Files are written atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import platform
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from reference.anomaly._io import atomic_replace, atomic_write_bytes

FORMATS = ("pt2", "onnx", "ts", "jax")
SUFFIX = {"pt2": ".pt2", "onnx": ".onnx", "ts": ".ts", "jax": ".jaxexport"}
EXAMPLE_BATCH = 2
MAX_BATCH = 4096
ONNX_OPSET = 20
ONNX_LEGACY_OPSET = 17
INPUT_NAMES = ("W",)
OUTPUT_NAMES = ("O1", "score")
MANIFEST_VERSION = 1


class ExportError(RuntimeError):
    """An exporter failed (after its fallbacks, where it has any)."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def library_versions() -> dict[str, str]:
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in (
        "torch",
        "onnx",
        "onnxruntime",
        "onnxscript",
        "jax",
        "jaxlib",
        "flax",
        "numpy",
        "safetensors",
    ):
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def manifest_path(artifact: str | Path) -> Path:
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def _manifest(fmt: str, artifact: Path, L: int, D: int, checksum: str, **extra: Any) -> dict[str, Any]:
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": fmt,
        "artifact": artifact.name,
        "artifact_sha256": sha256_file(artifact),
        "artifact_bytes": artifact.stat().st_size,
        "inputs": [{"name": "W", "shape": ["batch", L, D], "dtype": "float32"}],
        "outputs": [
            {"name": "O1", "shape": ["batch", L, D], "dtype": "float32"},
            {"name": "score", "shape": ["batch"], "dtype": "float32"},
        ],
        "dynamic_dims": {"W": {"0": "batch"}, "O1": {"0": "batch"}, "score": {"0": "batch"}},
        "static_dims": {"L": L, "D": D},
        "example_batch": EXAMPLE_BATCH,
        "parameter_checksum": checksum,
        "versions": library_versions(),
        **extra,
    }


def _write_manifest(artifact: Path, manifest: dict[str, Any]) -> Path:
    path = manifest_path(artifact)
    atomic_write_bytes(path, (json.dumps(manifest, indent=2, sort_keys=True) + "\n").encode())
    return path


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Swallow TorchScript's deprecation warnings (one per submodule on ``script``; fatal under ``-W error``)
    and nothing else: other warnings raised inside the block are re-issued to the caller."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        is_ts = issubclass(w.category, DeprecationWarning) and (
            "torch/jit" in w.filename.replace("\\", "/")
            or "TorchScript" in text
            or "torch.jit" in text
            or "torch.export" in text
        )
        if not is_ts:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)


@contextlib.contextmanager
def quiet_onnx() -> Iterator[None]:
    """The dynamo exporter prints progress to stdout and logs optional-dependency notices: keep them out of
    the user's output; real errors still raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.onnx._internal.exporter._registration")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)
            warnings.filterwarnings("ignore", message=".*dynamic_axes.*")
            yield
    finally:
        for lg, lv in zip(loggers, levels, strict=True):
            lg.setLevel(lv)


def _example(L: int, D: int) -> Any:
    import torch

    g = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, L, D, generator=g)


def _wrapper(model: Any) -> Any:
    from reference.anomaly.model import ExportWrapper

    return ExportWrapper(model).eval()


def _checksum(model: Any) -> str:
    from reference.anomaly.checkpoint import parameter_checksum, state_dict

    return parameter_checksum(state_dict(model))


def export_pt2(model: Any, out_dir: str | Path) -> Path:
    """``torch.export`` with a dynamic batch; ``anomaly.pt2`` and its manifest in ``out_dir``."""
    import torch

    cfg = model.cfg
    out = Path(out_dir) / "anomaly.pt2"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with torch.no_grad():
        ep = torch.export.export(_wrapper(model), (_example(cfg.L, cfg.D),), dynamic_shapes=({0: batch},))
    with tempfile.NamedTemporaryFile(
        dir=out.parent, prefix=".anomaly.", suffix=".tmp.pt2", delete=False
    ) as tmp:
        pass
    torch.export.save(ep, tmp.name)
    atomic_replace(Path(tmp.name), out)
    _write_manifest(
        out,
        _manifest(
            "pt2",
            out,
            cfg.L,
            cfg.D,
            _checksum(model),
            exporter="torch.export.export (non-strict)",
            opset=None,
            export_seconds=time.perf_counter() - t0,
        ),
    )
    return out


def _onnx_dynamo(wrapper: Any, example: Any, path: Path) -> None:
    import torch

    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with quiet_onnx():
        prog = torch.onnx.export(
            wrapper,
            (example,),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamo=True,
            dynamic_shapes=({0: batch},),
            opset_version=ONNX_OPSET,
            verbose=False,
        )
        prog.save(str(path), external_data=False)


def _onnx_legacy(wrapper: Any, example: Any, path: Path) -> None:
    import torch

    axes = {"W": {0: "batch"}, "O1": {0: "batch"}, "score": {0: "batch"}}
    with quiet_onnx(), quiet_torchscript(), warnings.catch_warnings():
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        torch.onnx.export(
            wrapper,
            (example,),
            str(path),
            input_names=list(INPUT_NAMES),
            output_names=list(OUTPUT_NAMES),
            dynamo=False,
            dynamic_axes=axes,
            opset_version=ONNX_LEGACY_OPSET,
        )


def _check_onnx(path: Path) -> int:
    import onnx

    m = onnx.load(str(path))
    onnx.checker.check_model(m, full_check=True)
    return max(op.version for op in m.opset_import if op.domain in ("", "ai.onnx"))


def export_onnx(model: Any, out_dir: str | Path, *, force_legacy: bool = False) -> Path:
    """ONNX via the dynamo exporter (opset 20), checked with ``onnx.checker`` (full); the legacy exporter
    only if that fails (``force_legacy`` skips straight to it, for tests). ``anomaly.onnx`` + manifest."""
    import torch

    cfg = model.cfg
    out = Path(out_dir) / "anomaly.onnx"
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper, example = _wrapper(model), _example(cfg.L, cfg.D)
    t0 = time.perf_counter()
    tmp = out.with_name(f".{out.name}.tmp")
    fallback_reason = None
    try:
        if force_legacy:
            raise ExportError("legacy exporter requested (force_legacy=True)")
        with torch.no_grad():
            _onnx_dynamo(wrapper, example, tmp)
        opset = _check_onnx(tmp)
        exporter = "torch.onnx.export(dynamo=True)"
    except Exception as e:
        fallback_reason = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
        try:
            # with grad enabled: under no_grad eager takes the fused fast path (aten::_transformer_encoder_layer_fwd),
            # which the legacy exporter cannot translate
            with torch.enable_grad():
                _onnx_legacy(wrapper, example, tmp)
            opset = _check_onnx(tmp)
        except Exception as e2:
            tmp.unlink(missing_ok=True)
            raise ExportError(
                f"ONNX export failed with the dynamo exporter ({fallback_reason}) and the legacy one "
                f"({type(e2).__name__}: {e2})"
            ) from e2
        exporter = "torch.onnx.export(dynamo=False) (legacy TorchScript-based fallback)"
    atomic_replace(tmp, out)
    _write_manifest(
        out,
        _manifest(
            "onnx",
            out,
            cfg.L,
            cfg.D,
            _checksum(model),
            exporter=exporter,
            opset=opset,
            fallback=fallback_reason is not None,
            fallback_reason=fallback_reason,
            checker="onnx.checker.check_model(full_check=True) passed",
            export_seconds=time.perf_counter() - t0,
        ),
    )
    return out


def export_torchscript(model: Any, out_dir: str | Path) -> Path:
    """TorchScript: ``script`` (``trace`` if scripting fails), then ``freeze``; ``anomaly.ts`` + manifest."""
    import torch

    cfg = model.cfg
    out = Path(out_dir) / "anomaly.ts"
    out.parent.mkdir(parents=True, exist_ok=True)
    wrapper = _wrapper(model)
    t0 = time.perf_counter()
    script_error = None
    with quiet_torchscript():
        try:
            compiled = torch.jit.script(wrapper)
            method = "torch.jit.script"
        except Exception as e:
            script_error = f"{type(e).__name__}: {e}"
            compiled = torch.jit.trace(wrapper, (_example(cfg.L, cfg.D),), strict=False)
            method = "torch.jit.trace"
        frozen = torch.jit.freeze(compiled.eval())
        tmp = out.with_name(f".{out.name}.tmp")
        torch.jit.save(frozen, str(tmp))
    atomic_replace(tmp, out)
    _write_manifest(
        out,
        _manifest(
            "ts",
            out,
            cfg.L,
            cfg.D,
            _checksum(model),
            exporter=f"{method} + torch.jit.freeze",
            opset=None,
            fallback=script_error is not None,
            fallback_reason=script_error,
            note="TorchScript is deprecated in PyTorch; kept for deployments that still need it",
            export_seconds=time.perf_counter() - t0,
        ),
    )
    return out


def export_jax(model: Any, out_dir: str | Path, *, checksum: str | None = None) -> Path:
    """``jax.export`` of the port (``implementations.anomaly.model.AnomalyDetector``) with a symbolic batch:
    ``anomaly.jaxexport`` (the serialized ``Exported``) + manifest. The weights are closed over as constants."""
    import jax
    from flax import nnx

    from implementations.anomaly.convert import parameter_checksum, torch_name

    cfg = model.cfg
    out = Path(out_dir) / "anomaly.jaxexport"
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if checksum is None:
        flat = {}
        for path, var in nnx.state(model, nnx.Param).flat_state():
            name, transpose = torch_name(path)
            a = np.asarray(var.get_value())
            flat[name] = np.ascontiguousarray(a.T if transpose else a)
        checksum = parameter_checksum(flat)
    graphdef, state = nnx.split(model)

    def forward(W: jax.Array) -> tuple[jax.Array, jax.Array]:
        return nnx.merge(graphdef, state)(W)

    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, cfg.L, cfg.D), np.float32)
    with jax.default_matmul_precision("highest"):
        exported = jax.export.export(jax.jit(forward))(spec)
    atomic_write_bytes(out, bytes(exported.serialize()))
    _write_manifest(
        out,
        _manifest(
            "jax",
            out,
            cfg.L,
            cfg.D,
            checksum,
            exporter="jax.export.export (symbolic batch 'b')",
            opset=None,
            platforms=list(exported.platforms),
            calling_convention_version=exported.calling_convention_version,
            export_seconds=time.perf_counter() - t0,
        ),
    )
    return out


def export(checkpoint: str | Path, formats: tuple[str, ...], out_dir: str | Path) -> dict[str, Path]:
    """Export the checkpoint to each of ``formats`` (a subset of `FORMATS`) into ``out_dir``."""
    from reference.anomaly.checkpoint import load_checkpoint

    unknown = [f for f in formats if f not in FORMATS]
    if unknown:
        raise ExportError(f"unknown format(s) {unknown}; formats are {', '.join(FORMATS)}")
    model = load_checkpoint(checkpoint)
    out: dict[str, Path] = {}
    for fmt in formats:
        if fmt == "pt2":
            out[fmt] = export_pt2(model, out_dir)
        elif fmt == "onnx":
            out[fmt] = export_onnx(model, out_dir)
        elif fmt == "ts":
            out[fmt] = export_torchscript(model, out_dir)
        else:
            from implementations.anomaly.convert import load_checkpoint as load_port

            out[fmt] = export_jax(load_port(checkpoint), out_dir, checksum=_checksum(model))
    return out
