"""Contracts of the CogVideoX VAE (framework-free): its configuration and presets, input validation and its
error, and the frame-batch and tile plans that the PyTorch reference and the Flax NNX port share."""

from contracts.vae.config import (
    CogVideoXVAEConfig,
    VAEInputError,
    check_float,
    check_sample_size,
    check_video,
    diffusers_test,
    micro,
    tiny2,
    tiny3,
)
from contracts.vae.plans import frame_batches, tile_plan

__all__ = [
    "CogVideoXVAEConfig",
    "VAEInputError",
    "check_float",
    "check_sample_size",
    "check_video",
    "diffusers_test",
    "frame_batches",
    "micro",
    "tile_plan",
    "tiny2",
    "tiny3",
]
