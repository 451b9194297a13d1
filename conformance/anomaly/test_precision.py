"""Matmul precision of the JAX port without the suite's pin.

The suite pins ``jax_default_matmul_precision="highest"`` (`conformance.precision`), and a CPU computes float32
matmuls in full precision whatever they ask for, so no parity case can see a port that relies on the pin: on a
GPU its matmuls would run in TF32, on a TPU in one bfloat16 pass. The port promises the pin is not needed (every
matmul at ``Precision.HIGHEST``, set in the port itself), so its program lowered with the global default left
unset must ask for HIGHEST everywhere.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import jax
import jax.numpy as jnp
import pytest
from flax import nnx

from contracts.anomaly.config import SMALL
from implementations.anomaly.model import bound_apply, build, weights_bound

_OP = re.compile(r"stablehlo\.(dot_general|convolution)\b[^\n]*")
_PRECISION = re.compile(r"\b(DEFAULT|HIGHEST|HIGH)\b")


def lowered_precisions(text: str) -> list[tuple[str, tuple[str, ...]]]:
    """(op, operand precisions) of every dot_general and convolution in a lowered StableHLO module."""
    return [(m.group(1), tuple(_PRECISION.findall(m.group(0)))) for m in _OP.finditer(text)]


def _lowered_bound_apply(spec: jax.ShapeDtypeStruct) -> str:
    graphdef, state = nnx.split(nnx.eval_shape(lambda: build(SMALL)))
    return bound_apply(graphdef).lower(nnx.to_pure_dict(state), spec).as_text()


def _lowered_weights_bound(spec: jax.ShapeDtypeStruct) -> str:
    """The `Detector`'s form: the weights compiled in as constants."""
    graphdef, state = nnx.split(build(SMALL))
    return weights_bound(graphdef, nnx.to_pure_dict(state)).lower(spec).as_text()


@pytest.mark.parametrize("lowered", [_lowered_bound_apply, _lowered_weights_bound], ids=lambda f: f.__name__)
def test_every_matmul_asks_for_highest_without_the_pin(
    lowered: Callable[[jax.ShapeDtypeStruct], str],
) -> None:
    with jax.default_matmul_precision(None):
        text = lowered(jax.ShapeDtypeStruct((3, SMALL.L, SMALL.D), jnp.float32))
    ops = lowered_precisions(text)
    assert len(ops) >= 20, text[:2000]  # in-projections, attention, FFNs, embeddings, decoder
    below = [(op, p) for op, p in ops if p != ("HIGHEST", "HIGHEST")]
    assert not below, f"{len(below)} of {len(ops)} matmuls depend on the global precision: {below[:5]}"
