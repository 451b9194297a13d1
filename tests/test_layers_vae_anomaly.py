"""Imports of the vae and anomaly subsystems run one way: `contracts` <- `reference`, `contracts` <-
`implementations`, and the harness above both.

Statically (every import statement of the packages, at any depth): `reference.<sub>` and `implementations.<sub>`
never import each other nor `conformance`; `contracts.<sub>` imports no framework; `implementations.vae`
never imports PyTorch or SciPy, and `implementations.anomaly` imports PyTorch and ONNX only inside functions of
its artifact runtimes. Dynamically: an interpreter where PyTorch and SciPy cannot be imported imports both JAX
sides, runs the VAE port, and loads a ``.jaxexport`` artifact of the anomaly port; calling it then needs SciPy
for JAX's own CPU LAPACK kernels only (jaxlib takes them from ``scipy.linalg.cython_lapack``), which the test
lets in and audits: nothing of this project imports SciPy or PyTorch.
"""

from __future__ import annotations

import ast
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
SUBSYSTEMS = ("vae", "anomaly")
FRAMEWORKS = ("torch", "scipy", "jax", "jaxlib", "flax", "onnx", "onnxruntime", "onnxscript")


def imports(package: str) -> list[tuple[Path, int, str, bool]]:
    """(file, line, top-level-qualified module, at module level?) of every import in ``package``'s files."""
    out = []
    for path in sorted((ROOT / package.replace(".", "/")).glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        top_level = {id(n) for n in tree.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                out.append((path.relative_to(ROOT), node.lineno, name, id(node) in top_level))
    return out


def _root(module: str) -> str:
    return module.split(".", maxsplit=1)[0]


@pytest.mark.parametrize("sub", SUBSYSTEMS)
def test_reference_and_implementation_import_neither_each_other_nor_the_harness(sub: str) -> None:
    for side, other in (("reference", "implementations"), ("implementations", "reference")):
        bad = [
            f"{p}:{line}: {m}"
            for p, line, m, _ in imports(f"{side}.{sub}")
            if _root(m) in (other, "conformance")
        ]
        assert not bad, f"{side}.{sub} imports across the layers:\n" + "\n".join(bad)


@pytest.mark.parametrize("sub", SUBSYSTEMS)
def test_contracts_are_framework_free(sub: str) -> None:
    found = imports(f"contracts.{sub}")
    assert found, f"contracts/{sub} has modules"
    bad = [
        f"{p}:{line}: {m}"
        for p, line, m, _ in found
        if _root(m) in (*FRAMEWORKS, "reference", "implementations", "conformance")
    ]
    assert not bad, "\n".join(bad)


def test_the_vae_port_never_imports_torch_or_scipy() -> None:
    bad = [
        f"{p}:{line}: {m}"
        for p, line, m, _ in imports("implementations.vae")
        if _root(m) in ("torch", "scipy")
    ]
    assert not bad, "\n".join(bad)


def test_the_anomaly_port_imports_torch_and_onnx_only_lazily_in_the_runtimes() -> None:
    bad = [
        f"{p}:{line}: {m}"
        for p, line, m, top in imports("implementations.anomaly")
        if _root(m) in ("torch", "scipy", "onnx", "onnxruntime", "onnxscript")
        and (top or p.name != "runtimes.py" or _root(m) == "scipy")
    ]
    assert not bad, "\n".join(bad)


def test_every_runtime_of_the_artifact_table_has_a_loader() -> None:
    from contracts.anomaly.artifacts import RUNTIMES
    from implementations.anomaly import runtimes

    assert set(runtimes._LOADERS) == set(RUNTIMES)


TORCHLESS = """
import json, sys
sys.modules["torch"] = None  # `import torch` raises ImportError
sys.modules["scipy"] = None
import numpy as np
from flax import nnx
import implementations.vae, implementations.anomaly
from contracts.vae.config import micro
from implementations.anomaly.runtimes import load

vae = implementations.vae.AutoencoderKLCogVideoX(micro(), rngs=nnx.Rngs(0))
video = np.asarray(vae.decode(np.zeros((1, 3, 4, 4, 4), np.float32)))
runtime = load("jax-export", sys.argv[1])  # checked against its manifest, deserialized

# Calling an exported module on the CPU makes jaxlib register its LAPACK kernels, which it takes from
# scipy.linalg.cython_lapack (SciPy is a dependency of JAX itself): SciPy is let in from here on, and each
# import of SciPy or PyTorch is recorded with the file that asked for it.
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
O1, score = runtime(np.load(sys.argv[2]))
print(json.dumps({"video": list(video.shape), "O1": O1.tolist(), "score": score.tolist(),
                  "importers": sorted(importers)}))
"""


def test_the_jax_sides_import_and_run_without_torch_or_scipy(tmp_path: Path) -> None:
    pytest.importorskip("torch")  # the reference of the artifact's outputs
    from contracts.anomaly.config import SMALL
    from implementations.anomaly.export import export
    from reference.anomaly.checkpoint import save_checkpoint
    from reference.anomaly.model import build, detect

    model = build(SMALL, seed=0)
    ckpt = save_checkpoint(model, tmp_path / "ckpt")
    artifact = export(ckpt, ("jax",), tmp_path / "out")["jax"]  # written with PyTorch at hand: the JAX side
    W = np.random.default_rng(3).standard_normal((3, 16, 8)).astype(np.float32)
    np.save(tmp_path / "W.npy", W)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", TORCHLESS, str(artifact), str(tmp_path / "W.npy")],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["video"] == [1, 5, 8, 8, 3]  # 3 latent frames decode to 1 + 2 * 2
    outside = [
        (what, f)
        for what, f in got["importers"]
        if what == "torch" or not re.search(r"[/\\](scipy|jax|jaxlib)[/\\]", f) or f.startswith(str(ROOT))
    ]
    assert not outside, f"PyTorch, or SciPy other than for JAX's own LAPACK kernels, was imported: {outside}"
    rO1, rscore = detect(model.eval(), W)
    assert np.abs(np.asarray(got["O1"]) - rO1.numpy()).max() < 1e-4
    assert np.abs(np.asarray(got["score"]) - rscore.numpy()).max() < 1e-4
