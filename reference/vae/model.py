"""PyTorch reference of diffusers' CogVideoX `Encoder3D`, `Decoder3D` and `AutoencoderKLCogVideoX`
(frame-batched encode/decode threading the conv cache, and tiled encode/decode with diffusers' blending; the
frame batches and the tile grid are the shared plans of `contracts.vae.plans`).
"""

from __future__ import annotations

import torch
from torch import nn

from contracts.vae.config import CogVideoXVAEConfig, check_sample_size
from contracts.vae.plans import frame_batches, tile_plan
from reference.vae.layers import (
    CogVideoXCausalConv3d,
    CogVideoXDownBlock3D,
    CogVideoXMidBlock3D,
    CogVideoXSpatialNorm3D,
    CogVideoXUpBlock3D,
    _check_5d,
)


class CogVideoXEncoder3D(nn.Module):
    def __init__(self, config: CogVideoXVAEConfig):
        super().__init__()
        c = config
        boc = c.block_out_channels
        self.conv_in = CogVideoXCausalConv3d(c.in_channels, boc[0], kernel_size=3, pad_mode="first")
        self.down_blocks = nn.ModuleList([])
        output_channel = boc[0]
        for i in range(len(c.down_block_types)):
            input_channel, output_channel = output_channel, boc[i]
            self.down_blocks.append(
                CogVideoXDownBlock3D(
                    in_channels=input_channel,
                    out_channels=output_channel,
                    temb_channels=0,
                    num_layers=c.layers_per_block,
                    resnet_eps=c.norm_eps,
                    resnet_act_fn=c.act_fn,
                    resnet_groups=c.norm_num_groups,
                    add_downsample=i != len(boc) - 1,
                    compress_time=i < c.temporal_compress_level,
                )
            )
        self.mid_block = CogVideoXMidBlock3D(
            in_channels=boc[-1],
            temb_channels=0,
            num_layers=2,
            resnet_eps=c.norm_eps,
            resnet_act_fn=c.act_fn,
            resnet_groups=c.norm_num_groups,
        )
        self.norm_out = nn.GroupNorm(c.norm_num_groups, boc[-1], eps=1e-6)
        self.conv_act = nn.SiLU()
        self.conv_out = CogVideoXCausalConv3d(boc[-1], 2 * c.latent_channels, kernel_size=3, pad_mode="first")

    def forward(self, sample, temb=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        h, new_conv_cache["conv_in"] = self.conv_in(sample, conv_cache=conv_cache.get("conv_in"))
        for i, block in enumerate(self.down_blocks):
            key = f"down_block_{i}"
            h, new_conv_cache[key] = block(h, temb, None, conv_cache=conv_cache.get(key))
        h, new_conv_cache["mid_block"] = self.mid_block(h, temb, None, conv_cache=conv_cache.get("mid_block"))
        h = self.conv_act(self.norm_out(h))
        h, new_conv_cache["conv_out"] = self.conv_out(h, conv_cache=conv_cache.get("conv_out"))
        return h, new_conv_cache


class CogVideoXDecoder3D(nn.Module):
    def __init__(self, config: CogVideoXVAEConfig):
        super().__init__()
        c = config
        rev = list(reversed(c.block_out_channels))
        zc = c.latent_channels
        self.conv_in = CogVideoXCausalConv3d(zc, rev[0], kernel_size=3, pad_mode="first")
        self.mid_block = CogVideoXMidBlock3D(
            in_channels=rev[0],
            temb_channels=0,
            num_layers=2,
            resnet_eps=c.norm_eps,
            resnet_act_fn=c.act_fn,
            resnet_groups=c.norm_num_groups,
            spatial_norm_dim=zc,
        )
        self.up_blocks = nn.ModuleList([])
        output_channel = rev[0]
        for i in range(len(c.up_block_types)):
            prev, output_channel = output_channel, rev[i]
            self.up_blocks.append(
                CogVideoXUpBlock3D(
                    in_channels=prev,
                    out_channels=output_channel,
                    temb_channels=0,
                    num_layers=c.layers_per_block + 1,
                    resnet_eps=c.norm_eps,
                    resnet_act_fn=c.act_fn,
                    resnet_groups=c.norm_num_groups,
                    spatial_norm_dim=zc,
                    add_upsample=i != len(rev) - 1,
                    compress_time=i < c.temporal_compress_level,
                )
            )
        self.norm_out = CogVideoXSpatialNorm3D(rev[-1], zc, groups=c.norm_num_groups)
        self.conv_act = nn.SiLU()
        self.conv_out = CogVideoXCausalConv3d(rev[-1], c.out_channels, kernel_size=3, pad_mode="first")

    def forward(self, sample, temb=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        h, new_conv_cache["conv_in"] = self.conv_in(sample, conv_cache=conv_cache.get("conv_in"))
        h, new_conv_cache["mid_block"] = self.mid_block(
            h, temb, sample, conv_cache=conv_cache.get("mid_block")
        )
        for i, block in enumerate(self.up_blocks):
            key = f"up_block_{i}"
            h, new_conv_cache[key] = block(h, temb, sample, conv_cache=conv_cache.get(key))
        h, new_conv_cache["norm_out"] = self.norm_out(h, sample, conv_cache=conv_cache.get("norm_out"))
        h = self.conv_act(h)
        h, new_conv_cache["conv_out"] = self.conv_out(h, conv_cache=conv_cache.get("conv_out"))
        return h, new_conv_cache


class AutoencoderKLCogVideoX(nn.Module):
    """The CogVideoX VAE: ``encode`` returns the posterior parameters, ``forward`` decodes ``mode()``."""

    def __init__(self, config: CogVideoXVAEConfig | None = None, **kwargs):
        super().__init__()
        self.config = config or CogVideoXVAEConfig(**kwargs)
        self.encoder = CogVideoXEncoder3D(self.config)
        self.decoder = CogVideoXDecoder3D(self.config)
        self.use_slicing = False
        self.use_tiling = False
        self.use_framewise_encoding = True
        self.use_framewise_decoding = True
        self.num_latent_frames_batch_size = 2
        self.num_sample_frames_batch_size = 8
        self.tile_sample_min_height = self.config.sample_height // 2
        self.tile_sample_min_width = self.config.sample_width // 2
        n = 2 ** (len(self.config.block_out_channels) - 1)
        self.tile_latent_min_height = int(self.tile_sample_min_height / n)
        self.tile_latent_min_width = int(self.tile_sample_min_width / n)
        self.tile_overlap_factor_height = 1 / 6
        self.tile_overlap_factor_width = 1 / 5

    def enable_tiling(self) -> None:
        self.use_tiling = True

    def disable_tiling(self) -> None:
        self.use_tiling = False

    # -- validation -------------------------------------------------------------------------------------
    def _check_sample(self, x: torch.Tensor) -> None:
        _check_5d(x, self.config.in_channels, "encode")
        check_sample_size(self.config, *x.shape[2:5])

    # -- encode -----------------------------------------------------------------------------------------
    def _encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        conv_cache = None
        enc = []
        for start, end in frame_batches(x.shape[2], self.num_sample_frames_batch_size):
            h, conv_cache = self.encoder(x[:, :, start:end], conv_cache=conv_cache)
            enc.append(h)
        return torch.cat(enc, dim=2)

    def _encode(self, x: torch.Tensor) -> torch.Tensor:
        _, _, _, height, width = x.shape
        if self.use_tiling and (width > self.tile_sample_min_width or height > self.tile_sample_min_height):
            return self.tiled_encode(x)
        return self._encode_frames(x)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The posterior parameters (B, 2 * latent, T', H', W'): mean and logvar stacked on the channel axis."""
        self._check_sample(x)
        return self._encode(x)

    # -- decode -----------------------------------------------------------------------------------------
    def _decode_frames(self, z: torch.Tensor) -> torch.Tensor:
        conv_cache = None
        dec = []
        for start, end in frame_batches(z.shape[2], self.num_latent_frames_batch_size):
            h, conv_cache = self.decoder(z[:, :, start:end], conv_cache=conv_cache)
            dec.append(h)
        return torch.cat(dec, dim=2)

    def _decode(self, z: torch.Tensor) -> torch.Tensor:
        _, _, _, height, width = z.shape
        if self.use_tiling and (width > self.tile_latent_min_width or height > self.tile_latent_min_height):
            return self.tiled_decode(z)
        return self._decode_frames(z)

    def decode(self, z: torch.Tensor) -> torch.Tensor:
        _check_5d(z, self.config.latent_channels, "decode")
        return self._decode(z)

    # -- tiling -----------------------------------------------------------------------------------------
    @staticmethod
    def blend_v(a, b, blend_extent):
        blend_extent = min(a.shape[3], b.shape[3], blend_extent)
        for y in range(blend_extent):
            b[:, :, :, y, :] = a[:, :, :, -blend_extent + y, :] * (1 - y / blend_extent) + b[
                :, :, :, y, :
            ] * (y / blend_extent)
        return b

    @staticmethod
    def blend_h(a, b, blend_extent):
        blend_extent = min(a.shape[4], b.shape[4], blend_extent)
        for x in range(blend_extent):
            b[:, :, :, :, x] = a[:, :, :, :, -blend_extent + x] * (1 - x / blend_extent) + b[
                :, :, :, :, x
            ] * (x / blend_extent)
        return b

    def _tiled(self, x: torch.Tensor, *, decode: bool) -> torch.Tensor:
        p = tile_plan(self.config, decode=decode)
        run = self._decode_frames if decode else self._encode_frames
        height, width = x.shape[3], x.shape[4]
        rows = []
        for i in range(0, height, p["stride_h"]):
            row = []
            for j in range(0, width, p["stride_w"]):
                row.append(run(x[:, :, :, i : i + p["tile_h"], j : j + p["tile_w"]]))
            rows.append(row)
        result_rows = []
        for i, row in enumerate(rows):
            result_row = []
            for j, t in enumerate(row):
                tile = t
                if i > 0:
                    tile = self.blend_v(rows[i - 1][j], tile, p["blend_h"])
                if j > 0:
                    tile = self.blend_h(row[j - 1], tile, p["blend_w"])
                result_row.append(tile[:, :, :, : p["crop_h"], : p["crop_w"]])
            result_rows.append(torch.cat(result_row, dim=4))
        return torch.cat(result_rows, dim=3)

    def tiled_encode(self, x: torch.Tensor) -> torch.Tensor:
        return self._tiled(x, decode=False)

    def tiled_decode(self, z: torch.Tensor) -> torch.Tensor:
        return self._tiled(z, decode=True)

    # -- posterior --------------------------------------------------------------------------------------
    @staticmethod
    def posterior(moments: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mean, logvar = torch.chunk(moments, 2, dim=1)
        return mean, torch.clamp(logvar, -30.0, 20.0)

    def forward(self, sample: torch.Tensor) -> torch.Tensor:
        mean, _ = self.posterior(self.encode(sample))
        return self.decode(mean)
