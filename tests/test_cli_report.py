"""End-to-end meta-tests: the CLI runs a suite through the plugin, writes the report, and gates on it.

A small self-test suite is written to a temporary directory, with its own tier table, and run through
``python -m conformance run`` in a subprocess: once correct, once deliberately broken, once with a case
that never runs. The report and the exit status must flip accordingly.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from conformance import recorder, report
from tests.conftest import BASE_TOML, run_selftest_suite

SUITE = """
import numpy as np
from hypothesis import given
from conformance import assert_parity, record_series
from conformance.strategies import fields, shape_buckets

BROKEN = {broken}


def implementation(x):
    y = np.sin(x)
    if BROKEN:
        y = y + (np.abs(x) > 1.5) * 1e-3  # wrong only far from zero
    return y


@given(fields(shape_buckets((32,), (64,)), magnitude=2.0, kinds=("uniform",)))
def test_sine(x):
    assert_parity("selftest.sine", np.sin(x), implementation(x), backend="numpy", dtype="float64", inputs={{"x": x}})


@given(fields((16,), magnitude=2.0))
def test_sine_again(x):
    assert_parity("selftest.sine", np.sin(x), implementation(x), backend="numpy", dtype="float64")


def test_series():
    record_series("selftest.growth", [1, 10, 100], [1e-16, 1e-14, 1e-12], xlabel="step", ylabel="max error")
"""

TABLE = (
    BASE_TOML
    + """
[cases."selftest.sine"]
scale = "abs"
required = [["numpy", "*", "float64", "perfect"]]
"""
)


def run_cli(
    tmp: Path, *, broken: bool = False, table: str = TABLE, workers: str = "0"
) -> tuple[int, str, Path]:
    return run_selftest_suite(tmp, SUITE.format(broken=broken), table, "report", workers=workers)


@pytest.fixture(scope="module")
def good_run(tmp_path_factory) -> tuple[int, str, Path]:
    return run_cli(tmp_path_factory.mktemp("good"))


@pytest.fixture(scope="module")
def broken_run(tmp_path_factory) -> tuple[int, str, Path]:
    return run_cli(tmp_path_factory.mktemp("broken"), broken=True)


def test_correct_implementation_passes_the_gate(good_run) -> None:
    status, output, out = good_run
    assert status == 0, output
    doc = report.load(out)
    s = doc["summary"]
    assert s["gate_passed"] and s["cases"] == 1 and s["cases_failed"] == 0 and s["cases_missing"] == 0
    assert s["tests"]["passed"] == 3 and s["examples"] == doc["cases"][0]["examples"] >= 2
    case = doc["cases"][0]
    assert case["tier"] == "exact" and case["status"] == "pass" and case["required"] == "perfect"
    assert len(case["nodeids"]) == 2
    assert doc["precision"]["jax_default_matmul_precision"] == "highest"
    assert doc["environment"]["versions"]["jax"] and doc["profile"]["name"] == "dev"
    assert (out / "report.md").read_text().startswith("# Parity report: gate PASSED")
    page = (out / "report.html").read_text()
    assert "id='matrix-selftest'" in page and "<svg" in page and "exact" in page


def test_broken_implementation_flips_the_report_and_the_exit_status(broken_run) -> None:
    status, output, out = broken_run
    assert status == 1, output
    assert "parity gate FAILED" in output
    doc = report.load(out)
    case = doc["cases"][0]
    assert not doc["summary"]["gate_passed"] and case["status"] == "fail"
    worst = case["worst"]["leaves"][0]
    assert worst["max_abs"] == pytest.approx(1e-3, rel=1e-6)
    assert abs(worst["worst"]["reference"]) == pytest.approx(
        np.sin(abs(worst["worst"]["reference"])) if False else abs(worst["worst"]["reference"])
    )
    assert case["tier_counts"].get("severe", 0) >= 1
    # The worst example's inputs are saved (safe npz) and the message says how to replay them.
    saved = out / case["inputs_file"]
    with np.load(saved, allow_pickle=False) as data:
        x = data["x"]
        assert str(data["__case__"]) == "selftest.sine"
    assert np.max(np.abs(x)) > 1.5
    md = (out / "report.md").read_text()
    assert "## What failed" in md and "worst element at index" in md and "python -m conformance replay" in md
    assert "FAIL" in (out / "report.html").read_text()


def test_declared_case_that_never_ran_fails_the_gate(tmp_path) -> None:
    table = (
        TABLE
        + '\n[cases."selftest.never"]\nscale = "abs"\nrequired = [["numpy", "cpu", "float64", "good"]]\n'
    )
    status, output, out = run_cli(tmp_path, table=table)
    assert status == 1, output
    doc = report.load(out)
    missing = [c for c in doc["cases"] if c["status"] == "missing"]
    assert [c["case"] for c in missing] == ["selftest.never"]
    assert "no test asserted it" in (out / "report.md").read_text()


def test_xdist_workers_are_merged(tmp_path) -> None:
    status, output, out = run_cli(tmp_path, workers="2")
    assert status == 0, output
    doc = report.load(out)
    case = doc["cases"][0]
    assert sum(case["tier_counts"].values()) == case["examples"] >= 2
    assert len(case["nodeids"]) == 2 and doc["summary"]["tests"]["passed"] == 3


def test_report_rerenders_identically_from_json(good_run, tmp_path) -> None:
    _, _, out = good_run
    copy = tmp_path / "copy"
    copy.mkdir()
    (copy / "report.json").write_text((out / "report.json").read_text())
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "report", str(copy)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert (copy / "report.md").read_text() == (out / "report.md").read_text()
    assert (copy / "report.html").read_text() == (out / "report.html").read_text()


def test_report_json_round_trips(good_run) -> None:
    _, _, out = good_run
    doc = report.load(out)
    again = json.loads(json.dumps(doc))
    assert again == doc
    assert report.render_markdown(again) == (out / "report.md").read_text()


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ('{"schema": "parity-suite.report", "schema_version": 99}', "schema version 99"),
        ('{"schema": "parity-suite.report", "schema_ver', "not valid JSON"),
        ('{"schema": "something-else"}', "is not a parity report"),
    ],
)
def test_unreadable_reports_are_clear_errors(tmp_path, content, message) -> None:
    (tmp_path / "report.json").write_text(content)
    with pytest.raises(report.ReportError, match=message):
        report.load(tmp_path)
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "report", str(tmp_path)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and message.split()[0] in proc.stderr


def test_cli_rejects_unknown_subsystems_and_arguments() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "run", "--subsystem", "weather"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and "unknown subsystem 'weather'" in proc.stderr
    proc = subprocess.run(
        [sys.executable, "-m", "conformance", "list", "--bogus"],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert proc.returncode == 2 and "unrecognized arguments: --bogus" in proc.stderr


# -- merging worker recordings, without subprocesses ----------------------------------------------------


def _entry(key: str, examples: int, tier: str, mae: float, inputs_file: str | None) -> dict:
    leaf = {"path": "<output>", "mae_norm": mae, "max_norm": mae}
    return {
        "key": key,
        "case": "selftest.sine",
        "subsystem": "selftest",
        "backend": "numpy",
        "device": "cpu",
        "dtype": "float64",
        "scale": "abs",
        "required": "perfect",
        "examples": examples,
        "failed_examples": 0,
        "tier_counts": {tier: examples},
        "compiles": 1,
        "traces": 2,
        "nodeids": [f"t{examples}"],
        "inputs_file": inputs_file,
        "worst": {"tier": tier, "worst_leaf": "<output>", "leaves": [leaf]},
    }


def test_merge_sums_counts_and_keeps_only_the_worst_inputs(tmp_path) -> None:
    (tmp_path / "examples").mkdir()
    a, b = tmp_path / "examples" / "k.gw0.npz", tmp_path / "examples" / "k.gw1.npz"
    a.write_bytes(b"a")
    b.write_bytes(b"b")
    merged = recorder.merge(
        [
            {"entries": [_entry("k", 3, "perfect", 1e-7, str(a))], "series": []},
            {"entries": [_entry("k", 5, "good", 1e-4, str(b))], "series": [{"name": "s"}]},
        ],
        tmp_path,
    )
    (e,) = merged["entries"]
    assert e["examples"] == 8 and e["tier_counts"] == {"perfect": 3, "good": 5}
    assert e["compiles"] == 2 and e["traces"] == 4 and e["nodeids"] == ["t3", "t5"]
    assert e["worst"]["tier"] == "good"
    assert e["inputs_file"] == "examples/k.npz" and (tmp_path / "examples" / "k.npz").read_bytes() == b"b"
    assert not a.exists() and not b.exists()
    assert merged["series"] == [{"name": "s"}]


def test_recorder_rejects_inputs_that_need_pickle() -> None:
    with pytest.raises(ValueError, match="flat mapping of arrays, numbers and strings; 'grid' is object"):
        recorder.flat_inputs({"x": np.ones(2), "grid": object()})
    with pytest.raises(ValueError, match="reserved"):
        recorder.flat_inputs({"__case__": "x"})


def test_suite_template_is_valid_python() -> None:
    compile(textwrap.dedent(SUITE.format(broken=True)), "suite", "exec")
