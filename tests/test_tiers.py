"""Meta-tests of the tier table: validation on load, dtype scaling, the max guard, classification."""

from __future__ import annotations

import math

import numpy as np
import pytest

from conformance import compare
from conformance.tiers import (
    DEFAULT_PATH,
    TIERS,
    TierTableError,
    at_least,
    eps,
    load_table,
    tier_rank,
    worst_tier,
)
from tests.conftest import BASE_TOML, SELFTEST_CASES

# Mid-band normalized errors: each lies well inside one tier's band for float32.
BANDS = [
    (3e-7, "perfect"),
    (3e-5, "excellent"),
    (3e-4, "good"),
    (3e-3, "warning"),
    (3e-2, "attention"),
    (0.3, "severe"),
]


def test_project_table_loads_and_is_validated_against_the_backend_registry() -> None:
    from conformance import backends
    from conformance.tiers import default_table

    table = default_table()  # the base file and every installed subsystem's tier file
    assert {name.split(".")[0] for name in table.cases} == {"gcm", "cem", "vae", "anomaly"}
    assert set(table.backends) <= set(backends.names())
    assert len(table.source.split(" + ")) == 5
    with pytest.raises(TierTableError, match="is not registered in code"):
        load_table(DEFAULT_PATH, known_backends=["numpy"])


def test_a_subsystem_tier_file_holds_only_its_own_cases() -> None:
    from conformance.tiers import compose

    base = {"schema": 1, "backends": {"numpy": "n"}}
    with pytest.raises(TierTableError, match=r"the gcm tier file may declare only gcm\.\* cases"):
        compose(base, [("gcm", {"cases": {"cem.x": {}}}, "gcm.toml")])
    with pytest.raises(TierTableError, match="backend 'numpy' is already declared"):
        compose(base, [("gcm", {"backends": {"numpy": "other"}}, "gcm.toml")])
    with pytest.raises(TierTableError, match="holds only"):
        compose(base, [("gcm", {"tiers": {}}, "gcm.toml")])
    merged = compose(base, [("gcm", {"cases": {"gcm.x": {"scale": "abs"}}}, "gcm.toml")])
    assert list(merged["cases"]) == ["gcm.x"]


def test_tier_order_and_helpers() -> None:
    assert [tier_rank(t) for t in TIERS] == list(range(7))
    assert at_least("exact", "perfect") and at_least("good", "good") and not at_least("warning", "good")
    assert worst_tier(["perfect", "severe", "exact"]) == "severe"
    with pytest.raises(TierTableError, match="unknown tier 'superb'"):
        tier_rank("superb")


def test_bounds_scale_with_dtype_epsilon(table) -> None:
    f32, _ = table.bounds_for("perfect", "float32")
    f64, f64_max = table.bounds_for("perfect", "float64")
    bf16, _ = table.bounds_for("perfect", "bfloat16")
    assert f32 == 1e-6
    assert f64 == pytest.approx(1e-6 * 2.0**-52 / 2.0**-23)
    assert bf16 == pytest.approx(1e-6 * 2.0**-7 / 2.0**-23)
    assert f64_max == pytest.approx(30 * f64)
    assert eps("float16") == 2.0**-10
    assert table.bounds_for("exact", "float32") == (0.0, 0.0)
    assert table.bounds_for("severe", "float32") == (math.inf, math.inf)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize(
    ("scale", "ref_values", "unit"),
    [
        ("abs", np.linspace(0.1, 0.2, 4000), 1.0),
        ("rel", np.linspace(90.0, 110.0, 4000), 100.0),  # mean |ref| = 100
        ("range", np.linspace(-3.0, 7.0, 4000), 10.0),  # max - min = 10
    ],
)
@pytest.mark.parametrize(("normalized", "expected"), BANDS)
def test_known_errors_land_in_their_tier(table, dtype, scale, ref_values, unit, normalized, expected) -> None:
    """A uniform error of `normalized` x scale x dtype factor lands in the band the table says."""
    factor = table.scale_factor(dtype)
    ref = ref_values.astype(np.float64)
    actual = (ref + normalized * factor * unit).astype(dtype)
    backend = "numpy"
    result = compare(ref, actual, case=f"selftest.{scale}", backend=backend, table=table)
    assert result.dtype == dtype
    assert result.tier == expected, result.message()
    leaf = result.leaves[0]
    assert leaf.mae_norm == pytest.approx(normalized * factor, rel=0.05)
    assert leaf.denominator == pytest.approx(unit, rel=1e-9)


def test_bfloat16_bounds_classify_in_units_of_bfloat16_precision(table) -> None:
    bf = table.scale_factor("bfloat16")
    for normalized, expected in BANDS:
        assert table.classify(normalized * bf, normalized * bf, "bfloat16", bitwise_equal=False) == expected


def test_one_wrong_element_fails_a_tier_that_the_mean_alone_would_pass(table, table_factory) -> None:
    ref = np.linspace(0.0, 1.0, 10_000)
    actual = ref.copy()
    actual[1234] += 1e-3  # one wrong element: MAE 1e-7 (perfect by mean), max 1e-3
    result = compare(
        ref,
        actual.astype(np.float64),
        case="selftest.abs",
        backend="numpy",
        dtype="float32",
        table=table,
        check_dtype=False,
    )
    leaf = result.leaves[0]
    assert leaf.mae_norm < 1e-6, "the mean alone would say perfect"
    assert result.tier == "excellent", result.message()
    assert leaf.worst is not None and leaf.worst.index == (1234,)
    assert leaf.worst.actual - leaf.worst.reference == pytest.approx(1e-3)
    # Negative control: the same error passes 'perfect' once the guard is effectively switched off.
    lax = table_factory(base=BASE_TOML.replace("max_multiple = 30", "max_multiple = 1e9"))
    assert (
        compare(
            ref, actual, case="selftest.abs", backend="numpy", dtype="float32", table=lax, check_dtype=False
        ).tier
        == "perfect"
    )


def test_a_wrong_row_cannot_hide_in_the_mean(table) -> None:
    ref = np.random.default_rng(0).standard_normal((65, 128))
    actual = ref.copy()
    actual[0] += 5e-5  # the pole row is off; the mean over 65 rows is 7.7e-7, inside 'perfect'
    result = compare(
        ref, actual, case="selftest.abs", backend="numpy", dtype="float32", table=table, check_dtype=False
    )
    assert result.leaves[0].mae_norm < 1e-6
    assert result.tier == "excellent", result.message()
    assert result.leaves[0].worst.index[0] == 0
    assert result.leaves[0].mismatched == 128  # every element of the row exceeds perfect's element bound


@pytest.mark.parametrize(
    ("ref_bad", "act_bad", "severe"),
    [
        (np.nan, 1.0, True),
        (1.0, np.nan, True),
        (np.inf, -np.inf, True),
        (np.inf, 1e308, True),
        (np.nan, np.nan, False),
        (-np.inf, -np.inf, False),
    ],
)
def test_nonfinite_positions_must_agree(table, ref_bad, act_bad, severe) -> None:
    ref = np.linspace(1.0, 2.0, 100)
    act = ref.copy()
    ref[7], act[7] = ref_bad, act_bad
    result = compare(
        ref, act, case="selftest.abs", backend="numpy", dtype="float64", table=table, check_dtype=False
    )
    assert (result.tier == "severe") is severe, result.message()
    leaf = result.leaves[0]
    assert leaf.nonfinite_mismatch == (1 if severe else 0)
    if severe:
        assert leaf.first_nonfinite_mismatch == (7,)
        assert "NaN/Inf positions disagree" in result.message()


def test_bitwise_equal_is_exact_and_signed_zero_is_not(table) -> None:
    ref = np.array([0.0, 1.5, -2.0], dtype=np.float32)
    assert compare(ref, ref.copy(), case="selftest.exact", backend="numpy", table=table).tier == "exact"
    flipped = ref.copy()
    flipped[0] = -0.0
    result = compare(ref, flipped, case="selftest.exact", backend="numpy", table=table)
    assert result.tier == "perfect" and not result.passed


def test_degenerate_scales_fall_back_to_the_reference_magnitude(table) -> None:
    """A (nearly) constant reference has no meaningful range: one-ulp rounding must not become an O(1) error."""
    ref = np.full(10, 5.0)
    result = compare(
        ref,
        ref + 1e-8,
        case="selftest.range",
        backend="numpy",
        dtype="float32",
        table=table,
        check_dtype=False,
    )
    leaf = result.leaves[0]
    assert leaf.scale_fallback and leaf.denominator == 5.0 and result.tier == "perfect"
    # Nearly constant: every point outside an interpolation's domain gets cval, one is 1 ulp off.
    ref = np.full(96, -1.5)
    ref[49] = np.nextafter(-1.5, -2.0)
    act = np.full(96, -1.5)
    result = compare(ref, act, case="selftest.range", backend="numpy", dtype="float64", table=table)
    assert result.leaves[0].scale_fallback and result.tier == "perfect", result.message()
    assert "degenerate, fell back to max|reference|" in result.message()
    # A real spread, even a small one, is used as is.
    ref = np.linspace(1.0, 1.0 + 1e-9, 50)
    leaf = compare(ref, ref, case="selftest.range", backend="numpy", dtype="float64", table=table).leaves[0]
    assert not leaf.scale_fallback and leaf.denominator == pytest.approx(1e-9)
    zeros = compare(
        np.zeros(4), np.zeros(4), case="selftest.rel", backend="numpy", dtype="float64", table=table
    )
    assert zeros.leaves[0].denominator == 1.0 and zeros.tier == "exact"


def test_required_tier_lookup_prefers_the_exact_device(table) -> None:
    assert table.required("selftest.abs", "numpy", "cpu", "float32") == "perfect"
    assert table.required("selftest.abs", "numpy", "cuda", "float32") == "good"
    with pytest.raises(
        TierTableError, match=r"no required tier for selftest\.rel on backend 'jax-jit'.*Add a row"
    ):
        table.required("selftest.rel", "jax-jit", "cpu", "float32")
    with pytest.raises(TierTableError, match=r"unknown case 'selftest\.nope'"):
        table.required("selftest.nope", "numpy", "cpu", "float32")
    with pytest.raises(TierTableError, match="unknown backend 'onnxruntime'"):
        table.required("selftest.abs", "onnxruntime", "cpu", "float32")


def test_expected_cases_per_device(table) -> None:
    cpu = table.expected(["selftest"], "cpu")
    cuda = table.expected(["selftest"], "cuda")
    assert ("selftest.abs", "numpy", "float32", "perfect") in cpu
    assert ("selftest.abs", "numpy", "float32", "good") in cuda
    assert ("selftest.abs", "numpy", "float32", "perfect") not in cuda
    assert table.expected(["gcm"], "cpu") == []


BAD_TABLES = [
    ('required = [["numpy", "*", "float32", "superb"]]', "unknown tier 'superb'"),
    ('required = [["jax-magic", "*", "float32", "good"]]', "unknown backend 'jax-magic'"),
    ('required = [["numpy", "npu", "float32", "good"]]', "unknown device 'npu'"),
    ('required = [["numpy", "*", "float8", "good"]]', "unknown dtype 'float8'"),
    ('required = [["numpy", "*", "float32", "severe"]]', "requiring 'severe' requires nothing"),
    ('required = [["numpy", "*", "float32"]]', r"must be \[backend, device, dtype, tier\]"),
    (
        'required = [["numpy", "*", "float32", "exact"]]',
        "an 'exact' row bitwise equality needs a justification",
    ),
    (
        'required = [["numpy", "*", "float32", "exact", "because it passed here"]]',
        "must read '<category>: <why>'",
    ),
    (
        'required = [["numpy", "*", "float32", "perfect"], ["numpy", "cuda", "float32", "good"]]',
        "the cuda row of numpy/float32 requires 'good' where every other device requires 'perfect'",
    ),
    (
        'required = [["numpy", "*", "float32", "good"], ["numpy", "*", "float32", "perfect"]]',
        "duplicate requirement",
    ),
    ("required = []", "needs a non-empty 'required' list"),
]


@pytest.mark.parametrize(("row", "message"), BAD_TABLES)
def test_bad_requirements_are_clear_errors(table_factory, row, message) -> None:
    with pytest.raises(TierTableError, match=message):
        table_factory(f'[cases."selftest.bad"]\nscale = "abs"\n{row}\n')


@pytest.mark.parametrize(
    ("mutation", "message"),
    [
        (lambda b: b.replace("schema = 1", "schema = 2"), "'schema' must be 1"),
        (
            lambda b: b.replace("perfect = 1e-6\nexcellent = 1e-4", "excellent = 1e-4\nperfect = 1e-6"),
            "in this order",
        ),
        (lambda b: b.replace("good = 1e-3", "good = 1e-5"), "larger than the previous tier's"),
        (lambda b: b.replace("max_multiple = 30", "max_multiple = 0.5"), "must be a finite number >= 1"),
        (lambda b: b + "\n[extras]\nx = 1\n", "unknown top-level keys"),
        (lambda b: b + "\n[dtype_scale]\nfloat8 = 2.0\n", "unknown dtype 'float8'"),
    ],
)
def test_bad_tier_tables_are_clear_errors(table_factory, mutation, message) -> None:
    with pytest.raises(TierTableError, match=message):
        table_factory(base=mutation(BASE_TOML))


@pytest.mark.parametrize(
    ("case", "message"),
    [
        (
            '[cases."weather.laplacian"]\nscale = "abs"\nrequired = [["numpy", "*", "float32", "good"]]',
            "unknown subsystem 'weather'",
        ),
        (
            '[cases."selftest.x"]\nscale = "log"\nrequired = [["numpy", "*", "float32", "good"]]',
            "scale must be one of",
        ),
        (
            '[cases."Selftest"]\nscale = "abs"\nrequired = [["numpy", "*", "float32", "good"]]',
            "case names look like",
        ),
    ],
)
def test_bad_cases_are_clear_errors(table_factory, case, message) -> None:
    with pytest.raises(TierTableError, match=message):
        table_factory(case)


def test_files_that_cannot_be_read_are_clear_errors(tmp_path) -> None:
    with pytest.raises(TierTableError, match="does not exist"):
        load_table(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[tiers\nperfect = ")
    with pytest.raises(TierTableError, match="is not valid TOML"):
        load_table(bad)
    good = tmp_path / "good.toml"
    good.write_text(BASE_TOML + SELFTEST_CASES)
    assert "selftest.abs" in load_table(good).cases


def test_dtype_scale_override(table_factory) -> None:
    t = table_factory(base=BASE_TOML + "\n[dtype_scale]\nbfloat16 = 100.0\n")
    assert t.bounds_for("perfect", "bfloat16")[0] == pytest.approx(1e-4)
