"""The batch-first attention pass of the reference's ONNX export (`reference.anomaly.onnx_graph`): what it
rewrites, that the rewritten graph computes what the exported one does, that it leaves any other graph alone,
and negative controls: a pass that wires the attention wrongly fails the anomaly case's own parity check on
onnxruntime under the active profile (CI's), as the port's defects do in `test_negative_controls.py`."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

from conformance import cases
from conformance.anomaly.conftest import windows
from conformance.controls import assert_the_check_fails, ci_check_without_shrinking
from contracts.anomaly.artifacts import manifest_path
from implementations.anomaly.runtimes import load
from reference.anomaly.export import export_onnx
from reference.anomaly.onnx_graph import batch_first_attention


@pytest.fixture(scope="module")
def exported(ref_model, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The ONNX file as the dynamo exporter writes it, before the pass."""
    return export_onnx(ref_model, tmp_path_factory.mktemp("onnx-as-exported"), rewrite_attention=False)


def _ops(model: onnx.ModelProto) -> list[str]:
    return [n.op_type for n in model.graph.node]


def _save_beside(model: onnx.ModelProto, like: Path, out_dir: Path) -> Path:
    """``model`` written as an artifact in ``out_dir``, with the manifest of ``like`` (load with verify=False)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / like.name
    onnx.save(model, str(path))
    shutil.copy(manifest_path(like), manifest_path(path))
    return path


def _outputs(path: Path, W: np.ndarray) -> list[np.ndarray]:
    return list(load("onnxruntime", path, verify=False)(W))


def test_the_pass_removes_the_sequence_first_transposes(exported: Path, artifact) -> None:
    raw = onnx.load(str(exported))
    result = batch_first_attention(raw)
    assert (result.rewritten, result.attentions) == (4, 4), result.summary()
    # 7 per attention go; the two left are the variate/time transposes of the inverted tokens (W -> (B, D, L)
    # and back), which the model computes itself
    assert (result.transposes_before, result.transposes_after) == (30, 2), result.summary()
    ops = _ops(result.model)
    assert ops.count("Attention") == 4 and ops.count("Split") == 4 and "Gather" not in ops, sorted(set(ops))
    for n in result.model.graph.node:
        if n.op_type == "Attention":
            attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
            assert attrs["q_num_heads"] == attrs["kv_num_heads"] == 4 and attrs.get("is_causal", 0) == 0
    onnx.checker.check_model(result.model, full_check=True)
    assert _ops(raw).count("Transpose") == 30, "the pass modified its input"
    # the shipped artifact is the rewritten graph, and its manifest says so
    shipped = onnx.load(str(artifact("onnx")))
    assert _ops(shipped) == ops
    assert load("onnxruntime", artifact("onnx")).manifest["graph_pass"] == result.summary()


@pytest.mark.parametrize("B", [1, 3, 64])
def test_the_rewritten_graph_computes_the_exported_one(exported: Path, tmp_path: Path, B: int) -> None:
    """Two different graphs, so a tolerance and not bit equality (they agreed bit for bit on onnxruntime 1.32
    here): onnxruntime and ONNX's reference evaluator, at batch sizes other than the export example's."""
    raw = onnx.load(str(exported))
    new = batch_first_attention(raw).model
    path = _save_beside(new, exported, tmp_path)
    W = windows(B, seed=B)
    for got, want in zip(_outputs(path, W), _outputs(exported, W), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)
    for got, want in zip(
        ReferenceEvaluator(new).run(None, {"W": W}), ReferenceEvaluator(raw).run(None, {"W": W}), strict=True
    ):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_pass_leaves_other_graphs_alone(exported: Path, tmp_path: Path) -> None:
    raw = onnx.load(str(exported))
    once = batch_first_attention(raw)
    twice = batch_first_attention(once.model)
    assert twice.rewritten == 0 and twice.attentions == 4
    assert twice.model.graph.SerializeToString() == once.model.graph.SerializeToString()
    # a chain that differs from the exporter's (its q gathered at k's index: q = k) stays as it is, and the
    # graph still computes what its input computes
    g = raw.graph
    gathers = [n for n in g.node if n.op_type == "Gather"]
    q_index, k_index = gathers[0].input[1], gathers[1].input[1]
    assert q_index != k_index
    gathers[0].input[1] = k_index
    result = batch_first_attention(raw)
    assert (result.rewritten, result.attentions) == (3, 4), result.summary()
    W = windows(5, seed=1)
    changed = _save_beside(raw, exported, tmp_path / "changed")
    rewritten = _save_beside(result.model, exported, tmp_path / "rewritten")
    for got, want in zip(_outputs(rewritten, W), _outputs(changed, W), strict=True):
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-6)


def test_the_legacy_graph_has_nothing_to_rewrite(ref_model, tmp_path: Path) -> None:
    path = export_onnx(ref_model, tmp_path, force_legacy=True)
    summary = load("onnxruntime", path).manifest["graph_pass"]
    assert summary.startswith("batch-first attention: 0 of "), summary


# -- negative controls: a wrongly wired pass fails the case's own check on onnxruntime ----------------------


def _first_attention(model: onnx.ModelProto) -> onnx.NodeProto:
    return next(n for n in model.graph.node if n.op_type == "Attention")


def _swap_k_v(model: onnx.ModelProto) -> None:
    att = _first_attention(model)
    att.input[1], att.input[2] = att.input[2], att.input[1]


def _two_heads(model: onnx.ModelProto) -> None:
    att = _first_attention(model)
    for a in att.attribute:
        if a.name in ("q_num_heads", "kv_num_heads"):
            a.i = 2


def _q_from_k(model: onnx.ModelProto) -> None:
    att = _first_attention(model)
    att.input[0] = att.input[1]


def _check_with(
    model: onnx.ModelProto, exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Callable[[], None]:
    """The anomaly case's parity check on onnxruntime, run on ``model`` instead of the shipped artifact."""
    runtime = load("onnxruntime", _save_beside(model, exported, tmp_path), verify=False)
    real = cases._prepared
    monkeypatch.setattr(
        cases, "_prepared", lambda case, backend: runtime if backend == "onnxruntime" else real(case, backend)
    )
    return lambda: cases.check(cases.get("anomaly.detect"), "float32", "onnxruntime")


@pytest.mark.parametrize(
    "defect", [_swap_k_v, _two_heads, _q_from_k], ids=["k-v-swapped", "two-heads", "q-from-k"]
)
def test_a_miswired_pass_is_caught(
    defect: Callable[[onnx.ModelProto], None],
    exported: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    model = batch_first_attention(onnx.load(str(exported))).model
    defect(model)
    check = _check_with(model, exported, tmp_path, monkeypatch)
    with ci_check_without_shrinking():
        err = assert_the_check_fails(check)
    assert err.result.case == "anomaly.detect" and err.result.backend == "onnxruntime"


def test_the_pass_itself_passes_the_same_check(
    exported: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Sanity of the controls: the same mechanism on the correctly rewritten graph passes."""
    check = _check_with(
        batch_first_attention(onnx.load(str(exported))).model, exported, tmp_path, monkeypatch
    )
    with ci_check_without_shrinking():
        check()
