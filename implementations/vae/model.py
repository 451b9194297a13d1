"""Flax NNX twins of `reference.vae.model`: `CogVideoXEncoder3D`, `CogVideoXDecoder3D` and
`AutoencoderKLCogVideoX` (channel-last), with frame-batched and tiled encode/decode.

One frame batch (or one tile's frame batch) is one call of a jitted function cached at module level by
the static graph definition, so compile time depends on the number of distinct chunk shapes (at most
two frame-batch lengths, times at most four tile shapes), never on the number of frame batches or tiles.
Tile blending reproduces diffusers' in-place ``blend_v``/``blend_h`` by writing blended tiles back.
"""

from __future__ import annotations

import weakref
from functools import partial, update_wrapper
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import nnx

from contracts.vae.config import CogVideoXVAEConfig, check_float, check_sample_size
from contracts.vae.plans import frame_batches, tile_plan
from implementations.vae.layers import (
    WINOGRAD_MIN_CHANNELS,
    CogVideoXCausalConv3d,
    CogVideoXDownBlock3D,
    CogVideoXMidBlock3D,
    CogVideoXSpatialNorm3D,
    CogVideoXUpBlock3D,
    GroupNorm,
    WinogradKernel,
    _check_5d,
    _record,
    _rngs,
    silu,
    winograd_kernel,
)


class CogVideoXEncoder3D(nnx.Module):
    def __init__(self, config: CogVideoXVAEConfig, *, rngs: nnx.Rngs | None = None):
        rngs = _rngs(rngs)
        c = config
        boc = c.block_out_channels
        self.conv_in = CogVideoXCausalConv3d(c.in_channels, boc[0], 3, pad_mode="first", rngs=rngs)
        blocks = []
        output_channel = boc[0]
        for i in range(len(c.down_block_types)):
            input_channel, output_channel = output_channel, boc[i]
            blocks.append(
                CogVideoXDownBlock3D(
                    input_channel,
                    output_channel,
                    0,
                    num_layers=c.layers_per_block,
                    resnet_eps=c.norm_eps,
                    resnet_act_fn=c.act_fn,
                    resnet_groups=c.norm_num_groups,
                    add_downsample=i != len(boc) - 1,
                    compress_time=i < c.temporal_compress_level,
                    rngs=rngs,
                )
            )
        self.down_blocks = nnx.List(blocks)
        self.mid_block = CogVideoXMidBlock3D(
            boc[-1],
            0,
            num_layers=2,
            resnet_eps=c.norm_eps,
            resnet_act_fn=c.act_fn,
            resnet_groups=c.norm_num_groups,
            rngs=rngs,
        )
        self.norm_out = GroupNorm(c.norm_num_groups, boc[-1], eps=1e-6)
        self.conv_out = CogVideoXCausalConv3d(boc[-1], 2 * c.latent_channels, 3, pad_mode="first", rngs=rngs)

    def __call__(self, sample, temb=None, conv_cache=None):
        conv_cache = conv_cache or {}
        new: dict[str, Any] = {}
        h, new["conv_in"] = self.conv_in(sample, conv_cache.get("conv_in"))
        for i, block in enumerate(self.down_blocks):
            key = f"down_block_{i}"
            h, new[key] = block(h, temb, None, conv_cache.get(key))
        h, new["mid_block"] = self.mid_block(h, temb, None, conv_cache.get("mid_block"))
        h = silu(self.norm_out(h))
        h, new["conv_out"] = self.conv_out(h, conv_cache.get("conv_out"))
        _record(self, h)
        return h, new


class CogVideoXDecoder3D(nnx.Module):
    def __init__(self, config: CogVideoXVAEConfig, *, rngs: nnx.Rngs | None = None):
        rngs = _rngs(rngs)
        c = config
        rev = list(reversed(c.block_out_channels))
        zc = c.latent_channels
        self.conv_in = CogVideoXCausalConv3d(zc, rev[0], 3, pad_mode="first", rngs=rngs)
        self.mid_block = CogVideoXMidBlock3D(
            rev[0],
            0,
            num_layers=2,
            resnet_eps=c.norm_eps,
            resnet_act_fn=c.act_fn,
            resnet_groups=c.norm_num_groups,
            spatial_norm_dim=zc,
            rngs=rngs,
        )
        blocks = []
        output_channel = rev[0]
        for i in range(len(c.up_block_types)):
            prev, output_channel = output_channel, rev[i]
            blocks.append(
                CogVideoXUpBlock3D(
                    prev,
                    output_channel,
                    0,
                    num_layers=c.layers_per_block + 1,
                    resnet_eps=c.norm_eps,
                    resnet_act_fn=c.act_fn,
                    resnet_groups=c.norm_num_groups,
                    spatial_norm_dim=zc,
                    add_upsample=i != len(rev) - 1,
                    compress_time=i < c.temporal_compress_level,
                    rngs=rngs,
                )
            )
        self.up_blocks = nnx.List(blocks)
        self.norm_out = CogVideoXSpatialNorm3D(rev[-1], zc, groups=c.norm_num_groups, rngs=rngs)
        self.conv_out = CogVideoXCausalConv3d(rev[-1], c.out_channels, 3, pad_mode="first", rngs=rngs)

    def __call__(self, sample, temb=None, conv_cache=None):
        conv_cache = conv_cache or {}
        new: dict[str, Any] = {}
        h, new["conv_in"] = self.conv_in(sample, conv_cache.get("conv_in"))
        h, new["mid_block"] = self.mid_block(h, temb, sample, conv_cache.get("mid_block"))
        for i, block in enumerate(self.up_blocks):
            key = f"up_block_{i}"
            h, new[key] = block(h, temb, sample, conv_cache.get(key))
        h, new["norm_out"] = self.norm_out(h, sample, conv_cache.get("norm_out"))
        h = silu(h)
        h, new["conv_out"] = self.conv_out(h, conv_cache.get("conv_out"))
        _record(self, h)
        return h, new


# -- jitted chunk functions (module level: one cache for every model of the same configuration) -----------

COMPILER_OPTIONS: dict[str, str] = {"xla_cpu_experimental_ynn_fusion_type": ""}
"""XLA compile options of the model's jitted functions (`apply_module`, `apply_bound`): no YNNPACK fusions.
XLA:CPU (jax 0.10) hands convolutions to YNNPACK fusions by default; on the VAE's convolutions they ran at
about half the speed of XLA's own (Eigen) convolution kernels, which are what the tap convolutions of
`implementations.vae.layers.conv3d_by_time_taps` were written for. Measured on a 2-core AMD EPYC (Zen 4),
same process, interleaved: tiny2 decode 50.5 -> 28.2 ms, tiny2 encode 39.0 -> 21.0 ms, the CogVideoX-width
decode at 32 px 1580 -> 1061 ms; a 3x3 convolution of 8 frames of 34x34x128 ran at 37 GFLOP/s in a YNNPACK
fusion. Keeping YNNPACK for matmuls only gave the same times. Used where JAX's default backend is the CPU
only (an accelerator's compiler has no use for them, and a plugin may reject options it does not know)."""


class _TopLevelJit:
    """``jax.jit(fun, **jit_kwargs)`` compiled with `COMPILER_OPTIONS` when called at the top level on the
    CPU backend, and as a plain jit otherwise: inside another trace (a user's ``jax.jit``, ``eval_shape``,
    ``vmap``), because JAX accepts compile options on a top-level jit only and raises on a nested one, and
    on an accelerator. Argument 0 is static; the others decide: any JAX tracer among their leaves means
    "inside a trace". ``lower`` lowers the form a top-level call would compile."""

    def __init__(self, fun: Any, **jit_kwargs: Any) -> None:
        update_wrapper(self, fun)
        self._top = jax.jit(fun, compiler_options=COMPILER_OPTIONS, **jit_kwargs)
        self._nested = jax.jit(fun, **jit_kwargs)

    def _form(self, args: tuple[Any, ...]) -> Any:
        if jax.default_backend() != "cpu" or any(
            isinstance(x, jax.core.Tracer) for x in jax.tree.leaves(args)
        ):
            return self._nested
        return self._top

    def __call__(self, static: Any, *args: Any) -> Any:
        return self._form(args)(static, *args)

    def lower(self, static: Any, *args: Any) -> Any:
        return self._form(args).lower(static, *args)


def _apply_module(graphdef: nnx.GraphDef, params: Any, *args: Any) -> Any:
    """``merge(graphdef, params)(*args)`` compiled once per (configuration, argument shapes)."""
    return nnx.merge(graphdef, params)(*args)


apply_module = _TopLevelJit(_apply_module, static_argnums=0)


@partial(jax.jit, static_argnums=(2, 3))
def _window_jit(x: jax.Array, starts: Any, sizes: tuple[int, ...], axes: tuple[int, ...]) -> jax.Array:
    for start, size, axis in zip(starts, sizes, axes, strict=True):
        x = jax.lax.dynamic_slice_in_dim(x, start, size, axis=axis)
    return x


def window(x: Any, starts: tuple[int, ...], sizes: tuple[int, ...], axes: tuple[int, ...]) -> Any:
    """``x`` sliced along ``axes``; NumPy slicing on host arrays, one jitted dynamic slice (compiled per
    window size, not per offset) on device arrays, so the number of frame batches or tiles never compiles."""
    sizes = tuple(min(size, x.shape[a] - s) for s, size, a in zip(starts, sizes, axes, strict=True))
    if isinstance(x, np.ndarray):
        idx = [slice(None)] * x.ndim
        for s, size, a in zip(starts, sizes, axes, strict=True):
            idx[a] = slice(s, s + size)
        return x[tuple(idx)]
    return _window_jit(x, tuple(np.int32(s) for s in starts), sizes, axes)


def concat(parts: list[Any], axis: int) -> Any:
    """Concatenate chunk outputs on the host (no per-count compilation), keeping the first part's sharding."""
    if len(parts) == 1:
        return parts[0]
    out = np.concatenate([np.asarray(p) for p in parts], axis=axis)
    return jax.device_put(out, parts[0].sharding) if isinstance(parts[0], jax.Array) else out


class Bound:
    """The static half of a split module for `apply_bound`: its graph definition and the tree structure of
    its parameter values, hashed once. JAX hashes a static argument on every call, and hashing an NNX
    GraphDef walks the whole graph (with the per-call ``to_pure_dict`` and the flattening of the nested
    parameter dict, 3.7 ms of a 42 ms tiny2 encode on the 2-core CPU machine). Two models of one
    configuration have equal Bounds and share one compilation."""

    __slots__ = ("_hash", "graphdef", "treedef")

    def __init__(self, graphdef: nnx.GraphDef, treedef: Any) -> None:
        self.graphdef = graphdef
        self.treedef = treedef
        self._hash = hash((graphdef, treedef))

    def __hash__(self) -> int:
        return self._hash

    def __eq__(self, other: object) -> bool:
        return self is other or (
            isinstance(other, Bound)
            and self._hash == other._hash
            and self.graphdef == other.graphdef
            and self.treedef == other.treedef
        )


def _apply_bound(bound: Bound, leaves: list[Any], *args: Any) -> Any:
    """`apply_module` for a `bind` split: the parameter values come as a flat list in ``bound.treedef``'s
    order. A leaf may be a tuple of a 3-D convolution kernel's time taps (`bind_taps`): it is stacked back
    here, and since the convolutions read the kernel one tap at a time (`conv3d_by_time_taps`), XLA's
    simplifier turns each tap's slice of the stack into that tap's own input, so nothing is copied."""
    leaves = [jnp.stack(leaf) if isinstance(leaf, tuple) else leaf for leaf in leaves]
    return nnx.merge(bound.graphdef, jax.tree.unflatten(bound.treedef, leaves))(*args)


apply_bound = _TopLevelJit(_apply_bound, static_argnums=0)


# (Bound, the module's Variable objects in the order of its treedef's leaves) per module, so that a call
# neither walks the NNX graph again (a walk costs about 5 ms for the tiny2 decoder: as much as its whole
# jitted run on a small latent) nor hashes it. Weak keys: a model that is dropped drops its entry.
_BINDINGS: weakref.WeakKeyDictionary[nnx.Module, tuple[Bound, list[nnx.Variable]]] = (
    weakref.WeakKeyDictionary()
)


def bind(module: nnx.Module) -> tuple[Bound, list[jax.Array]]:
    """The module's `Bound` and its parameter values as a flat list, for `apply_bound`.

    The graph walk is done once per module; the values are read from the module's Variables on every call,
    so in-place updates (``nnx.update``, loading weights, an optimizer step) are always seen. Changing the
    module's structure (assigning a new submodule or a new Variable object) after its first call is not
    supported: build a new model instead.
    """
    cached = _BINDINGS.get(module)
    if cached is None:
        graphdef, state = nnx.split(module)
        variables = dict(state.flat_state())
        paths, treedef = jax.tree_util.tree_flatten_with_path(nnx.to_pure_dict(state))
        # the Variables in the pure dict's leaf order (its keys are the state's paths)
        ordered = [variables[tuple(k.key for k in path)] for path, _ in paths]
        cached = _BINDINGS[module] = (Bound(graphdef, treedef), ordered)
    bound, ordered = cached
    return bound, [_value(v) for v in ordered]


# Per module: {leaf index: (kernel value, Winograd threshold, its time taps or WinogradKernel)} for
# `bind_taps`, made for the value and threshold last seen.
_TAPS: weakref.WeakKeyDictionary[nnx.Module, dict[int, tuple[jax.Array, int | None, Any]]] = (
    weakref.WeakKeyDictionary()
)


def _has_time_taps(value: Any) -> bool:
    """A 3-D convolution kernel (kt, kh, kw, I, O) with kt > 1, held by one CPU device."""
    return (
        isinstance(value, jax.Array)
        and not isinstance(value, jax.core.Tracer)
        and value.ndim == 5
        and value.shape[0] > 1
        and not value.is_deleted()
        and [d.platform for d in value.devices()] == ["cpu"]
    )


def time_taps(kernel: jax.Array) -> tuple[jax.Array, ...]:
    """``kernel[a]`` for each time tap ``a`` of a CPU kernel, as arrays that share the kernel's memory.

    ``np.asarray`` of a CPU array is a read-only view of its buffer, and ``jax.device_put`` of a view of it
    is zero-copy where the tap starts on XLA's alignment (a copy elsewhere, still the same values); each
    tap keeps the kernel's buffer alive through that view."""
    host = np.asarray(kernel)
    device = next(iter(kernel.devices()))
    return tuple(jax.device_put(host[a], device) for a in range(kernel.shape[0]))


def _winograd_eligible(kernel: jax.Array, min_channels: int | None) -> bool:
    """A float32 3x3x3 kernel with at least ``min_channels`` input channels (None: never)."""
    return (
        min_channels is not None
        and kernel.shape[:3] == (3, 3, 3)
        and kernel.shape[3] >= min_channels
        and kernel.dtype == jnp.float32
    )


def winograd_taps(kernel: jax.Array) -> WinogradKernel:
    """The kernel's `time_taps` with its `winograd_kernel` (made on the host in float64, then put on the
    kernel's device): 16/9 of the kernel's memory beside it."""
    device = next(iter(kernel.devices()))
    return WinogradKernel(time_taps(kernel), jax.device_put(winograd_kernel(np.asarray(kernel)), device))


def bind_taps(
    module: nnx.Module, winograd_min_channels: int | None = WINOGRAD_MIN_CHANNELS
) -> tuple[Bound, list[Any]]:
    """`bind`, with each 3-D convolution kernel on the CPU (`_has_time_taps`) replaced by the tuple of its
    time taps (`time_taps`), for `apply_bound`.

    XLA:CPU copies every slice it takes of an input, and the convolutions take each kernel one time tap at
    a time: with whole kernels, every call copied all the model's convolution weights once. Those copies
    took 406 ms of thread time in a 1.0 s decode at the CogVideoX widths (2-core AMD EPYC); with the taps as
    separate inputs, same process: decode 1000-1140 -> 860-876 ms, encode 366-370 -> 274-277 ms, the same
    values bit for bit. The taps are made once per kernel value (a weight update makes new ones on the next
    call) and share the kernel's memory, so they cost neither a copy per call nor memory; the last value's
    taps stay referenced until the module's next call or until the module is dropped.

    A float32 3x3x3 kernel with at least ``winograd_min_channels`` input channels (None: none) comes as a
    `WinogradKernel` instead: its taps and its Winograd transform (`winograd_taps`, 16/9 of the kernel's
    memory, made once per kernel value as the taps are), so that its stride-1 convolutions run by
    `implementations.vae.layers.conv3d_winograd`."""
    bound, leaves = bind(module)
    seen = _TAPS.setdefault(module, {})
    out: list[Any] = []
    for i, leaf in enumerate(leaves):
        if not _has_time_taps(leaf):
            out.append(leaf)
            continue
        hit = seen.get(i)
        if hit is None or hit[0] is not leaf or hit[1] != winograd_min_channels:
            made = winograd_taps(leaf) if _winograd_eligible(leaf, winograd_min_channels) else time_taps(leaf)
            hit = seen[i] = (leaf, winograd_min_channels, made)
        out.append(hit[2])
    return bound, out


def _value(v: nnx.Variable) -> Any:
    """A Variable's value: its stored array where nothing hooks the read (each `nnx.Variable.get_value`
    copies the value through a ``jax.tree.map``, 15 us per Variable), else what ``get_value`` returns."""
    if v.get_metadata("on_get_value", None) is None and isinstance(v.get_raw_value(), jax.Array):
        return v.get_raw_value()
    return v.get_value()


def split_params(module: nnx.Module) -> tuple[nnx.GraphDef, Any]:
    """The module's graph definition and its current parameter values as a pure dict, for `apply_module`
    (the graph walk done once per module, as in `bind`)."""
    bound, leaves = bind(module)
    return bound.graphdef, jax.tree.unflatten(bound.treedef, leaves)


def _blend(a: np.ndarray, b: np.ndarray, extent: int, axis: int) -> np.ndarray:
    """diffusers' blend_v (axis 2 = H) / blend_h (axis 3 = W) on channel-last tiles; returns the new b."""
    extent = min(a.shape[axis], b.shape[axis], extent)
    b = b.copy()
    for y in range(extent):
        sl_b = [slice(None)] * b.ndim
        sl_a = [slice(None)] * a.ndim
        sl_b[axis], sl_a[axis] = y, -extent + y
        b[tuple(sl_b)] = a[tuple(sl_a)] * (1 - y / extent) + b[tuple(sl_b)] * (y / extent)
    return b


class AutoencoderKLCogVideoX(nnx.Module):
    """The CogVideoX VAE on channel-last video. ``encode`` returns the posterior moments (mean and logvar
    on the last axis), ``decode`` the video, ``__call__`` decodes the posterior mode."""

    def __init__(
        self, config: CogVideoXVAEConfig | None = None, *, rngs: nnx.Rngs | None = None, **kwargs: Any
    ):
        rngs = _rngs(rngs)
        self.config = config or CogVideoXVAEConfig(**kwargs)
        self.encoder = CogVideoXEncoder3D(self.config, rngs=rngs)
        self.decoder = CogVideoXDecoder3D(self.config, rngs=rngs)
        self.use_tiling = False
        # float32 3x3x3 convolutions with at least this many input channels run by Winograd's F(2x2, 3x3) on
        # the CPU (`bind_taps`); None runs every convolution directly
        self.winograd_min_channels: int | None = WINOGRAD_MIN_CHANNELS
        self.num_latent_frames_batch_size = 2
        self.num_sample_frames_batch_size = 8
        self.tile_sample_min_height = self.config.sample_height // 2
        self.tile_sample_min_width = self.config.sample_width // 2
        n = 2 ** (len(self.config.block_out_channels) - 1)
        self.tile_latent_min_height = int(self.tile_sample_min_height / n)
        self.tile_latent_min_width = int(self.tile_sample_min_width / n)

    def enable_tiling(self) -> None:
        self.use_tiling = True

    def disable_tiling(self) -> None:
        self.use_tiling = False

    # -- validation ------------------------------------------------------------------------------------
    def _check_sample(self, x: Any) -> None:
        _check_5d(x, self.config.in_channels, "encode")
        check_sample_size(self.config, *np.shape(x)[1:4])
        check_float(x, "encode")

    # -- frame batches -----------------------------------------------------------------------------------
    def _frames(self, module: nnx.Module, x: jax.Array, frame_batch_size: int) -> jax.Array:
        bound, leaves = bind_taps(module, self.winograd_min_channels)
        cache = None
        outs = []
        for start, end in frame_batches(x.shape[1], frame_batch_size):
            out, cache = apply_bound(bound, leaves, window(x, (start,), (end - start,), (1,)), None, cache)
            outs.append(out)
        return concat(outs, axis=1)

    def _encode_frames(self, x: jax.Array) -> jax.Array:
        return self._frames(self.encoder, x, self.num_sample_frames_batch_size)

    def _decode_frames(self, z: jax.Array) -> jax.Array:
        return self._frames(self.decoder, z, self.num_latent_frames_batch_size)

    def encode(self, x: Any) -> jax.Array:
        self._check_sample(x)
        x = _as_array(x)
        h, w = x.shape[2:4]
        if self.use_tiling and (w > self.tile_sample_min_width or h > self.tile_sample_min_height):
            return self.tiled_encode(x)
        return self._encode_frames(x)

    def decode(self, z: Any) -> jax.Array:
        _check_5d(z, self.config.latent_channels, "decode")
        check_float(z, "decode")
        z = _as_array(z)
        h, w = z.shape[2:4]
        if self.use_tiling and (w > self.tile_latent_min_width or h > self.tile_latent_min_height):
            return self.tiled_decode(z)
        return self._decode_frames(z)

    # -- tiling ---------------------------------------------------------------------------------------------
    def _tiled(self, x: jax.Array, *, decode: bool) -> jax.Array:
        p = tile_plan(self.config, decode=decode)
        run = self._decode_frames if decode else self._encode_frames
        height, width = x.shape[2], x.shape[3]
        rows = []
        for i in range(0, height, p["stride_h"]):
            row = []
            for j in range(0, width, p["stride_w"]):
                row.append(np.asarray(run(window(x, (i, j), (p["tile_h"], p["tile_w"]), (2, 3)))))
            rows.append(row)
        result_rows = []
        for i, row in enumerate(rows):
            result_row = []
            for j in range(len(row)):
                tile = row[j]
                if i > 0:
                    tile = _blend(rows[i - 1][j], tile, p["blend_h"], axis=2)
                if j > 0:
                    tile = _blend(row[j - 1], tile, p["blend_w"], axis=3)
                row[j] = tile  # diffusers blends in place: the blended tile is the next neighbour's `a`
                result_row.append(tile[:, :, : p["crop_h"], : p["crop_w"]])
            result_rows.append(np.concatenate(result_row, axis=3))
        return jax.device_put(np.concatenate(result_rows, axis=2))

    def tiled_encode(self, x: jax.Array) -> jax.Array:
        return self._tiled(x, decode=False)

    def tiled_decode(self, z: jax.Array) -> jax.Array:
        return self._tiled(z, decode=True)

    @staticmethod
    def posterior(moments: jax.Array) -> tuple[jax.Array, jax.Array]:
        mean, logvar = jnp.split(moments, 2, axis=-1)
        return mean, jnp.clip(logvar, -30.0, 20.0)

    def __call__(self, sample: Any) -> jax.Array:
        mean, _ = self.posterior(self.encode(sample))
        return self.decode(mean)


def _as_array(x: Any) -> Any:
    return x if isinstance(x, (np.ndarray, jax.Array)) else np.asarray(x)
