"""The harness as a package: an external project (examples/numpy_port) adds its own subsystem through entry
points, without editing this package, and runs ``python -m conformance run`` on it in a fresh virtual
environment. Its report holds its cells, and an injected bug turns its gate red."""

from __future__ import annotations

import shutil
import site
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from conformance import report

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "numpy_port"


def _sh(cmd: list[str], cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False)


@pytest.fixture(scope="module")
def venv(tmp_path_factory) -> tuple[Path, Path]:
    """A fresh venv that sees this environment's packages (parity-suite, JAX) through a .pth file, with a copy
    of the example installed into it (editable, no dependencies fetched)."""
    tmp = tmp_path_factory.mktemp("external")
    project = tmp / "numpy_port"
    shutil.copytree(EXAMPLE, project, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "build"))
    env_dir = tmp / "venv"
    made = _sh([sys.executable, "-m", "venv", "--without-pip", str(env_dir)], tmp)
    assert made.returncode == 0, made.stderr
    python = env_dir / "bin" / "python"
    purelib = Path(
        _sh(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp
        ).stdout.strip()
    )
    ours = [sysconfig.get_paths()["purelib"], *site.getsitepackages()]
    # addsitedir (not a bare path) so that the .pth files there, the suite's editable install among them, run
    lines = [f"import site; site.addsitedir({d!r})" for d in dict.fromkeys(ours)]
    (purelib / "parity_suite_env.pth").write_text("\n".join(lines) + "\n")
    pip = _sh(
        [str(python), "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "-e", str(project)],
        tmp,
    )
    assert pip.returncode == 0, pip.stdout + pip.stderr
    return python, project


def _run(python: Path, project: Path, out: Path) -> subprocess.CompletedProcess:
    return _sh(
        [str(python), "-m", "conformance", "run", "--subsystem", "npport", "--out", str(out), "-n", "0"],
        project,
    )


def test_the_external_subsystem_is_discovered_and_its_gate_passes(venv) -> None:
    python, project = venv
    listed = _sh([str(python), "-m", "conformance", "list", "--subsystem", "npport"], project)
    assert listed.returncode == 0 and "npport.softplus" in listed.stdout and "npport-vmap" in listed.stdout
    run = _run(python, project, project / "report")
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-4000:]
    doc = report.load(project / "report")
    cells = {(c["case"], c["backend"], c["dtype"]): c for c in doc["cases"]}
    assert set(cells) == {
        ("npport.softplus", "jax-jit", "float64"),
        ("npport.softplus", "jax-jit", "float32"),
        ("npport.softplus", "jax-eager", "float32"),
        ("npport.softplus", "npport-vmap", "float32"),
        ("npport.logsumexp", "jax-jit", "float64"),
        ("npport.logsumexp", "jax-jit", "float32"),
    }
    assert all(c["status"] == "pass" and c["examples"] >= 1 for c in cells.values())
    assert doc["summary"]["tests"]["passed"] >= 7  # six parity cells and the project's own property test


def test_an_injected_bug_fails_the_external_gate(venv) -> None:
    python, project = venv
    impl = project / "npport" / "implementation.py"
    good = impl.read_text()
    impl.write_text(good.replace("jnp.logaddexp(0.0, x)", "jnp.log1p(jnp.exp(x))"))  # overflows for large x
    try:
        run = _run(python, project, project / "report-bug")
    finally:
        impl.write_text(good)
    assert run.returncode == 1, run.stdout[-3000:]
    doc = report.load(project / "report-bug")
    failed = {(c["case"], c["backend"]) for c in doc["cases"] if c["status"] == "fail"}
    assert ("npport.softplus", "jax-jit") in failed and not any(c == "npport.logsumexp" for c, _ in failed)
