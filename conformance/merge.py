"""Merge parity reports: the shards of a run, and runs on several devices, into one matrix and one gate.

``python -m conformance merge DIR... --out DIR`` reads each ``report.json``, checks that they can be merged
(same report schema, same tier table, same Hypothesis profile: anything else is an error that names the
difference, unless ``--allow table`` / ``--allow profile`` says it is intended), and writes one report:

- cells are keyed by (case, backend, dtype, device): a device's cells form its own column of the matrix;
  a cell reported by several inputs (two shards whose tests both asserted it, or two machines of one device
  class) sums its examples and keeps the worst example;
- the declared cells are the union of the inputs' declarations; one that no input ran is "missing";
- the gate passes only when every input's pytest run passed, no cell is below its required tier and none is
  missing. Merging the shards of a run gives the cells and the gate of the unsharded run.

The worst examples' saved inputs are copied, so ``python -m conformance replay`` works from the merged report.
"""

from __future__ import annotations

import datetime as _dt
import shutil
import sys
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance import hardware, report
from conformance.recorder import worst_key
from conformance.tiers import tier_rank

ALLOWABLE = ("table", "profile")


class MergeError(ValueError):
    """Reports that cannot be merged as they are (the message names the difference)."""


def _label(path: Path, doc: Mapping[str, Any]) -> str:
    shard = doc.get("shard")
    where = f"{doc['device']}" + (f" shard {shard['index']}/{shard['count']}" if shard else "")
    return f"{path} ({where})"


def _table_difference(a: Mapping[str, Any], b: Mapping[str, Any]) -> str:
    """What differs between two reports' tier tables, in words."""
    out = []
    for key in ("bounds_float32", "max_multiple", "dtype_scale"):
        if a.get(key) != b.get(key):
            out.append(f"{key} {a.get(key)} vs {b.get(key)}")
    ra, rb = a.get("requirements", {}), b.get("requirements", {})
    for name in sorted(set(ra) | set(rb)):
        if ra.get(name) != rb.get(name):
            if name not in ra or name not in rb:
                out.append(f"case {name} only in {'the second' if name not in ra else 'the first'}")
            else:
                out.append(f"case {name}: {ra[name]} vs {rb[name]}")
        if len(out) >= 6:
            out.append("...")
            break
    return "; ".join(out) or "the backend lists"


def check_compatible(items: Sequence[tuple[Path, Mapping[str, Any]]], allow: Iterable[str] = ()) -> None:
    allow = set(allow)
    unknown = allow - set(ALLOWABLE)
    if unknown:
        raise MergeError(f"--allow takes {', '.join(ALLOWABLE)}; got {', '.join(sorted(unknown))}")
    if not items:
        raise MergeError("nothing to merge: give at least one report directory")
    first_path, first = items[0]
    for path, doc in items[1:]:
        ta, tb = first["tier_table"], doc["tier_table"]
        if "table" not in allow and ta.get("digest") != tb.get("digest"):
            raise MergeError(
                f"{_label(path, doc)} was judged by another tier table than {_label(first_path, first)} "
                f"({tb.get('source')} vs {ta.get('source')}): {_table_difference(ta, tb)}. Re-run one of them, or "
                "pass --allow table to merge anyway"
            )
        pa, pb = first["profile"], doc["profile"]
        if "profile" not in allow and pa != pb:
            raise MergeError(
                f"{_label(path, doc)} ran Hypothesis profile {pb} but {_label(first_path, first)} ran {pa}: "
                "their examples differ. Re-run with one profile, or pass --allow profile"
            )
    shards: dict[str, dict[int | None, Path]] = {}
    counts: dict[str, set[int | None]] = {}
    for path, doc in items:
        shard = doc.get("shard")
        index, count = (shard["index"], shard["count"]) if shard else (None, None)
        device = doc["device"]
        counts.setdefault(device, set()).add(count)
        if len(counts[device]) > 1:
            described = sorted("unsharded" if c is None else f"{c} shards" for c in counts[device])
            raise MergeError(
                f"the {device} reports mix {' and '.join(described)}: their tests overlap. Merge the shards of "
                "one run (or whole runs)"
            )
        if index is not None:
            seen = shards.setdefault(device, {})
            if index in seen:
                raise MergeError(
                    f"shard {index}/{count} on {device} is given twice: {seen[index]} and {path}"
                )
            seen[index] = path


def _combine(into: dict[str, Any], cell: Mapping[str, Any], src: Path, out_dir: Path | None) -> None:
    into["examples"] += cell["examples"]
    into["failed_examples"] += cell["failed_examples"]
    into["compiles"] += cell["compiles"]
    into["traces"] += cell["traces"]
    for t, n in cell["tier_counts"].items():
        into["tier_counts"][t] = into["tier_counts"].get(t, 0) + n
    into["nodeids"] = sorted(set(into["nodeids"]) | set(cell["nodeids"]))
    if worst_key(cell["worst"]) > worst_key(into["worst"]):
        into["worst"] = cell["worst"]
        into["inputs_file"] = _copy_inputs(cell, src, out_dir)
    into["tier"] = into["worst"]["tier"]
    into["status"] = report.cell_status(into)
    # slack only if every input found it (a tier is only as tight as its worst example allows)
    a, b = into.get("slack"), cell.get("slack")
    into["slack"] = (a if tier_rank(a) >= tier_rank(b) else b) if a and b else None


def _copy_inputs(cell: Mapping[str, Any], src: Path, out_dir: Path | None) -> str | None:
    rel = cell.get("inputs_file")
    if not rel or out_dir is None:
        return rel
    source = Path(rel) if Path(rel).is_absolute() else src / rel
    if not source.exists():
        return None
    target = out_dir / "examples" / f"{cell['key']}.npz"
    target.parent.mkdir(parents=True, exist_ok=True)
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
    return str(target.relative_to(out_dir))


def merge(
    items: Sequence[tuple[Path, Mapping[str, Any]]], *, allow: Iterable[str] = (), out_dir: Path | None = None
) -> dict[str, Any]:
    """One report document from several (see the module docstring)."""
    check_compatible(items, allow)
    cells: dict[tuple[str, str, str, str], dict[str, Any]] = {}
    declared: dict[tuple[str, str, str, str], Mapping[str, Any]] = {}
    tests: list[dict[str, Any]] = []
    series: list[Any] = []
    sources = []
    for path, doc in items:
        label = _label(path, doc)
        for cell in doc["cases"]:
            if cell["status"] == "missing":
                continue  # recomputed below from the union
            key = (cell["case"], cell["backend"], cell["dtype"], cell["device"])
            if key not in cells:
                cells[key] = {
                    **cell,
                    "tier_counts": dict(cell["tier_counts"]),
                    "nodeids": list(cell["nodeids"]),
                    "inputs_file": _copy_inputs(cell, path, out_dir),
                }
            else:
                _combine(cells[key], cell, path, out_dir)
        for d in doc.get("declared", []):
            declared.setdefault((d["case"], d["backend"], d["dtype"], d["device"]), d)
        tests.extend({**t, "source": label} for t in doc["tests"])
        series.extend(doc.get("series", []))
        sources.append(
            {
                "path": str(path),
                "device": doc["device"],
                "shard": doc.get("shard"),
                "gate_passed": doc["summary"]["gate_passed"],
                "pytest_exitstatus": doc["summary"]["pytest_exitstatus"],
                "machine": hardware.summary(doc["environment"]["hardware"]),
                "created_utc": doc["created_utc"],
            }
        )
    cases = list(cells.values())
    for key, d in declared.items():
        if key not in cells:
            cases.append(
                report.missing_cell(
                    d["case"], d["backend"], d["dtype"], d["device"], d["required"], d["scale"]
                )
            )
    report.sort_cells(cases)
    docs = [doc for _, doc in items]
    first = docs[0]
    devices = sorted({doc["device"] for doc in docs})
    status = max((doc["summary"]["pytest_exitstatus"] for doc in docs), default=0)
    return {
        "schema": report.SCHEMA,
        "schema_version": report.SCHEMA_VERSION,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "subsystems": sorted({s for doc in docs for s in doc["subsystems"]}),
        "device": ",".join(devices),
        "shard": None,
        "profile": first["profile"],
        "environment": first["environment"],
        "environments": [doc["environment"] for doc in docs],
        "precision": first["precision"],
        "tier_table": first["tier_table"],
        "declared": [dict(d) for _, d in sorted(declared.items())],
        "merged_from": sources,
        "summary": report.summarize(
            cases,
            tests,
            pytest_ok=all(doc["summary"]["pytest_exitstatus"] == 0 for doc in docs),
            duration_s=sum(doc["summary"]["duration_s"] for doc in docs),
            pytest_exitstatus=status,
        ),
        "cases": cases,
        "tests": sorted(tests, key=lambda t: (t["nodeid"], t["source"])),
        "series": series,
        "mutation": next((doc["mutation"] for doc in docs if doc.get("mutation")), None),
    }


def missing_shards(items: Sequence[tuple[Path, Mapping[str, Any]]]) -> list[str]:
    """Shards of a sharded device that no input holds (their cells show as missing)."""
    out = []
    by_device: dict[str, tuple[int, set[int]]] = {}
    for _, doc in items:
        shard = doc.get("shard")
        if shard:
            count, seen = by_device.setdefault(doc["device"], (shard["count"], set()))
            seen.add(shard["index"])
    for device, (count, seen) in sorted(by_device.items()):
        out += [f"{k}/{count} on {device}" for k in range(1, count + 1) if k not in seen]
    return out


def load_all(dirs: Sequence[str | Path]) -> list[tuple[Path, dict[str, Any]]]:
    items = []
    for d in dirs:
        p = Path(d)
        items.append((p if p.is_dir() else p.parent, report.load(p)))
    return items
