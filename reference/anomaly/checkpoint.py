"""Checkpoints of the anomaly detector (reference side): safetensors weights plus a JSON config.

Loading is strict: every missing, unexpected or mis-shaped tensor is named in the error, and nothing is
dropped silently (the original loaded into a lazily built model with ``strict=False`` and exported random
weights: D1). No pickle anywhere; the parameter checksum goes into every export manifest.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import torch

from reference.anomaly._io import atomic_write_bytes
from reference.anomaly.config import AnomalyConfig, ConfigError
from reference.anomaly.model import AnomalyDetector, build

WEIGHTS = "model.safetensors"
CONFIG = "config.json"


class CheckpointError(ValueError):
    """A checkpoint that is missing, unreadable, or does not match its config (the tensors are named)."""


def parameter_checksum(state: dict[str, object]) -> str:
    """SHA-256 over the sorted tensor names, dtypes, shapes and bytes (torch tensors or NumPy arrays)."""
    h = hashlib.sha256()
    for name in sorted(state):
        v = state[name]
        a = v.detach().cpu().contiguous().numpy() if isinstance(v, torch.Tensor) else np.ascontiguousarray(v)
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes())
    return h.hexdigest()


def state_dict(model: AnomalyDetector) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}


def save_checkpoint(model: AnomalyDetector, directory: str | Path) -> Path:
    """Write ``model.safetensors`` and ``config.json`` into ``directory`` (atomically); return the directory."""
    from safetensors.torch import save

    directory = Path(directory)
    sd = state_dict(model)
    meta = {"checksum": parameter_checksum(sd), "format": "parity-suite anomaly detector"}
    atomic_write_bytes(directory / WEIGHTS, save(sd, metadata=meta))
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
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    misshaped = [
        f"{k}: checkpoint {tuple(found[k].shape)} {str(found[k].dtype).replace('torch.', '')}, "
        f"model {tuple(expected[k].shape)} {str(expected[k].dtype).replace('torch.', '')}"
        for k in sorted(set(expected) & set(found))
        if tuple(found[k].shape) != tuple(expected[k].shape) or found[k].dtype != expected[k].dtype
    ]
    if missing or unexpected or misshaped:
        parts = [f"{where} does not match its config:"]
        if missing:
            parts.append(f"  missing tensors ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            parts.append(f"  unexpected tensors ({len(unexpected)}): {', '.join(unexpected)}")
        if misshaped:
            parts.append(f"  mis-shaped tensors ({len(misshaped)}): " + "; ".join(misshaped))
        raise CheckpointError("\n".join(parts))


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
