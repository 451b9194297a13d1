"""Operator-level mutation sampling of the ports, with cosmic-ray.

cosmic-ray (chosen over mutmut, whose trampolines wrap every function and break ``jax.jit``'s tracing of
module-level functions, and mutatest, unmaintained since Python 3.8) enumerates every operator mutation of the
computation modules of ``implementations/`` (binary and comparison operators, numbers, booleans, unary
operators, ...). Running them all would take hours (each run compiles JAX), so a seeded sample of N is run:
one cosmic-ray session per subsystem, in a private copy of the project, the unsampled work items marked
skipped, each sampled mutant judged by that subsystem's tests under the ``ci`` profile (as
`conformance.mutate` does for the catalogue). Mutants listed in ``EQUIVALENT`` (by module and mutated line)
cannot change any result and are excluded from the score, each with its reason. Mutants inside annotations
and mutants that do not compile are never drawn (see `_sample`).
"""

from __future__ import annotations

import ast
import json
import os
import random
import shlex
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from conformance import mutate

# The computation modules of each port: where a wrong operator is a wrong number (CLIs, runners, exporters and
# input validation are left to the bad-input tests).
MODULES: dict[str, tuple[str, ...]] = {
    "gcm": (
        "implementations/gcm/dynamics.py",
        "implementations/gcm/physics.py",
        "implementations/gcm/ndimage.py",
    ),
    "cem": (
        "implementations/cem/planner.py",
        "implementations/cem/spline.py",
        "implementations/cem/tasks.py",
    ),
    "vae": ("implementations/vae/layers.py",),
    "anomaly": ("implementations/anomaly/model.py",),
}
# (module, operator, occurrence) -> why no test can tell the mutant from the original.
# (module, the mutated line as the mutant writes it) -> why no test can tell the mutant from the original.
EQUIVALENT: dict[tuple[str, str], str] = {
    (
        "implementations/cem/tasks.py",
        "vy = x[3] + dt * (u[1] * inv_m - by * x[ 4])",
    ): "JAX clamps an out-of-range static index: x[4] of the 4-vector state reads x[3], the same element",
}


def _config(modules: tuple[str, ...], command: list[str], timeout: float) -> str:
    paths = ", ".join(json.dumps(m) for m in modules)
    return (
        "[cosmic-ray]\n"
        f"module-path = [{paths}]\n"
        f"timeout = {timeout}\n"
        "excluded-modules = []\n"
        f"test-command = {json.dumps(shlex.join(command))}\n\n"
        '[cosmic-ray.distributor]\nname = "local"\n'
    )


def _cr(*args: str, cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess:
    exe = [sys.executable, "-m", "cosmic_ray.cli"]
    return subprocess.run([*exe, *args], cwd=cwd, env=env, capture_output=True, text=True, check=False)


Span = tuple[int, int, int, int]  # (line, column, end line, end column), lines from 1, columns from 0


def annotation_spans(source: str) -> list[Span]:
    """Where the type annotations of ``source`` are (arguments, returns, annotated assignments).

    Every port module starts with ``from __future__ import annotations``, so annotations are never evaluated:
    a mutant inside one (``int | None`` -> ``int ** None``) is equivalent by construction. cosmic-ray has no
    filter for this (its filters work by pragma comment, operator name or git diff), hence this one.
    """
    spans: list[Span] = []
    for node in ast.walk(ast.parse(source)):
        anns: list[ast.expr | None] = []
        if isinstance(node, ast.arg):
            anns.append(node.annotation)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            anns.append(node.returns)
        elif isinstance(node, ast.AnnAssign):
            anns.append(node.annotation)
        for a in anns:
            if a is not None:
                assert a.end_lineno is not None and a.end_col_offset is not None
                spans.append((a.lineno, a.col_offset, a.end_lineno, a.end_col_offset))
    return spans


def _inside(start: tuple[int, int], end: tuple[int, int], spans: list[Span]) -> bool:
    return any((s[0], s[1]) <= start and end <= (s[2], s[3]) for s in spans)


def _postponed_annotations(source: str) -> bool:
    return any(
        isinstance(n, ast.ImportFrom)
        and n.module == "__future__"
        and any(a.name == "annotations" for a in n.names)
        for n in ast.parse(source).body
    )


def _compiles(root: Path, mutation: Any, sources: dict[Path, str]) -> bool:
    """Whether the mutant is valid Python. cosmic-ray's operators also rewrite the bare ``*`` of a signature
    (``def f(a, *, b)`` -> ``def f(a, **, b)``): such a mutant cannot even be imported, so it is no test of the
    suite and is drawn again rather than counted as killed."""
    import cosmic_ray.plugins
    from cosmic_ray.mutating import mutate_code

    operator = cosmic_ray.plugins.get_operator(mutation.operator_name)(**(mutation.operator_args or {}))
    code = mutate_code(sources[mutation.module_path], operator, mutation.occurrence)
    if code is None:
        return False
    try:
        compile(code, str(root / mutation.module_path), "exec")
    except SyntaxError:
        return False
    return True


def _describe(m: Any) -> tuple[str, str, int]:
    return (str(m.module_path), m.operator_name, int(m.occurrence))


def _sample(session: Path, k: int, seed: int, root: Path) -> tuple[list[str], dict[str, int]]:
    """Keep ``k`` mutants drawn in a seeded order, skipping those inside unevaluated annotations and those that
    do not compile; mark every other work item skipped. Returns the kept job ids and the excluded counts."""
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome, WorkResult

    with use_db(str(session), WorkDB.Mode.open) as db:
        sources: dict[Path, str] = {}
        spans: dict[Path, list[Span]] = {}
        items = {item.job_id: item for item in db.pending_work_items}
        for item in items.values():
            (m,) = item.mutations
            if m.module_path not in sources:
                text = (root / m.module_path).read_text(encoding="utf-8")
                sources[m.module_path] = text
                spans[m.module_path] = annotation_spans(text) if _postponed_annotations(text) else []
        # job ids are random per session: order by what the mutant is, so a seed draws the same mutants
        order = sorted(items, key=lambda j: _describe(items[j].mutations[0]))
        random.Random(seed).shuffle(order)
        keep: list[str] = []
        excluded = {"annotation": 0, "not_compiling": 0}
        for job in order:
            if len(keep) == k:
                break
            (m,) = items[job].mutations
            if _inside(tuple(m.start_pos), tuple(m.end_pos), spans[m.module_path]):
                excluded["annotation"] += 1
            elif not _compiles(root, m, sources):
                excluded["not_compiling"] += 1
            else:
                keep.append(job)
        kept = set(keep)
        db.set_multiple_results(
            [j for j in order if j not in kept], WorkResult(worker_outcome=WorkerOutcome.SKIPPED)
        )
    return sorted(keep), excluded


def _results(session: Path) -> list[dict[str, Any]]:
    from cosmic_ray.work_db import WorkDB, use_db
    from cosmic_ray.work_item import WorkerOutcome

    out = []
    with use_db(str(session), WorkDB.Mode.open) as db:
        for item, result in db.completed_work_items:
            if result.worker_outcome == WorkerOutcome.SKIPPED:
                continue
            (m,) = item.mutations
            module = str(Path(m.module_path))
            key = (module, _changed_line(result.diff or ""))
            outcome = str(result.test_outcome.value if result.test_outcome else result.worker_outcome.value)
            out.append(
                {
                    "mutant": f"{module}:{m.start_pos[0]} {m.operator_name}#{m.occurrence}",
                    "module": module,
                    "operator": m.operator_name,
                    "occurrence": int(m.occurrence),
                    "line": m.start_pos[0],
                    "outcome": outcome,
                    "equivalent": EQUIVALENT.get(key),  # type: ignore[arg-type]
                    "diff": result.diff or "",
                    "killer": mutate.killer(result.output or ""),
                }
            )
    return out


def _changed_line(diff: str) -> str:
    """The mutated line of a unified diff (its first added line), trimmed."""
    for line in diff.splitlines():
        if line.startswith("+") and not line.startswith("+++"):
            return line[1:].strip()[:120]
    return ""


def run(
    n: int, *, seed: int = 0, workers: str = "2", profile: str = "ci", timeout: float = 900.0
) -> dict[str, Any]:
    """Sample ``n`` operator mutants across the subsystems (in proportion to their mutant counts) and run them."""
    tmp = Path(tempfile.mkdtemp(prefix="conformance-operators-"))
    try:
        copy = mutate.copy_project(tmp / "project")
        env = {**os.environ, "PYTHONPATH": str(copy), "CONFORMANCE_PROFILE": profile}
        sessions: dict[str, Path] = {}
        totals: dict[str, int] = {}
        for sub, modules in MODULES.items():
            cfg = tmp / f"{sub}.toml"
            command = mutate.test_command(sub, workers, profile)
            cfg.write_text(_config(modules, command, timeout))
            session = tmp / f"{sub}.sqlite"
            init = _cr("init", str(cfg), str(session), cwd=copy, env=env)
            if init.returncode != 0:
                raise RuntimeError(f"cosmic-ray init failed for {sub}:\n{init.stderr[-2000:]}")
            from cosmic_ray.work_db import WorkDB, use_db

            with use_db(str(session), WorkDB.Mode.open) as db:
                totals[sub] = db.num_work_items
            sessions[sub] = session
        grand = sum(totals.values())
        per = {s: max(1, round(n * t / grand)) for s, t in totals.items()}
        outcomes: list[dict[str, Any]] = []
        excluded: dict[str, dict[str, int]] = {}
        for (
            sub
        ) in sessions:  # as for the catalogue: if the unmutated suite failed, every mutant would look killed
            code, out, secs = mutate.run_tests(copy, sub, workers, profile, timeout)
            if code != 0:
                raise RuntimeError(
                    f"the unmutated {sub} suite does not pass in the copy (exit {code}, {secs:.0f} s):\n{out[-3000:]}"
                )
        for sub, session in sessions.items():
            _, excluded[sub] = _sample(session, per[sub], seed, copy)
            ran = _cr("exec", str(tmp / f"{sub}.toml"), str(session), cwd=copy, env=env)
            if ran.returncode != 0:
                raise RuntimeError(f"cosmic-ray exec failed for {sub}:\n{ran.stderr[-2000:]}")
            for r in _results(session):
                outcomes.append({**r, "subsystem": sub})
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    judged = [o for o in outcomes if o["outcome"] in ("killed", "survived") and not o["equivalent"]]
    killed = sum(o["outcome"] == "killed" for o in judged)
    by_sub: dict[str, dict[str, int]] = {}
    for o in judged:
        s = by_sub.setdefault(o["subsystem"], {"killed": 0, "total": 0})
        s["total"] += 1
        s["killed"] += o["outcome"] == "killed"
    rows = [
        {
            "mutant": o["mutant"],
            "subsystem": o["subsystem"],
            "kind": o["operator"].split("/")[-1],
            "doc": _changed_line(o["diff"]),
            "status": "equivalent" if o["equivalent"] else o["outcome"],
            "killer": o["killer"],
            "seconds": "",
        }
        for o in outcomes
    ]
    return {
        "population": totals,
        "excluded": excluded,
        "sampled": per,
        "seed": seed,
        "score": {
            "killed": killed,
            "total": len(judged),
            "invalid": sum(o["outcome"] not in ("killed", "survived") for o in outcomes),
            "score": killed / len(judged) if judged else None,
            "by_subsystem": by_sub,
            "survivors": [o["mutant"] for o in judged if o["outcome"] == "survived"],
        },
        "outcomes": rows,
        "equivalent": {o["mutant"]: o["equivalent"] for o in outcomes if o["equivalent"]},
    }
