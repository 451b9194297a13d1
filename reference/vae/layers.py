"""PyTorch reference of the CogVideoX VAE layers, with the semantics and state-dict key names of diffusers'
`autoencoder_kl_cogvideox.py` (main = 0.42.1) and its `CogVideoXDownsample3D` / `CogVideoXUpsample3D`.

Layout is channel-first (B, C, T, H, W). Every cached layer returns ``(output, cache)``; caches are nested
dicts keyed as diffusers keys them.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from contracts.vae.config import check_video


def _check_5d(x: torch.Tensor, channels: int, where: str) -> None:
    check_video(x.shape, channels, where, layout="channel_first")


class CogVideoXSafeConv3d(nn.Conv3d):
    """``nn.Conv3d`` that splits inputs over 2 GiB along time (each later chunk prefixed with k_t - 1 frames)."""

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        memory_count = (
            input.shape[0] * input.shape[1] * input.shape[2] * input.shape[3] * input.shape[4] * 2 / 1024**3
        )
        if memory_count > 2:
            kernel_size = self.kernel_size[0]
            part_num = int(memory_count / 2) + 1
            chunks = list(torch.chunk(input, part_num, dim=2))
            if kernel_size > 1:
                chunks = [chunks[0]] + [
                    torch.cat((chunks[i - 1][:, :, -kernel_size + 1 :], chunks[i]), dim=2)
                    for i in range(1, len(chunks))
                ]
            return torch.cat([super(CogVideoXSafeConv3d, self).forward(c) for c in chunks], dim=2)
        return super().forward(input)


class CogVideoXCausalConv3d(nn.Module):
    """Causal 3-D convolution: time padded in front (frame 0 repeated, or the cache), H/W zero-padded."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, dilation=1, pad_mode="constant"):
        super().__init__()
        if isinstance(kernel_size, int):
            kernel_size = (kernel_size,) * 3
        time_kernel_size, height_kernel_size, width_kernel_size = kernel_size
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pad_mode = pad_mode
        time_pad = time_kernel_size - 1
        height_pad = (height_kernel_size - 1) // 2
        width_pad = (width_kernel_size - 1) // 2
        self.height_pad, self.width_pad, self.time_pad = height_pad, width_pad, time_pad
        self.time_causal_padding = (width_pad, width_pad, height_pad, height_pad, time_pad, 0)
        self.const_padding_conv3d = (0, self.width_pad, self.height_pad)
        self.temporal_dim = 2
        self.time_kernel_size = time_kernel_size
        stride = stride if isinstance(stride, tuple) else (stride, 1, 1)
        dilation = (dilation, 1, 1)
        self.conv = CogVideoXSafeConv3d(
            in_channels,
            out_channels,
            kernel_size,
            stride=stride,
            dilation=dilation,
            padding=0 if self.pad_mode == "replicate" else self.const_padding_conv3d,
            padding_mode="zeros",
        )

    def fake_context_parallel_forward(self, inputs, conv_cache=None):
        if self.pad_mode == "replicate":
            inputs = F.pad(inputs, self.time_causal_padding, mode="replicate")
        else:
            kernel_size = self.time_kernel_size
            if kernel_size > 1:
                cached = [conv_cache] if conv_cache is not None else [inputs[:, :, :1]] * (kernel_size - 1)
                inputs = torch.cat([*cached, inputs], dim=2)
        return inputs

    def forward(self, inputs, conv_cache=None):
        _check_5d(inputs, self.in_channels, type(self).__name__)
        inputs = self.fake_context_parallel_forward(inputs, conv_cache)
        if self.pad_mode == "replicate":
            conv_cache = None
        else:
            conv_cache = inputs[:, :, -self.time_kernel_size + 1 :].clone()
        output = self.conv(inputs)
        return output, conv_cache


def _interpolate_nearest(x: torch.Tensor, size) -> torch.Tensor:
    return F.interpolate(x, size=size)


class CogVideoXSpatialNorm3D(nn.Module):
    """GroupNorm(f) * conv_y(zq) + conv_b(zq), zq nearest-resized to f (frame 0 apart when T_f > 1 is odd)."""

    def __init__(self, f_channels, zq_channels, groups=32):
        super().__init__()
        self.norm_layer = nn.GroupNorm(num_channels=f_channels, num_groups=groups, eps=1e-6, affine=True)
        self.conv_y = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1)
        self.conv_b = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1)

    def forward(self, f, zq, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        if f.shape[2] > 1 and f.shape[2] % 2 == 1:
            f_first, f_rest = f[:, :, :1], f[:, :, 1:]
            z_first, z_rest = zq[:, :, :1], zq[:, :, 1:]
            z_first = _interpolate_nearest(z_first, f_first.shape[-3:])
            z_rest = _interpolate_nearest(z_rest, f_rest.shape[-3:])
            zq = torch.cat([z_first, z_rest], dim=2)
        else:
            zq = _interpolate_nearest(zq, f.shape[-3:])
        conv_y, new_conv_cache["conv_y"] = self.conv_y(zq, conv_cache=conv_cache.get("conv_y"))
        conv_b, new_conv_cache["conv_b"] = self.conv_b(zq, conv_cache=conv_cache.get("conv_b"))
        norm_f = self.norm_layer(f)
        return norm_f * conv_y + conv_b, new_conv_cache


class CogVideoXResnetBlock3D(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels=None,
        dropout=0.0,
        temb_channels=512,
        groups=32,
        eps=1e-6,
        non_linearity="swish",
        conv_shortcut=False,
        spatial_norm_dim=None,
        pad_mode="first",
    ):
        super().__init__()
        out_channels = out_channels or in_channels
        self.in_channels, self.out_channels = in_channels, out_channels
        self.nonlinearity = nn.SiLU()
        self.use_conv_shortcut = conv_shortcut
        self.spatial_norm_dim = spatial_norm_dim
        if spatial_norm_dim is None:
            self.norm1 = nn.GroupNorm(num_channels=in_channels, num_groups=groups, eps=eps)
            self.norm2 = nn.GroupNorm(num_channels=out_channels, num_groups=groups, eps=eps)
        else:
            self.norm1 = CogVideoXSpatialNorm3D(in_channels, spatial_norm_dim, groups)
            self.norm2 = CogVideoXSpatialNorm3D(out_channels, spatial_norm_dim, groups)
        self.conv1 = CogVideoXCausalConv3d(in_channels, out_channels, kernel_size=3, pad_mode=pad_mode)
        if temb_channels > 0:
            self.temb_proj = nn.Linear(temb_channels, out_channels)
        self.dropout = nn.Dropout(dropout)
        self.conv2 = CogVideoXCausalConv3d(out_channels, out_channels, kernel_size=3, pad_mode=pad_mode)
        if in_channels != out_channels:
            if conv_shortcut:
                self.conv_shortcut = CogVideoXCausalConv3d(
                    in_channels, out_channels, kernel_size=3, pad_mode=pad_mode
                )
            else:
                self.conv_shortcut = CogVideoXSafeConv3d(
                    in_channels, out_channels, kernel_size=1, stride=1, padding=0
                )

    def forward(self, inputs, temb=None, zq=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        h = inputs
        if zq is not None:
            h, new_conv_cache["norm1"] = self.norm1(h, zq, conv_cache=conv_cache.get("norm1"))
        else:
            h = self.norm1(h)
        h = self.nonlinearity(h)
        h, new_conv_cache["conv1"] = self.conv1(h, conv_cache=conv_cache.get("conv1"))
        if temb is not None:
            h = h + self.temb_proj(self.nonlinearity(temb))[:, :, None, None, None]
        if zq is not None:
            h, new_conv_cache["norm2"] = self.norm2(h, zq, conv_cache=conv_cache.get("norm2"))
        else:
            h = self.norm2(h)
        h = self.nonlinearity(h)
        h = self.dropout(h)
        h, new_conv_cache["conv2"] = self.conv2(h, conv_cache=conv_cache.get("conv2"))
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                inputs, new_conv_cache["conv_shortcut"] = self.conv_shortcut(
                    inputs, conv_cache=conv_cache.get("conv_shortcut")
                )
            else:
                inputs = self.conv_shortcut(inputs)
        return h + inputs, new_conv_cache


class CogVideoXDownsample3D(nn.Module):
    """Optional time halving (avg_pool1d over T, odd T keeps frame 0), then a per-frame k3/s2 Conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=2, padding=0, compress_time=False):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding
        )
        self.compress_time = compress_time

    def forward(self, x):
        if self.compress_time:
            b, c, t, h, w = x.shape
            x = x.permute(0, 3, 4, 1, 2).reshape(b * h * w, c, t)
            if x.shape[-1] % 2 == 1:
                x_first, x_rest = x[..., 0], x[..., 1:]
                if x_rest.shape[-1] > 0:
                    x_rest = F.avg_pool1d(x_rest, kernel_size=2, stride=2)
                x = torch.cat([x_first[..., None], x_rest], dim=-1)
            else:
                x = F.avg_pool1d(x, kernel_size=2, stride=2)
            x = x.reshape(b, h, w, c, x.shape[-1]).permute(0, 3, 4, 1, 2)
        x = F.pad(x, (0, 1, 0, 1), mode="constant", value=0)
        b, c, t, h, w = x.shape
        x = x.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        x = self.conv(x)
        return x.reshape(b, t, x.shape[1], x.shape[2], x.shape[3]).permute(0, 2, 1, 3, 4)


class CogVideoXUpsample3D(nn.Module):
    """Nearest x2 (time too with compress_time: odd T -> 2T - 1, T == 1 stays 1), then a per-frame Conv2d."""

    def __init__(self, in_channels, out_channels, kernel_size=3, stride=1, padding=1, compress_time=False):
        super().__init__()
        self.conv = nn.Conv2d(
            in_channels, out_channels, kernel_size=kernel_size, stride=stride, padding=padding
        )
        self.compress_time = compress_time

    def forward(self, inputs):
        if self.compress_time:
            if inputs.shape[2] > 1 and inputs.shape[2] % 2 == 1:
                x_first, x_rest = inputs[:, :, 0], inputs[:, :, 1:]
                x_first = F.interpolate(x_first, scale_factor=2.0)
                x_rest = F.interpolate(x_rest, scale_factor=2.0)
                inputs = torch.cat([x_first[:, :, None, :, :], x_rest], dim=2)
            elif inputs.shape[2] > 1:
                inputs = F.interpolate(inputs, scale_factor=2.0)
            else:
                inputs = F.interpolate(inputs.squeeze(2), scale_factor=2.0)[:, :, None, :, :]
        else:
            b, c, t, h, w = inputs.shape
            inputs = inputs.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
            inputs = F.interpolate(inputs, scale_factor=2.0)
            inputs = inputs.reshape(b, t, *inputs.shape[1:]).permute(0, 2, 1, 3, 4)
        b, c, t, h, w = inputs.shape
        inputs = inputs.permute(0, 2, 1, 3, 4).reshape(b * t, c, h, w)
        inputs = self.conv(inputs)
        return inputs.reshape(b, t, *inputs.shape[1:]).permute(0, 2, 1, 3, 4)


class CogVideoXDownBlock3D(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        temb_channels,
        dropout=0.0,
        num_layers=1,
        resnet_eps=1e-6,
        resnet_act_fn="swish",
        resnet_groups=32,
        add_downsample=True,
        downsample_padding=0,
        compress_time=False,
        pad_mode="first",
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                CogVideoXResnetBlock3D(
                    in_channels=in_channels if i == 0 else out_channels,
                    out_channels=out_channels,
                    dropout=dropout,
                    temb_channels=temb_channels,
                    groups=resnet_groups,
                    eps=resnet_eps,
                    non_linearity=resnet_act_fn,
                    pad_mode=pad_mode,
                )
                for i in range(num_layers)
            ]
        )
        self.downsamplers = None
        if add_downsample:
            self.downsamplers = nn.ModuleList(
                [
                    CogVideoXDownsample3D(
                        out_channels, out_channels, padding=downsample_padding, compress_time=compress_time
                    )
                ]
            )

    def forward(self, hidden_states, temb=None, zq=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        for i, resnet in enumerate(self.resnets):
            key = f"resnet_{i}"
            hidden_states, new_conv_cache[key] = resnet(
                hidden_states, temb, zq, conv_cache=conv_cache.get(key)
            )
        if self.downsamplers is not None:
            for d in self.downsamplers:
                hidden_states = d(hidden_states)
        return hidden_states, new_conv_cache


class CogVideoXMidBlock3D(nn.Module):
    def __init__(
        self,
        in_channels,
        temb_channels,
        dropout=0.0,
        num_layers=1,
        resnet_eps=1e-6,
        resnet_act_fn="swish",
        resnet_groups=32,
        spatial_norm_dim=None,
        pad_mode="first",
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                CogVideoXResnetBlock3D(
                    in_channels=in_channels,
                    out_channels=in_channels,
                    dropout=dropout,
                    temb_channels=temb_channels,
                    groups=resnet_groups,
                    eps=resnet_eps,
                    spatial_norm_dim=spatial_norm_dim,
                    non_linearity=resnet_act_fn,
                    pad_mode=pad_mode,
                )
                for _ in range(num_layers)
            ]
        )

    def forward(self, hidden_states, temb=None, zq=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        for i, resnet in enumerate(self.resnets):
            key = f"resnet_{i}"
            hidden_states, new_conv_cache[key] = resnet(
                hidden_states, temb, zq, conv_cache=conv_cache.get(key)
            )
        return hidden_states, new_conv_cache


class CogVideoXUpBlock3D(nn.Module):
    def __init__(
        self,
        in_channels,
        out_channels,
        temb_channels,
        dropout=0.0,
        num_layers=1,
        resnet_eps=1e-6,
        resnet_act_fn="swish",
        resnet_groups=32,
        spatial_norm_dim=16,
        add_upsample=True,
        upsample_padding=1,
        compress_time=False,
        pad_mode="first",
    ):
        super().__init__()
        self.resnets = nn.ModuleList(
            [
                CogVideoXResnetBlock3D(
                    in_channels=in_channels if i == 0 else out_channels,
                    out_channels=out_channels,
                    dropout=dropout,
                    temb_channels=temb_channels,
                    groups=resnet_groups,
                    eps=resnet_eps,
                    non_linearity=resnet_act_fn,
                    spatial_norm_dim=spatial_norm_dim,
                    pad_mode=pad_mode,
                )
                for i in range(num_layers)
            ]
        )
        self.upsamplers = None
        if add_upsample:
            self.upsamplers = nn.ModuleList(
                [
                    CogVideoXUpsample3D(
                        out_channels, out_channels, padding=upsample_padding, compress_time=compress_time
                    )
                ]
            )

    def forward(self, hidden_states, temb=None, zq=None, conv_cache=None):
        new_conv_cache = {}
        conv_cache = conv_cache or {}
        for i, resnet in enumerate(self.resnets):
            key = f"resnet_{i}"
            hidden_states, new_conv_cache[key] = resnet(
                hidden_states, temb, zq, conv_cache=conv_cache.get(key)
            )
        if self.upsamplers is not None:
            for u in self.upsamplers:
                hidden_states = u(hidden_states)
        return hidden_states, new_conv_cache
