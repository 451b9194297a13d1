"""A case is declared once: the tier table's rows are its matrix, and every declared row runs under `tox -e py`.

Rows of a case with a registered `Case` run in the generic parity test (`conformance/test_parity.py`), one test
per row; rows of a case without one must be claimed by the test that asserts them
(``@pytest.mark.parity_cases("<case>")``). The report's missing-cell check is the run-time backstop.
"""

from __future__ import annotations

import ast
from pathlib import Path

from conformance import cases, subsystems
from conformance.tiers import default_table


def claimed_cases() -> dict[str, list[str]]:
    """``parity_cases`` claims in the installed subsystems' suites: case -> the test files that claim it."""
    out: dict[str, list[str]] = {}
    for sub in subsystems.discovered().values():
        for path in sorted(Path(sub.suite).glob("test_*.py")) if sub.suite else ():
            for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
                if (
                    isinstance(node, ast.Call)
                    and isinstance(node.func, ast.Attribute)
                    and node.func.attr == "parity_cases"
                ):
                    for arg in node.args:
                        out.setdefault(ast.literal_eval(arg), []).append(path.name)
    return out


def test_every_declared_case_is_run_by_the_generic_test_or_claimed() -> None:
    table = default_table()
    subsystems.load()
    registered = set(cases.registered())
    claimed = claimed_cases()
    declared = {name for name in table.cases if name.split(".")[0] in subsystems.names()}
    assert declared, "the installed subsystems declare cases"
    orphans = sorted(declared - registered - set(claimed))
    assert not orphans, (
        f"declared but neither registered nor claimed by a test (they would never run): {orphans}"
    )
    unknown = sorted(set(claimed) - declared)
    assert not unknown, f"claimed by a test but not declared in the tier table: {unknown}"
    both = sorted(set(claimed) & registered)
    assert not both, f"registered and also claimed by a bespoke test (declare each once): {both}"
    unjudged = sorted(n for n in registered if n.split(".")[0] != "selftest" and n not in declared)
    assert not unjudged, f"registered cases with no row in the tier table: {unjudged}"


def test_every_cpu_row_of_a_registered_case_is_a_parity_test() -> None:
    table = default_table()
    names = subsystems.names()
    run = {(c.name, d, b) for c, d, b in cases.cells(names, "cpu")}
    for name, backend, dtype, _ in table.expected(names, "cpu"):
        if name in cases.registered():
            assert (name, dtype, backend) in run, (name, dtype, backend)
    assert len(run) > 100


def test_a_row_with_an_unregistered_backend_cannot_load(table_factory) -> None:
    import pytest

    from conformance.tiers import TierTableError

    with pytest.raises(TierTableError, match="unknown backend 'jax-magic'"):
        table_factory(
            '[cases."selftest.x"]\nscale = "abs"\nrequired = [["jax-magic", "*", "float32", "good"]]\n'
        )
