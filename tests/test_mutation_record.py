"""The recorded mutation scores and the operator-mutant sampler.

The record (`conformance/mutation_scores.json`) is what every parity report shows as the suite's measured
power, so it must fold runs correctly (a later outcome of a mutant replaces the earlier one; mutants that left
the catalogue drop out), and the shipped record must say the catalogue is fully killed. The operator sampler
must exclude mutants inside unevaluated annotations, keep exactly the sample it was asked for, and name the
mutated line.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from conformance import mutate, operator_mutants, report


def _run(rows: list[tuple[str, str]], created: str, commit: str | None = "abc") -> dict:
    return {
        "profile": "ci",
        "created": created,
        "commit": commit,
        "catalogue": {
            "outcomes": [
                {"mutant": m, "subsystem": m.split(".")[0], "kind": "sign", "doc": "d", "status": st}
                for m, st in rows
            ]
        },
    }


def test_a_later_run_of_a_mutant_replaces_its_earlier_outcome(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    mutate.record(_run([("a.x", "killed"), ("a.y", "survived")], "2026-01-01T00:00:00Z"), path)
    rec = mutate.record(_run([("a.y", "killed")], "2026-01-02T00:00:00Z", "def"), path)
    assert rec["catalogue"]["score"]["killed"] == rec["catalogue"]["score"]["total"] == 2
    compact = mutate.recorded(path)
    assert compact is not None
    assert compact["catalogue"]["measured"] == "2026-01-01..2026-01-02"
    assert compact["catalogue"]["commits"] == ["abc", "def"]


def test_mutants_that_left_the_catalogue_drop_out_of_the_record(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    mutate.record(_run([("a.x", "killed"), ("a.gone", "survived")], "2026-01-01T00:00:00Z"), path)
    rec = mutate.record(_run([], "2026-01-02T00:00:00Z"), path, current_ids=["a.x"])
    assert [r["mutant"] for r in rec["catalogue"]["outcomes"]] == ["a.x"]
    assert rec["catalogue"]["score"]["survivors"] == []


def test_the_shipped_record_covers_the_whole_catalogue_and_kills_it() -> None:
    rec = json.loads(mutate.SCORES.read_text(encoding="utf-8"))
    recorded = {r["mutant"]: r["status"] for r in rec["catalogue"]["outcomes"]}
    assert sorted(recorded) == sorted(m.id for m in mutate.catalogue()), (
        "re-run `conformance mutate --record`"
    )
    assert set(recorded.values()) == {"killed"}
    assert rec["profile"] == "ci"
    ops = rec["operators"]["score"]
    assert ops["total"] >= 30 and ops["score"] >= 0.9, ops


def test_reports_show_the_recorded_power(tmp_path: Path) -> None:
    path = tmp_path / "scores.json"
    mutate.record(_run([("a.x", "killed"), ("b.y", "survived")], "2026-01-01T00:00:00Z"), path)
    doc = {"mutation": mutate.recorded(path)}
    (line,) = report.mutation_lines(doc)
    assert line.startswith("Catalogue of porting mutants: 1/2 killed (50%) under the `ci` profile")
    assert "a 1/1, b 0/1" in line and "survivors: b.y" in line
    assert report.mutation_lines({}) == []


def test_mutants_in_postponed_annotations_are_recognised() -> None:
    src = (
        "from __future__ import annotations\n"
        "def f(x: int | None = 1, *, y: list[int]) -> float | int:\n"
        "    z: int | None = x | 2\n"
        "    return z\n"
    )
    spans = operator_mutants.annotation_spans(src)
    assert operator_mutants._postponed_annotations(src)
    assert not operator_mutants._postponed_annotations(src.split("\n", 1)[1])
    line2 = src.splitlines()[1]
    bar = line2.index("|")
    assert operator_mutants._inside((2, bar), (2, bar + 1), spans)  # x: int | None
    assert operator_mutants._inside(
        (2, line2.rindex("|")), (2, line2.rindex("|") + 1), spans
    )  # -> float | int
    line3 = src.splitlines()[2]
    assert operator_mutants._inside((3, line3.index("|")), (3, line3.index("|") + 1), spans)  # z: int | None
    assert not operator_mutants._inside((3, line3.rindex("|")), (3, line3.rindex("|") + 1), spans)  # x | 2
    assert not operator_mutants._inside((2, line2.index("1")), (2, line2.index("1") + 1), spans)  # default


def test_changed_line_is_the_added_line_of_the_diff() -> None:
    diff = "--- mutation diff ---\n--- a/m.py\n+++ b/m.py\n@@ -1,3 +1,3 @@\n a\n-b = 1\n+b = 2\n c\n"
    assert operator_mutants._changed_line(diff) == "b = 2"
    assert operator_mutants._changed_line("") == ""


def test_the_sample_keeps_k_mutants_and_never_an_annotation(tmp_path: Path) -> None:
    pytest.importorskip("cosmic_ray")
    from cosmic_ray.work_db import WorkDB, use_db

    (tmp_path / "m.py").write_text(
        "from __future__ import annotations\n\n"
        "def f(a: int | None, b: int) -> int | float:\n"
        "    return a + b * 2 - 1\n"
    )
    (tmp_path / "cr.toml").write_text(
        operator_mutants._config(("m.py",), [sys.executable, "-c", "pass"], 10.0), encoding="utf-8"
    )
    init = subprocess.run(
        [sys.executable, "-m", "cosmic_ray.cli", "init", "cr.toml", "s.sqlite"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
    )
    assert init.returncode == 0, init.stderr
    kept, annotated = operator_mutants._sample(tmp_path / "s.sqlite", 3, 0, tmp_path)
    assert len(kept) == 3 and annotated > 0
    with use_db(str(tmp_path / "s.sqlite"), WorkDB.Mode.open) as db:
        pending = list(db.pending_work_items)
        assert sorted(i.job_id for i in pending) == kept
        assert all(i.mutations[0].start_pos[0] == 4 for i in pending)  # the body, never line 3's annotations
    again, _ = operator_mutants._sample(tmp_path / "s.sqlite", 3, 0, tmp_path)
    assert again == kept  # a sample is reproducible from its seed (and sampling twice changes nothing)
