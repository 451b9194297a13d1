"""The tiers the CEM port promised, pinned: the zero-order spline and the AOT pipeline bitwise, every other
JAX computation (splines, rollouts, iterations, optimize, policy) perfect; the near-tie case excellent."""

from __future__ import annotations

from conformance.tiers import at_least, default_table

FLOORS = {"cem.interp.zero": "exact", "cem.aot.pipeline": "exact", "cem.iteration.near_tie": "excellent"}


def test_every_cem_row_meets_its_floor() -> None:
    table = default_table()
    rows = [(name, r) for name, spec in table.cases.items() if name.startswith("cem.") for r in spec.required]
    assert len(rows) > 20
    for name, r in rows:
        floor = FLOORS.get(name, "perfect")
        assert at_least(r.tier, floor), (
            f"{name} {r.backend}/{r.device}/{r.dtype} requires {r.tier}, floor {floor}"
        )
