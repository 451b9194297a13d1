"""Negative controls: the anomaly cases must catch the porting and export defects the spec lists.

Each mutant is the port or the reference with one realistic defect (tanh GELU, Flax's LayerNorm eps 1e-6 or
its fast variance, a weight left unconverted: D1, sample 0 fed to every sample: D5, a positional encoding
indexed by batch position: D6, a "MSE < 1e-3" gate: D7). The case's own oracle (`conformance.compare` with
the tier table) must judge each below its required tier, or the property test must fail on it.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from flax import nnx

import implementations.anomaly.model as port_model
from conformance import compare, precision
from conformance.anomaly.conftest import windows
from conformance.anomaly.test_properties import batch_invariance_gap
from conformance.exactness import Exactness, assert_bitwise
from reference.anomaly.model import detect as ref_detect


def _judge(case: str, ref_model, fn, W: np.ndarray, backend: str = "jax-jit"):
    expected = tuple(t.numpy() for t in ref_detect(ref_model, W))
    with precision.for_dtype("float32"):
        return compare(
            expected, tuple(np.asarray(x) for x in fn(W)), case=case, backend=backend, dtype="float32"
        )


def _eager_port(port):
    graphdef, state, _ = port._load()
    return nnx.clone(nnx.merge(graphdef, state))  # a copy: mutants must not touch the shared port's weights


def test_the_port_itself_passes(ref_model, port) -> None:
    W = windows(3, 0) * 2
    assert _judge("anomaly.detect", ref_model, _eager_port(port), W).passed


def test_tanh_gelu_is_caught(ref_model, port, monkeypatch) -> None:
    monkeypatch.setattr(port_model, "gelu", lambda x: __import__("jax").nn.gelu(x, approximate=True))
    res = _judge("anomaly.detect", ref_model, _eager_port(port), windows(3, 0) * 2)
    assert not res.passed, res.message()


@pytest.mark.parametrize("attr, value", [("epsilon", 1e-6), ("use_fast_variance", True)])
def test_flax_layernorm_defaults_are_caught(ref_model, port, attr, value) -> None:
    """Flax's LayerNorm defaults matter where the per-variate variance over L is small against eps or against
    the squared mean: the near-constant case catches both. (On well-conditioned windows eps 1e-6 moves the
    trained detector's O1 by ~1e-4 only, inside the main case's tier, as the spec's 4.6e-5 on random inputs.)"""
    model = _eager_port(port)
    for _, node in nnx.iter_graph(model):
        if isinstance(node, nnx.LayerNorm):
            setattr(node, attr, value)
    rng = np.random.default_rng(1)
    W = (5.0 + 1e-3 * rng.standard_normal((3, 16, 8))).astype(
        np.float32
    )  # offset 5, spread 1e-3: in the case
    res = _judge("anomaly.detect.near_constant", ref_model, model, W)
    assert not res.passed, res.message()


def test_a_dropped_weight_is_caught(ref_model, port) -> None:
    """D1: a tensor left at its initial value (what strict=False loading does silently)."""
    model = _eager_port(port)
    fresh = port_model.build(model.cfg, seed=123)
    model.encoder.layers[1].linear1.kernel.set_value(fresh.encoder.layers[1].linear1.kernel.get_value())
    res = _judge("anomaly.detect", ref_model, model, windows(3, 0) * 2)
    assert res.tier in ("attention", "severe", "warning"), res.message()


def _mixing(ref_model):
    """D5: the wrapper took sample 0 of the encoder output for every sample."""

    def fn(W):
        with torch.no_grad():
            x = torch.from_numpy(W)
            h = ref_model.encoder(x)[0]
            O1 = ref_model.dec1(h[:1].expand_as(h)) + x
            return O1.numpy(), (O1 - x).abs().mean(dim=(1, 2)).numpy()

    return fn


def _batch_pe(ref_model):
    """D6: a positional encoding indexed by the position of the sample in the batch."""

    def fn(W):
        with torch.no_grad():
            x = torch.from_numpy(W)
            b, t = torch.arange(x.shape[0])[:, None, None], torch.arange(x.shape[1])[None, :, None]
            pe = 0.1 * torch.sin((b + 1) * t.float() / 3.0)
            O1 = ref_model.dec1(ref_model.encoder(x + pe)[0]) + x
            return O1.numpy(), (O1 - x).abs().mean(dim=(1, 2)).numpy()

    return fn


@pytest.mark.parametrize("mutant", [_mixing, _batch_pe], ids=["D5-sample-mixing", "D6-batch-position-pe"])
def test_sample_mixing_is_caught(ref_model, mutant) -> None:
    fn = mutant(ref_model)
    W = windows(4, 2) * 2
    assert batch_invariance_gap(fn, W) > 1e-3
    res = _judge("anomaly.detect", ref_model, fn, W, backend="torch-export")
    assert not res.passed, res.message()


def test_the_original_mse_gate_is_too_loose(ref_model) -> None:
    """D7: an error that passes "MSE < 1e-3" (really a mean absolute difference) fails the required tiers."""
    W = windows(3, 0) * 2
    expected = tuple(t.numpy() for t in ref_detect(ref_model, W))
    noisy = tuple(
        e + np.float32(5e-4) * np.sign(np.random.default_rng(0).standard_normal(e.shape)).astype(np.float32)
        for e in expected
    )
    assert np.abs(noisy[0] - expected[0]).mean() < 1e-3
    for backend in ("torchscript", "onnxruntime"):
        with precision.for_dtype("float32"):
            res = compare(expected, noisy, case="anomaly.detect", backend=backend, dtype="float32")
        assert not res.passed


def test_grad_mode_matters_for_torchscript_exactness(ref_model, runtime) -> None:
    """Eager takes the fused fast path only under no_grad; the exact tier holds under the same grad mode."""
    W = windows(3, 0) * 2
    ts = runtime("torchscript")
    O1, _ = ts(W)
    assert_bitwise(
        ref_detect(ref_model, W)[0].numpy(),
        O1,
        why=f"{Exactness.SAME_PROGRAM}: frozen TorchScript runs eager's ATen kernels in the same order, in one process",
    )
    model = copy.deepcopy(ref_model).eval()
    O1_grad = model(torch.from_numpy(W))[0].detach().numpy()  # grad enabled: the slow path
    assert np.abs(O1_grad - O1).max() < 1e-5
