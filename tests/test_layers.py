"""Imports run one way, and the JAX side deploys without PyTorch or SciPy of its own.

Statically: the import-linter contracts of ``pyproject.toml`` (the harness above the twins, the twins above the
contracts, the reference and the port never importing each other; contracts framework-free; no PyTorch or
SciPy on the JAX side but inside the anomaly loaders of exported PyTorch/ONNX artifacts).

Dynamically: a fresh interpreter in which PyTorch and SciPy cannot be imported imports every module of every
JAX-side package, runs the VAE port, and loads a CEM AOT artifact and an anomaly ``.jaxexport`` artifact.
Calling an exported module then needs SciPy for JAX's own CPU LAPACK kernels (jaxlib takes them from
``scipy.linalg.cython_lapack``; SciPy is a dependency of JAX itself), so the test lets SciPy in for the calls
and audits who imports it: nothing of this project imports SciPy or PyTorch. The artifacts' outputs are
checked against the references.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_the_import_linter_contracts_hold() -> None:
    proc = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from importlinter.cli import lint_imports_command; sys.exit(lint_imports_command())",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert proc.stdout.count("KEPT") == 3, proc.stdout


def test_every_runtime_of_the_artifact_table_has_a_loader() -> None:
    from contracts.anomaly.artifacts import RUNTIMES
    from implementations.anomaly import runtimes

    assert set(runtimes._LOADERS) == set(RUNTIMES)


BLOCKED = """
import importlib, json, pkgutil, sys
sys.modules["torch"] = None  # `import torch` raises ImportError
sys.modules["scipy"] = None
import numpy as np

# every module of every JAX-side package (the command-line modules too, but not their __main__ scripts)
import implementations
modules = [
    m.name
    for m in pkgutil.walk_packages(implementations.__path__, "implementations.")
    if not m.name.endswith("__main__")
]
for name in modules:
    importlib.import_module(name)
from implementations.cem import runtime as cem_runtime
from flax import nnx
import implementations.vae
from contracts.vae.config import micro
from implementations.anomaly.runtimes import load

vae = implementations.vae.AutoencoderKLCogVideoX(micro(), rngs=nnx.Rngs(0))
video = np.asarray(vae.decode(np.zeros((1, 3, 4, 4, 4), np.float32)))
anomaly = load("jax-export", sys.argv[1])  # checked against its manifest, deserialized

# From here on SciPy may come in for JAX's own CPU LAPACK kernels (a deserialized module registers them when it
# is compiled or called): each import of SciPy or PyTorch is recorded with the file that asked for it.
del sys.modules["scipy"]
importers = set()


class Audit:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("scipy", "torch"):
            f = sys._getframe(1)
            while f is not None and f.f_code.co_filename.startswith("<frozen"):
                f = f.f_back
            importers.add((name.split(".")[0], f.f_code.co_filename if f else "?"))


sys.meta_path.insert(0, Audit())
pipeline = cem_runtime.load_pipeline(sys.argv[3])  # checked, deserialized and compiled at load
O1, score = anomaly(np.load(sys.argv[2]))
controls = pipeline.predict_controls(np.asarray(pipeline.config.spec.x0, np.float32), 0.0)
print(json.dumps({"modules": len(modules), "video": list(video.shape), "O1": O1.tolist(), "score": score.tolist(),
                  "controls": np.asarray(controls).tolist(), "importers": sorted(importers)}))
"""


def test_the_jax_side_imports_and_runs_without_torch_or_scipy(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the references of the artifacts' outputs
    from contracts.anomaly.config import SMALL
    from contracts.cem.config import CEMConfig
    from implementations.anomaly.export import export
    from implementations.cem import export as cem_export
    from reference.anomaly.checkpoint import save_checkpoint
    from reference.anomaly.model import build, detect
    from reference.cem.weights import write_weights

    model = build(SMALL, seed=0)
    ckpt = save_checkpoint(model, tmp_path / "ckpt")
    artifact = export(ckpt, ("jax",), tmp_path / "out")["jax"]  # written with PyTorch at hand: the JAX side
    W = np.random.default_rng(3).standard_normal((3, 16, 8)).astype(np.float32)
    np.save(tmp_path / "W.npy", W)
    config = CEMConfig(task="pendulum", num_samples=32, num_elites=6, iterations=2)
    weights = write_weights(tmp_path / "cem-weights", config, seed=0, fit_seconds=0.0, policy_hidden=(16, 16))
    cem_artifact = cem_export.export_weights(weights, tmp_path / "cem-artifact")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", BLOCKED, str(artifact), str(tmp_path / "W.npy"), str(cem_artifact)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert out.returncode == 0, out.stderr[-4000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["modules"] >= 25  # the four JAX-side packages, every module
    assert got["video"] == [1, 5, 8, 8, 3]  # 3 latent frames decode to 1 + 2 * 2
    ours = tuple(str(ROOT / d) for d in ("contracts", "reference", "implementations", "conformance"))
    outside = [
        (what, f)
        for what, f in got["importers"]
        if what == "torch" or f.startswith(ours) or not re.search(r"[/\\](scipy|jax|jaxlib)[/\\]", f)
    ]
    assert not outside, f"PyTorch, or SciPy other than for JAX's own LAPACK kernels, was imported: {outside}"
    rO1, rscore = detect(model.eval(), W)
    assert np.abs(np.asarray(got["O1"]) - rO1.numpy()).max() < 1e-4
    assert np.abs(np.asarray(got["score"]) - rscore.numpy()).max() < 1e-4
    controls = np.asarray(got["controls"])
    assert controls.shape[-1] == config.spec.nu and np.all(np.isfinite(controls))
