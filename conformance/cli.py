"""Command line of the parity suite: ``python -m conformance {run,merge,diff,report,replay,list,costs,localize}``.

- ``run``: run the parity suites through pytest with the plugin and write the report; the exit status is
  the gate (0 only when every case reaches its required tier, none is missing, and every test passed).
  ``--shard K/N`` runs one of N deterministic shards (balanced by measured cost).
- ``merge DIR... --out DIR``: shards and devices merged into one report and one gate.
- ``diff BASE HEAD``: parity drift between two reports; non-zero exit on a dropped tier or grown error.
- ``isa``: the suites under emulated older instruction sets (XLA ``--xla_cpu_max_isa``, PyTorch
  ``ATEN_CPU_CAPABILITY``); fails unless every run reaches the same (passing) verdict.
- ``resolve [gpu] [tpu]``: the accelerator tox environments resolve as pinned (no accelerator needed).
- ``mutate``: the catalogue of porting bugs, applied one at a time under the ``ci`` profile; killed or survived.
- ``costs DIR... --out FILE``: the per-test costs that balance the shards, measured by earlier runs.
- ``report DIR``: re-render ``report.md`` and ``report.html`` from ``DIR/report.json``.
- ``replay FILE``: re-run a saved worst example (``DIR/examples/*.npz``) and print its metrics.
- ``list``: the declared cases, their scales and required tiers.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from conformance import profiles

PACKAGE_DIR = Path(__file__).resolve().parent


def _suites(names: list[str]) -> tuple[list[str], str | None]:
    """The test paths of the selected subsystems (the generic parity test first), or an error message."""
    from conformance import subsystems

    paths = [str(PACKAGE_DIR / "test_parity.py")]
    for name in names:
        try:
            sub = subsystems.get(name)
        except subsystems.SubsystemError as exc:
            return [], str(exc)
        if sub.suite is not None:
            paths.append(str(sub.suite))
    return paths, None


def _run(args: argparse.Namespace, extra: list[str]) -> int:
    from conformance import shards, subsystems

    if args.shard:
        try:
            shards.parse(args.shard)
        except shards.ShardError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    names = args.subsystem or subsystems.names()
    suites, problem = _suites(names) if not args.suite else (args.suite, None)
    if problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    out = Path(args.out).resolve()
    cmd = [
        sys.executable,
        "-m",
        "pytest",
        *suites,
        f"--conformance-report={out}",
        f"--conformance-subsystems={','.join(names)}",
        f"--hypothesis-profile={args.profile}",
        f"--rootdir={PACKAGE_DIR.parent}",
        "-q",
    ]
    if args.tiers:
        cmd.append(f"--conformance-tiers={Path(args.tiers).resolve()}")
    if args.shard:
        cmd.append(f"--conformance-shard={args.shard}")
    if args.costs:
        cmd.append(f"--conformance-costs={Path(args.costs).resolve()}")
    if args.workers != "0" and importlib.util.find_spec("xdist") is not None:
        cmd += ["-n", args.workers]
    cmd += extra
    print("+ " + " ".join(cmd), flush=True)
    status = subprocess.run(cmd, check=False, cwd=PACKAGE_DIR.parent).returncode
    report_json = out / "report.json"
    if not report_json.exists():
        print(f"error: pytest exited with status {status} and wrote no report to {out}", file=sys.stderr)
        return status or 3
    from conformance import report

    doc = report.load(report_json)
    gate = doc["summary"]["gate_passed"]
    print(f"parity gate {'PASSED' if gate else 'FAILED'}: {out / 'report.md'}")
    return 0 if gate and status == 0 else (status or 1)


def _report(args: argparse.Namespace) -> int:
    from conformance import report
    from contracts import common as atomic

    try:
        doc = report.load(args.dir)
    except report.ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.dir)
    out = out if out.is_dir() else out.parent
    atomic.write_text(out / "report.md", report.render_markdown(doc))
    atomic.write_text(out / "report.html", report.render_html(doc))
    gate = doc["summary"]["gate_passed"]
    print(f"rendered {out / 'report.md'} and {out / 'report.html'}; gate {'PASSED' if gate else 'FAILED'}")
    return (0 if gate else 1) if args.gate else 0


def _replay(args: argparse.Namespace) -> int:
    from conformance import cases, precision

    precision.apply()
    try:
        result = cases.replay(args.file)
    except (OSError, ValueError, KeyError) as exc:
        print(f"error: cannot replay {args.file}: {exc}", file=sys.stderr)
        return 2
    print(result.message())
    return 0 if result.passed else 1


def _merge(args: argparse.Namespace) -> int:
    from conformance import merge, report

    try:
        items = merge.load_all(args.dirs)
        out = Path(args.out)
        doc = merge.merge(items, allow=args.allow or (), out_dir=out)
    except (report.ReportError, merge.MergeError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    report.write(doc, out)
    for gap in merge.missing_shards(items):
        print(f"warning: shard {gap} is not among the inputs: its cells are missing", file=sys.stderr)
    s = doc["summary"]
    print(
        f"merged {len(items)} report(s) ({doc['device']}): {s['cases']} cells, {s['cases_failed']} below their "
        f"tier, {s['cases_missing']} missing; gate {'PASSED' if s['gate_passed'] else 'FAILED'}: {out / 'report.md'}"
    )
    return 0 if s["gate_passed"] else 1


def _diff(args: argparse.Namespace) -> int:
    from conformance import diff, report

    try:
        base, head = report.load(args.base), report.load(args.head)
        changes = diff.diff(base, head, factor=args.factor)
    except (report.ReportError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if base["tier_table"].get("digest") != head["tier_table"].get("digest"):
        print("note: the two reports were judged by different tier tables", file=sys.stderr)
    print(diff.render(changes, str(args.base), str(args.head)))
    return 1 if any(c.kind in diff.FAILING for c in changes) else 0


def _costs(args: argparse.Namespace) -> int:
    from conformance import report, shards

    try:
        docs = [report.load(d) for d in args.dirs]
    except report.ReportError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    costs = shards.costs_from_reports(docs)
    from conformance import hardware

    source = "; ".join(
        f"{d['profile']['name']} profile, {d['created_utc']}, {hardware.summary(d['environment']['hardware'])}"
        for d in docs
    )
    shards.write_costs(costs, args.out, source=source)
    print(f"wrote {len(costs)} test costs ({sum(costs.values()):.0f} s in all) to {args.out}")
    return 0


def _list(args: argparse.Namespace) -> int:
    from conformance.tiers import default_table

    table = default_table()
    for name, spec in sorted(table.cases.items()):
        if args.subsystem and spec.subsystem not in args.subsystem:
            continue
        reqs = ", ".join(f"{r.backend}/{r.device}/{r.dtype}>={r.tier}" for r in spec.required)
        print(f"{name:40s} {spec.scale:6s} {reqs}")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m conformance", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_run = sub.add_parser("run", help="run the parity suites and write the report (exit status = gate)")
    p_run.add_argument("--subsystem", action="append", help="only this subsystem (repeatable); default: all")
    p_run.add_argument("--profile", default=profiles.DEFAULT, choices=sorted(profiles.PROFILES))
    p_run.add_argument("--out", default="report", help="report directory (default: ./report)")
    p_run.add_argument("-n", "--workers", default="auto", help="pytest-xdist workers ('0' runs in-process)")
    p_run.add_argument("--tiers", help="tier table to use instead of conformance/tiers.toml")
    p_run.add_argument(
        "--suite",
        action="append",
        help="run these test paths instead of conformance/<subsystem> (repeatable)",
    )
    p_run.add_argument("--shard", metavar="K/N", help="run only shard K of N (deterministic, cost-balanced)")
    p_run.add_argument(
        "--costs", help="per-test cost table for --shard (default: conformance/shard_costs.json)"
    )
    p_merge = sub.add_parser("merge", help="merge shard and device reports into one report and one gate")
    p_merge.add_argument("dirs", nargs="+", help="report directories (or report.json files)")
    p_merge.add_argument("--out", required=True, help="directory of the merged report")
    p_merge.add_argument(
        "--allow",
        action="append",
        choices=("table", "profile"),
        help="merge reports judged by different tier tables or Hypothesis profiles (repeatable)",
    )
    p_diff = sub.add_parser("diff", help="parity drift between two reports (exit 1 on a drop)")
    p_diff.add_argument("base")
    p_diff.add_argument("head")
    p_diff.add_argument(
        "--factor", type=float, default=10.0, help="worst-error growth that counts as drift (default 10)"
    )
    p_isa = sub.add_parser(
        "isa", help="run the suites under emulated ISAs; fail unless every verdict is the same"
    )
    p_isa.add_argument("--xla", default="SSE4_2,AVX2,native", help="XLA ISAs (default SSE4_2,AVX2,native)")
    p_isa.add_argument(
        "--torch", default="default,native", help="ATEN_CPU_CAPABILITY values (default default,native)"
    )
    p_isa.add_argument(
        "--out", default="report-isa", help="one report directory per configuration under this"
    )
    p_isa.add_argument(
        "--ci", action="store_true", help="only the one configuration that differs most from the current one"
    )
    p_isa.add_argument("run_args", nargs="*", help="passed to each `conformance run` (after --)")
    p_resolve = sub.add_parser(
        "resolve", help="prove the gpu/tpu tox environments resolve as pinned (pip --dry-run; no accelerator)"
    )
    p_resolve.add_argument("envs", nargs="*", choices=("gpu", "tpu"), help="default: gpu tpu")
    p_mut = sub.add_parser(
        "mutate",
        help="apply each catalogued porting bug and run the suite under the ci profile: is it caught?",
    )
    p_mut.add_argument("--subsystem", action="append", help="only this subsystem's mutants (repeatable)")
    p_mut.add_argument(
        "--only", action="append", help="only mutants whose id matches this regex (repeatable)"
    )
    p_mut.add_argument("--out", default="report-mutation", help="where mutation.json and mutation.md go")
    p_mut.add_argument("--report", help="also put the scores into this parity report directory")
    p_mut.add_argument("--profile", default="ci", choices=sorted(profiles.PROFILES))
    p_mut.add_argument("-n", "--workers", default="2", help="pytest-xdist workers per mutant run")
    p_mut.add_argument("--timeout", type=float, default=900.0, help="seconds per mutant run")
    p_mut.add_argument("--operators", type=int, default=0, help="also sample N operator mutants (cosmic-ray)")
    p_mut.add_argument(
        "--operator-target", type=float, default=0.9, help="required operator score (default 0.9)"
    )
    p_mut.add_argument("--seed", type=int, default=0, help="seed of the operator-mutant sample")
    p_mut.add_argument("--list", action="store_true", help="list the catalogue and stop")
    p_mut.add_argument(
        "--record",
        action="store_true",
        help="fold the scores into conformance/mutation_scores.json, which every parity report shows",
    )
    p_costs = sub.add_parser("costs", help="write the per-test costs that balance --shard, from reports")
    p_costs.add_argument("dirs", nargs="+")
    p_costs.add_argument("--out", default=str(PACKAGE_DIR / "shard_costs.json"))
    p_rep = sub.add_parser("report", help="re-render report.md and report.html from report.json")
    p_rep.add_argument("dir", help="report directory or report.json")
    p_rep.add_argument("--gate", action="store_true", help="exit 1 when the report's gate failed")
    p_play = sub.add_parser("replay", help="re-run a saved worst example (.npz) and print its metrics")
    p_play.add_argument("file")
    p_list = sub.add_parser("list", help="list the declared cases and their required tiers")
    p_list.add_argument("--subsystem", action="append")
    sub.add_parser(
        "localize",
        help="run a reference and its port layer by layer; table and plot of where they diverge",
        add_help=False,  # its options belong to conformance.localize (python -m conformance localize vae -h)
    )
    args, extra = parser.parse_known_args(argv)
    if args.command == "localize":
        from conformance import localize

        return localize.main([x for x in extra if x != "--"])
    if args.command == "mutate":
        from conformance import mutate

        return mutate.main(args)
    if args.command == "resolve":
        from conformance import readiness

        return readiness.main(args.envs)
    if args.command == "isa":
        from conformance import isa

        args.run_args = [*(args.run_args or []), *[x for x in extra if x != "--"]]
        return isa.main(args)
    if extra and args.command != "run":
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if args.command == "run":
        return _run(args, [x for x in extra if x != "--"])
    commands = {
        "report": _report,
        "replay": _replay,
        "list": _list,
        "merge": _merge,
        "diff": _diff,
        "costs": _costs,
    }
    return commands[args.command](args)


if __name__ == "__main__":
    raise SystemExit(main())
