"""The tiers the anomaly subsystem's requirements promise, pinned: the table cannot be loosened silently."""

from __future__ import annotations

from conformance.tiers import at_least, default_table


def test_required_tiers_are_the_floors() -> None:
    """Frozen TorchScript must be bitwise equal to eager; every other runtime and the port at least excellent."""
    table = default_table()
    assert table.required("anomaly.detect", "torchscript", "cpu", "float32") == "exact"
    for backend in ("jax-jit", "torch-export", "onnxruntime", "onnx-reference", "jax-export-symbolic"):
        assert at_least(table.required("anomaly.detect", backend, "cpu", "float32"), "excellent")
