"""Hypothesis-driven parity of every registered VAE case (layers, blocks, tiny models, frame-batched and
tiled runs, chunked caching), for each of its dtypes and backends.

bfloat16 runs go through `_run_bfloat16`, which is `conformance.cases.run` except that the inputs kept for
the report are the bfloat16 values widened to float32 (exact): the recorder's safe ``.npz`` takes only
NumPy's own dtypes (harness change requested: accept ml_dtypes' bfloat16). Replaying such an example casts
the float32 values back to bfloat16, so it re-runs exactly the same inputs.
"""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given

from conformance import assert_parity, cases, precision, profiles
from conformance.strategies import cast_floats
from conformance.vae import cases as vae_cases

MATRIX = cases.matrix(cases.of_subsystem("vae"))
NATIVE = [m for m in MATRIX if m[1] != "bfloat16"]
BF16 = [m for m in MATRIX if m[1] == "bfloat16"]


@pytest.mark.parametrize("item", NATIVE, ids=[cases.matrix_id(m) for m in NATIVE])
def test_parity(item: tuple[cases.Case, str, str]) -> None:
    case, dtype, backend = item
    cases.check(case, dtype, backend)


def _widened(spec: cases.Inputs) -> cases.Inputs:
    """bfloat16 arrays as float32 (exact); everything else unchanged."""
    return {
        k: v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype == ml_dtypes.bfloat16 else v
        for k, v in spec.items()
    }


def _run_bfloat16(case: cases.Case, backend: str, spec: cases.Inputs) -> None:
    impl_spec = cast_floats(spec, "bfloat16")
    ref_spec = cast_floats(impl_spec, case.reference_dtype)
    with precision.for_dtype("bfloat16"):
        expected = case.reference(**case.kwargs(ref_spec))
        actual = cases._call_checked(case, "bfloat16", backend, impl_spec)  # with the recompilation check
        assert_parity(
            case.name,
            expected,
            actual,
            backend=backend,
            dtype="bfloat16",
            inputs=_widened(impl_spec),
        )


@pytest.mark.parametrize("item", BF16, ids=[cases.matrix_id(m) for m in BF16])
def test_parity_bfloat16(item: tuple[cases.Case, str, str]) -> None:
    case, dtype, backend = item

    @profiles.scaled(case.examples)
    @given(spec=case.inputs(dtype))
    def parity(spec: cases.Inputs) -> None:
        _run_bfloat16(case, backend, spec)

    parity()


def test_every_case_has_a_requirement_and_every_requirement_a_test() -> None:
    from conformance.tiers import default_table

    table = default_table()
    for case, dtype, backend in MATRIX:
        assert table.required(case.name, backend, "cpu", dtype)
    registered = {c.name for c in cases.of_subsystem("vae")}
    sharded = {"vae.encode.sharded", "vae.decode.sharded"}  # conformance/vae/test_sharding.py
    declared = {name for name in table.cases if name.startswith("vae.")}
    assert declared == registered | sharded, declared ^ (registered | sharded)
    assert vae_cases.ENCODER in cases.of_subsystem("vae")
