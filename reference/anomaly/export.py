"""The reference exporting itself: artifacts of the PyTorch detector (`reference.anomaly.model.ExportWrapper`), each
with its JSON manifest (`contracts.anomaly.artifacts`, which also lists the formats and their runtimes).

Formats (all with a dynamic batch and static L, D; the example batch is
`contracts.anomaly.artifacts.EXAMPLE_BATCH`):

- ``pt2``: ``torch.export`` (non-strict), saved with ``torch.export.save``. The primary artifact.
- ``onnx``: ``torch.onnx.export(dynamo=True)`` at opset 23 (`ONNX_OPSET`), checked with ``onnx.checker`` (full check); only if
  that fails, the legacy TorchScript-based exporter at opset 17, and the manifest says so and why. The exported
  graph then goes through `reference.anomaly.onnx_graph.batch_first_attention` (the attentions computed on
  (B, S, E), without the exporter's sequence-first Transposes), is checked again, and the manifest records
  what the pass rewrote.
- ``ts``: TorchScript: ``script`` (then ``trace`` if scripting fails), then ``freeze``. Its deprecation warnings
  are handled here and never reach the caller's log.

The JAX port's own artifact (``jax``) is exported by `implementations.anomaly.export`. Files are written
atomically; the manifest carries the checkpoint's parameter checksum and the artifact's SHA-256.
"""

from __future__ import annotations

import contextlib
import io
import logging
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import torch

from contracts.anomaly.artifacts import (
    EXAMPLE_BATCH,
    FORMATS,
    INPUT_NAMES,
    MAX_BATCH,
    OUTPUT_NAMES,
    ExportError,
    check_formats,
    formats_of,
    manifest,
    quiet_torchscript,
    write_manifest,
)
from contracts.common import parameter_checksum, replace
from reference.anomaly.checkpoint import load_checkpoint, state_dict
from reference.anomaly.model import AnomalyDetector, ExportWrapper

EXPORTED = formats_of("reference")
"""The formats exported here: ``pt2``, ``onnx``, ``ts``."""
ONNX_OPSET = 23
"""Opset 23 has the ONNX ``Attention`` operator: the exporter writes each attention as one node, which
onnxruntime runs as one fused kernel, where at opset 20 it wrote the decomposition (a transpose of K, two
scalings, MatMul, Softmax, MatMul). Measured at B=64 on the 2-core CPU machine: onnxruntime 5.04 against
5.6-5.8 ms per call; the results agree with the opset-20 graph's to 8e-7 and pass the same full
``onnx.checker`` and ONNX reference evaluator."""
ONNX_LEGACY_OPSET = 17

__all__ = [
    "EXPORTED",
    "ExportError",
    "export",
    "export_onnx",
    "export_pt2",
    "export_torchscript",
    "quiet_onnx",
]


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


def _example(L: int, D: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return torch.randn(EXAMPLE_BATCH, L, D, generator=g)


def _wrapper(model: AnomalyDetector) -> ExportWrapper:
    return ExportWrapper(model).eval()


def _checksum(model: AnomalyDetector) -> str:
    return parameter_checksum(state_dict(model))


def _path(out_dir: str | Path, fmt: str) -> Path:
    out = Path(out_dir) / FORMATS[fmt].filename
    out.parent.mkdir(parents=True, exist_ok=True)
    return out


def export_pt2(model: AnomalyDetector, out_dir: str | Path) -> Path:
    """``torch.export`` with a dynamic batch; ``anomaly.pt2`` and its manifest in ``out_dir``."""
    cfg = model.cfg
    out = _path(out_dir, "pt2")
    t0 = time.perf_counter()
    batch = torch.export.Dim("batch", min=1, max=MAX_BATCH)
    with torch.no_grad():
        ep = torch.export.export(_wrapper(model), (_example(cfg.L, cfg.D),), dynamic_shapes=({0: batch},))
    with tempfile.NamedTemporaryFile(
        dir=out.parent, prefix=".anomaly.", suffix=".tmp.pt2", delete=False
    ) as tmp:
        pass
    torch.export.save(ep, tmp.name)
    replace(tmp.name, out)
    write_manifest(
        out,
        manifest(
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


def _onnx_dynamo(wrapper: ExportWrapper, example: torch.Tensor, path: Path) -> None:
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


def _onnx_legacy(wrapper: ExportWrapper, example: torch.Tensor, path: Path) -> None:
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


def _rewrite_onnx(path: Path) -> str:
    """Apply `reference.anomaly.onnx_graph.batch_first_attention` to the ONNX file at ``path`` in place; its
    summary."""
    import onnx

    from reference.anomaly.onnx_graph import batch_first_attention

    result = batch_first_attention(onnx.load(str(path)))
    if result.rewritten:
        onnx.save(result.model, str(path))
    return result.summary()


def export_onnx(
    model: AnomalyDetector, out_dir: str | Path, *, force_legacy: bool = False, rewrite_attention: bool = True
) -> Path:
    """ONNX via the dynamo exporter (opset `ONNX_OPSET`, 23), checked with ``onnx.checker`` (full); the legacy exporter
    only if that fails (``force_legacy`` skips straight to it, for tests). Then the batch-first attention pass
    (`reference.anomaly.onnx_graph`; ``rewrite_attention=False`` keeps the graph as exported, for tests) and the
    full check again. ``anomaly.onnx`` + manifest."""
    cfg = model.cfg
    out = _path(out_dir, "onnx")
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
    graph_pass = None
    if rewrite_attention:
        try:
            graph_pass = _rewrite_onnx(tmp)
            _check_onnx(tmp)
        except Exception as e:
            tmp.unlink(missing_ok=True)
            raise ExportError(f"the ONNX graph pass failed: {type(e).__name__}: {e}") from e
    replace(tmp, out)
    write_manifest(
        out,
        manifest(
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
            graph_pass=graph_pass,
            export_seconds=time.perf_counter() - t0,
        ),
    )
    return out


def export_torchscript(model: AnomalyDetector, out_dir: str | Path) -> Path:
    """TorchScript: ``script`` (``trace`` if scripting fails), then ``freeze``; ``anomaly.ts`` + manifest."""
    cfg = model.cfg
    out = _path(out_dir, "ts")
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
    replace(tmp, out)
    write_manifest(
        out,
        manifest(
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


_EXPORTERS = {"pt2": export_pt2, "onnx": export_onnx, "ts": export_torchscript}


def export(checkpoint: str | Path, formats: tuple[str, ...], out_dir: str | Path) -> dict[str, Path]:
    """Export the reference checkpoint to each of ``formats`` (a subset of `EXPORTED`) into ``out_dir``."""
    check_formats(formats, "reference")
    model = load_checkpoint(checkpoint)
    return {fmt: _EXPORTERS[fmt](model, out_dir) for fmt in formats}
