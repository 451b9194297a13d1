"""Fixtures of the harness's meta-tests: small tier tables written for the test at hand."""

from __future__ import annotations

import textwrap
from collections.abc import Callable

import pytest

from conformance import backends
from conformance.tiers import TierTable, parse_table

BASE_TOML = """
schema = 1
[tiers]
perfect = 1e-6
excellent = 1e-4
good = 1e-3
warning = 1e-2
attention = 1e-1
[guard]
max_multiple = 30
[backends]
jax-jit = "jit"
jax-eager = "eager"
numpy = "numpy"
"""

SELFTEST_CASES = """
[cases."selftest.abs"]
scale = "abs"
required = [["numpy", "*", "float32", "perfect"], ["numpy", "*", "float64", "perfect"],
            ["numpy", "*", "bfloat16", "perfect"], ["jax-jit", "*", "float32", "perfect"],
            ["jax-jit", "*", "float64", "perfect"], ["numpy", "cuda", "float32", "good", "selftest: a looser row for one device class"]]
[cases."selftest.rel"]
scale = "rel"
required = [["numpy", "*", "float32", "perfect"], ["numpy", "*", "float64", "perfect"]]
[cases."selftest.range"]
scale = "range"
required = [["numpy", "*", "float32", "perfect"], ["numpy", "*", "float64", "perfect"]]
[cases."selftest.exact"]
scale = "abs"
required = [["numpy", "*", "float32", "exact", "reference-self: a selftest row"]]
"""


def make_table(extra: str = SELFTEST_CASES, base: str = BASE_TOML) -> TierTable:
    import tomllib

    return parse_table(tomllib.loads(base + textwrap.dedent(extra)), "<test table>", backends.names())


@pytest.fixture
def table() -> TierTable:
    return make_table()


@pytest.fixture
def table_factory() -> Callable[..., TierTable]:
    return make_table
