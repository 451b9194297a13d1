"""Reference side of the anomaly detector's checkpoints: safetensors weights plus a JSON config, written from and
loaded into the PyTorch model.

Loading is strict: every missing, unexpected or mis-shaped tensor is named in the error
(`contracts.common.state_dict_mismatch`), and nothing is dropped silently (the original loaded into a lazily
built model with ``strict=False`` and exported random weights). No pickle anywhere; the parameter checksum
(`contracts.common.parameter_checksum`) goes into the weights' metadata and every export manifest.
"""

from __future__ import annotations

from pathlib import Path

import torch

from contracts.anomaly.config import AnomalyConfig, ConfigError
from contracts.common import parameter_checksum, spec_of, state_dict_mismatch, write_bytes
from reference.anomaly.model import AnomalyDetector, build

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or does not match its config (the tensors are named)."""


def state_dict(model: AnomalyDetector) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(model: AnomalyDetector, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically); return the directory."""
    from safetensors.torch import save

    directory = Path(directory)
    sd = state_dict(model)
    meta = {"checksum": parameter_checksum(sd), "format": "parity-suite anomaly detector"}
    write_bytes(directory / WEIGHTS, save(sd, metadata=meta))
    model.cfg.save(directory / CONFIG)
    return directory


def read_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    """The tensors of a safetensors file; `CheckpointError` if it is missing or not a safetensors file."""
    from safetensors import SafetensorError
    from safetensors.torch import load

    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no weights file at {path}") from None
    try:
        return load(data)
    except (SafetensorError, ValueError, RuntimeError) as e:
        raise CheckpointError(
            f"{path} is not a readable safetensors file (corrupt or truncated?): {e}"
        ) from None


def check_state(expected: dict[str, torch.Tensor], found: dict[str, torch.Tensor], where: str) -> None:
    """Raise `CheckpointError` naming every missing, unexpected, mis-shaped or mis-typed tensor."""
    mismatch = state_dict_mismatch({k: spec_of(v) for k, v in expected.items()}, found)
    if mismatch:
        raise CheckpointError(mismatch.message(where))


def load_config(directory: str | Path) -> AnomalyConfig:
    directory = Path(directory)
    if not directory.is_dir():
        raise CheckpointError(
            f"a checkpoint is a directory holding {WEIGHTS} and {CONFIG}; {directory} is not one"
        )
    try:
        return AnomalyConfig.load(directory / CONFIG)
    except ConfigError as e:
        raise CheckpointError(f"bad checkpoint config in {directory}: {e}") from None


def load_checkpoint(directory: str | Path) -> AnomalyDetector:
    """The detector stored in ``directory``, built eagerly from its config and loaded strictly, in eval mode."""
    directory = Path(directory)
    cfg = load_config(directory)
    tensors = read_tensors(directory / WEIGHTS)
    model = build(cfg)
    check_state(state_dict(model), tensors, f"checkpoint {directory}")
    result = model.load_state_dict(tensors, strict=True)
    assert not result.missing_keys and not result.unexpected_keys  # check_state already named them
    return model.eval()
