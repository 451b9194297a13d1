"""Negative controls: under the profile CI runs, the anomaly cases catch the porting and export defects the spec
lists.

Each control makes the shared JAX port (the `Detector` the cases call) run one realistic defect: tanh GELU,
Flax's LayerNorm eps 1e-6 or its fast variance, a weight left at its initial value (D1), sample 0's encoding
decoded for every sample (D5), a positional encoding indexed by batch position (D6). It then runs the case's
own parity check exactly as the generic parity test runs it (the active profile's explicit examples and
derandomized draws, the case's oracle and required tier) and passes only if that check fails. Shrinking is
skipped, nothing is recorded for the report, and the port is restored afterwards. The cases' explicit examples
(batches of 3 and 8, the extremes of the near-constant windows) catch each defect at once.

The same defects, and many more, are source patches in the mutation catalogue (`conformance.anomaly.catalogue`,
run by ``python -m conformance mutate``). Two checks of the tier table itself close the file: D7 (an error the
original "MSE < 1e-3" gate passes fails the required tiers) and the grad mode that TorchScript's exact tier needs.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from functools import partial
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import torch
from flax import nnx

import implementations.anomaly.model as port_model
from conformance import cases, compare, precision
from conformance.anomaly import cases as anomaly_cases
from conformance.anomaly.conftest import windows
from conformance.controls import assert_the_check_fails, ci_check_without_shrinking
from conformance.exactness import Exactness, assert_bitwise
from conformance.parity import ParityError
from reference.anomaly.model import detect as ref_detect

# -- running a mutant through the cases' own port ----------------------------------------------------------


def _run_mutant(
    monkeypatch: pytest.MonkeyPatch,
    case_name: str,
    *,
    model: Callable[[nnx.Module], None] | None = None,
    call: Callable[[nnx.GraphDef, Any, jax.Array], Any] | None = None,
) -> ParityError:
    """Make the case's `Detector` run a mutant, then run the case's check, which must fail.

    ``model`` edits a copy of the port (its static attributes or weights); ``call`` replaces the jitted
    ``(graphdef, params, W) -> (O1, score)`` (bound to the graph and weights, as `model.weights_bound`). The port is traced afresh either way, so defects patched into
    the port's module are seen too; monkeypatch restores the shared port afterwards.
    """
    case = cases.get(case_name)
    detector = anomaly_cases._port(str(case.implementation.checkpoint))
    graphdef, params, cfg = detector._load()
    if model is not None:
        mutated = nnx.clone(nnx.merge(graphdef, params))
        model(mutated)
        graphdef, state = nnx.split(mutated)
        params = nnx.to_pure_dict(state)
    monkeypatch.setattr(detector, "_split", (graphdef, params, cfg))
    monkeypatch.setattr(
        detector, "_apply", jax.jit(partial(call or port_model._merge_call, graphdef, params))
    )
    precision.apply()
    with ci_check_without_shrinking():
        err = assert_the_check_fails(lambda: cases.check(case, "float32", "jax-jit"))
    assert err.result.case == case_name
    return err


def _layer_norms(attr: str, value: Any) -> Callable[[nnx.Module], None]:
    def edit(model: nnx.Module) -> None:
        for _, node in nnx.iter_graph(model):
            if isinstance(node, nnx.LayerNorm):
                setattr(node, attr, value)

    return edit


def test_tanh_gelu_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(port_model, "gelu", lambda x: jax.nn.gelu(x, approximate=True))
    _run_mutant(monkeypatch, "anomaly.detect")


@pytest.mark.parametrize(("attr", "value"), [("epsilon", 1e-6), ("use_fast_variance", True)])
def test_flax_layernorm_defaults_are_caught(monkeypatch: pytest.MonkeyPatch, attr: str, value: Any) -> None:
    """Flax's LayerNorm defaults matter where the per-variate variance over L is small against eps or against
    the squared mean: the near-constant case catches both. (On well-conditioned windows eps 1e-6 moves the
    trained detector's O1 by ~1e-4 only, inside the main case's tier, as the spec's 4.6e-5 on random inputs.)"""
    _run_mutant(monkeypatch, "anomaly.detect.near_constant", model=_layer_norms(attr, value))


def test_a_dropped_weight_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """D1: a tensor left at its initial value (what strict=False loading does silently)."""

    def drop(model: nnx.Module) -> None:
        fresh = port_model.build(model.cfg, seed=123)
        model.encoder.layers[1].linear1.kernel.set_value(fresh.encoder.layers[1].linear1.kernel.get_value())

    err = _run_mutant(monkeypatch, "anomaly.detect", model=drop)
    assert err.result.tier in ("warning", "attention", "severe"), err.result.message()


def _sample_zero(graphdef: nnx.GraphDef, params: Any, W: jax.Array) -> tuple[jax.Array, jax.Array]:
    """D5: the wrapper's ``encoder(W)[0]`` indexed a tensor: sample 0's encoding decoded for every sample."""
    model = nnx.merge(graphdef, params)
    O1 = model.dec1(model.encoder(W)[0][:1]) + W
    return O1, jnp.mean(jnp.abs(O1 - W), axis=(1, 2))


def _batch_position_pe(graphdef: nnx.GraphDef, params: Any, W: jax.Array) -> tuple[jax.Array, jax.Array]:
    """D6: a sinusoidal positional encoding over the batch axis (a (T, B, E) table added batch-first)."""
    model = nnx.merge(graphdef, params)
    B, L = W.shape[:2]
    freq = jnp.exp(-math.log(10000.0) * (jnp.arange(L) // 2 * 2) / L)
    pe = jnp.sin(jnp.arange(B, dtype=W.dtype)[:, None, None] * freq[None, :, None] + 0.5)
    h_time, _ = model.encoder(W + 0.1 * pe)
    O1 = model.dec1(h_time) + W
    return O1, jnp.mean(jnp.abs(O1 - W), axis=(1, 2))


@pytest.mark.parametrize(
    "call", [_sample_zero, _batch_position_pe], ids=["D5-sample-zero", "D6-batch-position-pe"]
)
def test_sample_mixing_is_caught(monkeypatch: pytest.MonkeyPatch, call: Callable[..., Any]) -> None:
    _run_mutant(monkeypatch, "anomaly.detect", call=call)


def test_the_unmutated_port_passes_the_same_check(monkeypatch: pytest.MonkeyPatch) -> None:
    """Sanity of the controls: the same fresh trace of the unmutated port passes (so the controls test the
    defect, not the mechanism)."""
    case = cases.get("anomaly.detect")
    detector = anomaly_cases._port(str(case.implementation.checkpoint))
    graphdef, params, _ = detector._load()
    monkeypatch.setattr(detector, "_apply", port_model.weights_bound(graphdef, params))  # a fresh trace
    precision.apply()
    with ci_check_without_shrinking():
        cases.check(case, "float32", "jax-jit")


# -- the tier table ---------------------------------------------------------------------------------------


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
