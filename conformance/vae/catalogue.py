"""The catalogue of realistic porting bugs of the vae port, for `python -m conformance mutate`: each entry is a
source patch of `implementations/vae` that a porter could plausibly make, and the suite, under the `ci`
profile, must fail on it.

The first entries are the defects of `conformance.vae.mutants` (the function replacements that the negative
controls and the localizer inject), written as source patches; their ids are ``vae.<PATCHES key>``. The
others are further bugs of the kinds people make when porting CogVideoX's VAE: causal time padding, conv
caches, GroupNorm statistics (axes, groups, precision), nearest resizing, compress_time, transposed kernels,
padding sides, residual scaling, frame batches and tiles, the posterior's layout, and matmul precision.
"""

from __future__ import annotations

from conformance.mutate import Mutant

LAYERS = "implementations/vae/layers.py"
MODEL = "implementations/vae/model.py"
CONVERT = "implementations/vae/convert.py"

_GN_STATS = """\
    xg = x.astype(ct).reshape(b, -1, num_groups, c // num_groups)
    hi = jnp.mean(xg, axis=(1, 3), keepdims=True)
    d = xg - hi
    lo = jnp.mean(d, axis=(1, 3), keepdims=True)
    d = d - lo
    var = jnp.mean(d * d, axis=(1, 3), keepdims=True)
"""

_COMPRESS_TIME = """\
    b, t = x.shape[:2]
    if t % 2 == 1:
        rest = x[:, 1:]
        if rest.shape[1] > 0:
            rest = rest.reshape(b, rest.shape[1] // 2, 2, *x.shape[2:]).sum(axis=2) / 2
        return jnp.concatenate([x[:, :1], rest], axis=1)
    return x.reshape(b, t // 2, 2, *x.shape[2:]).sum(axis=2) / 2
"""

_DOWNSAMPLE_PAD = """\
        x = jnp.pad(x, ((0, 0), (0, 0), (p, p + 1), (p, p + 1), (0, 0)))
        out = _per_frame_conv2d(self.conv, x)
"""

_RESIZE = """\
    for axis, n in zip((1, 2, 3), size, strict=True):
        if x.shape[axis] != n:
            x = jnp.take(x, jnp.asarray(nearest_indices(x.shape[axis], n)), axis=axis)
    return x
"""

_SPATIAL_NORM_RESIZE = """\
        if t > 1 and t % 2 == 1:
            z_first = resize_nearest(zq[:, :1], (1, h, w))
            z_rest = resize_nearest(zq[:, 1:], (t - 1, h, w))
            zq = jnp.concatenate([z_first, z_rest], axis=1)
        else:
            zq = resize_nearest(zq, (t, h, w))
"""

_TILE_BLEND = """\
                if i > 0:
                    tile = _blend(rows[i - 1][j], tile, p["blend_h"], axis=2)
                if j > 0:
                    tile = _blend(row[j - 1], tile, p["blend_w"], axis=3)
"""

MUTANTS: list[Mutant] = [
    # -- the defects of conformance.vae.mutants (negative controls, localizer), as source patches ------------
    Mutant(
        id="vae.fast-variance",
        path=LAYERS,
        old=_GN_STATS,
        new=_GN_STATS.replace(
            """\
    hi = jnp.mean(xg, axis=(1, 3), keepdims=True)
    d = xg - hi
    lo = jnp.mean(d, axis=(1, 3), keepdims=True)
    d = d - lo
    var = jnp.mean(d * d, axis=(1, 3), keepdims=True)
""",
            """\
    mean = jnp.mean(xg, axis=(1, 3), keepdims=True)
    var = jnp.maximum(jnp.mean(xg * xg, axis=(1, 3), keepdims=True) - mean * mean, 0.0)
    d = xg - mean
""",
        ),
        kind="formula",
        doc="GroupNorm variance as E[x^2] - E[x]^2 in float32 (nnx.GroupNorm's use_fast_variance=True)",
    ),
    Mutant(
        id="vae.unbiased-variance",
        path=LAYERS,
        old="    var = jnp.mean(d * d, axis=(1, 3), keepdims=True)\n",
        new="    var = jnp.var(d, axis=(1, 3), keepdims=True, ddof=1)\n",
        kind="ddof",
        doc="GroupNorm with the unbiased (n - 1) variance, torch.var's default",
    ),
    Mutant(
        id="vae.eps-1e-5",
        path=LAYERS,
        old="    y = (d * jax.lax.rsqrt(var + jnp.asarray(eps, ct))).reshape(x.shape)\n",
        new="    y = (d * jax.lax.rsqrt(var + jnp.asarray(1e-5, ct))).reshape(x.shape)\n",
        kind="constant",
        doc="GroupNorm hard-codes torch.nn.GroupNorm's default eps 1e-5 where CogVideoX passes 1e-6",
    ),
    Mutant(
        id="vae.no-transpose",
        path=LAYERS,
        old=_COMPRESS_TIME,
        new="""\
    b, t, h, w, c = x.shape
    y = x.reshape(b * h * w, t, c)
    if t % 2 == 1:
        rest = y[:, 1:]
        if rest.shape[1] > 0:
            rest = rest.reshape(b * h * w, (t - 1) // 2, 2, c).mean(axis=2)
        y = jnp.concatenate([y[:, :1], rest], axis=1)
    else:
        y = y.reshape(b * h * w, t // 2, 2, c).mean(axis=2)
    return y.reshape(b, y.shape[1], h, w, c)
""",
        kind="layout",
        doc="compress_time reshapes (B, T, H, W, C) straight to (B*H*W, T, C) without torch's permute: it "
        "averages neighbouring pixels, not frames",
    ),
    Mutant(
        id="vae.same-padding",
        path=LAYERS,
        old=_DOWNSAMPLE_PAD,
        new="""\
        b, t = x.shape[:2]
        y = jax.lax.conv_general_dilated(
            x.reshape(b * t, *x.shape[2:]),
            self.conv.kernel[...],
            (2, 2),
            "SAME",
            dimension_numbers=("NHWC", "HWIO", "NHWC"),
        )
        out = (y + self.conv.bias[...]).reshape(b, t, *y.shape[1:])
""",
        kind="padding",
        doc="the k3/s2 downsampler uses nnx.Conv's default padding='SAME' instead of the (0, 1) pad + VALID "
        "(equal for even H and W only)",
    ),
    Mutant(
        id="vae.half-pixel-nearest",
        path=LAYERS,
        old=_RESIZE,
        new='    return jax.image.resize(x, (x.shape[0], *size, x.shape[-1]), method="nearest")\n',
        kind="mode-name",
        doc="SpatialNorm resizes zq with jax.image.resize('nearest'): half-pixel centres, not torch's "
        "floor(i * in / out) (equal for integer ratios only)",
    ),
    Mutant(
        id="vae.t1-two-frames",
        path=LAYERS,
        old="        elif self.compress_time and t > 1:\n",
        new="        elif self.compress_time:\n",
        kind="boundary",
        doc="the compress_time upsampler doubles a single frame (T == 1 -> 2) where torch keeps one",
    ),
    # -- causal convolutions and their caches ----------------------------------------------------------------
    Mutant(
        id="vae.causal-pad-zeros",
        path=LAYERS,
        old="else jnp.repeat(x[:, :1], kt - 1, axis=1)",
        new="else jnp.zeros_like(jnp.repeat(x[:, :1], kt - 1, axis=1))",
        kind="padding",
        doc="causal time padding with zeros (a Conv3d's usual padding) instead of k_t - 1 copies of frame 0",
    ),
    Mutant(
        id="vae.causal-pad-after",
        path=LAYERS,
        old="x = jnp.concatenate([front.astype(x.dtype), x], axis=1)",
        new="x = jnp.concatenate([x, front.astype(x.dtype)], axis=1)",
        kind="padding",
        doc="the time padding (cache or repeated frame 0) appended after the clip: the conv is no longer causal",
    ),
    Mutant(
        id="vae.cache-off-by-one",
        path=LAYERS,
        old="cache = x[:, -(kt - 1) :]",
        new="cache = x[:, -kt : -1]",
        kind="off-by-one",
        doc="the conv cache keeps frames [-k_t, -1) instead of the last k_t - 1 frames",
    ),
    Mutant(
        id="vae.replicate-reflect",
        path=LAYERS,
        old='                mode="edge",\n',
        new='                mode="reflect",\n',
        kind="mode-name",
        doc="pad_mode='replicate' mapped to jnp.pad's 'reflect' instead of 'edge'",
    ),
    # -- GroupNorm -------------------------------------------------------------------------------------------
    Mutant(
        id="vae.gn-strided-groups",
        path=LAYERS,
        old=_GN_STATS,
        new=_GN_STATS.replace(
            "reshape(b, -1, num_groups, c // num_groups)", "reshape(b, -1, c // num_groups, num_groups)"
        ).replace("axis=(1, 3)", "axis=(1, 2)"),
        kind="layout",
        doc="GroupNorm groups strided channels (channel k in group k % G) instead of G contiguous blocks",
    ),
    Mutant(
        id="vae.gn-per-channel-statistics",
        path=LAYERS,
        old=_GN_STATS,
        new=_GN_STATS.replace("axis=(1, 3)", "axis=(1,)"),
        kind="reduction-axis",
        doc="GroupNorm statistics reduced over (T, H, W) only, per channel (an instance norm), not over the group",
    ),
    Mutant(
        id="vae.gn-bf16-statistics",
        path=LAYERS,
        old="    ct = _compute_dtype(dtype)\n",
        new="    ct = dtype\n",
        kind="accumulation-dtype",
        doc="GroupNorm computes its statistics and normalization in the input dtype: bfloat16 under bfloat16 "
        "instead of float32",
    ),
    Mutant(
        id="vae.spatial-norm-eps-default",
        path=LAYERS,
        old="        self.norm_layer = GroupNorm(groups, f_channels, eps=1e-6)\n",
        new="        self.norm_layer = GroupNorm(groups, f_channels)\n",
        kind="default-argument",
        doc="SpatialNorm3D's GroupNorm built without eps=1e-6: the port's (torch's) default 1e-5",
    ),
    # -- SpatialNorm, samplers -----------------------------------------------------------------------------
    Mutant(
        id="vae.spatial-norm-no-first-frame",
        path=LAYERS,
        old=_SPATIAL_NORM_RESIZE,
        new="        zq = resize_nearest(zq, (t, h, w))\n",
        kind="boundary",
        doc="SpatialNorm resizes zq over all frames at once, without diffusers' separate frame 0 for odd T",
    ),
    Mutant(
        id="vae.downsample-pad-front",
        path=LAYERS,
        old="(p, p + 1), (p, p + 1)",
        new="(p + 1, p), (p + 1, p)",
        kind="padding",
        doc="the downsampler's extra row and column of zeros padded before the frame instead of after it",
    ),
    Mutant(
        id="vae.compress-time-drops-last",
        path=LAYERS,
        old=_COMPRESS_TIME,
        new="""\
    b, t = x.shape[:2]
    t2 = t // 2 * 2
    return x[:, :t2].reshape(b, t // 2, 2, *x.shape[2:]).sum(axis=2) / 2
""",
        kind="off-by-one",
        doc="compress_time pools odd T like a bare avg_pool1d (the last frame dropped) instead of keeping "
        "frame 0 apart",
    ),
    Mutant(
        id="vae.upsample-frame0-doubled",
        path=LAYERS,
        old="x = jnp.concatenate([_up2(x[:, :1], (2, 3)), _up2(x[:, 1:], (1, 2, 3))], axis=1)",
        new="x = jnp.concatenate([_up2(x[:, :1], (1, 2, 3)), _up2(x[:, 1:], (1, 2, 3))], axis=1)",
        kind="off-by-one",
        doc="the odd-T compress_time upsampler doubles frame 0 in time too: T -> 2T instead of 2T - 1",
    ),
    Mutant(
        id="vae.per-frame-hw-swapped",
        path=LAYERS,
        old="    return y.reshape(b, t, *y.shape[1:])\n",
        new="    return y.reshape(b, t, y.shape[2], y.shape[1], y.shape[3])\n",
        kind="layout",
        doc="the per-frame Conv2d's output reshaped back with H and W swapped (invisible on square frames)",
    ),
    # -- residual block ------------------------------------------------------------------------------------
    Mutant(
        id="vae.residual-scaled",
        path=LAYERS,
        old="        out = h + inputs\n",
        new="        out = (h + inputs) / 2**0.5\n",
        kind="residual",
        doc="the residual sum scaled by 1/sqrt(2) (skip_rescale of other diffusion resnets)",
    ),
    Mutant(
        id="vae.shortcut-of-normed-input",
        path=LAYERS,
        old="            h = self.norm1(h)\n",
        new="            h = inputs = self.norm1(h)\n",
        kind="residual",
        doc="the shortcut branch takes the GroupNorm-ed input instead of the block's input",
    ),
    Mutant(
        id="vae.temb-without-silu",
        path=LAYERS,
        old="h = h + self.temb_proj(silu(temb))[:, None, None, None, :]",
        new="h = h + self.temb_proj(temb)[:, None, None, None, :]",
        kind="formula",
        doc="the time embedding projected without its SiLU",
    ),
    # -- weights ----------------------------------------------------------------------------------------------
    Mutant(
        id="vae.conv3d-kernel-hw-swapped",
        path=CONVERT,
        old="_TO_NNX = {5: (2, 3, 4, 1, 0), 4: (2, 3, 1, 0), 2: (1, 0)}",
        new="_TO_NNX = {5: (2, 4, 3, 1, 0), 4: (2, 3, 1, 0), 2: (1, 0)}",
        kind="transpose",
        doc="5-D conv weights converted to (kt, kw, kh, I, O): the kernel's spatial axes transposed",
    ),
    Mutant(
        id="vae.conv2d-kernel-hw-swapped",
        path=CONVERT,
        old="_TO_NNX = {5: (2, 3, 4, 1, 0), 4: (2, 3, 1, 0), 2: (1, 0)}",
        new="_TO_NNX = {5: (2, 3, 4, 1, 0), 4: (3, 2, 1, 0), 2: (1, 0)}",
        kind="transpose",
        doc="the samplers' Conv2d weights converted to (kw, kh, I, O): the kernel transposed",
    ),
    # -- models, frame batches, tiles, posterior --------------------------------------------------------------
    Mutant(
        id="vae.decoder-layers-per-block",
        path=MODEL,
        old="                    num_layers=c.layers_per_block + 1,\n",
        new="                    num_layers=c.layers_per_block,\n",
        kind="off-by-one",
        doc="the decoder's up blocks built with layers_per_block resnets, as the encoder's, not layers_per_block + 1",
    ),
    Mutant(
        id="vae.frame-batches-fresh-cache",
        path=MODEL,
        old="            out, cache = apply_bound(bound, leaves,",
        new="            out, _ = apply_bound(bound, leaves,",
        kind="state",
        doc="each frame batch starts with a fresh conv cache (frame 0 repeated) instead of the previous batch's",
    ),
    Mutant(
        id="vae.time-taps-reversed",
        path=MODEL,
        old="    return tuple(jax.device_put(host[a], device) for a in range(kernel.shape[0]))\n",
        new="    return tuple(jax.device_put(host[a], device) for a in reversed(range(kernel.shape[0])))\n",
        kind="layout",
        doc="the convolution kernels handed to the jitted chunks with their time taps in reverse order (the "
        "newest frame weighted as the oldest)",
    ),
    Mutant(
        id="vae.winograd-tile-transform-sign",
        path=LAYERS,
        old="        [0.0, -1.0, 1.0, 0.0],\n",
        new="        [0.0, 1.0, -1.0, 0.0],\n",
        kind="sign",
        doc="Winograd's input-tile transform B^T d with one row's sign flipped (d1 - d2 for d2 - d1)",
    ),
    Mutant(
        id="vae.winograd-kernel-taps-reversed",
        path=LAYERS,
        old="    stacked = np.concatenate(list(k), axis=2).astype(np.float64)  # (3, 3, 3 I, O)\n",
        new="    stacked = np.concatenate(list(k[::-1]), axis=2).astype(np.float64)  # (3, 3, 3 I, O)\n",
        kind="layout",
        doc="the Winograd-transformed kernel built with its time taps in reverse order, against input frames "
        "stacked oldest first",
    ),
    Mutant(
        id="vae.winograd-crop-wrong-side",
        path=LAYERS,
        old="    out = y.reshape(b * t_out, 2 * th, 2 * tw, o)[:, :h_out, :w_out]\n",
        new="    out = y.reshape(b * t_out, 2 * th, 2 * tw, o)[:, -h_out:, -w_out:]\n",
        kind="padding",
        doc="the padded Winograd tiles cropped from the wrong side (odd output sizes keep the padding's row "
        "and column instead of the last real ones)",
    ),
    Mutant(
        id="vae.tile-blend-not-written-back",
        path=MODEL,
        old="                row[j] = tile  # diffusers blends in place: the blended tile is the next neighbour's `a`\n",
        new="",
        kind="state",
        doc="blended tiles are not written back: the next tile blends with its unblended neighbour (diffusers "
        "mutates b in place)",
    ),
    Mutant(
        id="vae.tile-blend-axes-swapped",
        path=MODEL,
        old=_TILE_BLEND,
        new=_TILE_BLEND.replace('p["blend_h"]', "BLEND_W")
        .replace('p["blend_w"]', 'p["blend_h"]')
        .replace("BLEND_W", 'p["blend_w"]'),
        kind="transpose",
        doc="the vertical seam blended over the horizontal blend extent and vice versa (equal for square tiles)",
    ),
    Mutant(
        id="vae.posterior-split-time",
        path=MODEL,
        old="        mean, logvar = jnp.split(moments, 2, axis=-1)\n",
        new="        mean, logvar = jnp.split(moments, 2, axis=1)\n",
        kind="layout",
        doc="torch.chunk(moments, 2, dim=1) ported literally: axis 1 is time, not channels, in channel-last",
    ),
    Mutant(
        id="vae.posterior-logvar-first",
        path=MODEL,
        old="        mean, logvar = jnp.split(moments, 2, axis=-1)\n",
        new="        logvar, mean = jnp.split(moments, 2, axis=-1)\n",
        kind="layout",
        doc="the latent's channel order read as (logvar, mean): the autoencoder decodes the log-variance",
    ),
    Mutant(
        id="vae.posterior-no-clamp",
        path=MODEL,
        old="        return mean, jnp.clip(logvar, -30.0, 20.0)\n",
        new="        return mean, logvar\n",
        kind="clamp",
        doc="the posterior's log-variance not clamped to [-30, 20]",
    ),
    # -- precision --------------------------------------------------------------------------------------------
    Mutant(
        id="vae.conv-precision-default",
        path=LAYERS,
        old='    return nnx.Conv(cin, cout, kernel, strides=strides, kernel_dilation=dilation, padding="VALID", rngs=rngs)\n',
        new="    return nnx.Conv(\n"
        "        cin,\n"
        "        cout,\n"
        "        kernel,\n"
        "        strides=strides,\n"
        "        kernel_dilation=dilation,\n"
        '        padding="VALID",\n'
        "        precision=jax.lax.Precision.DEFAULT,\n"
        "        rngs=rngs,\n"
        "    )\n",
        kind="precision",
        doc="convolutions pinned to Precision.DEFAULT (accelerator performance advice): it overrides the global "
        "'highest', so GPUs run them in TF32 and TPUs in one bfloat16 pass; CPUs compute the same",
    ),
]
