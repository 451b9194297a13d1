"""Parity cases of the VAE subsystem (the case table): every layer, block and tiny model of `reference.vae`
(PyTorch, run in float64 on the same values) against its Flax NNX twin in `implementations.vae` (converted
weights), each built, loaded and run by the twin harness `conformance.vae.twins`.

Inputs are flat: the activations (channel-first, as the reference takes them), a weight ``seed`` and the
case dtype as ``wdtype``. ``build`` draws the torch state dict from the seed and rounds it to ``wdtype``,
so both sides see exactly the same weights; the NNX side gets them through `implementations.vae.convert`
and channel-last activations. Shapes come from two or three buckets per case (bounded compilations), and
activations include offset means with small spreads, where a careless GroupNorm fails.

Every case also runs explicit examples first (`Case.explicit`), in every profile: one per structural branch
(each shape bucket, odd and even T, T == 1, compress_time on and off, odd and non-square H and W, offset
means end to end, each shortcut), so the profile that gates merges covers them whatever its draws.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import ml_dtypes
import numpy as np
from hypothesis import strategies as st

from conformance.cases import Case, Inputs, register
from conformance.strategies import fields, log_uniform
from conformance.vae.twins import (
    Ctor,
    cf_to_cl,
    cl_to_cf,
    implementation_chunked,
    implementation_forward,
    implementation_vae_method,
    random_state_dict,
    reference_forward,
    reference_vae_method,
)
from contracts.vae.config import CogVideoXVAEConfig, micro, tiny2
from implementations.vae.layers import WINOGRAD_MIN_CHANNELS

# -- the flat-input protocol ------------------------------------------------------------------------------

ARRAYS = ("x", "zq", "temb", "cache")


def _build(ctor_of: Callable[[Inputs], Ctor]) -> Callable[[Inputs], Inputs]:
    def build(spec: Inputs) -> Inputs:
        ctor = ctor_of(spec)
        weights = random_state_dict(ctor, int(spec["seed"]), str(spec["wdtype"]))
        return {"ctor": ctor, "weights": weights, **{k: spec[k] for k in ARRAYS if k in spec}}

    return build


def _twin(
    arg_names: tuple[str, ...], with_cache: bool = False
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def r(ctor: Ctor, weights: dict, **arrays: Any) -> Any:
        return reference_forward(
            ctor, weights, tuple(arrays.get(a) for a in arg_names), with_cache=with_cache
        )

    def i(ctor: Ctor, weights: dict, **arrays: Any) -> Any:
        return implementation_forward(
            ctor, weights, tuple(arrays.get(a) for a in arg_names), with_cache=with_cache
        )

    return r, i


def _activations(shape: Any, offset: bool) -> st.SearchStrategy[np.ndarray]:
    if offset:  # the regime where E[x^2] - E[x]^2 and the compress-time reshape defects show
        return fields(shape, magnitude=log_uniform(0.03, 0.2), offset=st.sampled_from((-12.0, 4.0, 30.0)))
    return fields(shape, magnitude=log_uniform(0.3, 3.0), offset=st.floats(-1.0, 1.0))


def _base(dtype: str) -> dict[str, st.SearchStrategy[Any]]:
    return {"seed": st.integers(0, 2**31 - 1), "wdtype": st.just(dtype)}


def _ints(spec: Inputs, *keys: str) -> tuple[int, ...]:
    return tuple(int(spec[k]) for k in keys)


# -- explicit examples ---------------------------------------------------------------------------------------


def _field(shape: tuple[int, ...], seed: int, offset: float = 0.0, spread: float = 1.0) -> np.ndarray:
    """A deterministic activation for an explicit example: ``offset + spread * N(0, 1)``, float64."""
    return offset + spread * np.random.default_rng(seed).standard_normal(shape)


def _explicit(make: Callable[[], list[Inputs]]) -> Callable[[str], list[Inputs]]:
    """``Case.explicit`` from a list of flat inputs without weights: each example gets its own weight seed
    and the case dtype as ``wdtype``."""

    def explicit(dtype: str) -> list[Inputs]:
        return [{"seed": 100 + i, "wdtype": dtype, **spec} for i, spec in enumerate(make())]

    return explicit


# -- layers ---------------------------------------------------------------------------------------------

CONV_SHAPES = ((4, 8, 5, 8, 8), (8, 4, 3, 7, 9))  # (C_in, C_out, T, H, W): odd T both, odd non-square H, W


def _conv_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    @st.composite
    def draw(d: st.DrawFn) -> Inputs:
        cin, cout, t, h, w = d(st.sampled_from(CONV_SHAPES))
        spec = {**{k: d(v) for k, v in _base(dtype).items()}, "cin": cin, "cout": cout}
        spec["x"] = d(_activations((1, cin, t, h, w), offset=False))
        spec["pad_mode"] = d(st.sampled_from(("first", "constant")))
        return spec

    return draw()


def _conv_explicit() -> list[Inputs]:
    return [
        {"cin": cin, "cout": cout, "x": _field((1, cin, t, h, w), i), "pad_mode": mode}
        for i, ((cin, cout, t, h, w), mode) in enumerate(zip(CONV_SHAPES, ("first", "constant"), strict=True))
    ]


def _conv_ctor(spec: Inputs) -> Ctor:
    cin, cout = _ints(spec, "cin", "cout")
    return ("CogVideoXCausalConv3d", (cin, cout, 3), (("pad_mode", str(spec["pad_mode"])),))


_r, _i = _twin(("x",), with_cache=True)
CAUSAL_CONV = Case(
    name="vae.causal_conv3d",
    reference=_r,
    implementation=_i,
    inputs=_conv_inputs,
    build=_build(_conv_ctor),
    examples=0.34,
    explicit=_explicit(_conv_explicit),
)


def _replicate_ctor(spec: Inputs) -> Ctor:
    cin, cout = _ints(spec, "cin", "cout")
    return ("CogVideoXCausalConv3d", (cin, cout, 3), (("pad_mode", "replicate"),))


_r, _i = _twin(("x",))
CAUSAL_CONV_REPLICATE = Case(
    name="vae.causal_conv3d.replicate",
    reference=_r,
    implementation=_i,
    inputs=_conv_inputs,
    build=_build(_replicate_ctor),
    examples=0.34,
    explicit=_explicit(lambda: _conv_explicit()[1:]),
)

GN_SHAPES = ((16, 4, 5, 8, 8), (32, 8, 3, 6, 10))  # (C, G, T, H, W)


def _gn_inputs(offset: bool) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            c, g, t, h, w = d(st.sampled_from(GN_SHAPES))
            spec = {**{k: d(v) for k, v in _base(dtype).items()}, "channels": c, "groups": g}
            spec["x"] = d(_activations((2, c, t, h, w), offset=offset))
            return spec

        return draw()

    return inputs


def _gn_explicit(offset: bool) -> Callable[[], list[Inputs]]:
    # offset means 30 and -12 with spreads 0.05 and 0.1: E[x^2] - E[x]^2 loses all of float32 there
    levels = ((30.0, 0.05), (-12.0, 0.1)) if offset else ((0.5, 1.0), (-0.3, 0.5))

    def make() -> list[Inputs]:
        return [
            {"channels": c, "groups": g, "x": _field((2, c, t, h, w), i, off, spread)}
            for i, ((c, g, t, h, w), (off, spread)) in enumerate(zip(GN_SHAPES, levels, strict=True))
        ]

    return make


def _gn_ctor(spec: Inputs) -> Ctor:
    c, g = _ints(spec, "channels", "groups")
    return ("GroupNorm", (g, c, 1e-6), ())


_r, _i = _twin(("x",))
GROUP_NORM = Case(
    name="vae.group_norm",
    reference=_r,
    implementation=_i,
    inputs=_gn_inputs(False),
    build=_build(_gn_ctor),
    examples=0.34,
    explicit=_explicit(_gn_explicit(False)),
)
GROUP_NORM_OFFSET = Case(
    name="vae.group_norm.offset",
    reference=_r,
    implementation=_i,
    inputs=_gn_inputs(True),
    build=_build(_gn_ctor),
    examples=0.5,
    explicit=_explicit(_gn_explicit(True)),
)

# -- GroupNorm in bfloat16, judged one rounding apart ------------------------------------------------------
#
# The bfloat16 rows of the other cases compare with bounds scaled to bfloat16's precision (x65536), where a
# GroupNorm that computes its statistics in bfloat16 (a few roundings, ~2e-3 on unit-scale outputs) and one
# that keeps them in float32 (one rounding, ~1e-3) both pass. Here the port runs in bfloat16 and is compared,
# with float32 bounds, against the float64 reference rounded once to bfloat16: with float32 statistics the
# two agree except where float32 and float64 straddle a bfloat16 rounding boundary (an element one bfloat16
# ulp apart, about one in 10^4); statistics in bfloat16 put thousands of elements an ulp or more apart.
BF16 = ml_dtypes.bfloat16


def _bf16_values(a: np.ndarray) -> np.ndarray:
    return np.asarray(a).astype(BF16).astype(np.float64)


def _gn_bf16_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    @st.composite
    def draw(d: st.DrawFn) -> Inputs:
        c, g, t, h, w = d(st.sampled_from(GN_SHAPES))
        spec: Inputs = {
            "seed": d(st.integers(0, 2**31 - 1)),
            "wdtype": "bfloat16",
            "channels": c,
            "groups": g,
        }
        offset = d(st.booleans())
        x = fields(
            (2, c, t, h, w),
            magnitude=log_uniform(0.03, 0.2) if offset else log_uniform(0.3, 3.0),
            offset=st.sampled_from((-12.0, 4.0, 30.0)) if offset else st.floats(-1.0, 1.0),
            kinds=("normal", "uniform", "smooth"),
            spikes=False,  # a bfloat16 ulp above |y| = 4 exceeds the max bound: keep outputs unit scale
        )
        spec["x"] = _bf16_values(d(x))
        return spec

    return draw()


def _gn_bf16_explicit(dtype: str) -> list[Inputs]:
    return [
        {"seed": 200 + i, "wdtype": "bfloat16", "channels": c, "groups": g, "x": _bf16_values(x)}
        for i, ((c, g, t, h, w), x) in enumerate(
            (
                (GN_SHAPES[0], _field((2, 16, 5, 8, 8), 7)),
                (GN_SHAPES[1], _field((2, 32, 3, 6, 10), 8, 4.0, 0.1)),
            )
        )
    ]


def _ulp_scaled(y: np.ndarray) -> np.ndarray:
    """``sign(y) * log1p(|y|)``, applied to both sides: one bfloat16 ulp of ``y`` (2^-7 |y| at most) becomes
    at most 2^-7 = 0.0078 whatever |y| (the random affine weights reach |y| ~ 6), well inside good's max
    bound (0.03), while a defect's errors on the bulk of the unit-scale outputs shrink by less than 2x."""
    y = np.asarray(y, np.float64)
    return np.sign(y) * np.log1p(np.abs(y))


def _gn_bf16_reference(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
    return _ulp_scaled(_bf16_values(reference_forward(ctor, weights, (x,))))


def _gn_bf16_implementation(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
    out = implementation_forward(ctor, weights, (np.asarray(x).astype(BF16),))
    return _ulp_scaled(np.asarray(out).astype(np.float32)).astype(np.float32)


GROUP_NORM_BF16 = Case(
    name="vae.group_norm.bf16_rounding",
    reference=_gn_bf16_reference,
    implementation=_gn_bf16_implementation,
    inputs=_gn_bf16_inputs,
    build=_build(_gn_ctor),
    examples=0.34,
    explicit=_gn_bf16_explicit,
)

SN_SHAPES = (((1, 16, 5, 6, 10), (1, 4, 3, 4, 4)), ((1, 16, 2, 8, 8), (1, 4, 1, 3, 5)))


def _sn_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    @st.composite
    def draw(d: st.DrawFn) -> Inputs:
        # f and zq sizes with non-integer ratios (nearest: floor(i * in / out)), odd and even T
        fshape, zshape = d(st.sampled_from(SN_SHAPES))
        spec = {**{k: d(v) for k, v in _base(dtype).items()}, "groups": 4}
        spec["x"] = d(_activations(fshape, offset=d(st.booleans())))
        spec["zq"] = d(_activations(zshape, offset=False))
        return spec

    return draw()


def _sn_explicit() -> list[Inputs]:
    # odd T (frame 0 resized apart) with offset features; even T with a single zq frame
    (f0, z0), (f1, z1) = SN_SHAPES
    return [
        {"groups": 4, "x": _field(f0, 1, 4.0, 0.1), "zq": _field(z0, 2)},
        {"groups": 4, "x": _field(f1, 3), "zq": _field(z1, 4)},
    ]


_r, _i = _twin(("x", "zq"))
SPATIAL_NORM = Case(
    name="vae.spatial_norm3d",
    reference=_r,
    implementation=_i,
    inputs=_sn_inputs,
    build=_build(lambda s: ("CogVideoXSpatialNorm3D", (16, 4, int(s["groups"])), ())),
    examples=0.34,
    explicit=_explicit(_sn_explicit),
)


def _sampler_inputs(shapes: tuple[tuple[int, ...], ...]) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            shape = d(st.sampled_from(shapes))
            spec = {**{k: d(v) for k, v in _base(dtype).items()}, "compress_time": d(st.booleans())}
            spec["x"] = d(_activations(shape, offset=False))
            return spec

        return draw()

    return inputs


def _sampler_explicit(shapes: tuple[tuple[int, ...], ...]) -> Callable[[], list[Inputs]]:
    """Every shape bucket with compress_time on and off."""

    def make() -> list[Inputs]:
        return [
            {"compress_time": ct, "x": _field(shape, 10 * i + ct)}
            for i, shape in enumerate(shapes)
            for ct in (True, False)
        ]

    return make


DOWN_SHAPES = (
    (1, 8, 5, 8, 8),
    (1, 8, 4, 7, 9),
)  # odd and even T; odd, non-square H, W (where SAME padding and the (0, 1) pad differ)
UP_SHAPES = ((1, 8, 3, 4, 4), (1, 8, 1, 3, 5), (1, 8, 2, 4, 4))  # odd T, T == 1 (non-square), even T

_r, _i = _twin(("x",))
DOWNSAMPLE = Case(
    name="vae.downsample3d",
    reference=_r,
    implementation=_i,
    inputs=_sampler_inputs(DOWN_SHAPES),
    build=_build(lambda s: ("CogVideoXDownsample3D", (8, 8), (("compress_time", bool(s["compress_time"])),))),
    examples=0.34,
    explicit=_explicit(_sampler_explicit(DOWN_SHAPES)),
)
UPSAMPLE = Case(
    name="vae.upsample3d",
    reference=_r,
    implementation=_i,
    inputs=_sampler_inputs(UP_SHAPES),
    build=_build(lambda s: ("CogVideoXUpsample3D", (8, 8), (("compress_time", bool(s["compress_time"])),))),
    examples=0.34,
    explicit=_explicit(_sampler_explicit(UP_SHAPES)),
)

# -- blocks ----------------------------------------------------------------------------------------------


def _resnet_inputs(offset: bool) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            cin, cout, temb = d(st.sampled_from(((8, 16, 0), (16, 16, 12))))
            spec = {
                **{k: d(v) for k, v in _base(dtype).items()},
                "cin": cin,
                "cout": cout,
                "temb_channels": temb,
            }
            spec["x"] = d(_activations((1, cin, 5, 8, 8), offset=offset))
            if temb:
                spec["temb"] = d(fields((1, temb), magnitude=1.0, spikes=False))
            spec["conv_shortcut"] = d(st.booleans()) if cin != cout else False
            return spec

        return draw()

    return inputs


def _resnet_explicit(offset: bool) -> Callable[[], list[Inputs]]:
    """The 1x1x1 and the 3x3x3 causal shortcut, and the temb Linear (unit-scale or offset activations)."""
    off, spread = (4.0, 0.1) if offset else (0.0, 1.0)

    def make() -> list[Inputs]:
        out: list[Inputs] = [
            {
                "cin": 8,
                "cout": 16,
                "temb_channels": 0,
                "conv_shortcut": conv,
                "x": _field((1, 8, 5, 8, 8), 20 + conv, off, spread),
            }
            for conv in (False, True)
        ]
        out.append(
            {
                "cin": 16,
                "cout": 16,
                "temb_channels": 12,
                "conv_shortcut": False,
                "x": _field((1, 16, 5, 8, 8), 22, off, spread),
                "temb": _field((1, 12), 23),
            }
        )
        return out[:1] if offset else out

    return make


def _resnet_ctor(spec: Inputs) -> Ctor:
    cin, cout, temb = _ints(spec, "cin", "cout", "temb_channels")
    return (
        "CogVideoXResnetBlock3D",
        (cin, cout),
        (("temb_channels", temb), ("groups", 4), ("conv_shortcut", bool(spec["conv_shortcut"]))),
    )


_r, _i = _twin(("x", "temb"))
RESNET = Case(
    name="vae.resnet_block3d",
    reference=_r,
    implementation=_i,
    inputs=_resnet_inputs(False),
    build=_build(_resnet_ctor),
    examples=0.34,
    explicit=_explicit(_resnet_explicit(False)),
)
RESNET_OFFSET = Case(
    name="vae.resnet_block3d.offset",
    reference=_r,
    implementation=_i,
    inputs=_resnet_inputs(True),
    build=_build(_resnet_ctor),
    examples=0.34,
    explicit=_explicit(_resnet_explicit(True)),
)


def _block_inputs(kind: str) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            spec = {**{k: d(v) for k, v in _base(dtype).items()}, "compress_time": d(st.booleans())}
            spec["x"] = d(_activations((1, 8, 5, 8, 8), offset=d(st.booleans())))
            if kind != "down":
                spec["zq"] = d(
                    _activations((1, 4, 3, 4, 4) if kind == "up" else (1, 4, 3, 8, 8), offset=False)
                )
            return spec

        return draw()

    return inputs


def _block_explicit(kind: str) -> Callable[[], list[Inputs]]:
    """compress_time on (with offset activations) and off; the mid block has no compress_time."""

    def make() -> list[Inputs]:
        out = []
        for ct in (True, False) if kind != "mid" else (False,):
            spec: Inputs = {
                "compress_time": ct,
                "x": _field((1, 8, 5, 8, 8), 30 + ct, *((4.0, 0.1) if ct else ())),
            }
            if kind != "down":
                spec["zq"] = _field((1, 4, 3, 4, 4) if kind == "up" else (1, 4, 3, 8, 8), 32 + ct)
            out.append(spec)
        return out

    return make


_r, _i = _twin(("x", "temb", "zq"))
DOWN_BLOCK = Case(
    name="vae.down_block3d",
    reference=_r,
    implementation=_i,
    inputs=_block_inputs("down"),
    build=_build(
        lambda s: (
            "CogVideoXDownBlock3D",
            (8, 16, 0),
            (("num_layers", 2), ("resnet_groups", 4), ("compress_time", bool(s["compress_time"]))),
        )
    ),
    examples=0.34,
    explicit=_explicit(_block_explicit("down")),
)
MID_BLOCK = Case(
    name="vae.mid_block3d",
    reference=_r,
    implementation=_i,
    inputs=_block_inputs("mid"),
    build=_build(
        lambda s: (
            "CogVideoXMidBlock3D",
            (8, 0),
            (("num_layers", 2), ("resnet_groups", 4), ("spatial_norm_dim", 4)),
        )
    ),
    examples=0.34,
    explicit=_explicit(_block_explicit("mid")),
)
UP_BLOCK = Case(
    name="vae.up_block3d",
    reference=_r,
    implementation=_i,
    inputs=_block_inputs("up"),
    build=_build(
        lambda s: (
            "CogVideoXUpBlock3D",
            (8, 16, 0),
            (
                ("num_layers", 2),
                ("resnet_groups", 4),
                ("spatial_norm_dim", 4),
                ("compress_time", bool(s["compress_time"])),
            ),
        )
    ),
    examples=0.34,
    explicit=_explicit(_block_explicit("up")),
)

# -- tiny models end to end -------------------------------------------------------------------------------

TINY: CogVideoXVAEConfig = tiny2()
MICRO: CogVideoXVAEConfig = micro()
MICRO_TILED: CogVideoXVAEConfig = micro(sample_height=48, sample_width=48)  # tiles 24 px / 12 latents
# Non-square tiles (24 x 30 px, 12 x 15 latents): the vertical and horizontal strides, blend extents and crops
# all differ, so a port that mixes up H and W in its tiling cannot hide behind square tiles' symmetry (the sizes
# keep diffusers' strides and crops consistent: 2 * int(0.8 * 15) == 30 - int(30 / 5)).
MICRO_TILED_WIDE: CogVideoXVAEConfig = micro(sample_height=48, sample_width=60)


def _model_inputs(
    shape: tuple[int, ...], fraction_offset: bool = True
) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            spec = {k: d(v) for k, v in _base(dtype).items()}
            spec["x"] = d(_activations(shape, offset=fraction_offset and d(st.booleans())))
            return spec

        return draw()

    return inputs


def _model_explicit(shape: tuple[int, ...], offset: tuple[float, float] | None) -> Callable[[], list[Inputs]]:
    """One end-to-end example, with an offset mean and a small spread when ``offset`` is given."""
    return lambda: [{"x": _field(shape, 40, *(offset or ()))}]


_r, _i = _twin(("x",))
ENCODER = Case(
    name="vae.encoder",
    reference=_r,
    implementation=_i,
    inputs=_model_inputs((1, 3, 9, 16, 16)),
    build=_build(lambda s: ("CogVideoXEncoder3D", (TINY,), ())),
    examples=0.17,
    explicit=_explicit(_model_explicit((1, 3, 9, 16, 16), (4.0, 0.1))),
)
DECODER = Case(
    name="vae.decoder",
    reference=_r,
    implementation=_i,
    inputs=_model_inputs((1, 4, 3, 8, 8), fraction_offset=False),
    build=_build(lambda s: ("CogVideoXDecoder3D", (TINY,), ())),
    examples=0.17,
    explicit=_explicit(_model_explicit((1, 4, 3, 8, 8), None)),
)

# -- frame-batched and tiled: like for like (PT-batched vs JAX-batched, tiled vs tiled) --------------------


def _vae_call(
    method: str, tiling: bool, config: CogVideoXVAEConfig, winograd_min_channels: int | None
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def r(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        return reference_vae_method(config, tiling, method, weights, x)

    def i(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        return implementation_vae_method(config, tiling, method, weights, x, winograd_min_channels)

    return r, i


def _vae_case(
    name: str,
    method: str,
    tiling: bool,
    shape: tuple[int, ...],
    config: CogVideoXVAEConfig,
    examples: float,
    offset: tuple[float, float] | None = None,
    winograd_min_channels: int | None = WINOGRAD_MIN_CHANNELS,
) -> Case:
    """A case of a method of the whole VAE; ``offset`` (mean, spread) also draws offset-mean inputs, and sets
    its explicit example's; ``winograd_min_channels`` is the port's Winograd threshold for the case."""
    r, i = _vae_call(method, tiling, config, winograd_min_channels)
    return Case(
        name=name,
        reference=r,
        implementation=i,
        inputs=_model_inputs(shape, fraction_offset=offset is not None),
        build=_build(lambda s: ("AutoencoderKLCogVideoX", (config,), ())),
        examples=examples,
        explicit=_explicit(_model_explicit(shape, offset)),
    )


# frame batches 8 (sample) and 2 (latent): 17 frames -> [0:9], [9:17]; 5 latents -> [0:3], [3:5]
ENCODE_FRAMES = _vae_case(
    "vae.encode.frame_batched", "encode", False, (1, 3, 17, 8, 8), MICRO, 0.17, offset=(4.0, 0.1)
)
DECODE_FRAMES = _vae_case("vae.decode.frame_batched", "decode", False, (1, 4, 5, 4, 4), MICRO, 0.17)
# The same two, with every float32 3x3x3 convolution run by Winograd's F(2x2, 3x3) (the port's path for kernels
# of 256 or more input channels, lowered to 1 here so that the small model takes it), the encoder's RGB
# convolution included. Their frames are even-sized; odd sizes (padded tiles) are checked layer by layer in
# `conformance/vae/test_bad_input.py`.
ENCODE_WINOGRAD = _vae_case(
    "vae.encode.winograd",
    "encode",
    False,
    (1, 3, 17, 8, 8),
    MICRO,
    0.17,
    offset=(4.0, 0.1),
    winograd_min_channels=1,
)
DECODE_WINOGRAD = _vae_case(
    "vae.decode.winograd", "decode", False, (1, 4, 5, 4, 4), MICRO, 0.17, winograd_min_channels=1
)
# tiled encode (MICRO_TILED_WIDE): 24 x 30 px tiles, strides 20 / 24 px, blends 2 / 3 latents, crops 10 / 12: a
# 2 x 2 grid of non-square tiles with odd edge tiles, every seam blended. Tiled decode (MICRO_TILED): 12 latents,
# strides 10 / 9, blends 4 / 4 px, crops 20: a 2 x 2 grid with odd edge tiles. Both run the port's one tiling
# routine, which the non-square encode checks for H/W mix-ups.
ENCODE_TILED = _vae_case("vae.encode.tiled", "encode", True, (1, 3, 9, 32, 40), MICRO_TILED_WIDE, 0.17)
DECODE_TILED = _vae_case("vae.decode.tiled", "decode", True, (1, 4, 3, 16, 16), MICRO_TILED, 0.17)
# the autoencoder's __call__: decode(posterior mean of encode(x)), frame-batched both ways (17 frames -> 9
# latents): the latent's channel layout (mean first, then logvar) as the decoder consumes it
AUTOENCODE = _vae_case("vae.autoencode", "__call__", False, (1, 3, 17, 8, 8), MICRO, 0.17, offset=(4.0, 0.1))

# -- the posterior: the encoder's output layout as such ---------------------------------------------------------
#
# ``encode`` returns the moments (mean and logvar stacked on the channel axis); the posterior splits them and
# clamps the log-variance to [-30, 20]. Moments are drawn far beyond both clamp bounds, with odd and even T.
POSTERIOR_SHAPES = ((1, 8, 5, 4, 6), (2, 8, 2, 3, 4))


def _posterior_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    return st.fixed_dictionaries(
        {
            "x": fields(
                st.sampled_from(POSTERIOR_SHAPES),
                magnitude=log_uniform(1.0, 40.0),
                offset=st.floats(-20.0, 10.0),
            )
        }
    )


def _posterior_explicit(dtype: str) -> list[Inputs]:
    return [{"x": _field(shape, 50 + i, -5.0, 30.0)} for i, shape in enumerate(POSTERIOR_SHAPES)]


def _posterior_reference(x: np.ndarray) -> dict[str, np.ndarray]:
    import torch

    from reference.vae import AutoencoderKLCogVideoX

    mean, logvar = AutoencoderKLCogVideoX.posterior(torch.from_numpy(np.asarray(x, np.float64)))
    return {"mean": mean.numpy(), "logvar": logvar.numpy()}


def _posterior_port() -> Callable[..., Any]:
    from implementations.vae import AutoencoderKLCogVideoX

    return jax.jit(AutoencoderKLCogVideoX.posterior)


_POSTERIOR_JIT: list[Callable[..., Any]] = []


def _posterior_implementation(x: np.ndarray) -> dict[str, np.ndarray]:
    if not _POSTERIOR_JIT:
        _POSTERIOR_JIT.append(_posterior_port())
    mean, logvar = _POSTERIOR_JIT[0](cf_to_cl(x))
    return {"mean": cl_to_cf(mean), "logvar": cl_to_cf(logvar)}


POSTERIOR = Case(
    name="vae.posterior",
    reference=_posterior_reference,
    implementation=_posterior_implementation,
    inputs=_posterior_inputs,
    examples=0.34,
    explicit=_posterior_explicit,
)


# -- caching: chunk by chunk with the cache against one shot ------------------------------------------------


def _chunked_ref(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
    return reference_forward(ctor, weights, (x,))


CAUSAL_CONV_CHUNKED = Case(
    name="vae.causal_conv3d.chunked",
    reference=_chunked_ref,
    implementation=implementation_chunked,
    inputs=lambda dtype: st.builds(
        lambda base, x: {**base, "x": x, "cin": 4, "cout": 8, "pad_mode": "first"},
        st.fixed_dictionaries(_base(dtype)),
        _activations((1, 4, 7, 6, 6), offset=False),
    ),
    build=_build(_conv_ctor),
    examples=0.34,
    explicit=_explicit(
        lambda: [{"x": _field((1, 4, 7, 6, 6), 60), "cin": 4, "cout": 8, "pad_mode": "first"}]
    ),
)

ALL = (
    CAUSAL_CONV,
    CAUSAL_CONV_REPLICATE,
    CAUSAL_CONV_CHUNKED,
    GROUP_NORM,
    GROUP_NORM_OFFSET,
    GROUP_NORM_BF16,
    SPATIAL_NORM,
    DOWNSAMPLE,
    UPSAMPLE,
    RESNET,
    RESNET_OFFSET,
    DOWN_BLOCK,
    MID_BLOCK,
    UP_BLOCK,
    ENCODER,
    DECODER,
    ENCODE_FRAMES,
    DECODE_FRAMES,
    ENCODE_WINOGRAD,
    DECODE_WINOGRAD,
    ENCODE_TILED,
    DECODE_TILED,
    AUTOENCODE,
    POSTERIOR,
)
register(*ALL)
