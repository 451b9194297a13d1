"""Flax NNX port of the CogVideoX VAE (twins of `reference.vae`), weight conversion and batch sharding."""

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
