"""Implementation (Flax NNX) of the CogVideoX VAE layers of the PyTorch reference: the same class names,
constructor arguments and parameter paths as `reference.vae.layers` (``rngs`` is an optional keyword).

Channel-last (B, T, H, W, C); every convolution pads explicitly and runs VALID; GroupNorm computes its
statistics in at least float32 with a two-float mean (hi + lo) and a two-pass variance, so offset-mean,
small-spread activations keep full precision; caches are explicit pytrees (dicts keyed as diffusers keys
them, ``None`` for 1x1x1 convolutions, whose torch cache is the whole input and would retrace).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from contracts.vae.config import VAEInputError, check_video

# -- intermediate capture (for the divergence localizer; eager runs only) --------------------------------

_CAPTURE: list[dict[int, Any]] = []


@contextlib.contextmanager
def capturing() -> Iterator[dict[int, Any]]:
    """Record every layer's output, keyed by ``id(module)`` (map to names with `module_names`)."""
    store: dict[int, Any] = {}
    _CAPTURE.append(store)
    try:
        yield store
    finally:
        _CAPTURE.pop()


def _record(module: Any, out: Any) -> None:
    if _CAPTURE:
        _CAPTURE[-1][id(module)] = out


def module_names(model: nnx.Module) -> dict[int, str]:
    """``id(submodule) -> dotted path`` (the torch module name)."""
    out = {}
    for path, node in nnx.iter_graph(model):
        if isinstance(node, nnx.Module) and path and not any(str(p).startswith("_") for p in path):
            out[id(node)] = ".".join(str(p) for p in path)
    return out


def _rngs(rngs: nnx.Rngs | None) -> nnx.Rngs:
    return rngs if rngs is not None else nnx.Rngs(0)


def _compute_dtype(dtype: Any) -> Any:
    return jnp.promote_types(dtype, jnp.float32)


def _check_5d(x: Any, channels: int, where: str) -> None:
    check_video(np.shape(x), channels, where, layout="channel_last")


def silu(x: jax.Array) -> jax.Array:
    return x * jax.nn.sigmoid(x)


# -- GroupNorm -----------------------------------------------------------------------------------------


def group_norm(x: jax.Array, scale: jax.Array, bias: jax.Array, num_groups: int, eps: float) -> jax.Array:
    """torch.nn.GroupNorm on channel-last input: contiguous channel groups, statistics over (T, H, W, C/G).

    The mean is kept as two floats (hi = mean(x), lo = mean(x - hi)) and the variance is the second pass
    mean((x - hi - lo)^2), all in at least float32; E[x^2] - E[x]^2 loses everything for offset means.
    """
    dtype = x.dtype
    ct = _compute_dtype(dtype)
    b, c = x.shape[0], x.shape[-1]
    xg = x.astype(ct).reshape(b, -1, num_groups, c // num_groups)
    hi = jnp.mean(xg, axis=(1, 3), keepdims=True)
    d = xg - hi
    lo = jnp.mean(d, axis=(1, 3), keepdims=True)
    d = d - lo
    var = jnp.mean(d * d, axis=(1, 3), keepdims=True)
    y = (d * jax.lax.rsqrt(var + jnp.asarray(eps, ct))).reshape(x.shape)
    return (y * scale.astype(ct) + bias.astype(ct)).astype(dtype)


class GroupNorm(nnx.Module):
    """torch.nn.GroupNorm(num_groups, num_channels, eps, affine=True); parameters ``scale`` and ``bias``."""

    def __init__(
        self, num_groups: int, num_channels: int, eps: float = 1e-5, *, rngs: nnx.Rngs | None = None
    ):
        if num_channels % num_groups:
            raise VAEInputError(
                f"GroupNorm: num_channels={num_channels} is not divisible by num_groups={num_groups}"
            )
        self.num_groups, self.num_channels, self.eps = num_groups, num_channels, eps
        self.scale = nnx.Param(jnp.ones((num_channels,), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((num_channels,), jnp.float32))

    def __call__(self, x: jax.Array) -> jax.Array:
        if x.shape[-1] != self.num_channels:
            raise VAEInputError(f"GroupNorm: expected {self.num_channels} channels last, got shape {x.shape}")
        out = group_norm(x, self.scale[...], self.bias[...], self.num_groups, self.eps)
        _record(self, out)
        return out


# -- convolutions ----------------------------------------------------------------------------------------


def _conv(
    rngs: nnx.Rngs, cin: int, cout: int, kernel: tuple[int, ...], strides: Any = 1, dilation: Any = 1
) -> nnx.Conv:
    return nnx.Conv(cin, cout, kernel, strides=strides, kernel_dilation=dilation, padding="VALID", rngs=rngs)


STACKED_TAPS_MAX_CHANNELS = 9
"""At most this many input channels times time taps (the RGB input convolution: 3 x 3), the taps are stacked
into the channels of one 2-D convolution instead: a 2-D convolution over 3 channels runs at 18-38 GFLOP/s
on XLA:CPU, and the tiny2 encode went from 40.8-42.6 to 38.5-39.5 ms (2-core CPU machine)."""


WINOGRAD_MIN_CHANNELS = 128
"""From this many input channels, `implementations.vae.model.bind_taps` hands a float32 3x3x3 kernel to the
jitted frame batches with its Winograd transform (`WinogradKernel`), and its stride-1 convolutions run as
`conv3d_winograd`. One convolution at the CogVideoX decoder's shapes, Winograd against the time-tap form and
PyTorch's oneDNN (GFLOP/s of the direct convolution's work, 2-core AMD EPYC, matmul peak 208;
`benchmarks.conv_limit`): 4x6x6x512 140 / 44 / 101, 5x10x10x512 245 / 111 / 185, 7x18x18x256 354 / 201 /
221, 7x34x34x128 244 / 172 / 216. In the whole CogVideoX-width model, same process, alternating which went
first, five rounds each: decode 696-717 ms with 128 against 782-837 ms with 256 (1.12-1.17x), encode 189-194
against 227-231 ms (1.18-1.22x). Below 128 channels it was not measured; the tiny2 models (32 and 64
channels) keep the direct form."""

# Winograd F(2, 3): 4 inputs d -> B^T d, 3 taps g -> G g, 4 products m -> A^T m (2 outputs)
WINOGRAD_G = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0.0, 0.0, 1.0]])
WINOGRAD_BT = np.array(
    [
        [1.0, 0.0, -1.0, 0.0],
        [0.0, 1.0, 1.0, 0.0],
        [0.0, -1.0, 1.0, 0.0],
        [0.0, 1.0, 0.0, -1.0],
    ]
)


def winograd_kernel(kernel: np.ndarray) -> np.ndarray:
    """A (3, 3, 3, I, O) kernel as `conv3d_winograd` takes it: the time taps stacked into the input channels
    (tap-major), then G g G^T over the two spatial axes, computed in float64 and rounded once to the
    kernel's dtype: (16, 3 I, O)."""
    k = np.asarray(kernel)
    if k.ndim != 5 or k.shape[:3] != (3, 3, 3):
        raise VAEInputError(f"winograd_kernel: needs a (3, 3, 3, I, O) kernel; got shape {k.shape}")
    stacked = np.concatenate(list(k), axis=2).astype(np.float64)  # (3, 3, 3 I, O)
    u = np.einsum("ai,ijco,bj->abco", WINOGRAD_G, stacked, WINOGRAD_G)
    return u.reshape(16, *stacked.shape[2:]).astype(k.dtype)


def _winograd_tile_coefficients() -> np.ndarray:
    """(16, 4, 4): the coefficient of each position of a 4x4 tile in each of its 16 transformed values,
    B^T d B read from `WINOGRAD_BT` when called."""
    return np.einsum("ar,bs->abrs", WINOGRAD_BT, WINOGRAD_BT).reshape(16, 4, 4)


def _winograd_input_tiles(frames: jax.Array, th: int, tw: int) -> jax.Array:
    """B^T d B of every 4x4 tile at stride 2 of ``frames`` (N, 2 th + 2, 2 tw + 2, ...): (16, N, th, tw, ...).

    Written as one sum over the 16 positions of a tile, each position's strided view times its 16
    coefficients (0 or +-1) broadcast over the tiles, so that XLA compiles the whole transform into one loop
    fusion that writes the tiles once. Written as the separable row and column transforms of 4 terms each,
    stacked into 16 tile sets, XLA:CPU materialised each tile set apart and then copied them into the stack
    (a concatenate it did not fuse): the convolution took 1.09-1.10x as long at 7x18x18x256, the same at
    5x10x10x512, and 1.26x at 7x34x34x128 (2-core AMD EPYC, same process, interleaved). A position whose
    coefficient is 0 is left out by a select, not multiplied by 0, so a non-finite input reaches only the
    outputs whose window holds it, as in the direct convolution."""
    coef = _winograd_tile_coefficients()
    lead = (16,) + (1,) * frames.ndim
    v = None
    for r in range(4):
        for s in range(4):
            view = frames[None, :, r : r + 2 * th : 2, s : s + 2 * tw : 2]
            c = coef[:, r, s].reshape(lead)
            term = jnp.where(c != 0, view * c.astype(frames.dtype), 0)
            v = term if v is None else v + term
    assert v is not None
    return v


def _winograd_at(m0: Any, m1: Any, m2: Any, m3: Any) -> tuple[Any, Any]:
    """A^T m of Winograd F(2, 3) on four products."""
    return m0 + m1 + m2, m1 - m2 - m3


def conv3d_winograd(x: jax.Array, u: jax.Array, bias: jax.Array | None, precision: Any = None) -> jax.Array:
    """The VALID, stride-1 3x3x3 convolution of ``x`` (B, T, H, W, C) by the kernel whose `winograd_kernel`
    is ``u``, by Winograd's F(2x2, 3x3): per output frame, its three input frames stacked into the channels
    and cut into 4x4 tiles at stride 2 (an odd height or width padded by one and cropped after), each tile
    transformed (B^T d B), multiplied with the transformed kernel as 16 batched matmuls over the channels
    (2.25x fewer multiplications than the direct convolution), and transformed back (A^T m A) into its 2x2
    outputs. Sums in float32 or wider, rounded once to the inputs' type. Its rounding differs from the direct
    convolution's: the largest error against float64 measured 1.3-1.8x the direct form's on the decoder's
    shapes."""
    b, t, h, w, c = x.shape
    if u.ndim != 3 or u.shape[:2] != (16, 3 * c):
        raise VAEInputError(
            f"conv3d_winograd: a transformed kernel for {c} channels is (16, {3 * c}, O); got {u.shape}"
        )
    if t < 3 or h < 3 or w < 3:
        raise VAEInputError(f"conv3d_winograd: input {x.shape} is smaller than the 3x3x3 kernel")
    dt = jnp.promote_types(x.dtype, u.dtype)
    acc = jnp.promote_types(dt, jnp.float32)
    o = u.shape[-1]
    t_out, h_out, w_out = t - 2, h - 2, w - 2
    th, tw = (h_out + 1) // 2, (w_out + 1) // 2
    x = jnp.pad(x.astype(acc), ((0, 0), (0, 0), (0, 2 * th + 2 - h), (0, 2 * tw + 2 - w), (0, 0)))
    # each output frame's three input frames side by side before the channels: (3, C) is the tap-major
    # stacked channel axis the transformed kernel expects, and the stack is not on the minor axis
    frames = jnp.stack([x[:, a : a + t_out] for a in range(3)], axis=-2)
    frames = frames.reshape(b * t_out, 2 * th + 2, 2 * tw + 2, 3, c)
    v = _winograd_input_tiles(frames, th, tw).reshape(16, b * t_out * th * tw, 3 * c)
    m = jnp.einsum("kpc,kco->kpo", v, u.astype(acc), precision=precision, preferred_element_type=acc)
    m = m.reshape(4, 4, b * t_out, th, tw, o)
    rows = _winograd_at(m[0], m[1], m[2], m[3])
    y = jnp.stack([jnp.stack(_winograd_at(r[0], r[1], r[2], r[3]), axis=3) for r in rows], axis=2)
    out = y.reshape(b * t_out, 2 * th, 2 * tw, o)[:, :h_out, :w_out]
    if bias is not None:
        out = out + bias.astype(acc)
    return out.astype(dt).reshape(b, t_out, h_out, w_out, o)


@jax.tree_util.register_pytree_node_class
class WinogradKernel:
    """A (3, 3, 3, I, O) convolution kernel as the jitted frame batches receive it from
    `implementations.vae.model.bind_taps`: its time taps (which share the kernel's memory) and its
    `winograd_kernel` (``u``, made once per kernel value). `conv3d_by_time_taps` runs a stride-1,
    undilated convolution with it by `conv3d_winograd`, and any other from the stacked taps. It stands in
    for the kernel's array inside the module (``shape``, ``dtype``, ``ndim``, ``kernel[...]``)."""

    def __init__(self, taps: tuple[Any, ...], u: Any) -> None:
        self.taps = tuple(taps)
        self.u = u

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.taps), *self.taps[0].shape)

    @property
    def dtype(self) -> Any:
        return self.taps[0].dtype

    @property
    def ndim(self) -> int:
        return 1 + self.taps[0].ndim

    def __getitem__(self, index: Any) -> WinogradKernel:
        if index is not Ellipsis:
            raise TypeError(f"a WinogradKernel is read whole (kernel[...]); got index {index!r}")
        return self

    def stacked(self) -> jax.Array:
        """The kernel itself (XLA turns each tap's slice of the stack back into that tap: no copy)."""
        return jnp.stack(self.taps)

    def tree_flatten(self) -> tuple[tuple[Any, ...], None]:
        return (*self.taps, self.u), None

    @classmethod
    def tree_unflatten(cls, aux: None, children: tuple[Any, ...]) -> WinogradKernel:
        return cls(tuple(children[:-1]), children[-1])


def conv3d_by_time_taps(
    x: jax.Array,
    kernel: jax.Array | WinogradKernel,
    bias: jax.Array | None,
    strides: tuple[int, int, int] = (1, 1, 1),
    time_dilation: int = 1,
    precision: Any = None,
) -> jax.Array:
    """A VALID 3-D convolution of (B, T, H, W, C) with ``kernel`` (kt, kh, kw, I, O), computed as the sum over
    the kt time taps of 2-D convolutions of the frames folded into the batch (or, for very few input
    channels, `STACKED_TAPS_MAX_CHANNELS`, one 2-D convolution over the taps stacked into the channels).
    A `WinogradKernel` runs a stride-1, undilated 3x3x3 convolution by `conv3d_winograd` instead.

    The result is the 3-D convolution's (only the order of the float sums differs: each tap accumulates in
    float32 or wider, the kt partial sums are added in that type, then rounded once to the input's type).
    Why not ``lax.conv_general_dilated`` in 3-D: XLA:CPU lowers a 3-D convolution to a generic loop nest that
    reaches 35-70 GFLOP/s on the decoder's shapes, while its 2-D convolutions run Eigen's tiled spatial
    kernel at 80-120 GFLOP/s on the same machine (measured on a 2-core AVX-512 Xeon; `benchmarks.vae`
    prints the per-layer figures), so three 2-D convolutions beat one 3-D convolution by about 2x.
    """
    if isinstance(kernel, WinogradKernel):
        if tuple(strides) == (1, 1, 1) and time_dilation == 1 and kernel.shape[:3] == (3, 3, 3):
            return conv3d_winograd(x, kernel.u, bias, precision)
        kernel = kernel.stacked()
    kt = kernel.shape[0]
    b, t, h, w, c = x.shape
    st = strides[0]
    span = time_dilation * (kt - 1)
    t_out = (t - span - 1) // st + 1
    if t_out < 1:
        raise VAEInputError(f"conv3d: {t} frames are fewer than the kernel's time span {span + 1}")
    dt = jnp.promote_types(x.dtype, kernel.dtype)
    acc = jnp.promote_types(dt, jnp.float32)
    last = (t_out - 1) * st + 1
    taps = [x[:, a * time_dilation : a * time_dilation + last : st] for a in range(kt)]
    if c * kt <= STACKED_TAPS_MAX_CHANNELS:  # one 2-D convolution over the taps stacked into the channels
        kh, kw = kernel.shape[1:3]
        stacked = jnp.transpose(kernel, (1, 2, 0, 3, 4)).reshape(kh, kw, kt * c, -1)  # (kh, kw, tap-major, O)
        pairs = [(jnp.concatenate(taps, axis=-1), stacked)]
    else:
        pairs = list(zip(taps, kernel, strict=True))
    out = None
    for frames, k in pairs:
        y = jax.lax.conv_general_dilated(
            frames.reshape(b * t_out, h, w, -1).astype(dt),
            k.astype(dt),
            strides[1:],
            "VALID",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
            precision=precision,
            preferred_element_type=acc,
        )
        out = y if out is None else out + y
    assert out is not None
    if bias is not None:
        out = out + bias.astype(acc)
    return out.astype(dt).reshape(b, t_out, *out.shape[1:])


def apply_conv3d(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    """``conv(x)`` for a VALID 3-D `nnx.Conv` (its kernel, bias, strides, time dilation and precision), by
    `conv3d_by_time_taps`."""
    strides = conv.strides if isinstance(conv.strides, tuple) else (conv.strides,) * 3
    dilation = (
        conv.kernel_dilation if isinstance(conv.kernel_dilation, tuple) else (conv.kernel_dilation,) * 3
    )
    if conv.padding != "VALID" or tuple(dilation[1:]) != (1, 1):
        raise VAEInputError(
            f"apply_conv3d: needs padding 'VALID' and no spatial dilation; got {conv.padding!r}, {dilation}"
        )
    bias = conv.bias[...] if conv.bias is not None else None
    return conv3d_by_time_taps(x, conv.kernel[...], bias, tuple(strides), dilation[0], conv.precision)


class CogVideoXSafeConv3d(nnx.Module):
    """A plain 3-D convolution with ``kernel`` (kt, kh, kw, I, O) and ``bias``, VALID, no padding.

    (The torch twin splits > 2 GiB inputs along time; XLA needs no such split, and the result is the same.)
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any = 1,
        stride: Any = 1,
        padding: int = 0,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        if padding:
            raise VAEInputError("CogVideoXSafeConv3d: only padding=0 is supported in the port")
        s = (stride,) * 3 if isinstance(stride, int) else tuple(stride)
        self.in_channels = in_channels
        self.kernel = nnx.Param(jnp.zeros((*k, in_channels, out_channels), jnp.float32))
        self.bias = nnx.Param(jnp.zeros((out_channels,), jnp.float32))
        self.strides = s

    def __call__(self, x: jax.Array) -> jax.Array:
        kernel = self.kernel[...]
        dt = jnp.promote_types(x.dtype, kernel.dtype)
        out = conv3d_by_time_taps(x.astype(dt), kernel, self.bias[...], self.strides)
        _record(self, out)
        return out


class CogVideoXCausalConv3d(nnx.Module):
    """Causal 3-D convolution. ``__call__(x, conv_cache=None) -> (out, cache)``.

    ``pad_mode == "replicate"``: edge padding (k_t - 1 frames in front, H/W symmetric), cache ``None``.
    Otherwise time is padded in front with the cache, or k_t - 1 copies of frame 0; H is zero-padded by
    the width pad and W by the height pad (diffusers' swapped Conv3d padding slots); the cache is the last
    k_t - 1 frames of the time-padded input (``None`` when k_t == 1).
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: Any,
        stride: Any = 1,
        dilation: int = 1,
        pad_mode: str = "constant",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        k = (kernel_size,) * 3 if isinstance(kernel_size, int) else tuple(kernel_size)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.pad_mode = pad_mode
        self.time_kernel_size = k[0]
        self.time_pad = k[0] - 1
        self.height_pad = (k[1] - 1) // 2
        self.width_pad = (k[2] - 1) // 2
        stride = stride if isinstance(stride, tuple) else (stride, 1, 1)
        self.conv = _conv(_rngs(rngs), in_channels, out_channels, k, stride, (dilation, 1, 1))

    def __call__(
        self, x: jax.Array, conv_cache: jax.Array | None = None
    ) -> tuple[jax.Array, jax.Array | None]:
        if x.ndim != 5 or x.shape[-1] != self.in_channels:
            _check_5d(x, self.in_channels, type(self).__name__)
        kt = self.time_kernel_size
        if self.pad_mode == "replicate":
            x = jnp.pad(
                x,
                ((0, 0), (self.time_pad, 0), (self.height_pad,) * 2, (self.width_pad,) * 2, (0, 0)),
                mode="edge",
            )
            cache = None
        else:
            if kt > 1:
                front = conv_cache if conv_cache is not None else jnp.repeat(x[:, :1], kt - 1, axis=1)
                x = jnp.concatenate([front.astype(x.dtype), x], axis=1)
                cache = x[:, -(kt - 1) :]
            else:
                cache = None
            x = jnp.pad(x, ((0, 0), (0, 0), (self.width_pad,) * 2, (self.height_pad,) * 2, (0, 0)))
        out = apply_conv3d(self.conv, x)
        _record(self, out)
        return out, cache


# -- nearest resize with torch's legacy index rule --------------------------------------------------------


def nearest_indices(in_size: int, out_size: int) -> np.ndarray:
    """torch's ``nearest`` source indices: identity, ``i >> 1`` for exactly 2x, else floor(i * (float)in/out)."""
    i = np.arange(out_size)
    if out_size == in_size:
        return i
    if out_size == 2 * in_size:
        return i >> 1
    scale = np.float32(in_size) / np.float32(out_size)
    return np.minimum(np.floor(i.astype(np.float32) * scale).astype(np.int64), in_size - 1)


def resize_nearest(x: jax.Array, size: tuple[int, int, int]) -> jax.Array:
    """``F.interpolate(x, size)`` (nearest) over the (T, H, W) axes of a channel-last array: a static gather."""
    for axis, n in zip((1, 2, 3), size, strict=True):
        if x.shape[axis] != n:
            x = jnp.take(x, jnp.asarray(nearest_indices(x.shape[axis], n)), axis=axis)
    return x


class CogVideoXSpatialNorm3D(nnx.Module):
    def __init__(self, f_channels: int, zq_channels: int, groups: int = 32, *, rngs: nnx.Rngs | None = None):
        rngs = _rngs(rngs)
        self.norm_layer = GroupNorm(groups, f_channels, eps=1e-6)
        self.conv_y = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1, rngs=rngs)
        self.conv_b = CogVideoXCausalConv3d(zq_channels, f_channels, kernel_size=1, stride=1, rngs=rngs)

    def __call__(self, f: jax.Array, zq: jax.Array, conv_cache: dict | None = None) -> tuple[jax.Array, dict]:
        conv_cache = conv_cache or {}
        t, h, w = f.shape[1:4]
        if t > 1 and t % 2 == 1:
            z_first = resize_nearest(zq[:, :1], (1, h, w))
            z_rest = resize_nearest(zq[:, 1:], (t - 1, h, w))
            zq = jnp.concatenate([z_first, z_rest], axis=1)
        else:
            zq = resize_nearest(zq, (t, h, w))
        new_cache = {}
        conv_y, new_cache["conv_y"] = self.conv_y(zq, conv_cache.get("conv_y"))
        conv_b, new_cache["conv_b"] = self.conv_b(zq, conv_cache.get("conv_b"))
        out = self.norm_layer(f) * conv_y + conv_b
        _record(self, out)
        return out, new_cache


class CogVideoXResnetBlock3D(nnx.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int | None = None,
        dropout: float = 0.0,
        temb_channels: int = 512,
        groups: int = 32,
        eps: float = 1e-6,
        non_linearity: str = "swish",
        conv_shortcut: bool = False,
        spatial_norm_dim: int | None = None,
        pad_mode: str = "first",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        rngs = _rngs(rngs)
        out_channels = out_channels or in_channels
        for ch in (in_channels, out_channels):
            if ch % groups:
                raise VAEInputError(f"CogVideoXResnetBlock3D: {ch} channels not divisible by groups={groups}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.use_conv_shortcut = conv_shortcut
        self.spatial_norm_dim = spatial_norm_dim
        if spatial_norm_dim is None:
            self.norm1 = GroupNorm(groups, in_channels, eps)
            self.norm2 = GroupNorm(groups, out_channels, eps)
        else:
            self.norm1 = CogVideoXSpatialNorm3D(in_channels, spatial_norm_dim, groups, rngs=rngs)
            self.norm2 = CogVideoXSpatialNorm3D(out_channels, spatial_norm_dim, groups, rngs=rngs)
        self.conv1 = CogVideoXCausalConv3d(in_channels, out_channels, 3, pad_mode=pad_mode, rngs=rngs)
        self.temb_proj = nnx.Linear(temb_channels, out_channels, rngs=rngs) if temb_channels > 0 else None
        self.conv2 = CogVideoXCausalConv3d(out_channels, out_channels, 3, pad_mode=pad_mode, rngs=rngs)
        shortcut = None
        if in_channels != out_channels:
            if conv_shortcut:
                shortcut = CogVideoXCausalConv3d(in_channels, out_channels, 3, pad_mode=pad_mode, rngs=rngs)
            else:
                shortcut = CogVideoXSafeConv3d(in_channels, out_channels, 1, rngs=rngs)
        self.conv_shortcut = shortcut

    def __call__(
        self,
        inputs: jax.Array,
        temb: jax.Array | None = None,
        zq: jax.Array | None = None,
        conv_cache: dict | None = None,
    ) -> tuple[jax.Array, dict]:
        conv_cache = conv_cache or {}
        new_cache: dict = {}
        h = inputs
        if zq is not None:
            h, new_cache["norm1"] = self.norm1(h, zq, conv_cache.get("norm1"))
        else:
            h = self.norm1(h)
        h = silu(h)
        h, new_cache["conv1"] = self.conv1(h, conv_cache.get("conv1"))
        if temb is not None:
            h = h + self.temb_proj(silu(temb))[:, None, None, None, :]
        if zq is not None:
            h, new_cache["norm2"] = self.norm2(h, zq, conv_cache.get("norm2"))
        else:
            h = self.norm2(h)
        h = silu(h)
        h, new_cache["conv2"] = self.conv2(h, conv_cache.get("conv2"))
        if self.in_channels != self.out_channels:
            if self.use_conv_shortcut:
                inputs, new_cache["conv_shortcut"] = self.conv_shortcut(
                    inputs, conv_cache.get("conv_shortcut")
                )
            else:
                inputs = self.conv_shortcut(inputs)
        out = h + inputs
        _record(self, out)
        return out, new_cache


def _per_frame_conv2d(conv: nnx.Conv, x: jax.Array) -> jax.Array:
    b, t = x.shape[:2]
    y = conv(x.reshape(b * t, *x.shape[2:]))
    return y.reshape(b, t, *y.shape[1:])


def compress_time_avg(x: jax.Array) -> jax.Array:
    """avg_pool1d(2, 2) over time on (B, T, H, W, C); odd T keeps frame 0 apart. The pool acts on time
    only: the torch permute to (B, H, W, C, T) is a transpose here, never a bare reshape."""
    b, t = x.shape[:2]
    if t % 2 == 1:
        rest = x[:, 1:]
        if rest.shape[1] > 0:
            rest = rest.reshape(b, rest.shape[1] // 2, 2, *x.shape[2:]).sum(axis=2) / 2
        return jnp.concatenate([x[:, :1], rest], axis=1)
    return x.reshape(b, t // 2, 2, *x.shape[2:]).sum(axis=2) / 2


class CogVideoXDownsample3D(nnx.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 2,
        padding: int = 0,
        compress_time: bool = False,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self.padding = padding
        self.compress_time = compress_time
        self.conv = _conv(
            _rngs(rngs), in_channels, out_channels, (kernel_size, kernel_size), (stride, stride)
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        if self.compress_time:
            x = compress_time_avg(x)
        p = self.padding
        x = jnp.pad(x, ((0, 0), (0, 0), (p, p + 1), (p, p + 1), (0, 0)))
        out = _per_frame_conv2d(self.conv, x)
        _record(self, out)
        return out


def _up2(x: jax.Array, axes: tuple[int, ...]) -> jax.Array:
    for a in axes:
        x = jnp.repeat(x, 2, axis=a)
    return x


class CogVideoXUpsample3D(nnx.Module):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int = 3,
        stride: int = 1,
        padding: int = 1,
        compress_time: bool = False,
        *,
        rngs: nnx.Rngs | None = None,
    ):
        self.padding = padding
        self.compress_time = compress_time
        self.conv = _conv(
            _rngs(rngs), in_channels, out_channels, (kernel_size, kernel_size), (stride, stride)
        )

    def __call__(self, x: jax.Array) -> jax.Array:
        t = x.shape[1]
        if self.compress_time and t > 1 and t % 2 == 1:
            x = jnp.concatenate([_up2(x[:, :1], (2, 3)), _up2(x[:, 1:], (1, 2, 3))], axis=1)
        elif self.compress_time and t > 1:
            x = _up2(x, (1, 2, 3))
        else:  # per frame, and T == 1 with compress_time: spatial only, T stays 1
            x = _up2(x, (2, 3))
        p = self.padding
        x = jnp.pad(x, ((0, 0), (0, 0), (p, p), (p, p), (0, 0)))
        out = _per_frame_conv2d(self.conv, x)
        _record(self, out)
        return out


class _ResnetStack(nnx.Module):
    def _run(self, h, temb, zq, conv_cache):
        conv_cache = conv_cache or {}
        new_cache = {}
        for i, resnet in enumerate(self.resnets):
            key = f"resnet_{i}"
            h, new_cache[key] = resnet(h, temb, zq, conv_cache.get(key))
        return h, new_cache


class CogVideoXDownBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        add_downsample: bool = True,
        downsample_padding: int = 0,
        compress_time: bool = False,
        pad_mode: str = "first",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        rngs = _rngs(rngs)
        self.resnets = nnx.List(
            [
                CogVideoXResnetBlock3D(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    dropout,
                    temb_channels,
                    resnet_groups,
                    resnet_eps,
                    resnet_act_fn,
                    pad_mode=pad_mode,
                    rngs=rngs,
                )
                for i in range(num_layers)
            ]
        )
        self.downsamplers = (
            nnx.List(
                [
                    CogVideoXDownsample3D(
                        out_channels,
                        out_channels,
                        padding=downsample_padding,
                        compress_time=compress_time,
                        rngs=rngs,
                    )
                ]
            )
            if add_downsample
            else None
        )

    def __call__(self, hidden_states, temb=None, zq=None, conv_cache=None):
        h, new_cache = self._run(hidden_states, temb, zq, conv_cache)
        if self.downsamplers is not None:
            for d in self.downsamplers:
                h = d(h)
        _record(self, h)
        return h, new_cache


class CogVideoXMidBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        temb_channels: int,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        spatial_norm_dim: int | None = None,
        pad_mode: str = "first",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        rngs = _rngs(rngs)
        self.resnets = nnx.List(
            [
                CogVideoXResnetBlock3D(
                    in_channels,
                    in_channels,
                    dropout,
                    temb_channels,
                    resnet_groups,
                    resnet_eps,
                    resnet_act_fn,
                    spatial_norm_dim=spatial_norm_dim,
                    pad_mode=pad_mode,
                    rngs=rngs,
                )
                for _ in range(num_layers)
            ]
        )

    def __call__(self, hidden_states, temb=None, zq=None, conv_cache=None):
        h, new_cache = self._run(hidden_states, temb, zq, conv_cache)
        _record(self, h)
        return h, new_cache


class CogVideoXUpBlock3D(_ResnetStack):
    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        temb_channels: int,
        dropout: float = 0.0,
        num_layers: int = 1,
        resnet_eps: float = 1e-6,
        resnet_act_fn: str = "swish",
        resnet_groups: int = 32,
        spatial_norm_dim: int = 16,
        add_upsample: bool = True,
        upsample_padding: int = 1,
        compress_time: bool = False,
        pad_mode: str = "first",
        *,
        rngs: nnx.Rngs | None = None,
    ):
        rngs = _rngs(rngs)
        self.resnets = nnx.List(
            [
                CogVideoXResnetBlock3D(
                    in_channels if i == 0 else out_channels,
                    out_channels,
                    dropout,
                    temb_channels,
                    resnet_groups,
                    resnet_eps,
                    resnet_act_fn,
                    spatial_norm_dim=spatial_norm_dim,
                    pad_mode=pad_mode,
                    rngs=rngs,
                )
                for i in range(num_layers)
            ]
        )
        self.upsamplers = (
            nnx.List(
                [
                    CogVideoXUpsample3D(
                        out_channels,
                        out_channels,
                        padding=upsample_padding,
                        compress_time=compress_time,
                        rngs=rngs,
                    )
                ]
            )
            if add_upsample
            else None
        )

    def __call__(self, hidden_states, temb=None, zq=None, conv_cache=None):
        h, new_cache = self._run(hidden_states, temb, zq, conv_cache)
        if self.upsamplers is not None:
            for u in self.upsamplers:
                h = u(h)
        _record(self, h)
        return h, new_cache
