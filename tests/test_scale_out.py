"""Meta-tests of scaling out: deterministic shards, merging shard and device reports, and parity drift.

A small self-test suite (three cases, one of them asserted by two tests) runs through
``python -m conformance run`` in subprocesses: whole, as two shards, and broken. Merging the two shards must
give the cells and the gate of the whole run; ``diff`` must pass identical reports and catch the broken one.
"""

from __future__ import annotations

import copy
import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import diff, merge, report, shards
from tests.conftest import BASE_TOML, run_selftest_suite

SUITE = """
import numpy as np
from hypothesis import given
from conformance import assert_parity
from conformance.strategies import fields, shape_buckets

BROKEN = {broken}


def implementation(x):
    y = np.sin(x)
    if BROKEN:
        y = y + (np.abs(x) > 1.5) * 1e-3
    return y


@given(fields(shape_buckets((32,), (64,)), magnitude=2.0, kinds=("uniform",)))
def test_sine(x):
    assert_parity("selftest.sine", np.sin(x), implementation(x), backend="numpy", dtype="float64", inputs={{"x": x}})


@given(fields((16,), magnitude=2.0))
def test_sine_small(x):
    assert_parity("selftest.sine", np.sin(x), implementation(x), backend="numpy", dtype="float64")


@given(fields((8,), magnitude=3.0))
def test_cosine(x):
    assert_parity("selftest.cosine", np.cos(x), np.nextafter(np.cos(x), 2.0), backend="numpy", dtype="float64")


@given(fields((8,), magnitude=3.0))
def test_exp(x):
    assert_parity("selftest.exp", np.exp(x), np.exp(x), backend="numpy", dtype="float64", inputs={{"x": x}})
"""

TABLE = (
    BASE_TOML
    + """
[cases."selftest.sine"]
scale = "abs"
required = [["numpy", "*", "float64", "perfect"]]
[cases."selftest.cosine"]
scale = "abs"
required = [["numpy", "*", "float64", "perfect"]]
[cases."selftest.exp"]
scale = "rel"
required = [["numpy", "*", "float64", "perfect"]]
"""
)
# Costs that put the two sine tests in different shards, so the merge must combine one cell from two reports.
COSTS = {
    "test_selftest_suite.py::test_sine": 4.0,
    "test_selftest_suite.py::test_sine_small": 3.0,
    "test_selftest_suite.py::test_cosine": 2.0,
    "test_selftest_suite.py::test_exp": 1.0,
}


def run(tmp: Path, name: str, *, shard: str | None = None, broken: bool = False, profile: str = "ci"):
    (tmp / "costs.json").write_text(json.dumps({"costs": COSTS}))
    args = ["--costs", str(tmp / "costs.json"), f"--rootdir={tmp}", *(["--shard", shard] if shard else [])]
    return run_selftest_suite(tmp, SUITE.format(broken=broken), TABLE, name, *args, profile=profile)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, tuple[int, str, Path]]:
    tmp = tmp_path_factory.mktemp("scaleout")
    return {
        "whole": run(tmp, "whole"),
        "1/2": run(tmp, "shard1", shard="1/2"),
        "2/2": run(tmp, "shard2", shard="2/2"),
        "broken": run(tmp, "broken", broken=True),
    }


def _cells(doc) -> dict:
    def essence(c):
        leaf = report._worst_leaf(c)
        return (
            c["tier"],
            c["required"],
            c["status"],
            c["examples"],
            c["failed_examples"],
            c["tier_counts"],
            sorted(c["nodeids"]),
            leaf and (leaf["mae_norm"], leaf["max_norm"]),
        )

    return {(c["case"], c["backend"], c["dtype"], c["device"]): essence(c) for c in doc["cases"]}


# -- shard specifications and the partition -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("3/2", "K must be between 1 and N=2"),
        ("0/4", "K must be between 1 and N=4"),
        ("1/0", "N must be at least 1"),
        ("2", "must read K/N"),
        ("a/b", "must read K/N"),
    ],
)
def test_bad_shard_specs_are_clear_errors(spec, message) -> None:
    with pytest.raises(shards.ShardError, match=message):
        shards.parse(spec)


def test_bad_shard_spec_on_the_command_line_and_in_pytest(tmp_path) -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--shard", "3/2"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "K must be between 1 and N=2" in proc.stderr
    (tmp_path / "test_x.py").write_text("def test_x():\n    pass\n")
    proc = subprocess.run(
        [sys.executable, "-m", "pytest", str(tmp_path / "test_x.py"), "--conformance-shard", "0/4"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        cwd=tmp_path,
    )
    assert proc.returncode == 4 and "K must be between 1 and N=4" in proc.stderr


def test_partition_is_a_deterministic_balanced_cover() -> None:
    ids = [f"t{i}" for i in range(40)]
    costs = {f"t{i}": float(i % 7 + 1) for i in range(30)}  # ten tests unknown: median cost
    parts = shards.partition(ids, 4, costs)
    assert sorted(x for p in parts for x in p) == sorted(ids)
    assert sum(len(p) for p in parts) == len(ids)
    # the members of each shard do not depend on the collection order
    again = shards.partition(list(reversed(ids)), 4, costs)
    assert [set(p) for p in parts] == [set(p) for p in again]
    loads = [sum(costs.get(i, 4.0) for i in p) for p in parts]
    assert max(loads) - min(loads) <= 7.0  # LPT: within the largest single cost
    assert shards.select(ids, 2, 4, costs) == parts[1]
    assert shards.partition(ids, 1, costs) == [ids]


def test_the_shipped_cost_table_covers_the_suite() -> None:
    costs = shards.load_costs()
    assert len(costs) > 300 and all(v >= 0 for v in costs.values())
    # the generic parity test's cells, and a subsystem's own test module
    assert any(k.startswith("conformance/test_parity.py::test_parity[gcm.") for k in costs)
    assert any(k.startswith("conformance/vae/") for k in costs)


# -- merge -------------------------------------------------------------------------------------------------


def test_merging_the_shards_gives_the_unsharded_run(runs) -> None:
    for name, (status, output, _) in runs.items():
        assert status == (1 if name == "broken" else 0), (name, output)
    whole = report.load(runs["whole"][2])
    s1, s2 = report.load(runs["1/2"][2]), report.load(runs["2/2"][2])
    assert s1["shard"] == {"index": 1, "count": 2} and s1["summary"]["cases_deferred"] >= 1
    names1 = {t["nodeid"].split("::")[-1] for t in s1["tests"]}
    names2 = {t["nodeid"].split("::")[-1] for t in s2["tests"]}
    assert names1 == {"test_sine", "test_exp"} and names2 == {"test_sine_small", "test_cosine"}
    merged = merge.merge(merge.load_all([runs["1/2"][2], runs["2/2"][2]]))
    assert _cells(merged) == _cells(whole)
    assert merged["summary"]["gate_passed"] == whole["summary"]["gate_passed"] is True
    assert merged["summary"]["tests"] == whole["summary"]["tests"]
    assert len(merged["merged_from"]) == 2


def test_merge_command_writes_one_report_and_copies_the_worst_inputs(runs, tmp_path) -> None:
    out = tmp_path / "merged"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "merge",
            str(runs["1/2"][2]),
            str(runs["2/2"][2]),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    doc = report.load(out)
    exp = next(c for c in doc["cases"] if c["case"] == "selftest.exp")
    assert (out / exp["inputs_file"]).exists()
    assert "Merged from 2 reports" in (out / "report.md").read_text()


def test_a_missing_shard_fails_the_merged_gate(runs, tmp_path) -> None:
    items = merge.load_all([runs["1/2"][2]])
    doc = merge.merge(items)
    missing = {c["case"] for c in doc["cases"] if c["status"] == "missing"}
    assert missing == {"selftest.cosine"} and not doc["summary"]["gate_passed"]
    assert merge.missing_shards(items) == ["2/2 on cpu"]
    assert runs["1/2"][0] == 0  # the shard alone passed: missing cells are the merge's to judge


def test_a_failed_input_fails_the_merged_gate(runs) -> None:
    items = merge.load_all([runs["broken"][2]])
    assert not merge.merge(items)["summary"]["gate_passed"]


def test_devices_become_columns(runs) -> None:
    cpu_path, cpu = runs["whole"][2], report.load(runs["whole"][2])
    cuda = copy.deepcopy(cpu)
    cuda["device"] = "cuda"
    for c in (*cuda["cases"], *cuda["declared"]):
        c["device"] = "cuda"
    doc = merge.merge([(cpu_path, cpu), (Path("cuda-run"), cuda)])
    assert {c["device"] for c in doc["cases"]} == {"cpu", "cuda"}
    assert len(doc["cases"]) == 2 * len(cpu["cases"]) and doc["device"] == "cpu,cuda"
    page = report.render_html(doc)
    assert "numpy<br>cpu" in page and "numpy<br>cuda" in page


def test_incompatible_reports_are_clear_errors(runs) -> None:
    a_path, a = runs["1/2"][2], report.load(runs["1/2"][2])
    b_path, b = runs["2/2"][2], report.load(runs["2/2"][2])
    other_table = copy.deepcopy(b)
    other_table["tier_table"]["digest"] = "0" * 64
    other_table["tier_table"]["requirements"]["selftest.sine"]["required"][0][3] = "good"
    with pytest.raises(merge.MergeError, match=r"another tier table.*case selftest\.sine.*--allow table"):
        merge.merge([(a_path, a), (b_path, other_table)])
    assert merge.merge([(a_path, a), (b_path, other_table)], allow=["table"])["summary"]["cases"] == 3
    other_profile = copy.deepcopy(b)
    other_profile["profile"] = {"name": "thorough", "max_examples": 200, "derandomize": False}
    with pytest.raises(merge.MergeError, match=r"profile .*'thorough'.* ran .*'ci'.*--allow profile"):
        merge.merge([(a_path, a), (b_path, other_profile)])
    with pytest.raises(merge.MergeError, match=r"shard 1/2 on cpu is given twice"):
        merge.merge([(a_path, a), (b_path, a)])
    with pytest.raises(merge.MergeError, match="mix 2 shards and unsharded"):
        merge.merge([(a_path, a), (runs["whole"][2], report.load(runs["whole"][2]))])
    with pytest.raises(merge.MergeError, match="--allow takes table, profile"):
        merge.merge([(a_path, a)], allow=["everything"])


def test_merging_another_schema_is_a_clear_error(runs, tmp_path) -> None:
    old = json.loads((runs["2/2"][2] / "report.json").read_text())
    old["schema_version"] = 1
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "report.json").write_text(json.dumps(old))
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "conformance",
            "merge",
            str(runs["1/2"][2]),
            str(tmp_path / "old"),
            "--out",
            str(tmp_path / "m"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 2 and "report schema version 1; this suite reads version 2" in proc.stderr


# -- diff --------------------------------------------------------------------------------------------------


def _diff_cli(base: Path, head: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "conformance", "diff", str(base), str(head)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_diff_passes_identical_reports_and_catches_a_dropped_tier(runs) -> None:
    whole, broken = runs["whole"][2], runs["broken"][2]
    same = _diff_cli(whole, whole)
    assert same.returncode == 0 and "no regression" in same.stdout, same.stdout + same.stderr
    drop = _diff_cli(whole, broken)
    assert drop.returncode == 1, drop.stdout + drop.stderr
    assert "dropped     selftest.sine[float64] on numpy/cpu: tier exact -> severe" in drop.stdout
    back = _diff_cli(broken, whole)
    assert back.returncode == 0 and "improved" in back.stdout


def test_diff_sees_growth_inside_a_tier_and_lost_cells(runs) -> None:
    base = report.load(runs["whole"][2])
    head = copy.deepcopy(base)
    cos = next(c for c in head["cases"] if c["case"] == "selftest.cosine")
    assert cos["tier"] == "perfect"
    for leaf in cos["worst"]["leaves"]:
        leaf["mae_norm"] *= 1e4  # one ulp -> ten thousand ulps: still 'perfect', but drift
        leaf["max_norm"] *= 1e4
    head["cases"] = [c for c in head["cases"] if c["case"] != "selftest.exp"]
    kinds = {(c.kind, c.key[0]) for c in diff.diff(base, head)}
    assert kinds == {("grew", "selftest.cosine"), ("disappeared", "selftest.exp")}
    assert {c.kind for c in diff.diff(base, head, factor=1e5)} == {"disappeared"}
    with pytest.raises(ValueError, match="factor"):
        diff.diff(base, head, factor=1.0)
