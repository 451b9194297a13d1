"""Negative controls: the VAE cases must catch each porting defect the spec measured (pitfalls 1-5).

Each mutant swaps one function of the NNX port for a realistic wrong version (the yangwhale/seed defects):
GroupNorm variance as E[x^2] - E[x]^2 in float32 (nnx's fast variance), the unbiased variance, torch's
default eps 1e-5, the compress-time reshape without its transpose, SAME padding in the k3/s2 downsampler,
half-pixel nearest resize, and two frames from a T == 1 upsample. For each, Hypothesis searches the
case's own input distribution for an example that the case's oracle (scale, required tier, max guard)
judges below its tier. The mutants run eagerly (jax.disable_jit) so that the swapped function is traced.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
from hypothesis import find, settings

from conformance import cases, compare, precision
from conformance.strategies import cast_floats
from conformance.vae.mutants import PATCHES, patched

M = PATCHES
# (case, defect, [(owner, attribute, replacement)])
MUTANTS: list[tuple[str, str, list[tuple[Any, str, Callable[..., Any]]]]] = [
    ("vae.group_norm.offset", "GroupNorm variance E[x^2] - E[x]^2 in float32", M["fast-variance"]),
    ("vae.group_norm", "GroupNorm unbiased variance", M["unbiased-variance"]),
    ("vae.group_norm", "GroupNorm eps 1e-5 for 1e-6", M["eps-1e-5"]),
    ("vae.resnet_block3d.offset", "GroupNorm fast variance inside a block", M["fast-variance"]),
    ("vae.downsample3d", "compress-time reshape without the transpose", M["no-transpose"]),
    ("vae.down_block3d", "compress-time reshape without the transpose, inside a block", M["no-transpose"]),
    ("vae.downsample3d", "SAME padding in the k3/s2 downsampler", M["same-padding"]),
    ("vae.spatial_norm3d", "half-pixel nearest resize", M["half-pixel-nearest"]),
    ("vae.upsample3d", "T == 1 upsample makes two frames", M["t1-two-frames"]),
]


def _judge(case: cases.Case, spec: dict[str, Any], patches: list) -> bool:
    """Whether the case's oracle fails the (mutated) float32 implementation on ``spec``."""
    impl_spec = cast_floats(spec, "float32")
    ref_spec = cast_floats(impl_spec, case.reference_dtype)
    with precision.for_dtype("float32"):
        expected = case.reference(**case.kwargs(ref_spec))
        with patched(patches):
            actual = case.implementation(**case.kwargs(impl_spec))
        result = compare(expected, actual, case=case.name, backend="jax-jit", dtype="float32")
    return not result.passed


@pytest.mark.parametrize(
    ("case_name", "defect", "patches"), MUTANTS, ids=[f"{c}: {d}" for c, d, _ in MUTANTS]
)
def test_the_case_catches_the_defect(case_name: str, defect: str, patches: list) -> None:
    precision.apply()
    case = cases.get(case_name)
    example = find(
        case.inputs("float32"),
        lambda spec: _judge(case, spec, patches),
        settings=settings(max_examples=30, database=None, deadline=None),
    )
    assert example is not None


def test_the_unmutated_port_passes_the_same_judge() -> None:
    """Sanity of the harness: with no mutant the same eager judge passes (so the controls test the defect)."""
    precision.apply()
    case = cases.get("vae.group_norm.offset")
    rng = np.random.default_rng(0)
    spec = {
        "seed": 1,
        "wdtype": "float32",
        "channels": 16,
        "groups": 4,
        "x": 30.0 + 0.05 * rng.standard_normal((2, 16, 5, 8, 8)),
    }
    assert not _judge(case, spec, [])
    assert _judge(case, spec, M["fast-variance"])
