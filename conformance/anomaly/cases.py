"""Parity cases of the anomaly subsystem: the reference detector (`reference.anomaly`, PyTorch eager under
``no_grad``) against its JAX port (`implementations.anomaly`, jitted) and against every exported artifact
run in its own runtime (TorchScript, torch.export, onnxruntime, ONNX's reference evaluator, jax.export).

The weights are real: a short deterministic training run (`reference.anomaly.train`) writes the checkpoint once
per process; each backend exports it once (`conformance.anomaly.backends`). Windows are (B, L=16, D=8) float32
with B from a few buckets (bounded JAX compilations, and batch sizes other than the export example's 2).
Near-constant windows (tiny per-variate spread around an offset) are ill-conditioned for every backend (the
LayerNorm over L divides by that spread) and are their own case with their own tier. Explicit examples (batches
of 3 and 8 with offset means; the extremes of the near-constant distribution) run first in every profile.
"""

from __future__ import annotations

import tempfile
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import strategies as st

from conformance.cases import Case, Inputs, register
from conformance.strategies import fields, finite_floats, log_uniform, shape_buckets
from contracts.anomaly.artifacts import BACKENDS, EXAMPLE_BATCH
from contracts.anomaly.config import SMALL, AnomalyConfig

BATCHES = (1, 3, 8)  # every bucket is a batch size other than the export example's
assert EXAMPLE_BATCH not in BATCHES
ARTIFACT_BACKENDS = tuple(BACKENDS)  # every runtime of every exported format
MLP = AnomalyConfig(
    L=SMALL.L,
    D=SMALL.D,
    d_model=SMALL.d_model,
    n_heads=SMALL.n_heads,
    e_layers=SMALL.e_layers,
    d_ff=SMALL.d_ff,
    decoder="mlp",
)

_TMP: list[tempfile.TemporaryDirectory[str]] = []


def _tmpdir(prefix: str) -> Path:
    d = tempfile.TemporaryDirectory(prefix=prefix)
    _TMP.append(d)
    return Path(d.name)


@cache
def trained() -> tuple[Path, float, float]:
    """The trained checkpoint of this process: (directory, ROC AUC, ROC AUC before training)."""
    from reference.anomaly.train import train_checkpoint

    path = _tmpdir("anomaly-ckpt-")
    result = train_checkpoint(path, SMALL)
    return path, result.auc, result.auc_untrained


@cache
def mlp_checkpoint() -> Path:
    """A randomly initialised checkpoint of the ``mlp`` decoder variant (seeded)."""
    from reference.anomaly.checkpoint import save_checkpoint
    from reference.anomaly.model import build

    model = build(MLP, seed=7)
    for p in model.dec1.parameters():  # the zero-initialised last layer would make dec1 trivially zero
        p.data.normal_(0.0, 0.3, generator=__import__("torch").Generator().manual_seed(1))
    return save_checkpoint(model, _tmpdir("anomaly-mlp-"))


@cache
def reference_model(checkpoint: str) -> Any:
    from reference.anomaly.checkpoint import load_checkpoint

    return load_checkpoint(checkpoint)


class LazyReference:
    """``reference.anomaly.model.detect`` bound to a checkpoint (loaded on first call)."""

    def __init__(self, checkpoint: Any) -> None:
        self._checkpoint = checkpoint

    @property
    def checkpoint(self) -> Path:
        return Path(self._checkpoint()) if callable(self._checkpoint) else Path(self._checkpoint)

    def __call__(self, W: np.ndarray) -> Any:
        from reference.anomaly.model import detect

        return detect(reference_model(str(self.checkpoint)), W)


class LazyPort:
    """The JAX port (`implementations.anomaly.convert.Detector`) bound to a checkpoint, created on first use."""

    def __init__(self, checkpoint: Any) -> None:
        self._checkpoint = checkpoint

    @property
    def checkpoint(self) -> Path:
        return Path(self._checkpoint()) if callable(self._checkpoint) else Path(self._checkpoint)

    def __call__(self, W: np.ndarray) -> Any:
        return _port(str(self.checkpoint))(W)


@cache
def _port(checkpoint: str) -> Any:
    from implementations.anomaly.convert import Detector

    return Detector(checkpoint)


def _trained_path() -> Path:
    return trained()[0]


def windows(
    *, magnitude: Any, offset: Any, kinds: tuple[str, ...], spikes: bool
) -> st.SearchStrategy[Inputs]:
    shape = shape_buckets(*[(b, SMALL.L, SMALL.D) for b in BATCHES])
    return st.fixed_dictionaries(
        {"W": fields(shape, magnitude=magnitude, offset=offset, kinds=kinds, spikes=spikes)}
    )


def main_windows(dtype: str) -> st.SearchStrategy[Inputs]:
    """Well-conditioned windows: per-variate spread >= 0.3, |offset| <= 2, values within about +-10 (spec)."""
    return windows(
        magnitude=log_uniform(0.3, 3.0),
        offset=finite_floats(-2.0, 2.0),
        kinds=("normal", "uniform"),
        spikes=True,
    )


def near_constant_windows(dtype: str) -> st.SearchStrategy[Inputs]:
    """Offset up to +-5 with a per-variate spread of 1e-3 to 1e-2: the LayerNorm over L is ill-conditioned."""
    return windows(
        magnitude=log_uniform(1e-3, 1e-2), offset=finite_floats(-5.0, 5.0), kinds=("normal",), spikes=False
    )


def _window(B: int, seed: int, offset: float, spread: float) -> np.ndarray:
    """A deterministic window for an explicit example: ``offset + spread * N(0, 1)`` per element, float64."""
    return offset + spread * np.random.default_rng(seed).standard_normal((B, SMALL.L, SMALL.D))


def main_explicit(dtype: str) -> list[Inputs]:
    """Batches of 3 and 8 (several samples, so anything that mixes samples shows), with offset means."""
    return [{"W": _window(3, 0, 1.5, 2.0)}, {"W": _window(8, 1, -0.5, 1.0)}]


def near_constant_explicit(dtype: str) -> list[Inputs]:
    """Offset 5 with a spread of 1e-3, and offset -3 with 1e-2: the extremes of the case's distribution."""
    return [{"W": _window(3, 2, 5.0, 1e-3)}, {"W": _window(8, 3, -3.0, 1e-2)}]


DETECT = Case(
    name="anomaly.detect",
    reference=LazyReference(_trained_path),
    implementation=LazyPort(_trained_path),
    inputs=main_windows,
    reference_dtype="float32",
    examples=0.84,
    explicit=main_explicit,
)

NEAR_CONSTANT = Case(
    name="anomaly.detect.near_constant",
    reference=LazyReference(_trained_path),
    implementation=LazyPort(_trained_path),
    inputs=near_constant_windows,
    reference_dtype="float32",
    examples=0.34,
    explicit=near_constant_explicit,
)

DETECT_MLP = Case(
    name="anomaly.detect.mlp",
    reference=LazyReference(mlp_checkpoint),
    implementation=LazyPort(mlp_checkpoint),
    inputs=main_windows,
    reference_dtype="float32",
    examples=0.34,
    explicit=main_explicit,
)

register(DETECT, NEAR_CONSTANT, DETECT_MLP)
