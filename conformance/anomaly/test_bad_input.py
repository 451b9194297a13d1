"""Bad input: every public entry point of the anomaly subsystem fails with a clear, specific error.

Windows with the wrong rank, L, D or dtype, or with NaN/Inf, for the reference, the JAX port and every
runtime; corrupt or truncated artifacts (.onnx, .pt2, .ts, .jaxexport); checkpoints that do not match their
config (missing, unexpected, mis-shaped tensors, named), corrupt weights, bad configs; no pickle anywhere.
"""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file, save_file

from conformance.anomaly.cases import ARTIFACT_BACKENDS as BACKENDS
from conformance.anomaly.conftest import windows
from contracts.anomaly.artifacts import RUNTIMES, manifest_path
from contracts.anomaly.inputs import InputError
from implementations.anomaly import convert
from implementations.anomaly.runtimes import ArtifactError, load
from reference.anomaly.checkpoint import CheckpointError, load_checkpoint
from reference.anomaly.model import detect as ref_detect

GOOD = windows(2, 0)
BAD = {
    "wrong-L": (windows(2, 0, L=32), r"L=16 steps and D=8 variates; got shape \(2, 32, 8\)"),
    "wrong-D": (windows(2, 0, D=9), r"got shape \(2, 16, 9\)"),
    "rank-2": (GOOD[0], r"rank 2"),
    "float64": (GOOD.astype(np.float64), r"float32 windows; got dtype float64"),
    "nan": (np.where(GOOD > 1.5, np.nan, GOOD).astype(np.float32), r"NaN or Inf"),
    "inf": (np.where(GOOD > 1.5, np.inf, GOOD).astype(np.float32), r"NaN or Inf"),
    "empty-batch": (GOOD[:0], r"at least one window"),
}


@pytest.mark.parametrize("bad", sorted(BAD))
@pytest.mark.parametrize("side", ["reference", "port", *BACKENDS])
def test_bad_windows(side: str, bad: str, ref_model, port, runtime) -> None:
    fn = {"reference": lambda x: ref_detect(ref_model, x), "port": port}.get(side) or runtime(side)
    W, message = BAD[bad]
    with pytest.raises(InputError, match=message):
        fn(W)


def test_reference_accepts_torch_tensors_and_checks_them(ref_model) -> None:
    with pytest.raises(InputError, match="float32"):
        ref_detect(ref_model, torch.zeros(1, 16, 8, dtype=torch.float64))
    O1, _ = ref_detect(ref_model, torch.from_numpy(GOOD))
    assert O1.shape == (2, 16, 8)


def _copy_artifact(src: Path, dst_dir: Path) -> Path:
    dst = dst_dir / src.name
    shutil.copy(src, dst)
    shutil.copy(manifest_path(src), manifest_path(dst))
    return dst


@pytest.mark.parametrize("backend, fmt", [(rt.name, rt.format) for rt in RUNTIMES.values()])
def test_corrupt_artifacts(backend: str, fmt: str, artifact, tmp_path: Path) -> None:
    path = _copy_artifact(artifact(fmt), tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])  # truncated
    with pytest.raises(ArtifactError, match="does not match its manifest"):
        load(backend, path)
    with pytest.raises(ArtifactError, match=r"not a|cannot load"):
        load(backend, path, verify=False)
    path.write_bytes(b"\x00garbage" * 64)
    with pytest.raises(ArtifactError):
        load(backend, path, verify=False)


def test_missing_manifest_and_wrong_format(artifact, tmp_path: Path) -> None:
    path = _copy_artifact(artifact("onnx"), tmp_path)
    with pytest.raises(ArtifactError, match="'onnx' artifact according to its manifest, not 'pt2'"):
        load("torch-export", path)
    manifest_path(path).unlink()
    with pytest.raises(ArtifactError, match="no manifest"):
        load("onnxruntime", path)
    with pytest.raises(ArtifactError, match="no artifact file"):
        load("onnxruntime", tmp_path / "absent.onnx")
    with pytest.raises(ArtifactError, match="unknown runtime"):
        load("tensorflow", path)


def _ckpt_copy(ckpt: Path, tmp_path: Path) -> Path:
    dst = tmp_path / "ckpt"
    shutil.copytree(ckpt, dst)
    return dst


LOADERS = {"reference": load_checkpoint, "port": convert.load_checkpoint}
ERRORS = {"reference": CheckpointError, "port": convert.CheckpointError}


@pytest.mark.parametrize("side", sorted(LOADERS))
def test_checkpoint_that_does_not_match_its_config(side: str, ckpt: Path, tmp_path: Path) -> None:
    d = _ckpt_copy(ckpt, tmp_path)
    cfg = json.loads((d / "config.json").read_text())
    (d / "config.json").write_text(json.dumps({**cfg, "d_model": 64, "n_heads": 4}))
    with pytest.raises(
        ERRORS[side], match=r"mis-shaped tensors .*encoder\.embed\.weight: checkpoint \(32, 16\)"
    ):
        LOADERS[side](d)


@pytest.mark.parametrize("side", sorted(LOADERS))
def test_missing_and_unexpected_tensors_are_named(side: str, ckpt: Path, tmp_path: Path) -> None:
    d = _ckpt_copy(ckpt, tmp_path)
    tensors = load_file(d / "model.safetensors")
    del tensors["dec1.out.weight"]
    tensors["dec1.extra.weight"] = torch.zeros(2)
    save_file(tensors, d / "model.safetensors")
    with pytest.raises(ERRORS[side]) as info:
        LOADERS[side](d)
    msg = str(info.value)
    assert re.search(r"missing tensors \(1\): dec1\.out\.weight", msg), msg
    assert re.search(r"unexpected tensors \(1\): dec1\.extra\.weight", msg), msg


@pytest.mark.parametrize("side", sorted(LOADERS))
def test_corrupt_weights_and_bad_configs(side: str, ckpt: Path, tmp_path: Path) -> None:
    d = _ckpt_copy(ckpt, tmp_path)
    (d / "model.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(ERRORS[side], match="safetensors"):
        LOADERS[side](d)
    d = _ckpt_copy(ckpt, tmp_path / "b")
    cfg = json.loads((d / "config.json").read_text())
    for bad, message in [
        ({**cfg, "decoder": "lstm"}, "unknown decoder"),
        ({**cfg, "foo": 1}, "unknown config field"),
        ({**cfg, "version": 99}, "version 99"),
        ({**cfg, "L": 0}, "positive integer"),
    ]:
        (d / "config.json").write_text(json.dumps(bad))
        with pytest.raises(ERRORS[side], match=message):
            LOADERS[side](d)
    (d / "config.json").write_text("{")
    with pytest.raises(ERRORS[side], match="not valid JSON"):
        LOADERS[side](d)
    with pytest.raises(ERRORS[side], match="is not one"):
        LOADERS[side](tmp_path / "absent")


def test_no_pickle_and_torch_load_only_with_weights_only() -> None:
    root = Path(__file__).resolve().parents[2]
    sources = [
        *(root / "reference/anomaly").glob("*.py"),
        *(root / "implementations/anomaly").glob("*.py"),
        *(root / "contracts/anomaly").glob("*.py"),
    ]
    assert sources
    for src in sources:
        text = src.read_text()
        assert not re.search(r"^\s*import pickle|^\s*from pickle|allow_pickle=True", text, re.M), src
        for call in re.findall(r"torch\.load\([^)]*\)", text):
            assert "weights_only=True" in call, (src, call)
