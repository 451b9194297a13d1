"""The tiers the CEM port promised, pinned: the zero-order spline and the AOT pipeline bitwise, every other
JAX computation (splines, rollouts, iterations, optimize, the key path, policy, the artifact against the
reference) perfect; the near-tie case excellent, and the float32 port against the float64 reference over short
horizons excellent (bounded by the resolution of float32 knot times), as is the float64 short rollout (its
query times near 3 s carry an ulp of rounding, times the spline's slope)."""

from __future__ import annotations

from conformance.tiers import at_least, default_table

FLOORS = {"cem.interp.zero": "exact", "cem.aot.pipeline": "exact", "cem.iteration.near_tie": "excellent"}
# (case, dtype) floors where they differ from the case's
DTYPE_FLOORS = {
    ("cem.rollout.short", "float32"): "excellent",
    ("cem.rollout.short", "float64"): "excellent",  # query times near 3 s: an ulp of rounding times the slope
    ("cem.optimize.short", "float32"): "excellent",
}


def test_every_cem_row_meets_its_floor() -> None:
    table = default_table()
    rows = [(name, r) for name, spec in table.cases.items() if name.startswith("cem.") for r in spec.required]
    assert len(rows) > 20
    for name, r in rows:
        floor = DTYPE_FLOORS.get((name, r.dtype), FLOORS.get(name, "perfect"))
        assert at_least(r.tier, floor), (
            f"{name} {r.backend}/{r.device}/{r.dtype} requires {r.tier}, floor {floor}"
        )
