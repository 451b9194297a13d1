"""Fixtures of the harness's meta-tests: small tier tables written for the test at hand."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path

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


def run_selftest_suite(
    tmp: Path, suite: str, table: str, out: str, *args: str, profile: str = "dev", workers: str = "0"
) -> tuple[int, str, Path]:
    """Write a self-test suite and its tier table into ``tmp`` and run it through ``python -m conformance run``
    in a subprocess: (exit status, output, report directory)."""
    (tmp / "test_selftest_suite.py").write_text(suite)
    (tmp / "tiers.toml").write_text(table)
    cmd = [sys.executable, "-m", "conformance", "run", "--suite", str(tmp / "test_selftest_suite.py")]
    cmd += ["--subsystem", "selftest", "--tiers", str(tmp / "tiers.toml"), "--profile", profile]
    cmd += ["--out", str(tmp / out), "-n", workers, *args, "-p", "no:cacheprovider"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, check=False, cwd=tmp)
    return proc.returncode, proc.stdout + proc.stderr, tmp / out
