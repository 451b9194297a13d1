"""PyTorch reference of the CogVideoX VAE (diffusers' `AutoencoderKLCogVideoX` semantics and key names).

Its configuration, presets, input checks and frame/tile plans are the framework-free `contracts.vae`.
"""

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
]
