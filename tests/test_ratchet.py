"""The ratchet: a passing cell that reaches a tighter tier than its row requires (3x inside its bounds) makes the
row slack, and a slack row fails the gate unless the row gives its reason."""

from __future__ import annotations

from conformance import report

ROWS = (
    '[cases."selftest.loose"]\nscale = "abs"\nrequired = [["numpy", "*", "float64", "good"]]\n'
    '[cases."selftest.reasoned"]\nscale = "abs"\n'
    'required = [["numpy", "*", "float64", "good", "ill-conditioned on other inputs"]]\n'
    '[cases."selftest.tight"]\nscale = "abs"\nrequired = [["numpy", "*", "float64", "perfect"]]\n'
)


def _entry(case: str, mae: float, tier: str) -> dict:
    leaf = {"path": "<output>", "mae_norm": mae, "max_norm": mae, "problem": None}
    return {
        "key": case,
        "case": case,
        "subsystem": "selftest",
        "backend": "numpy",
        "device": "cpu",
        "dtype": "float64",
        "scale": "abs",
        "required": {"selftest.tight": "perfect"}.get(case, "good"),
        "examples": 1,
        "failed_examples": 0,
        "tier_counts": {tier: 1},
        "compiles": 0,
        "traces": 0,
        "nodeids": [],
        "inputs_file": None,
        "worst": {"tier": tier, "worst_leaf": "<output>", "leaves": [leaf]},
    }


def _build(table, entries) -> dict:
    return report.build(
        {"entries": entries},
        outcomes=[],
        subsystems=["selftest"],
        profile="ci",
        pytest_exitstatus=0,
        duration_s=0.0,
        table=table,
        device="cpu",
    )


def test_a_slack_row_fails_the_gate_and_a_reasoned_one_does_not(table_factory) -> None:
    table = table_factory(ROWS)
    f64 = table.bounds_for("perfect", "float64")[0]
    doc = _build(
        table,
        [
            _entry("selftest.loose", f64 / 100, "perfect"),
            _entry("selftest.reasoned", f64 / 100, "perfect"),
            _entry("selftest.tight", f64 / 100, "perfect"),
        ],
    )
    slack = {c["case"]: c.get("slack") for c in doc["cases"]}
    assert slack == {"selftest.loose": "perfect", "selftest.reasoned": None, "selftest.tight": None}
    assert doc["summary"]["cases_slack"] == 1 and not doc["summary"]["gate_passed"]
    assert "could require **perfect**" in report.render_markdown(doc)


def test_a_row_as_tight_as_its_result_is_not_slack(table_factory) -> None:
    table = table_factory(ROWS)
    excellent = table.bounds_for("excellent", "float64")[0]
    doc = _build(
        table,
        [
            _entry("selftest.loose", excellent * 3, "good"),  # reaches only what it requires
            _entry("selftest.reasoned", 1e-14, "excellent"),
            _entry("selftest.tight", 0.0, "exact"),
        ],
    )
    assert doc["summary"]["cases_slack"] == 0 and doc["summary"]["gate_passed"]
    near = _build(table, [_entry("selftest.loose", excellent / 2, "excellent")])  # only 2x inside excellent
    assert near["summary"]["cases_slack"] == 0, "a result near a boundary must not flip the ratchet"
