"""The pytest plugin is installed into every session of an environment that has the package; outside parity
sessions it must import nothing heavy and change no global configuration."""

from __future__ import annotations

import os
import subprocess
import sys

PROBE = """
import sys


def test_probe(pytestconfig):
    assert pytestconfig.pluginmanager.hasplugin("conformance"), "the entry-point plugin is loaded"
    heavy = [m for m in ("numpy", "jax", "torch", "scipy", "conformance.parity", "conformance.recorder") if m in sys.modules]
    from hypothesis import settings

    print("PROBE", "heavy=" + ",".join(heavy), "profile=" + str(settings._current_profile))
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


def test_an_unrelated_session_stays_quiet(tmp_path) -> None:
    line = _run(tmp_path)
    assert "heavy= " in line + " " and "profile=ci" not in line, line


def test_a_parity_session_is_configured(tmp_path) -> None:
    line = _run(tmp_path, f"--conformance-report={tmp_path / 'report'}")
    assert "jax" in line and "profile=ci" in line, line
