"""Hypothesis-driven parity of every registered case, on every row the tier table declares for this device.

The one generic parity test: each cell (case, dtype, backend) comes from the tier table, which is the only
place a case's matrix is declared, crossed with the cases the selected subsystems register
(`conformance.cases.cells`). ``--conformance-subsystems a,b`` narrows the subsystems (``python -m conformance
run`` passes it); by default every installed subsystem runs.
"""

from __future__ import annotations

import pytest

from conformance import cases


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "cell" not in metafunc.fixturenames:
        return
    from conformance import hardware, subsystems

    option = metafunc.config.getoption("conformance_subsystems", None)
    names = [n for n in option.split(",") if n in subsystems.names()] if option else subsystems.names()
    items = cases.cells(names, hardware.jax_device())
    metafunc.parametrize("cell", items, ids=[cases.cell_id(c) for c in items])


def test_parity(cell: cases.Cell) -> None:
    case, dtype, backend = cell
    cases.check(case, dtype, backend)
