"""Contract of the CogVideoX VAE's work plans: diffusers' frame batches and tile grid, computed the same way
(with the same float -> int truncations) by the PyTorch reference and the Flax NNX port."""

from __future__ import annotations

from contracts.vae.config import CogVideoXVAEConfig


def frame_batches(num_frames: int, frame_batch_size: int) -> list[tuple[int, int]]:
    """diffusers' frame batches: ``max(T // fb, 1)`` batches, the first absorbing the remainder ``T % fb``."""
    num_batches = max(num_frames // frame_batch_size, 1)
    rem = num_frames % frame_batch_size
    return [
        (frame_batch_size * i + (0 if i == 0 else rem), min(frame_batch_size * (i + 1) + rem, num_frames))
        for i in range(num_batches)
    ]


def tile_plan(config: CogVideoXVAEConfig, *, decode: bool) -> dict[str, int]:
    """Tile sizes, strides, blend extents and crops with diffusers' float -> int() truncations."""
    sample_h, sample_w = config.sample_height // 2, config.sample_width // 2
    latent_h = int(sample_h / (2 ** (len(config.block_out_channels) - 1)))
    latent_w = int(sample_w / (2 ** (len(config.block_out_channels) - 1)))
    fh, fw = 1 / 6, 1 / 5
    if decode:
        tile_h, tile_w, out_h, out_w = latent_h, latent_w, sample_h, sample_w
    else:
        tile_h, tile_w, out_h, out_w = sample_h, sample_w, latent_h, latent_w
    blend_h, blend_w = int(out_h * fh), int(out_w * fw)
    return {
        "tile_h": tile_h,
        "tile_w": tile_w,
        "stride_h": int(tile_h * (1 - fh)),
        "stride_w": int(tile_w * (1 - fw)),
        "blend_h": blend_h,
        "blend_w": blend_w,
        "crop_h": out_h - blend_h,
        "crop_w": out_w - blend_w,
    }
