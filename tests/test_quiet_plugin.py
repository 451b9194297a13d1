"""The pytest plugin is installed into every session of an environment that has the package; outside parity
sessions it must import nothing heavy and change no global configuration."""

from __future__ import annotations

import os
import subprocess
import sys

from conformance.profiles import PROFILES

PROBE = """
import sys


def test_probe(pytestconfig):
    loaded = pytestconfig.pluginmanager.hasplugin("conformance")
    heavy = [m for m in ("numpy", "jax", "torch", "scipy", "conformance.parity", "conformance.recorder") if m in sys.modules]
    from hypothesis import settings

    active = settings.default
    print(
        "PROBE",
        "plugin=" + str(loaded),
        "heavy=" + ",".join(heavy),
        "profile=" + str(settings._current_profile),
        "max_examples=" + str(active.max_examples),
        "derandomize=" + str(active.derandomize),
    )
"""


def _run(tmp_path, *args: str) -> str:
    (tmp_path / "test_probe.py").write_text(PROBE)
    env = {k: v for k, v in os.environ.items() if k != "CONFORMANCE_PROFILE"}
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-q",
            "-s",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:xdist",
            *args,
            "test_probe.py",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return next(line for line in proc.stdout.splitlines() if line.startswith("PROBE"))


def _settings_part(line: str) -> str:
    return line.split("heavy=", 1)[1].split(" ", 1)[1]


def test_an_unrelated_session_stays_quiet(tmp_path) -> None:
    line = _run(tmp_path)
    assert "plugin=True" in line and "heavy= " in line, line
    # Hypothesis itself picks its built-in profile named "ci" where a CI environment variable is set, so the
    # profile in force must be compared with a session that has the plugin switched off, not with a name.
    without = _run(tmp_path, "-p", "no:conformance")
    assert "plugin=False" in without, without
    assert _settings_part(line) == _settings_part(without), (line, without)


def test_a_parity_session_is_configured(tmp_path) -> None:
    line = _run(tmp_path, f"--conformance-report={tmp_path / 'report'}")
    assert "plugin=True" in line and "jax" in line, line
    assert (
        "profile=ci" in line
        and f"max_examples={PROFILES['ci']['max_examples']}" in line
        and "derandomize=True" in line
    ), line
