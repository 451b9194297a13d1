"""The exactness policy: `exact` rows carry a justification, tests assert bitwise equality only through
`assert_bitwise` (with its reason), and the two assertion helpers behave as documented."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

from conformance.exactness import REASONS, Exactness, assert_bitwise, assert_within, justification_error
from conformance.tiers import default_table

ROOT = Path(__file__).resolve().parents[1]
# Calls that assert (or test) bitwise equality of arrays. Only conformance/exactness.py may make them.
BITWISE_CALLS = {"array_equal", "assert_array_equal", "assert_equal", "assert_trees_all_equal", "array_equiv"}


def test_every_exact_row_of_the_project_table_is_justified() -> None:
    table = default_table()
    exact = [(name, r) for name, spec in table.cases.items() for r in spec.required if r.tier == "exact"]
    assert exact, "the project declares exact rows (lookups, AOT artifacts): the check must see them"
    for name, r in exact:
        assert justification_error(r.reason) is None, (name, r)
        assert r.reason.split(":")[0] in REASONS


def _bitwise_calls(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", None)
            if name in BITWISE_CALLS:
                found.append(f"{path}:{node.lineno}: {name}")
    return found


def test_no_raw_bitwise_assertion_outside_the_policy_module() -> None:
    """A raw `assert_array_equal` between two programs is how a gate turns red on another CPU: every bitwise
    check goes through `assert_bitwise(..., why=...)`, whose reason says why it holds on every machine."""
    files = [
        p
        for d in ("conformance", "tests", "benchmarks", "implementations", "reference")
        for p in (ROOT / d).rglob("*.py")
        if p != ROOT / "conformance" / "exactness.py"
    ]
    assert len(files) > 50
    offenders = [hit for p in files for hit in _bitwise_calls(p)]
    assert not offenders, "use conformance.exactness.assert_bitwise(..., why=...) instead:\n" + "\n".join(
        offenders
    )


def test_the_scan_sees_a_raw_assertion(tmp_path) -> None:
    bad = tmp_path / "test_probe.py"
    bad.write_text("import numpy as np\nnp.testing.assert_array_equal(1, 1)\nassert np.array_equal(1, 1)\n")
    assert len(_bitwise_calls(bad)) == 2


def test_assert_bitwise_checks_bits_and_reasons() -> None:
    x = np.array([1.0, np.nan, -2.5], np.float32)
    assert_bitwise(x, x.copy(), why=Exactness.ORDER_INDEPENDENT)
    assert_bitwise({"a": x}, {"a": x.copy()}, why="same-program: one executable, called twice")
    one_ulp = x.copy()
    one_ulp[2] = np.nextafter(one_ulp[2], np.float32(0))
    with pytest.raises(AssertionError, match=r"not bitwise equal .* first at \(2,\)"):
        assert_bitwise(x, one_ulp, why=Exactness.SAME_PROGRAM)
    with pytest.raises(AssertionError, match="not bitwise equal"):
        assert_bitwise(np.zeros(2), -np.zeros(2), why=Exactness.ORDER_INDEPENDENT)
    with pytest.raises(AssertionError, match="float64"):
        assert_bitwise(x, x.astype(np.float64), why=Exactness.ORDER_INDEPENDENT)
    with pytest.raises(ValueError, match="must read '<category>: <why>'"):
        assert_bitwise(x, x, why="it passed on my machine")


def test_assert_within_grades_two_programs() -> None:
    rng = np.random.default_rng(0)
    ref = rng.standard_normal(100).astype(np.float32)
    near = ref * (1 + np.float32(2e-7))
    assert assert_within(ref, near, "perfect") == "perfect"
    assert assert_within(ref, ref.copy(), "perfect") == "exact"
    with pytest.raises(AssertionError, match="reached 'good', required 'perfect'"):
        assert_within(ref, ref + np.float32(5e-4) * np.abs(ref).mean(), "perfect")
    with pytest.raises(ValueError, match="assert_bitwise"):
        assert_within(ref, ref, "exact")
