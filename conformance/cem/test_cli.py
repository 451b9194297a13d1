"""The command lines of the CEM AOT pipeline, run in process: the reference writes the networks' weights
(`python -m reference.cem weights`), the JAX side exports, benchmarks and simulates them (`python -m
implementations.cem export|bench|simulate`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from implementations.cem.__main__ import main
from reference.cem.__main__ import main as reference_main


def test_export_bench_simulate(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    weights, out = tmp_path / "weights", tmp_path / "pendulum"
    assert reference_main(["weights", "--task", "pendulum", "--out", str(weights)]) == 0
    assert main(["export", "--weights", str(weights), "--task", "pendulum", "--out", str(out)]) == 0
    manifest = json.loads((out / "manifest.json").read_text())
    assert set(manifest["files"]) >= {"plan.jax", "config.json", "templates.npz"}
    assert main(["bench", str(out), "--calls", "3", "--json", str(tmp_path / "bench.json")]) == 0
    stats = json.loads((tmp_path / "bench.json").read_text())
    assert stats["total"]["hz"] > 0 and stats["first_over_steady"] > 0
    plot = tmp_path / "sim.png"
    # --duration is simulated plant time, and == 0 is the exit status: no wall-clock time is
    # asserted here (the CLI's speed figures are benchmarks/cem.py's)
    assert main(["simulate", str(out), "--duration", "0.2", "--plot", str(plot)]) == 0
    assert plot.stat().st_size > 0
    text = capsys.readouterr().out
    assert "first call" in text and "CV" in text and "Hz" in text and "compiled at load" in text


def test_bad_artifact_is_exit_status_2_with_the_missing_file_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "art").mkdir()
    (tmp_path / "art" / "manifest.json").write_text("{}")
    assert main(["bench", str(tmp_path / "art")]) == 2
    err = capsys.readouterr().err
    assert "missing files" in err and "plan.jax" in err and "regenerate" in err


def test_export_needs_the_reference_s_weights(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Export without a weights directory (or with another task's) is exit status 2 naming the command that
    writes them; nothing is written."""
    assert main(["export", "--weights", str(tmp_path), "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert "no weights.json" in err and "python -m reference.cem weights" in err
    assert reference_main(["weights", "--task", "cartpole", "--out", str(tmp_path / "w")]) == 0
    args = ["export", "--weights", str(tmp_path / "w"), "--task", "pendulum", "--out", str(tmp_path / "out")]
    assert main(args) == 2
    assert "are for 'cartpole'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
