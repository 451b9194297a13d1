"""Hypothesis-driven parity of every registered VAE case (layers, blocks, tiny models, frame-batched and
tiled runs, chunked caching), for each of its dtypes (bfloat16 included) and backends."""

from __future__ import annotations

import pytest

from conformance import cases
from conformance.vae import cases as vae_cases

MATRIX = cases.matrix(cases.of_subsystem("vae"))


@pytest.mark.parametrize("item", MATRIX, ids=[cases.matrix_id(m) for m in MATRIX])
def test_parity(item: tuple[cases.Case, str, str]) -> None:
    case, dtype, backend = item
    cases.check(case, dtype, backend)


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
