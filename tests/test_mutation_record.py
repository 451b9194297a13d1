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


def _session(tmp_path: Path) -> Path:
    pytest.importorskip("cosmic_ray")
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / "m.py").write_text(
        "from __future__ import annotations\n\n"
        "def f(a: int | None, b: int, *, c: int = 2) -> int | float:\n"
        "    return a + b * c - 1\n"
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
    return tmp_path / "s.sqlite"


def _pending(session: Path) -> list:
    from cosmic_ray.work_db import WorkDB, use_db

    with use_db(str(session), WorkDB.Mode.open) as db:
        return list(db.pending_work_items)


def test_the_sample_never_draws_an_annotation_or_a_mutant_that_does_not_compile(tmp_path: Path) -> None:
    session = _session(tmp_path)
    total = len(_pending(session))
    kept, excluded = operator_mutants._sample(session, 10_000, 0, tmp_path)
    assert excluded["annotation"] > 0 and excluded["not_compiling"] > 0  # `int | None`; `*` -> `**`
    assert len(kept) + excluded["annotation"] + excluded["not_compiling"] == total
    pending = _pending(session)
    assert sorted(i.job_id for i in pending) == kept
    spans = operator_mutants.annotation_spans((tmp_path / "m.py").read_text())
    kept_at = [(tuple(i.mutations[0].start_pos), tuple(i.mutations[0].end_pos)) for i in pending]
    assert not any(operator_mutants._inside(a, b, spans) for a, b in kept_at)
    assert any(a[0] == 4 for a, _ in kept_at) and any(a[0] == 3 for a, _ in kept_at)  # body; `c = 2`, `*`


def test_the_sample_is_k_mutants_reproducible_from_its_seed(tmp_path: Path) -> None:
    first, _ = operator_mutants._sample(_session(tmp_path / "a"), 3, 7, tmp_path / "a")
    second, _ = operator_mutants._sample(_session(tmp_path / "b"), 3, 7, tmp_path / "b")
    assert len(first) == len(second) == 3
    ids = {i.job_id: i.mutations[0] for i in _pending(tmp_path / "a" / "s.sqlite")}
    again = {i.job_id: i.mutations[0] for i in _pending(tmp_path / "b" / "s.sqlite")}
    assert sorted(map(operator_mutants._describe, ids.values())) == sorted(
        map(operator_mutants._describe, again.values())
    )


def test_equivalent_mutants_are_keyed_by_the_line_they_write() -> None:
    for (module, line), why in operator_mutants.EQUIVALENT.items():
        assert (mutate.ROOT / module).exists() and why
        original = (mutate.ROOT / module).read_text(encoding="utf-8")
        assert line not in original, f"{line!r} is the mutant's line, not the original's"
