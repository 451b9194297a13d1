"""Realistic porting defects of the NNX VAE (GroupNorm's variance, ddof, eps and statistics dtype, the
compress-time reshape, SAME padding, half-pixel nearest resizing, a two-frame T == 1 upsample), as patches of
`implementations.vae.layers`: used by the negative controls and by the localizer's ``--mutant`` option. Each
patch is (owner, attribute, replacement); apply them with `patched` (which also disables jit, so the swapped
function is traced). The same defects are source patches in the mutation catalogue
(`conformance.vae.catalogue`, ids ``vae.<key>``)."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from typing import Any

import jax
import jax.numpy as jnp

import implementations.vae.layers as L

# -- mutants -----------------------------------------------------------------------------------------------


def _gn_fast_variance(x, scale, bias, num_groups, eps):
    """nnx.GroupNorm(use_fast_variance=True): var = E[x^2] - E[x]^2 in float32, which cancels when |mean| >> std."""
    b, c = x.shape[0], x.shape[-1]
    xg = x.reshape(b, -1, num_groups, c // num_groups)
    mean = jnp.mean(xg, axis=(1, 3), keepdims=True)
    var = jnp.maximum(jnp.mean(xg * xg, axis=(1, 3), keepdims=True) - mean * mean, 0.0)
    y = ((xg - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape)
    return y * scale + bias


def _gn_unbiased(x, scale, bias, num_groups, eps):
    """torch.var's default: the unbiased (n - 1) variance."""
    b, c = x.shape[0], x.shape[-1]
    xg = x.reshape(b, -1, num_groups, c // num_groups)
    mean = jnp.mean(xg, axis=(1, 3), keepdims=True)
    var = jnp.var(xg, axis=(1, 3), keepdims=True, ddof=1)
    return ((xg - mean) * jax.lax.rsqrt(var + eps)).reshape(x.shape) * scale + bias


def _gn_bf16_statistics(x, scale, bias, num_groups, eps):
    """Statistics and normalization in the input dtype: bfloat16 under bfloat16, instead of float32."""
    dtype = x.dtype
    b, c = x.shape[0], x.shape[-1]
    xg = x.reshape(b, -1, num_groups, c // num_groups)
    hi = jnp.mean(xg, axis=(1, 3), keepdims=True)
    d = xg - hi
    d = d - jnp.mean(d, axis=(1, 3), keepdims=True)
    var = jnp.mean(d * d, axis=(1, 3), keepdims=True)
    y = (d * jax.lax.rsqrt(var + jnp.asarray(eps, dtype))).reshape(x.shape)
    return (y * scale.astype(dtype) + bias.astype(dtype)).astype(dtype)


def _gn_eps_1e5(x, scale, bias, num_groups, eps):
    """torch.nn.GroupNorm's default eps 1e-5 where CogVideoX uses 1e-6."""
    return _ORIGINAL["group_norm"](x, scale, bias, num_groups, 1e-5)


def _compress_time_no_transpose(x):
    """The yangwhale port: reshape NTHWC straight to (B*H*W, T, C) and pool, averaging pixels, not frames."""
    b, t, h, w, c = x.shape
    y = x.reshape(b * h * w, t, c)
    if t % 2 == 1:
        rest = y[:, 1:]
        if rest.shape[1]:
            rest = rest.reshape(b * h * w, (t - 1) // 2, 2, c).mean(axis=2)
        y = jnp.concatenate([y[:, :1], rest], axis=1)
    else:
        y = y.reshape(b * h * w, t // 2, 2, c).mean(axis=2)
    return y.reshape(b, y.shape[1], h, w, c)


def _downsample_same(self, x):
    """nnx.Conv's default padding='SAME' instead of the (0, 1) pad + VALID (the two differ on odd H, W)."""
    if self.compress_time:
        x = L.compress_time_avg(x)
    b, t = x.shape[:2]
    k = self.conv.kernel[...]
    y = (
        jax.lax.conv_general_dilated(
            x.reshape(b * t, *x.shape[2:]), k, (2, 2), "SAME", dimension_numbers=("NHWC", "HWIO", "NHWC")
        )
        + self.conv.bias[...]
    )
    return y.reshape(b, t, *y.shape[1:])


def _resize_half_pixel(x, size):
    """jax.image.resize(nearest): half-pixel centres, not torch's floor(i * in / out)."""
    return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), method="nearest")


def _upsample_t1_two_frames(self, x):
    """The yangwhale port's T == 1 upsample: 3-D x2, two frames instead of the single frame upstream keeps."""
    t = x.shape[1]
    if self.compress_time and t > 1 and t % 2 == 1:
        x = jnp.concatenate([L._up2(x[:, :1], (2, 3)), L._up2(x[:, 1:], (1, 2, 3))], axis=1)
    elif self.compress_time:
        x = L._up2(x, (1, 2, 3))
    else:
        x = L._up2(x, (2, 3))
    x = jnp.pad(x, ((0, 0), (0, 0), (1, 1), (1, 1), (0, 0)))
    return L._per_frame_conv2d(self.conv, x)


_ORIGINAL = {"group_norm": L.group_norm}


Patch = tuple[Any, str, Callable[..., Any]]

PATCHES: dict[str, list[Patch]] = {
    "fast-variance": [(L, "group_norm", _gn_fast_variance)],
    "unbiased-variance": [(L, "group_norm", _gn_unbiased)],
    "eps-1e-5": [(L, "group_norm", _gn_eps_1e5)],
    "gn-bf16-statistics": [(L, "group_norm", _gn_bf16_statistics)],
    "no-transpose": [(L, "compress_time_avg", _compress_time_no_transpose)],
    "same-padding": [(L.CogVideoXDownsample3D, "__call__", _downsample_same)],
    "half-pixel-nearest": [(L, "resize_nearest", _resize_half_pixel)],
    "t1-two-frames": [(L.CogVideoXUpsample3D, "__call__", _upsample_t1_two_frames)],
}


@contextlib.contextmanager
def patched(patches: list[Patch], *, eager: bool = True) -> Iterator[None]:
    """Apply the patches; ``eager`` also disables jit (module-level jits would reuse unpatched traces)."""
    saved = [(owner, name, getattr(owner, name)) for owner, name, _ in patches]
    try:
        for owner, name, fn in patches:
            setattr(owner, name, fn)
        with jax.disable_jit(eager):
            yield
    finally:
        for owner, name, fn in saved:
            setattr(owner, name, fn)
