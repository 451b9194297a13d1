"""Properties of the detector (spec section 4), on the reference and on the JAX port: batch invariance (a
sample's output does not depend on its neighbours: the original's D5/D6), variate-permutation equivariance of
the itr encoder, score == mean |O1 - W|, a zeroed dec1 gives O1 == W and score 0, and a dynamic batch at sizes
other than the export example's in every runtime."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from flax import nnx
from hypothesis import given, settings
from hypothesis import strategies as st

from conformance.anomaly.conftest import windows
from conformance.exactness import Exactness, assert_bitwise
from contracts.anomaly.artifacts import EXAMPLE_BATCH
from implementations.anomaly.model import detect as port_detect
from reference.anomaly.model import detect as ref_detect

BACKENDS = ("torchscript", "torch-export", "onnxruntime", "onnx-reference", "jax-export-symbolic")


def examples(n: int) -> settings:
    return settings(max_examples=min(n, settings.default.max_examples))


def batch_invariance_gap(fn, W: np.ndarray) -> float:
    """max |fn(W)[i] - fn(W[i:i+1])[0]| over the samples i of the batch (O1 and score)."""
    O1, score = (np.asarray(x) for x in fn(W))
    gap = 0.0
    for i in range(W.shape[0]):
        o, s = (np.asarray(x) for x in fn(W[i : i + 1]))
        gap = max(gap, float(np.abs(O1[i] - o[0]).max()), float(np.abs(score[i] - s[0])))
    return gap


@examples(4)
@given(seed=st.integers(0, 2**31 - 1), B=st.sampled_from((3, 8)))
def test_batch_invariance_reference(ref_model, seed: int, B: int) -> None:
    W = windows(B, seed) * 2
    assert batch_invariance_gap(lambda x: ref_detect(ref_model, x), W) <= 1e-6


@examples(3)
@given(seed=st.integers(0, 2**31 - 1))
def test_batch_invariance_port(port, seed: int) -> None:
    """XLA may block a GEMM differently for another batch size: a few float32 ULPs of the output's scale (the
    trained O1 reaches |W| ~ 8 here, where one ULP is 4.8e-7) are allowed; D5/D6 are off by 0.4 and more."""
    W = windows(3, seed) * 2
    assert batch_invariance_gap(port, W) <= 1e-6 * max(1.0, float(np.abs(W).max()))


def test_permutation_equivariance_of_the_encoder(ref_model) -> None:
    W = torch.from_numpy(windows(4, 1) * 2)
    perm = torch.from_numpy(np.random.default_rng(2).permutation(W.shape[2]))
    with torch.no_grad():
        h_time, h_tokens = ref_model.encoder(W)
        p_time, p_tokens = ref_model.encoder(W[:, :, perm])
    assert float((p_time - h_time[:, :, perm]).abs().max()) <= 1e-5
    assert float((p_tokens - h_tokens[:, perm]).abs().max()) <= 1e-5
    assert not torch.equal(perm, torch.arange(W.shape[2]))


def test_permutation_equivariance_of_the_port_encoder(port) -> None:
    model = nnx.merge(*port._load()[:2])
    W = windows(4, 1) * 2
    perm = np.random.default_rng(2).permutation(W.shape[2])
    h_time, h_tokens = model.encoder(W)
    p_time, p_tokens = model.encoder(W[:, :, perm])
    assert float(np.abs(np.asarray(p_time) - np.asarray(h_time)[:, :, perm]).max()) <= 1e-5
    assert float(np.abs(np.asarray(p_tokens) - np.asarray(h_tokens)[:, perm]).max()) <= 1e-5


@pytest.mark.parametrize("side", ["reference", "port", *BACKENDS])
def test_score_is_the_mean_absolute_residual(side: str, ref_model, port, runtime) -> None:
    W = windows(5, 3) * 2
    fn = {"reference": lambda x: ref_detect(ref_model, x), "port": port}.get(side) or runtime(side)
    O1, score = (np.asarray(x, np.float64) for x in fn(W))
    expected = np.abs(O1 - W.astype(np.float64)).mean(axis=(1, 2))
    np.testing.assert_allclose(score, expected, rtol=1e-5, atol=1e-7)
    assert score.shape == (5,) and O1.shape == W.shape


def test_zeroed_dec1_gives_the_identity(ref_model, port) -> None:
    W = windows(3, 4) * 2
    ref = __import__("copy").deepcopy(ref_model)
    with torch.no_grad():
        for p in ref.dec1.parameters():
            p.zero_()
    O1, score = ref_detect(ref, W)
    why = f"{Exactness.ORDER_INDEPENDENT}: a zero decoder adds exact zeros to the window"
    assert_bitwise(W, O1.numpy(), why=why)
    assert_bitwise(np.zeros_like(score.numpy()), score.numpy(), why=why)
    graphdef, state, _ = port._load()
    model = nnx.clone(nnx.merge(graphdef, state))  # a copy: the shared port's weights stay untouched
    for _, var in nnx.state(model.dec1, nnx.Param).flat_state():
        var.set_value(var.get_value() * 0)
    O1j, scorej = port_detect(model, W)
    assert_bitwise(W, np.asarray(O1j), why=why)
    assert_bitwise(np.zeros_like(np.asarray(scorej)), np.asarray(scorej), why=why)


@pytest.mark.parametrize("backend", BACKENDS)
def test_dynamic_batch_other_than_the_export_example(backend: str, runtime, ref_model) -> None:
    """D4: the original exported with batch 1 and the 'dynamic' batch was specialised; ours runs at any B."""
    rt = runtime(backend)
    assert rt.manifest["example_batch"] == EXAMPLE_BATCH >= 2
    assert rt.manifest["dynamic_dims"]["W"] == {"0": "batch"}
    for B in (1, 7):
        assert B != EXAMPLE_BATCH
        W = windows(B, 5 + B)
        O1, score = rt(W)
        rO1, rscore = ref_detect(ref_model, W)
        assert O1.shape == (B, 16, 8) and score.shape == (B,)
        assert np.abs(O1 - rO1.numpy()).max() < 1e-4 and np.abs(score - rscore.numpy()).max() < 1e-4
