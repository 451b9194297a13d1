"""Matmul precision of the port as an accelerator would run it.

The suite pins ``jax_default_matmul_precision="highest"`` (`conformance.precision`), and a CPU computes float32
convolutions in full precision whatever they ask for, so no parity case can see a convolution that asks for
less: on a GPU it would run in TF32, on a TPU in one bfloat16 pass. The lowered program says what each
convolution asks for. The VAE port leaves its convolutions at the global default (the caller pins it, as the
policy does), so under the pin every convolution must lower at HIGHEST: one that sets its own lower precision
overrides the pin on every accelerator.
"""

from __future__ import annotations

import re

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

import implementations.vae as impl
from conformance import precision
from conformance.vae.cases import MICRO
from implementations.vae.convert import abstract_model
from implementations.vae.model import apply_module

_OP = re.compile(r"stablehlo\.(dot_general|convolution)\b[^\n]*")
_PRECISION = re.compile(r"\b(DEFAULT|HIGHEST|HIGH)\b")


def lowered_precisions(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(op, operand precisions) of every dot_general and convolution in a lowered StableHLO module."""
    return [(m.group(1), tuple(_PRECISION.findall(m.group(0)))) for m in _OP.finditer(text)]


@pytest.mark.parametrize(
    ("cls", "shape"),
    [(impl.CogVideoXEncoder3D, (1, 5, 8, 8, 3)), (impl.CogVideoXDecoder3D, (1, 3, 4, 4, 4))],
    ids=["encoder", "decoder"],
)
def test_every_convolution_runs_at_the_pinned_precision(cls, shape) -> None:
    """Causal 3-D convs, the 1x1x1 shortcut, SpatialNorm's convs and the samplers' per-frame 2-D convs."""
    precision.apply()
    graphdef, state = nnx.split(abstract_model(cls, MICRO))
    text = apply_module.lower(
        graphdef, nnx.to_pure_dict(state), jax.ShapeDtypeStruct(shape, jnp.float32)
    ).as_text()
    ops = lowered_precisions(text)
    assert len(ops) >= 10, text[:2000]
    below = [(op, p) for op, p in ops if p != ("HIGHEST", "HIGHEST")]
    assert not below, f"{len(below)} of {len(ops)} ops override the pinned 'highest': {below[:5]}"
