"""JAX side of the CEM networks (twin of `reference.cem.networks`): converting the PyTorch MLPs' safetensors
checkpoints to JAX arrays, checking every tensor's name, shape and dtype against the architecture.

A checkpoint with missing, unexpected or mis-shaped tensors is refused with a `WeightsError` that lists
them all by name (nothing is dropped or reshaped silently). The layout stays PyTorch's (``weight`` is
(out, in)); `implementations.cem.tasks.mlp` computes ``x W^T + b`` like the reference.
"""

from __future__ import annotations

import itertools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from reference.cem.config import CEMConfig, CEMInputError


class WeightsError(CEMInputError):
    """A checkpoint that does not match the architecture (names, shapes, dtypes) or cannot be read."""


def expected_shapes(sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """``layers.{i}.weight`` (out, in) and ``layers.{i}.bias`` (out,) of a tanh MLP with layer ``sizes``."""
    out: dict[str, tuple[int, ...]] = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        out[f"layers.{i}.weight"] = (b, a)
        out[f"layers.{i}.bias"] = (b,)
    return out


def dynamics_sizes(hidden: Sequence[int] = (128, 128)) -> list[int]:
    return [4, *hidden, 2]


def policy_sizes(config: CEMConfig, hidden: Sequence[int] = (64, 64)) -> list[int]:
    return [config.spec.nx, *hidden, config.num_knots * config.spec.nu]


def check_weights(
    tensors: Mapping[str, np.ndarray], sizes: Sequence[int], *, source: str = "weights"
) -> None:
    want = expected_shapes(sizes)
    missing = sorted(set(want) - set(tensors))
    unexpected = sorted(set(tensors) - set(want))
    misshaped = [
        f"{k}: expected {want[k]}, got {tuple(np.shape(tensors[k]))}"
        for k in sorted(set(want) & set(tensors))
        if tuple(np.shape(tensors[k])) != want[k]
    ]
    wrong_dtype = [
        f"{k}: {np.asarray(tensors[k]).dtype}"
        for k in sorted(set(want) & set(tensors))
        if np.asarray(tensors[k]).dtype != np.float32
    ]
    problems = []
    if missing:
        problems.append(f"missing tensors {missing}")
    if unexpected:
        problems.append(f"unexpected tensors {unexpected}")
    if misshaped:
        problems.append(f"mis-shaped tensors [{'; '.join(misshaped)}]")
    if wrong_dtype:
        problems.append(f"tensors not float32 [{'; '.join(wrong_dtype)}]")
    if problems:
        raise WeightsError(f"{source} does not match the MLP {list(sizes)}: " + "; ".join(problems))
    bad = [k for k, v in tensors.items() if not np.isfinite(v).all()]
    if bad:
        raise WeightsError(f"{source}: non-finite values in {sorted(bad)}")


def load_weights(path: str | Path, sizes: Sequence[int]) -> dict[str, np.ndarray]:
    """Read a safetensors checkpoint (no pickle), check it against the MLP ``sizes``, return NumPy arrays
    (float32, PyTorch layout) ready to be passed to the JAX functions or baked into an export."""
    from safetensors import SafetensorError
    from safetensors.numpy import load_file

    path = Path(path)
    if not path.is_file():
        raise WeightsError(f"checkpoint {path} does not exist")
    try:
        tensors = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as e:
        raise WeightsError(f"checkpoint {path} cannot be read as safetensors: {e}") from e
    check_weights(tensors, sizes, source=str(path))
    return {k: np.ascontiguousarray(v) for k, v in tensors.items()}
