"""The JAX port exporting itself: ``jax.export`` of the jitted port (`implementations.anomaly.model`) with a
symbolic batch dimension and the weights closed over as constants, written as ``anomaly.jaxexport`` with its
JSON manifest (`contracts.anomaly.artifacts`, the format table and manifest schema shared with the reference's
exporters in `reference.anomaly.export`). No PyTorch: the checkpoint is read by `implementations.anomaly.convert`.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from contracts.anomaly.artifacts import (
    FORMATS,
    ExportError,
    check_formats,
    formats_of,
    manifest,
    write_manifest,
)
from contracts.common import parameter_checksum, write_bytes

EXPORTED = formats_of("implementation")
"""The formats exported here: ``jax``."""

__all__ = ["EXPORTED", "ExportError", "export", "export_jax", "torch_layout_state"]


def torch_layout_state(model: Any) -> dict[str, np.ndarray]:
    """The port's parameters under the reference's state-dict names and layouts (NumPy): what its
    `contracts.common.parameter_checksum` is taken over, equal to the reference checkpoint's."""
    from flax import nnx

    from implementations.anomaly.convert import torch_name

    flat = {}
    for path, var in nnx.state(model, nnx.Param).flat_state():
        name, transpose = torch_name(path)
        a = np.asarray(var.get_value())
        flat[name] = np.ascontiguousarray(a.T if transpose else a)
    return flat


def export_jax(model: Any, out_dir: str | Path, *, checksum: str | None = None) -> Path:
    """``jax.export`` of the port (``implementations.anomaly.model.AnomalyDetector``) with a symbolic batch:
    ``anomaly.jaxexport`` (the serialized ``Exported``) + manifest. The weights are closed over as constants."""
    import jax
    from flax import nnx

    cfg = model.cfg
    out = Path(out_dir) / FORMATS["jax"].filename
    out.parent.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    if checksum is None:
        checksum = parameter_checksum(torch_layout_state(model))
    graphdef, state = nnx.split(model)

    def forward(W: jax.Array) -> tuple[jax.Array, jax.Array]:
        return nnx.merge(graphdef, state)(W)

    (b,) = jax.export.symbolic_shape("b")
    spec = jax.ShapeDtypeStruct((b, cfg.L, cfg.D), np.float32)
    with jax.default_matmul_precision("highest"):
        exported = jax.export.export(jax.jit(forward))(spec)
    write_bytes(out, bytes(exported.serialize()))
    write_manifest(
        out,
        manifest(
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
    """Export the port of the checkpoint to each of ``formats`` (a subset of `EXPORTED`) into ``out_dir``;
    the manifest's parameter checksum is the checkpoint's (the reference's, for the same tensors)."""
    from implementations.anomaly.convert import from_torch_state, read_checkpoint

    check_formats(formats, "implementation")
    cfg, tensors = read_checkpoint(checkpoint)
    model = from_torch_state(cfg, tensors, where=f"checkpoint {checkpoint}")
    return {fmt: export_jax(model, out_dir, checksum=parameter_checksum(tensors)) for fmt in formats}
