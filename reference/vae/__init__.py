"""PyTorch reference of the CogVideoX VAE (diffusers' `AutoencoderKLCogVideoX` semantics and key names)."""

from reference.vae.config import CogVideoXVAEConfig, VAEInputError, diffusers_test, micro, tiny2, tiny3
from reference.vae.layers import (
    CogVideoXCausalConv3d,
    CogVideoXDownBlock3D,
    CogVideoXDownsample3D,
    CogVideoXMidBlock3D,
    CogVideoXResnetBlock3D,
    CogVideoXSafeConv3d,
    CogVideoXSpatialNorm3D,
    CogVideoXUpBlock3D,
    CogVideoXUpsample3D,
)
from reference.vae.model import (
    AutoencoderKLCogVideoX,
    CogVideoXDecoder3D,
    CogVideoXEncoder3D,
    frame_batches,
    tile_plan,
)

__all__ = [
    "AutoencoderKLCogVideoX",
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
    "CogVideoXVAEConfig",
    "VAEInputError",
    "diffusers_test",
    "frame_batches",
    "micro",
    "tile_plan",
    "tiny2",
    "tiny3",
]
