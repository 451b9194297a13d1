"""JAX side of the CEM networks (twin of `reference.cem.networks`): converting the PyTorch MLPs' safetensors
checkpoints to arrays for JAX, checking every tensor's name, shape and dtype against the architecture of
`contracts.cem.networks`.

A checkpoint with missing, unexpected or mis-shaped tensors is refused with a `WeightsError` that lists
them all by name (`contracts.common.state_dict_mismatch`: nothing is dropped or reshaped silently). The
layout stays PyTorch's (``weight`` is (out, in)); `implementations.cem.tasks.mlp` computes ``x W^T + b`` like
the reference. Reading needs ``safetensors`` (NumPy flavour), not PyTorch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np

from contracts.cem.networks import WeightsError, dynamics_sizes, expected_tensors, policy_sizes
from contracts.common import state_dict_mismatch

__all__ = [
    "WeightsError",
    "check_weights",
    "dynamics_sizes",
    "expected_shapes",
    "load_weights",
    "policy_sizes",
]


def expected_shapes(sizes: Sequence[int]) -> dict[str, tuple[int, ...]]:
    """``layers.{i}.weight`` (out, in) and ``layers.{i}.bias`` (out,) of a tanh MLP with layer ``sizes``."""
    return {name: shape for name, (shape, _) in expected_tensors(sizes).items()}


def check_weights(
    tensors: Mapping[str, np.ndarray], sizes: Sequence[int], *, source: str = "weights"
) -> None:
    """Every tensor of the MLP ``sizes`` there, float32 and of its shape, none unexpected, all finite."""
    mismatch = state_dict_mismatch(expected_tensors(sizes), tensors)
    if mismatch is not None:
        raise WeightsError(mismatch.message(f"{source} (MLP {list(sizes)})"))
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
