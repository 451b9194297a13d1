"""Contract of the CogVideoX VAE's configuration and input validation (NumPy and the standard library only).

`CogVideoXVAEConfig` (diffusers' `AutoencoderKLCogVideoX` config field names) and the small test presets,
`VAEInputError`, and the host-side checks both twins run on their public entry points: the layout and rank of
a video (channel-first in the PyTorch reference `reference.vae`, channel-last in the Flax NNX port
`implementations.vae`), the supported frame counts and spatial sizes, and floating-point dtypes.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np


class VAEInputError(ValueError):
    """A VAE entry point got an input it does not support (shape, layout, frame count, channels, dtype)."""


@dataclasses.dataclass(frozen=True)
class CogVideoXVAEConfig:
    in_channels: int = 3
    out_channels: int = 3
    down_block_types: tuple[str, ...] = ("CogVideoXDownBlock3D",) * 4
    up_block_types: tuple[str, ...] = ("CogVideoXUpBlock3D",) * 4
    block_out_channels: tuple[int, ...] = (128, 256, 256, 512)
    latent_channels: int = 16
    layers_per_block: int = 3
    act_fn: str = "silu"
    norm_eps: float = 1e-6
    norm_num_groups: int = 32
    temporal_compression_ratio: float = 4
    sample_height: int = 480
    sample_width: int = 720
    scaling_factor: float = 1.15258426
    shift_factor: float | None = None
    latents_mean: tuple[float, ...] | None = None
    latents_std: tuple[float, ...] | None = None
    force_upcast: bool = True
    use_quant_conv: bool = False
    use_post_quant_conv: bool = False
    invert_scale_latents: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "block_out_channels", tuple(int(c) for c in self.block_out_channels))
        object.__setattr__(self, "down_block_types", tuple(self.down_block_types))
        object.__setattr__(self, "up_block_types", tuple(self.up_block_types))
        g = self.norm_num_groups
        bad = [c for c in self.block_out_channels if c % g]
        if bad:
            raise VAEInputError(
                f"block_out_channels {self.block_out_channels}: {bad} not divisible by norm_num_groups={g} "
                "(GroupNorm needs every channel count divisible by the group count)"
            )
        if len(self.down_block_types) != len(self.block_out_channels) or len(self.up_block_types) != len(
            self.block_out_channels
        ):
            raise VAEInputError(
                "down_block_types, up_block_types and block_out_channels must have the same length"
            )
        if self.act_fn not in ("silu", "swish"):
            raise VAEInputError(f"act_fn {self.act_fn!r} is not supported (only 'silu'/'swish')")
        if self.use_quant_conv or self.use_post_quant_conv:
            raise VAEInputError(
                "use_quant_conv / use_post_quant_conv are not supported (CogVideoX uses neither)"
            )

    # -- derived ------------------------------------------------------------------------------------------
    @property
    def temporal_compress_level(self) -> int:
        return int(math.log2(self.temporal_compression_ratio))

    @property
    def time_compressions(self) -> int:
        """How many blocks really halve time: only blocks with a sampler and ``i < log2(ratio)`` do."""
        return min(self.temporal_compress_level, len(self.block_out_channels) - 1)

    @property
    def effective_temporal_ratio(self) -> int:
        return 2**self.time_compressions

    @property
    def spatial_ratio(self) -> int:
        return 2 ** (len(self.block_out_channels) - 1)

    def supported_frames(self, t: int) -> bool:
        """Frame counts ``1 + k * effective_ratio`` (4k+1 for CogVideoX) are the supported contract."""
        return t >= 1 and (t - 1) % self.effective_temporal_ratio == 0

    def latent_frames(self, t: int) -> int:
        return 1 + (t - 1) // self.effective_temporal_ratio

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def tiny2(**kw) -> CogVideoXVAEConfig:
    """The spec's tiny2: two blocks (32, 64), groups 8, one layer per block, latent 4, temporal ratio 2."""
    base = dict(
        block_out_channels=(32, 64),
        down_block_types=("CogVideoXDownBlock3D",) * 2,
        up_block_types=("CogVideoXUpBlock3D",) * 2,
        norm_num_groups=8,
        layers_per_block=1,
        latent_channels=4,
        temporal_compression_ratio=2,
        sample_height=32,
        sample_width=32,
    )
    base.update(kw)
    return CogVideoXVAEConfig(**base)


def tiny3(**kw) -> CogVideoXVAEConfig:
    """The spec's tiny3: three blocks (32, 64, 64), ratio 4: both compress_time stages."""
    base = dict(
        block_out_channels=(32, 64, 64),
        down_block_types=("CogVideoXDownBlock3D",) * 3,
        up_block_types=("CogVideoXUpBlock3D",) * 3,
        norm_num_groups=8,
        layers_per_block=1,
        latent_channels=4,
        temporal_compression_ratio=4,
        sample_height=32,
        sample_width=32,
    )
    base.update(kw)
    return CogVideoXVAEConfig(**base)


def micro(**kw) -> CogVideoXVAEConfig:
    """Smaller than tiny2 for fast whole-model tests: (8, 16), groups 4, latent 4, ratio 2."""
    base = dict(
        block_out_channels=(8, 16),
        down_block_types=("CogVideoXDownBlock3D",) * 2,
        up_block_types=("CogVideoXUpBlock3D",) * 2,
        norm_num_groups=4,
        layers_per_block=1,
        latent_channels=4,
        temporal_compression_ratio=2,
        sample_height=16,
        sample_width=16,
    )
    base.update(kw)
    return CogVideoXVAEConfig(**base)


def diffusers_test(**kw) -> CogVideoXVAEConfig:
    """diffusers' own test config: (8, 8, 8, 8), latent 4, layers 1, groups 2, ratio 4."""
    base = dict(
        block_out_channels=(8, 8, 8, 8),
        norm_num_groups=2,
        layers_per_block=1,
        latent_channels=4,
        temporal_compression_ratio=4,
    )
    base.update(kw)
    return CogVideoXVAEConfig(**base)


# -- validation helpers (host side, outside any traced code) ------------------------------------------------

LAYOUTS = {
    "channel_first": (
        "(B, C, T, H, W)",
        "tensor",
        "axis 1",
        "channel-last input? the reference is channel-first",
    ),
    "channel_last": (
        "(B, T, H, W, C)",
        "array",
        "the last axis",
        "channel-first input? the NNX port is channel-last",
    ),
}
"""layout -> (axes, noun, channel axis in words, hint for the other layout): the wording of `check_video`."""


def check_video(shape: Sequence[int], channels: int, where: str, *, layout: str) -> None:
    """Raise `VAEInputError` unless ``shape`` is 5-D with ``channels`` on the layout's channel axis."""
    shape = tuple(int(n) for n in shape)
    axes, noun, channel_axis, hint = LAYOUTS[layout]
    if len(shape) != 5:
        raise VAEInputError(f"{where}: expected a 5-D {axes} {noun}, got shape {shape}")
    if shape[1 if layout == "channel_first" else -1] != channels:
        raise VAEInputError(
            f"{where}: expected {channels} channels on {channel_axis} of {axes}, got shape {shape} ({hint})"
        )


def check_sample_size(config: CogVideoXVAEConfig, frames: int, height: int, width: int) -> None:
    """Raise `VAEInputError` unless ``encode`` supports the frame count and the spatial size."""
    if not config.supported_frames(frames):
        r = config.effective_temporal_ratio
        raise VAEInputError(
            f"encode: {frames} frames; this VAE supports 1 + {r}k frames (e.g. {1 + r}, {1 + 2 * r})"
        )
    s = config.spatial_ratio
    if height % s or width % s:
        raise VAEInputError(f"encode: H, W = {(height, width)} must be multiples of the spatial ratio {s}")


def check_float(x: Any, where: str) -> None:
    """Raise `VAEInputError` unless ``x`` (a NumPy or JAX array, or a nested list) has a floating dtype."""
    dtype = getattr(x, "dtype", None)
    dt = np.dtype(dtype if dtype is not None else np.asarray(x).dtype)
    if dt.kind != "f" and dt.name != "bfloat16":
        raise VAEInputError(f"{where}: expected a floating-point array, got dtype {dt.name}")
