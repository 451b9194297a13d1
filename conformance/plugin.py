"""The suite's pytest plugin (registered through the ``pytest11`` entry point).

- Loads the Hypothesis profile (``--hypothesis-profile`` or ``CONFORMANCE_PROFILE``, default ``ci``).
- Applies the precision policy (`conformance.precision`) before any test runs.
- Installs a `Recorder` in every process and feeds it JAX's compilation events, so each parity assertion
  knows how many compilations and traces its case caused.
- Collects test outcomes and, under pytest-xdist, the workers' recordings.
- With ``--conformance-report DIR`` writes ``report.json``, ``report.md`` and ``report.html`` and turns
  the exit status non-zero when any case is below its required tier, missing, or a test failed.

It is quiet outside parity sessions: it is installed into every pytest session of an environment that has the
package, so unless a conformance option is given, ``CONFORMANCE_PROFILE`` is set, the ini option
``conformance = true`` is set, or the session's paths reach the harness or an installed subsystem's suite, it
imports nothing heavy (no NumPy, Hypothesis or JAX) and
changes no global configuration (no Hypothesis profile, no JAX precision).
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import pytest

_LISTENING = False
PACKAGE_DIR = Path(__file__).resolve().parent
PROFILE_ENV = "CONFORMANCE_PROFILE"  # conformance.profiles.ENV_VAR (that module imports Hypothesis)
_PROFILE_NAMES = ("ci", "thorough", "dev")  # conformance.profiles.PROFILES
_OPTIONS = ("conformance_report", "conformance_tiers", "conformance_subsystems", "conformance_shard")


def _on_jax_event(name: str, *args: Any, **kwargs: Any) -> None:
    from conformance import recorder

    rec = recorder.current()
    if rec is not None:
        rec.on_jax_event(name)


def _listen_to_jax() -> None:
    """Register one process-wide listener for JAX's compile events (it forwards to the current recorder)."""
    global _LISTENING
    if _LISTENING:
        return
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_on_jax_event)
    _LISTENING = True


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addini(
        "conformance",
        "treat every session of this project as a parity session (profile, precision policy, recorder)",
        type="bool",
        default=False,
    )
    group = parser.getgroup("conformance", "parity suite")
    group.addoption(
        "--conformance-report",
        metavar="DIR",
        default=None,
        help="write the parity report (report.json, report.md, report.html) to DIR and gate the exit status on it",
    )
    group.addoption(
        "--conformance-tiers",
        metavar="PATH",
        default=None,
        help="use this tier table instead of the project's conformance/tiers.toml",
    )
    group.addoption(
        "--conformance-subsystems",
        metavar="S[,S]",
        default=None,
        help="subsystems whose declared cases the report must contain (default: those of the collected tests)",
    )
    group.addoption(
        "--conformance-shard",
        metavar="K/N",
        default=None,
        help="run only the K-th of N deterministic shards of the collected tests (balanced by measured cost); "
        "the report's missing-case check is left to `python -m conformance merge`",
    )
    group.addoption(
        "--conformance-costs",
        metavar="PATH",
        default=None,
        help="per-test costs (seconds) that balance the shards (default: conformance/shard_costs.json)",
    )


class _Session:
    def __init__(
        self, config: pytest.Config, out_dir: Path | None, profile: str, shard: tuple[int, int] | None
    ) -> None:
        self.config = config
        self.shard = shard
        self.out_dir = out_dir
        self.profile = profile
        self.is_worker = hasattr(config, "workerinput")
        self.outcomes: dict[str, dict[str, Any]] = {}
        self.exports: list[dict[str, Any]] = []
        self.subsystems: set[str] = set()
        self.started = time.time()

    @pytest.hookimpl(tryfirst=True)
    def pytest_runtest_setup(self, item: pytest.Item) -> None:
        from conformance import precision, recorder

        rec = recorder.current()
        if rec is not None:
            rec.start_test()
        precision.apply_torch_if_loaded()

    def pytest_collection_modifyitems(self, config: pytest.Config, items: list[pytest.Item]) -> None:
        for item in items:
            cell = getattr(getattr(item, "callspec", None), "params", {}).get("cell")
            if cell is not None:  # the generic parity test: (case, dtype, backend)
                self.subsystems.add(cell[0].subsystem)
                continue
            mod = getattr(item, "module", None)
            parts = (getattr(mod, "__name__", "") or "").split(".")
            if len(parts) >= 3 and parts[0] == "conformance":
                self.subsystems.add(parts[1])
        if self.shard is not None:
            from conformance import shards

            k, n = self.shard
            costs = shards.load_costs(config.getoption("conformance_costs"))
            keep = set(shards.select([i.nodeid for i in items], k, n, costs))
            dropped = [i for i in items if i.nodeid not in keep]
            if dropped:
                config.hook.pytest_deselected(items=dropped)
            items[:] = [i for i in items if i.nodeid in keep]

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if self.is_worker:
            return
        entry = self.outcomes.setdefault(
            report.nodeid, {"nodeid": report.nodeid, "outcome": "passed", "duration": 0.0}
        )
        entry["duration"] += report.duration
        if report.failed:
            entry["outcome"] = "failed" if report.when == "call" else "error"
            entry["longrepr"] = str(report.longrepr)[-6000:]
        elif report.skipped and entry["outcome"] == "passed":
            entry["outcome"] = "skipped"
            entry["longrepr"] = str(report.longrepr)[-500:]

    @pytest.hookimpl(optionalhook=True)
    def pytest_testnodedown(self, node: Any, error: Any) -> None:
        out = getattr(node, "workeroutput", {}).get("conformance")
        if out:
            self.exports.append(json.loads(out))

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session, exitstatus: int) -> None:
        from conformance import recorder

        rec = recorder.current()
        if self.is_worker:
            if rec is not None:
                self.config.workeroutput["conformance"] = json.dumps(rec.export())  # type: ignore[attr-defined]
            return
        if self.out_dir is None:
            return
        from conformance import report

        if rec is not None and not self.exports:
            self.exports.append(rec.export())
        merged = recorder.merge(self.exports, self.out_dir)
        option = self.config.getoption("conformance_subsystems")
        subsystems = sorted(option.split(",")) if option else sorted(self.subsystems)
        doc = report.build(
            merged,
            outcomes=list(self.outcomes.values()),
            subsystems=subsystems,
            profile=self.profile,
            pytest_exitstatus=int(exitstatus),
            duration_s=time.time() - self.started,
            shard=self.shard,
        )
        report.write(doc, self.out_dir)
        if not doc["summary"]["gate_passed"] and session.exitstatus == 0:
            session.exitstatus = pytest.ExitCode.TESTS_FAILED
        tr = self.config.pluginmanager.get_plugin("terminalreporter")
        if tr is not None:
            s = doc["summary"]
            tr.write_line(
                f"conformance report: {s['cases']} cases, {s['examples']} examples, "
                f"{s['cases_failed']} below required tier, {s['cases_missing']} missing"
                + (f" ({s['cases_deferred']} not in this shard: checked at merge)" if self.shard else "")
                + ", "
                f"gate {'PASSED' if s['gate_passed'] else 'FAILED'} -> {self.out_dir / 'report.html'}"
            )


def _is_parity_session(config: pytest.Config) -> bool:
    """A conformance option, the profile variable, or a path into the harness or an installed subsystem."""
    if any(config.getoption(o, None) for o in _OPTIONS) or os.environ.get(PROFILE_ENV):
        return True
    if config.getini("conformance"):  # a project whose every session is a parity session says so
        return True
    from conformance import subsystems

    roots = [PACKAGE_DIR, *(Path(s.suite).resolve() for s in subsystems.discovered().values() if s.suite)]
    for arg in config.args:
        path = Path(str(arg).split("::", 1)[0])
        path = (path if path.is_absolute() else Path(config.invocation_params.dir) / path).resolve()
        if any(path == r or r in path.parents or path in r.parents for r in roots):
            return True
    return False


@pytest.hookimpl(tryfirst=True)  # before Hypothesis's own plugin loads the profile named on the command line
def pytest_configure(config: pytest.Config) -> None:
    if config.getoption("hypothesis_profile", None) in _PROFILE_NAMES:
        from conformance import profiles  # registers the suite's profiles (importing Hypothesis)
    if not _is_parity_session(config):
        return
    from hypothesis import settings

    from conformance import precision, profiles, recorder

    chosen = config.getoption("hypothesis_profile", None)
    profile = chosen or os.environ.get(profiles.ENV_VAR) or profiles.DEFAULT
    if profile not in profiles.PROFILES and not chosen:
        raise pytest.UsageError(
            f"{profiles.ENV_VAR}={profile!r} is not a profile; profiles: {', '.join(profiles.PROFILES)}"
        )
    if not chosen:
        settings.load_profile(profile)
    precision.apply()
    from conformance import tiers

    config.stash[_ACTIVE] = True
    config.stash[_TABLE] = tiers.default_table() if tiers._ACTIVE is not None else None
    tiers.use_table(config.getoption("conformance_tiers"))
    out = config.getoption("conformance_report")
    out_dir = Path(out).resolve() if out else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    worker = getattr(config, "workerinput", {}).get("workerid", "main")
    previous = recorder.current()
    config.stash[_PREVIOUS] = previous
    recorder.install(recorder.Recorder(out_dir, worker), profile)
    _listen_to_jax()
    shard = None
    if config.getoption("conformance_shard"):
        from conformance import shards

        try:
            shard = shards.parse(config.getoption("conformance_shard"))
        except shards.ShardError as exc:
            raise pytest.UsageError(str(exc)) from None
    config.pluginmanager.register(_Session(config, out_dir, profile, shard), "conformance-session")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not config.stash.get(_ACTIVE, False):
        return
    from conformance import recorder, tiers

    # Restore the outer recorder (pytester runs pytest inside pytest).
    recorder.install(config.stash.get(_PREVIOUS, None))
    tiers._ACTIVE = config.stash.get(_TABLE, None)


_ACTIVE = pytest.StashKey[bool]()
_PREVIOUS = pytest.StashKey[Any]()
_TABLE = pytest.StashKey[Any]()
