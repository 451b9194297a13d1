"""The parity report: a versioned JSON document, rendered to Markdown (for a merge request) and HTML.

``report.json`` is the source of truth; ``report.md`` and ``report.html`` are rendered from it and can be
rendered again with ``python -m conformance report DIR``. The gate passes only when pytest passed, no case
is below its required tier and every case the tier table declares for the run's subsystems and device ran.
"""

from __future__ import annotations

import datetime as _dt
import html
import importlib.metadata
import io
import json
import os
import platform
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from conformance import hardware, precision
from conformance.parity import ParityResult
from conformance.tiers import TIERS, TierTable, at_least, default_table
from contracts import common as atomic

SCHEMA = "parity-suite.report"
SCHEMA_VERSION = 2
PACKAGES = (
    "numpy",
    "scipy",
    "jax",
    "jaxlib",
    "flax",
    "torch",
    "hypothesis",
    "chex",
    "ml_dtypes",
    "onnx",
    "onnxruntime",
    "safetensors",
    "pytest",
    "pytest-xdist",
)
TIER_COLOURS = {
    "exact": "#116329",
    "perfect": "#1a7f37",
    "excellent": "#4ac26b",
    "good": "#bfd849",
    "warning": "#f2b233",
    "attention": "#f0793a",
    "severe": "#cf222e",
    "missing": "#8c959f",
}


class ReportError(ValueError):
    """A report file that cannot be read: missing, not JSON, or of an unknown schema version."""


# -- building ---------------------------------------------------------------------------------------


def environment() -> dict[str, Any]:
    versions: dict[str, str | None] = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            versions[name] = None
    import jax

    devices = [{"platform": d.platform, "kind": d.device_kind, "id": d.id} for d in jax.devices()]
    return {
        "hardware": hardware.fingerprint(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "machine": platform.machine(),
        "cpu_count": os.cpu_count(),
        "versions": versions,
        "jax_backend": jax.default_backend(),
        "devices": devices,
        "env": {
            k: os.environ.get(k)
            for k in ("JAX_PLATFORMS", "XLA_FLAGS", "ATEN_CPU_CAPABILITY", "CONFORMANCE_PROFILE")
        },
    }


def missing_cell(
    case: str, backend: str, dtype: str, device: str, required: str, scale: str
) -> dict[str, Any]:
    """A declared cell that no test asserted."""
    return {
        "key": f"{case}@{dtype}@{backend}@{device}",
        "case": case,
        "subsystem": case.split(".", 1)[0],
        "backend": backend,
        "device": device,
        "dtype": dtype,
        "scale": scale,
        "required": required,
        "tier": "missing",
        "status": "missing",
        "examples": 0,
        "failed_examples": 0,
        "tier_counts": {},
        "worst": None,
        "compiles": 0,
        "traces": 0,
        "nodeids": [],
        "inputs_file": None,
    }


def ratchet(table: TierTable, cell: Mapping[str, Any]) -> str | None:
    """The tighter tier a passing cell reaches, unless its row says why it stays looser."""
    leaves = [leaf for leaf in cell["worst"]["leaves"] if leaf.get("problem") is None]
    if not leaves:
        return None
    row = table.requirement(cell["case"], cell["backend"], cell["device"], cell["dtype"])
    if row.reason:
        return None
    mae = max(leaf["mae_norm"] for leaf in leaves)
    mx = max(leaf["max_norm"] for leaf in leaves)
    return table.slack(mae, mx, cell["dtype"], row.tier)


def cell_status(entry: Mapping[str, Any]) -> str:
    return (
        "pass" if entry["required"] is None or at_least(entry["worst"]["tier"], entry["required"]) else "fail"
    )


def summarize(
    cases: Sequence[Mapping[str, Any]],
    outcomes: Sequence[Mapping[str, Any]],
    *,
    pytest_ok: bool,
    duration_s: float,
    pytest_exitstatus: int,
    deferred: int = 0,
) -> dict[str, Any]:
    """The summary block and the gate: pytest passed, no cell below its tier, no declared cell missing."""
    tests = {k: 0 for k in ("passed", "failed", "error", "skipped")}
    for o in outcomes:
        tests[o["outcome"]] += 1
    n_fail = sum(c["status"] == "fail" for c in cases)
    n_missing = sum(c["status"] == "missing" for c in cases)
    n_slack = sum(bool(c.get("slack")) for c in cases)
    return {
        "gate_passed": pytest_ok and n_fail == 0 and n_missing == 0 and n_slack == 0,
        "cases_slack": n_slack,
        "cases": len(cases),
        "cases_passed": sum(c["status"] == "pass" for c in cases),
        "cases_failed": n_fail,
        "cases_missing": n_missing,
        "cases_deferred": deferred,
        "examples": sum(c["examples"] for c in cases),
        "compiles": sum(c["compiles"] for c in cases),
        "tests": tests,
        "pytest_exitstatus": pytest_exitstatus,
        "duration_s": round(duration_s, 2),
    }


def sort_cells(cases: list[dict[str, Any]]) -> None:
    cases.sort(key=lambda c: (c["subsystem"], c["case"], c["dtype"], c["backend"], c["device"]))


def build(
    merged: Mapping[str, Any],
    *,
    outcomes: Sequence[Mapping[str, Any]],
    subsystems: Sequence[str],
    profile: str,
    pytest_exitstatus: int,
    duration_s: float,
    table: TierTable | None = None,
    device: str | None = None,
    shard: tuple[int, int] | None = None,
) -> dict[str, Any]:
    """Assemble the report document from the merged recordings and the test outcomes.

    A shard's report holds only the cells its tests asserted: a declared cell it did not run is not "missing"
    there (another shard may run it) but counted as deferred; `conformance.merge` checks the union.
    """
    from hypothesis import settings

    table = table or default_table()
    device = device or hardware.jax_device()
    cases: list[dict[str, Any]] = []
    seen: set[tuple[str, str, str]] = set()
    for e in merged.get("entries", []):
        cell = {**e, "tier": e["worst"]["tier"], "status": cell_status(e)}
        if cell["status"] == "pass" and cell["required"] is not None:
            cell["slack"] = ratchet(table, cell)
        cases.append(cell)
        seen.add((e["case"], e["backend"], e["dtype"]))
    declared = [
        {"case": c, "backend": b, "dtype": d, "device": device, "required": t, "scale": table.case(c).scale}
        for c, b, d, t in table.expected(subsystems, device)
    ]
    deferred = 0
    for cell in declared:
        if (cell["case"], cell["backend"], cell["dtype"]) in seen:
            continue
        if shard is None:
            cases.append(missing_cell(**cell))
        else:
            deferred += 1
    sort_cells(cases)
    current = settings.default
    return {
        "schema": SCHEMA,
        "schema_version": SCHEMA_VERSION,
        "created_utc": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "command": sys.argv,
        "subsystems": list(subsystems),
        "device": device,
        "shard": {"index": shard[0], "count": shard[1]} if shard else None,
        "profile": {
            "name": profile,
            "max_examples": current.max_examples,
            "derandomize": current.derandomize,
        },
        "environment": environment(),
        "precision": precision.settings(),
        "tier_table": table.to_dict(),
        "declared": declared,
        "summary": summarize(
            cases,
            outcomes,
            pytest_ok=pytest_exitstatus == 0,
            duration_s=duration_s,
            pytest_exitstatus=pytest_exitstatus,
            deferred=deferred,
        ),
        "cases": cases,
        "tests": sorted(outcomes, key=lambda o: o["nodeid"]),
        "series": list(merged.get("series", [])),
        "mutation": _recorded_mutation(),
    }


def _recorded_mutation() -> dict[str, Any] | None:
    from conformance import mutate

    return mutate.recorded()


def mutation_lines(doc: Mapping[str, Any]) -> list[str]:
    """The suite's measured power, one line per part: catalogue and operator sample scores under a profile."""
    from conformance import mutate

    mut = doc.get("mutation") or {}
    lines = []
    for key, title in mutate.PARTS:
        part = mut.get(key)
        if not part:
            continue
        s = part["score"]
        pct = mutate.percent(s)
        subs = ", ".join(f"{k} {v['killed']}/{v['total']}" for k, v in sorted(s["by_subsystem"].items()))
        when = f"; measured {part['measured']}" if part.get("measured") else ""
        survivors = f"; survivors: {', '.join(s['survivors'])}" if s.get("survivors") else ""
        equivalent = f"; {len(part['equivalent'])} equivalent excluded" if part.get("equivalent") else ""
        lines.append(
            f"{title}: {s['killed']}/{s['total']} killed ({pct}) under the `{mut.get('profile')}` profile "
            f"({subs}{when}{equivalent}{survivors})"
        )
    return lines


def write(doc: Mapping[str, Any], out_dir: str | Path) -> None:
    out = Path(out_dir)
    atomic.write_text(out / "report.json", json.dumps(doc, indent=1, sort_keys=False, allow_nan=True) + "\n")
    atomic.write_text(out / "report.md", render_markdown(doc))
    atomic.write_text(out / "report.html", render_html(doc))


def load(path: str | Path) -> dict[str, Any]:
    """Read and check a ``report.json`` (or the directory holding one)."""
    p = Path(path)
    if p.is_dir():
        p = p / "report.json"
    try:
        doc = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ReportError(f"{p} does not exist") from None
    except json.JSONDecodeError as exc:
        raise ReportError(f"{p} is not valid JSON ({exc}); it may be truncated") from None
    if not isinstance(doc, dict) or doc.get("schema") != SCHEMA:
        raise ReportError(
            f"{p} is not a parity report (schema {doc.get('schema') if isinstance(doc, dict) else None!r})"
        )
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise ReportError(
            f"{p} has report schema version {doc.get('schema_version')!r}; this suite reads version "
            f"{SCHEMA_VERSION}. Re-run `python -m conformance run` to regenerate it."
        )
    return doc


# -- rendering helpers --------------------------------------------------------------------------------


def _fmt(x: float | None) -> str:
    if x is None:
        return "–"
    if x == 0:
        return "0"
    return f"{x:.2e}"


def _worst_leaf(c: Mapping[str, Any]) -> Mapping[str, Any] | None:
    w = c.get("worst")
    if not w:
        return None
    return next((leaf for leaf in w["leaves"] if leaf["path"] == w["worst_leaf"]), None)


def failure_message(c: Mapping[str, Any]) -> str:
    if c["status"] == "missing":
        return (
            f"{c['case']}[{c['dtype']}] on {c['backend']}/{c['device']}: declared in the tier table "
            f"(required {c['required']!r}) but no test asserted it."
        )
    return ParityResult.from_dict(c["worst"]).message()


def _summary_line(doc: Mapping[str, Any]) -> str:
    s = doc["summary"]
    t = s["tests"]
    p = doc["profile"]
    return (
        f"{s['cases']} cases ({s['cases_passed']} at or above their required tier, {s['cases_failed']} below, "
        f"{s['cases_missing']} missing, {s.get('cases_slack', 0)} slack), {s['examples']} examples, {s['compiles']} JAX compilations; "
        f"tests: {t['passed']} passed, {t['failed']} failed, {t['error']} errors, {t['skipped']} skipped; "
        f"profile {p['name']} ({p['max_examples']} examples, derandomized={p['derandomize']}); "
        f"device {doc['device']}"
        + (f", shard {doc['shard']['index']}/{doc['shard']['count']}" if doc.get("shard") else "")
        + (f" ({s['cases_deferred']} declared cells left to other shards)" if s.get("cases_deferred") else "")
        + f"; {s['duration_s']} s."
    )


def _sources(doc: Mapping[str, Any]) -> list[str]:
    """One line per input of a merged report (its device, shard, gate and machine)."""
    out = []
    for src in doc.get("merged_from", []):
        shard = src.get("shard")
        where = src["device"] + (f" shard {shard['index']}/{shard['count']}" if shard else "")
        out.append(
            f"{src['path']} ({where}): gate {'PASSED' if src['gate_passed'] else 'FAILED'}, pytest exit "
            f"{src['pytest_exitstatus']}; {src['machine']}"
        )
    return out


def render_markdown(doc: Mapping[str, Any]) -> str:
    s = doc["summary"]
    out = io.StringIO()
    w = out.write
    w(f"# Parity report: gate {'PASSED' if s['gate_passed'] else 'FAILED'}\n\n")
    w(_summary_line(doc) + "\n\n")
    sources = _sources(doc)
    if sources:
        w(f"Merged from {len(sources)} reports:\n\n" + "".join(f"- {line}\n" for line in sources) + "\n")
    else:
        w(f"Machine: {hardware.summary(doc['environment']['hardware'])}.\n\n")
    power = mutation_lines(doc)
    if power:
        w("## Suite power (mutation testing)\n\n" + "".join(f"- {x}\n" for x in power) + "\n")
    prec = doc["precision"]
    w("Precision: " + ", ".join(f"`{k}={v}`" for k, v in prec.items()) + ".\n\n")
    slack = [c for c in doc["cases"] if c.get("slack")]
    if slack:
        w("## Slack requirements (the ratchet)\n\n")
        w(
            "These rows require less than their cells reach: tighten each to the tier shown, or give the row its "
            "reason (a fifth element) in the tier table.\n\n"
        )
        for c in slack:
            w(
                f"- `{c['case']}[{c['dtype']}]` on {c['backend']}/{c['device']}: requires {c['required']}, reaches {c['tier']}, could require **{c['slack']}**\n"
            )
        w("\n")
    bad = [c for c in doc["cases"] if c["status"] != "pass"]
    failed_tests = [t for t in doc["tests"] if t["outcome"] in ("failed", "error")]
    if bad or failed_tests:
        w("## What failed\n\n")
        for c in bad:
            w("```\n" + failure_message(c) + "\n```\n\n")
        for t in failed_tests:
            w(f"- test `{t['nodeid']}` {t['outcome']}\n")
        w("\n")
    for subsystem in sorted({c["subsystem"] for c in doc["cases"]}):
        w(f"## {subsystem}\n\n")
        w(
            "| case | dtype | backend | device | tier | required | MAE (norm) | max (norm) | examples | compiles | status |\n"
        )
        w("|---|---|---|---|---|---|---|---|---|---|---|\n")
        for c in (c for c in doc["cases"] if c["subsystem"] == subsystem):
            leaf = _worst_leaf(c)
            mae = _fmt(leaf["mae_norm"]) if leaf else "–"
            mx = _fmt(leaf["max_norm"]) if leaf else "–"
            status = {"pass": "ok", "fail": "**FAIL**", "missing": "**MISSING**"}[c["status"]]
            w(
                f"| `{c['case']}` | {c['dtype']} | {c['backend']} | {c['device']} | {c['tier']} | {c['required']} "
                f"| {mae} | {mx} | {c['examples']} | {c['compiles']} | {status} |\n"
            )
        w("\n")
    w(
        "Tier bounds (float32, normalized MAE; the max must stay below "
        f"{doc['tier_table']['max_multiple']:g}x the bound): "
        + ", ".join(f"{k} < {v:g}" for k, v in doc["tier_table"]["bounds_float32"].items())
        + ".\n\n"
    )
    env = doc["environment"]
    versions = ", ".join(f"{k} {v}" for k, v in env["versions"].items() if v)
    w(
        f"Environment: Python {env['python']} on {env['platform']} ({env['cpu_count']} CPUs), JAX backend "
        f"{env['jax_backend']}; {versions}.\n"
    )
    return out.getvalue()


_CSS = """
body{font-family:system-ui,-apple-system,Segoe UI,sans-serif;margin:24px;color:#1f2328}
h1 .pass{color:#1a7f37} h1 .fail{color:#cf222e}
table.matrix{border-collapse:collapse;margin:8px 0 24px}
table.matrix th,table.matrix td{border:1px solid #d0d7de;padding:4px 6px;font-size:12px;vertical-align:top}
table.matrix th{background:#f6f8fa;text-align:left}
td.cell{min-width:150px;color:#fff} td.cell .num{font-family:ui-monospace,monospace;font-size:11px}
td.cell.fail{outline:3px solid #000;outline-offset:-3px} td.empty{background:#fff}
.badge{font-weight:600} pre{background:#f6f8fa;padding:8px;overflow-x:auto;font-size:12px}
.legend span{display:inline-block;padding:2px 8px;margin-right:4px;color:#fff;font-size:12px}
.plots figure{display:inline-block;margin:0 16px 16px 0}
"""


def _cell(c: Mapping[str, Any]) -> str:
    colour = TIER_COLOURS[c["tier"]]
    leaf = _worst_leaf(c)
    text_colour = "#1f2328" if c["tier"] in ("good", "warning") else "#fff"
    lines = [f"<span class='badge'>{html.escape(c['tier'])}</span> (needs {html.escape(str(c['required']))})"]
    if leaf:
        lines.append(f"<span class='num'>MAE {_fmt(leaf['mae_norm'])} · max {_fmt(leaf['max_norm'])}</span>")
        lines.append(f"<span class='num'>n={c['examples']} · compiles {c['compiles']}</span>")
    title = (
        failure_message(c)
        if c["status"] != "pass"
        else (
            f"worst leaf {leaf['path']}, at {leaf['worst']['index'] if leaf and leaf['worst'] else '-'}"
            if leaf
            else ""
        )
    )
    cls = "cell" + ("" if c["status"] == "pass" else " fail")
    return (
        f"<td class='{cls}' style='background:{colour};color:{text_colour}' title='{html.escape(title, quote=True)}'>"
        + "<br>".join(lines)
        + "</td>"
    )


def _plot_svg(series: Sequence[Mapping[str, Any]], title: str) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    plt.rcParams["svg.hashsalt"] = "conformance"  # deterministic element ids: re-rendering is byte-identical

    fig, ax = plt.subplots(figsize=(5.5, 3.4), dpi=100)
    try:
        for s in series:
            ys = [max(y, 1e-300) for y in s["y"]] if s["logy"] else s["y"]
            ax.plot(s["x"], ys, marker="o", markersize=3, label=s["label"])
        if any(s["logy"] for s in series):
            ax.set_yscale("log")
        ax.set_xlabel(series[0]["xlabel"])
        ax.set_ylabel(series[0]["ylabel"])
        ax.set_title(title, fontsize=10)
        ax.grid(True, alpha=0.3)
        if len(series) > 1:
            ax.legend(fontsize=7)
        fig.tight_layout()
        buf = io.StringIO()
        fig.savefig(buf, format="svg", metadata={"Date": None})
    finally:
        plt.close(fig)
    svg = buf.getvalue()
    return svg[svg.index("<svg") :]


def render_html(doc: Mapping[str, Any]) -> str:
    s = doc["summary"]
    parts: list[str] = []
    add = parts.append
    add(
        "<!DOCTYPE html><html lang='en'><head><meta charset='utf-8'><link rel='icon' href='data:,'><title>Parity report</title>"
    )
    add(f"<style>{_CSS}</style></head><body>")
    verdict = "<span class='pass'>PASSED</span>" if s["gate_passed"] else "<span class='fail'>FAILED</span>"
    add(f"<h1>Parity report: gate {verdict}</h1><p>{html.escape(_summary_line(doc))}</p>")
    sources = _sources(doc)
    if sources:
        add(
            "<p>Merged from:</p><ul id='sources'>"
            + "".join(f"<li>{html.escape(x)}</li>" for x in sources)
            + "</ul>"
        )
    add(
        "<p class='legend'>"
        + "".join(f"<span style='background:{TIER_COLOURS[t]}'>{t}</span>" for t in (*TIERS, "missing"))
        + "</p>"
    )
    add(
        "<p>Each cell: tier reached (tier required), the worst example's normalized MAE and max error, examples "
        "run and JAX compilations. Cells with a black frame are below their required tier or missing; hover "
        "for details.</p>"
    )
    for subsystem in sorted({c["subsystem"] for c in doc["cases"]}):
        rows = [c for c in doc["cases"] if c["subsystem"] == subsystem]
        columns = sorted({(c["backend"], c["device"]) for c in rows})
        add(
            f"<h2>{html.escape(subsystem)}</h2><table class='matrix' id='matrix-{html.escape(subsystem)}'><tr>"
            "<th>case</th><th>dtype</th><th>scale</th>"
        )
        for b, d in columns:
            add(f"<th>{html.escape(b)}<br>{html.escape(d)}</th>")
        add("</tr>")
        for case, dtype in sorted({(c["case"], c["dtype"]) for c in rows}):
            scale = next(c["scale"] for c in rows if c["case"] == case)
            add(f"<tr><td><code>{html.escape(case)}</code></td><td>{dtype}</td><td>{scale}</td>")
            for b, d in columns:
                found = [
                    c
                    for c in rows
                    if (c["case"], c["dtype"], c["backend"], c["device"]) == (case, dtype, b, d)
                ]
                add(_cell(found[0]) if found else "<td class='empty'></td>")
            add("</tr>")
        add("</table>")
    if doc.get("series"):
        add("<h2>Error propagation</h2><div class='plots'>")
        groups: dict[str, list[Mapping[str, Any]]] = {}
        for ser in doc["series"]:
            groups.setdefault(ser["name"], []).append(ser)
        for name, group in sorted(groups.items()):
            try:
                svg = _plot_svg(group, name)
            except Exception as exc:
                svg = f"<pre>plot unavailable: {html.escape(repr(exc))}</pre>"
            add(
                f"<figure id='plot-{html.escape(name)}'>{svg}<figcaption>{html.escape(name)}</figcaption></figure>"
            )
        add("</div>")
    slack = [c for c in doc["cases"] if c.get("slack")]
    if slack:
        add("<h2>Slack requirements (the ratchet)</h2><ul id='slack'>")
        for c in slack:
            add(
                f"<li><code>{html.escape(c['case'])}[{c['dtype']}]</code> on {html.escape(c['backend'])}/{c['device']}: "
                f"requires {c['required']}, reaches {c['tier']}, could require <b>{c['slack']}</b></li>"
            )
        add("</ul>")
    bad = [c for c in doc["cases"] if c["status"] != "pass"]
    failed_tests = [t for t in doc["tests"] if t["outcome"] in ("failed", "error")]
    if bad or failed_tests:
        add("<h2>What failed</h2>")
        for c in bad:
            add(f"<pre>{html.escape(failure_message(c))}</pre>")
        for t in failed_tests:
            add(
                f"<details><summary>test <code>{html.escape(t['nodeid'])}</code> {t['outcome']}</summary>"
                f"<pre>{html.escape(t.get('longrepr', ''))}</pre></details>"
            )
    power = mutation_lines(doc)
    if power:
        add("<h2>Suite power (mutation testing)</h2><ul id='mutation'>")
        add("".join(f"<li>{html.escape(x)}</li>" for x in power) + "</ul>")
    env = doc["environment"]
    add("<h2>Environment</h2><table class='matrix'>")
    hw = env["hardware"]
    rows_env = {
        "machine": hardware.summary(hw),
        "CPU model": hw["cpu_model"],
        "XLA ISA (native; --xla_cpu_max_isa)": f"{hw['xla_isa']} ({hw['xla_isa_native']}; {hw['xla_cpu_max_isa']})",
        "XLA_FLAGS": hw["xla_flags"] or "(none)",
        "torch CPU capability (native; ATEN_CPU_CAPABILITY)": f"{hw['torch_cpu_capability']} "
        f"({hw['torch_cpu_capability_native']}; {hw['aten_cpu_capability']})",
        "python": env["python"],
        "platform": env["platform"],
        "CPUs": env["cpu_count"],
        "JAX backend": env["jax_backend"],
        "devices": ", ".join(f"{d['platform']}:{d['kind']}" for d in env["devices"]),
        **{f"precision: {k}": v for k, v in doc["precision"].items()},
        **{k: v for k, v in env["versions"].items() if v},
    }
    for k, v in rows_env.items():
        add(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>")
    add("</table></body></html>")
    return "".join(parts)
