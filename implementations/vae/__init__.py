"""Implementation of the CogVideoX VAE: the Flax NNX port (twins of `reference.vae`), weight conversion from
PyTorch-layout state dicts (NumPy arrays or safetensors) and batch sharding.

Imports only `contracts` (configuration, input checks, frame/tile plans) besides JAX, Flax, NumPy and
safetensors: never PyTorch or SciPy.
"""

from implementations.vae.convert import (
    CheckpointError,
    from_torch_state_dict,
    load_torch_weights,
    to_torch_state_dict,
)
from implementations.vae.layers import (
    CogVideoXCausalConv3d,
    CogVideoXDownBlock3D,
    CogVideoXDownsample3D,
    CogVideoXMidBlock3D,
    CogVideoXResnetBlock3D,
    CogVideoXSafeConv3d,
    CogVideoXSpatialNorm3D,
    CogVideoXUpBlock3D,
    CogVideoXUpsample3D,
    GroupNorm,
    group_norm,
)
from implementations.vae.model import (
    AutoencoderKLCogVideoX,
    CogVideoXDecoder3D,
    CogVideoXEncoder3D,
    apply_module,
)

__all__ = [
    "AutoencoderKLCogVideoX",
    "CheckpointError",
    "CogVideoXCausalConv3d",
    "CogVideoXDecoder3D",
    "CogVideoXDownBlock3D",
    "CogVideoXDownsample3D",
    "CogVideoXEncoder3D",
    "CogVideoXMidBlock3D",
    "CogVideoXResnetBlock3D",
    "CogVideoXSafeConv3d",
    "CogVideoXSpatialNorm3D",
    "CogVideoXUpBlock3D",
    "CogVideoXUpsample3D",
    "GroupNorm",
    "apply_module",
    "from_torch_state_dict",
    "group_norm",
    "load_torch_weights",
    "to_torch_state_dict",
]
