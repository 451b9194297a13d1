"""Mutation testing of the suite: is a realistic porting bug caught by the profile CI runs?

``python -m conformance mutate`` applies each mutant of the installed subsystems' catalogues (a ``MUTANTS``
list in the module named by the subsystem's ``mutants``) to a private copy of the project, one at a time, and
runs that subsystem's tests there under the ``ci`` Hypothesis profile (the one that gates merges: derandomized,
a bounded number of examples): the generic parity test's cells of the subsystem and its own suite. A mutant is

- **killed** when a test fails; the first failing test (for a parity cell: the case) is recorded;
- **survived** when every test passes: the suite cannot see that bug;
- **invalid** when its patch does not apply, or the run errors before testing (a syntax error, say).

A mutant is a source patch of a port (``path``, ``old`` text occurring exactly once, ``new`` text), so the same
catalogue serves any machine and any runner. The copy is made once; the patched file is restored after each
mutant. Before the first mutant, the unmutated copy must pass (otherwise every mutant would look killed).

``--operators N`` adds operator-level mutants sampled by cosmic-ray (`conformance.operator_mutants`).
``--record`` folds the run into ``conformance/mutation_scores.json`` (per mutant, the latest outcome, with the
commit and date it was measured at), which every parity report shows as the suite's measured power.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
SCORES = Path(__file__).resolve().parent / "mutation_scores.json"
# What a mutant may be about (the kinds of porting bugs people really make).
KINDS = (
    "boundary",
    "periodicity",
    "mode-name",
    "constant",
    "off-by-one",
    "ddof",
    "clamp",
    "spline-boundary",
    "padding",
    "reduction-axis",
    "attention-scale",
    "positional-encoding",
    "residual",
    "accumulation-dtype",
    "transpose",
    "layout",
    "default-argument",
    "random-keys",
    "precision",
    "state",
    "sign",
    "formula",
)
_COPY_IGNORE = shutil.ignore_patterns(
    ".git",
    ".tox",
    ".asv",
    "__pycache__",
    "*.egg-info",
    "report*",
    "test-artifacts",
    "build",
    "dist",
    ".hypothesis",
)


class MutantError(ValueError):
    """A catalogue entry that cannot be applied as written."""


@dataclasses.dataclass(frozen=True)
class Mutant:
    id: str  # "<subsystem>.<short-name>"
    path: str  # relative to the project root
    old: str  # exact text, occurring exactly once in the file
    new: str
    kind: str
    doc: str  # the bug, as a porter would make it

    @property
    def subsystem(self) -> str:
        return self.id.split(".", 1)[0]

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise MutantError(f"mutant {self.id}: kind {self.kind!r} is not one of {KINDS}")
        if self.old == self.new:
            raise MutantError(f"mutant {self.id}: the patch changes nothing")

    def apply(self, root: Path) -> str:
        """Patch the file under ``root``; return its original text (to restore)."""
        path = root / self.path
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise MutantError(f"mutant {self.id}: {self.path} does not exist") from None
        count = text.count(self.old)
        if count != 1:
            raise MutantError(
                f"mutant {self.id}: its old text occurs {count} times in {self.path} (needs exactly 1)"
            )
        path.write_text(text.replace(self.old, self.new), encoding="utf-8")
        return text


@dataclasses.dataclass
class Outcome:
    mutant: str
    subsystem: str
    kind: str
    doc: str
    status: str  # killed, survived, invalid
    killer: str | None = None
    seconds: float = 0.0
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def catalogue(subsystem_names: Iterable[str] | None = None) -> list[Mutant]:
    """The mutants of the selected installed subsystems (default: all)."""
    import importlib

    from conformance import subsystems

    subs = (
        [subsystems.get(n) for n in subsystem_names] if subsystem_names else subsystems.discovered().values()
    )
    out: list[Mutant] = []
    for sub in subs:
        if sub.mutants:
            out.extend(importlib.import_module(sub.mutants).MUTANTS)
    ids = [m.id for m in out]
    dupes = sorted({i for i in ids if ids.count(i) > 1})
    if dupes:
        raise MutantError(f"mutant ids must be unique: {dupes}")
    return out


def copy_project(dest: Path, root: Path = ROOT) -> Path:
    shutil.copytree(root, dest, ignore=_COPY_IGNORE)
    return dest


def test_command(subsystem: str, workers: str, profile: str) -> list[str]:
    """The tests that judge a mutant of ``subsystem``: its parity cells and its own suite, stopping at the first
    failure."""
    from conformance import subsystems

    sub = subsystems.get(subsystem)
    paths = ["conformance/test_parity.py"]
    if sub.suite is not None:
        suite = Path(sub.suite)
        paths.append(str(suite.relative_to(ROOT)) if suite.is_relative_to(ROOT) else str(suite))
    cmd = [sys.executable, "-m", "pytest", *paths, f"--conformance-subsystems={subsystem}", "-x", "-q"]
    cmd += ["-rf", "-p", "no:cacheprovider", f"--hypothesis-profile={profile}", "--no-header"]
    if workers != "0":
        cmd += ["-n", workers]
    return cmd


_FAILED = re.compile(r"^(?:FAILED|ERROR) (\S+)", re.M)


def killer(output: str) -> str | None:
    m = _FAILED.search(output)
    return m.group(1) if m else None


def run_tests(
    copy: Path, subsystem: str, workers: str, profile: str, timeout: float
) -> tuple[int, str, float]:
    env = {**os.environ, "PYTHONPATH": str(copy), "CONFORMANCE_PROFILE": profile}
    env.pop("PYTEST_ADDOPTS", None)
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            test_command(subsystem, workers, profile),
            cwd=copy,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        code, out = proc.returncode, proc.stdout + proc.stderr
    except subprocess.TimeoutExpired as exc:
        code, out = -1, f"timed out after {timeout:.0f} s\n{exc.stdout or ''}"
    return code, out, time.perf_counter() - start


def judge(m: Mutant, code: int, output: str, seconds: float) -> Outcome:
    base = {
        "mutant": m.id,
        "subsystem": m.subsystem,
        "kind": m.kind,
        "doc": m.doc,
        "seconds": round(seconds, 1),
    }
    if code == 0:
        return Outcome(**base, status="survived")
    # pytest-xdist reports a -x stop as "Interrupted" (exit 2) after the failing test: still a kill when a test
    # failed (not an error of collection, which has no FAILED line)
    first = killer(output)
    if code == 1 or (code == 2 and first is not None and output.count("\nFAILED ") > 0):
        return Outcome(**base, status="killed", killer=first)
    if code == -1:  # a mutant that hangs the suite is caught (by the CI time limit), but say so
        return Outcome(**base, status="killed", killer="timeout", detail=output[-400:])
    return Outcome(**base, status="invalid", detail=f"pytest exit {code}: " + output[-800:])


def run(
    mutants: Sequence[Mutant],
    *,
    workers: str = "2",
    profile: str = "ci",
    timeout: float = 900.0,
    workdir: Path | None = None,
    log: Any = print,
) -> list[Outcome]:
    tmp = Path(workdir or tempfile.mkdtemp(prefix="conformance-mutate-"))
    copy = copy_project(tmp / "project")
    outcomes: list[Outcome] = []
    try:
        for subsystem in sorted({m.subsystem for m in mutants}):
            code, out, secs = run_tests(copy, subsystem, workers, profile, timeout)
            if code != 0:
                raise RuntimeError(
                    f"the unmutated {subsystem} suite does not pass in the copy (exit {code}, {secs:.0f} s); "
                    "mutation results would be meaningless:\n" + out[-3000:]
                )
            log(f"baseline {subsystem}: passes ({secs:.0f} s)")
        for i, m in enumerate(mutants, 1):
            try:
                original = m.apply(copy)
            except MutantError as exc:
                outcomes.append(Outcome(m.id, m.subsystem, m.kind, m.doc, "invalid", detail=str(exc)))
                log(f"[{i}/{len(mutants)}] {m.id}: INVALID ({exc})")
                continue
            try:
                code, out, secs = run_tests(copy, m.subsystem, workers, profile, timeout)
            finally:
                (copy / m.path).write_text(original, encoding="utf-8")
            res = judge(m, code, out, secs)
            outcomes.append(res)
            log(
                f"[{i}/{len(mutants)}] {m.id}: {res.status.upper()}"
                + (f" by {res.killer}" if res.killer else "")
                + f" ({secs:.0f} s)"
            )
    finally:
        if workdir is None:
            shutil.rmtree(tmp, ignore_errors=True)
    return outcomes


def score(outcomes: Sequence[Outcome]) -> dict[str, Any]:
    valid = [o for o in outcomes if o.status != "invalid"]
    killed = sum(o.status == "killed" for o in valid)
    by_sub: dict[str, dict[str, int]] = {}
    for o in valid:
        s = by_sub.setdefault(o.subsystem, {"killed": 0, "total": 0})
        s["total"] += 1
        s["killed"] += o.status == "killed"
    return {
        "killed": killed,
        "total": len(valid),
        "invalid": len(outcomes) - len(valid),
        "score": killed / len(valid) if valid else None,
        "by_subsystem": by_sub,
        "survivors": [o.mutant for o in valid if o.status == "survived"],
    }


def _commit(root: Path = ROOT) -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"], cwd=root, capture_output=True, text=True, check=False
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def _scored(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The score of recorded catalogue rows (the shape `score` gives for a run)."""
    return score([Outcome(**{k: r[k] for k in Outcome.__dataclass_fields__ if k in r}) for r in rows])


def record(doc: dict[str, Any], path: Path = SCORES, *, current_ids: Iterable[str] | None = None) -> dict:
    """Fold a run (`main`'s document, with ``commit`` and ``created``) into the recorded scores at ``path``.

    Catalogue outcomes are kept per mutant: a later run of a mutant replaces its earlier outcome, so the
    subsystems can be run one at a time; mutants no longer in the catalogue (``current_ids``) are dropped. The
    operator sample is recorded as a whole (it is one seeded sample). Returns the new record.
    """
    old = json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}
    rec: dict[str, Any] = {"profile": doc["profile"]}
    stamp = {"commit": doc.get("commit"), "created": doc.get("created")}
    rows = {r["mutant"]: r for r in old.get("catalogue", {}).get("outcomes", [])}
    if "catalogue" in doc:
        for r in doc["catalogue"]["outcomes"]:
            rows[r["mutant"]] = {**r, **stamp, "detail": r.get("detail", "")[-300:]}
    if current_ids is not None:
        keep = set(current_ids)
        rows = {k: v for k, v in rows.items() if k in keep}
    if rows:
        ordered = sorted(rows.values(), key=lambda r: r["mutant"])
        rec["catalogue"] = {"score": _scored(ordered), "outcomes": ordered}
    ops = doc.get("operators") or old.get("operators")
    if ops:
        rec["operators"] = {**ops, **({"measured": stamp} if "operators" in doc else {})}
    from contracts import common

    common.write_text(path, json.dumps(rec, indent=1) + "\n")
    return rec


def recorded(path: Path = SCORES) -> dict[str, Any] | None:
    """The recorded scores in the compact form a report carries (None when nothing was recorded)."""
    if not path.exists():
        return None
    rec = json.loads(path.read_text(encoding="utf-8"))
    out: dict[str, Any] = {"profile": rec.get("profile"), "source": f"recorded in {path.name}"}
    if "catalogue" in rec:
        rows = rec["catalogue"]["outcomes"]
        stamps = sorted({(r.get("created") or "?")[:10] for r in rows})
        out["catalogue"] = {
            "score": rec["catalogue"]["score"],
            "measured": f"{stamps[0]}..{stamps[-1]}" if len(stamps) > 1 else stamps[0],
            "commits": sorted({r.get("commit") or "?" for r in rows}),
        }
    if "operators" in rec:
        ops = rec["operators"]
        m = ops.get("measured", {})
        out["operators"] = {
            "score": ops["score"],
            "measured": (m.get("created") or "?")[:10],
            "commits": [m.get("commit") or "?"],
            "equivalent": ops.get("equivalent", {}),
            "excluded": ops.get("excluded", {}),
            "population": ops.get("population", {}),
        }
    return out


# The two parts of a mutation run, as a report names them.
PARTS = (("catalogue", "Catalogue of porting mutants"), ("operators", "Sampled operator mutants"))


def percent(score: dict[str, Any]) -> str:
    return f"{100 * score['score']:.0f}%" if score.get("score") is not None else "n/a"


def render(doc: dict[str, Any]) -> str:
    lines = ["# Mutation testing", ""]
    for key, title in PARTS:
        part = doc.get(key)
        if not part:
            continue
        s = part["score"]
        pct = percent(s)
        lines += [
            f"## {title}: {s['killed']}/{s['total']} killed ({pct}) under the `{doc['profile']}` profile",
            "",
            "| subsystem | killed | total |",
            "|---|---|---|",
            *(f"| {k} | {v['killed']} | {v['total']} |" for k, v in sorted(s["by_subsystem"].items())),
            "",
            "| mutant | kind | status | killed by | s | bug |",
            "|---|---|---|---|---|---|",
        ]
        for o in part["outcomes"]:
            lines.append(
                f"| `{o['mutant']}` | {o['kind']} | {o['status']} | {o['killer'] or ''} | {o['seconds']} | {o['doc']} |"
            )
        if part.get("equivalent"):
            lines += ["", "Equivalent mutants (no test can kill them; excluded from the score):", ""]
            lines += [f"- `{k}`: {v}" for k, v in part["equivalent"].items()]
        if part.get("excluded"):
            pop = part.get("population", {})
            lines += [
                "",
                "Drawn and passed over before testing (per subsystem: inside a type annotation, which the modules "
                "never evaluate / not valid Python, such as `def f(a, **, b)`; of the population): "
                + ", ".join(
                    f"{k} {v['annotation']} / {v['not_compiling']} of {pop.get(k, '?')}"
                    for k, v in sorted(part["excluded"].items())
                )
                + ".",
            ]
        lines.append("")
    return "\n".join(lines)


def attach(report_dir: Path, doc: dict[str, Any]) -> None:
    """Put the mutation scores into an existing parity report (report.json, re-rendered)."""
    from conformance import report

    rep = report.load(report_dir)
    mutation: dict[str, Any] = {
        "profile": doc["profile"],
        "source": "attached by `conformance mutate --report`",
    }
    for key in ("catalogue", "operators"):
        if doc.get(key):
            mutation[key] = {
                "score": doc[key]["score"],
                "measured": (doc.get("created") or "?")[:10],
                "commits": [doc.get("commit") or "?"],
                "equivalent": doc[key].get("equivalent", {}),
            }
    rep["mutation"] = mutation
    report.write(rep, report_dir)


def main(args: Any) -> int:
    from contracts import common

    try:
        mutants = catalogue(args.subsystem)
    except MutantError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if args.only:
        mutants = [m for m in mutants if any(re.search(p, m.id) for p in args.only)]
    out = Path(args.out)
    doc: dict[str, Any] = {"profile": args.profile}
    if args.list:
        for m in mutants:
            print(f"{m.id:45s} {m.kind:20s} {m.path}: {m.doc}")
        return 0
    if mutants:
        outcomes = run(mutants, workers=args.workers, profile=args.profile, timeout=args.timeout)
        doc["catalogue"] = {"score": score(outcomes), "outcomes": [o.to_dict() for o in outcomes]}
    if args.operators:
        from conformance import operator_mutants

        doc["operators"] = operator_mutants.run(
            args.operators, seed=args.seed, workers=args.workers, profile=args.profile, timeout=args.timeout
        )
    doc["commit"] = _commit()
    doc["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    common.write_text(out / "mutation.json", json.dumps(doc, indent=1) + "\n")
    if args.record:
        record(doc, current_ids=[m.id for m in catalogue()])
    common.write_text(out / "mutation.md", render(doc))
    if args.report:
        attach(Path(args.report), doc)
    print(render(doc))
    failed = False
    if "catalogue" in doc:
        s = doc["catalogue"]["score"]
        failed |= s["total"] == 0 or s["killed"] < s["total"] or s["invalid"] > 0
    if "operators" in doc:
        s = doc["operators"]["score"]
        failed |= s["score"] is None or s["score"] < args.operator_target
    return 1 if failed else 0
