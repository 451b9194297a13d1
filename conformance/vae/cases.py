"""Parity cases of the VAE subsystem (the case table): every layer, block and tiny model of `reference.vae`
(PyTorch, run in float64 on the same values) against its Flax NNX twin in `implementations.vae` (converted
weights), each built, loaded and run by the twin harness `conformance.vae.twins`.

Inputs are flat: the activations (channel-first, as the reference takes them), a weight ``seed`` and the
case dtype as ``wdtype``. ``build`` draws the torch state dict from the seed and rounds it to ``wdtype``,
so both sides see exactly the same weights; the NNX side gets them through `implementations.vae.convert`
and channel-last activations. Shapes come from two or three buckets per case (bounded compilations), and
activations include offset means with small spreads, where a careless GroupNorm fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import strategies as st

from conformance.cases import Case, Inputs, register
from conformance.strategies import fields, log_uniform
from conformance.vae.twins import (
    Ctor,
    implementation_chunked,
    implementation_forward,
    implementation_vae_method,
    random_state_dict,
    reference_forward,
    reference_vae_method,
)
from contracts.vae.config import CogVideoXVAEConfig, micro, tiny2

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


# -- layers ---------------------------------------------------------------------------------------------


def _conv_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    @st.composite
    def draw(d: st.DrawFn) -> Inputs:
        cin, cout, t, h, w = d(st.sampled_from(((4, 8, 5, 8, 8), (8, 4, 3, 7, 9))))
        spec = {**{k: d(v) for k, v in _base(dtype).items()}, "cin": cin, "cout": cout}
        spec["x"] = d(_activations((1, cin, t, h, w), offset=False))
        spec["pad_mode"] = d(st.sampled_from(("first", "constant")))
        return spec

    return draw()


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
    examples=0.5,
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
    examples=0.5,
)


def _gn_inputs(offset: bool) -> Callable[[str], st.SearchStrategy[Inputs]]:
    def inputs(dtype: str) -> st.SearchStrategy[Inputs]:
        @st.composite
        def draw(d: st.DrawFn) -> Inputs:
            c, g, t, h, w = d(st.sampled_from(((16, 4, 5, 8, 8), (32, 8, 3, 6, 10))))
            spec = {**{k: d(v) for k, v in _base(dtype).items()}, "channels": c, "groups": g}
            spec["x"] = d(_activations((2, c, t, h, w), offset=offset))
            return spec

        return draw()

    return inputs


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
    examples=0.5,
)
GROUP_NORM_OFFSET = Case(
    name="vae.group_norm.offset",
    reference=_r,
    implementation=_i,
    inputs=_gn_inputs(True),
    build=_build(_gn_ctor),
)


def _sn_inputs(dtype: str) -> st.SearchStrategy[Inputs]:
    @st.composite
    def draw(d: st.DrawFn) -> Inputs:
        # f and zq sizes with non-integer ratios (nearest: floor(i * in / out), pitfall 4), odd and even T
        fshape, zshape = d(
            st.sampled_from((((1, 16, 5, 6, 10), (1, 4, 3, 4, 4)), ((1, 16, 2, 8, 8), (1, 4, 1, 3, 5))))
        )
        spec = {**{k: d(v) for k, v in _base(dtype).items()}, "groups": 4}
        spec["x"] = d(_activations(fshape, offset=d(st.booleans())))
        spec["zq"] = d(_activations(zshape, offset=False))
        return spec

    return draw()


_r, _i = _twin(("x", "zq"))
SPATIAL_NORM = Case(
    name="vae.spatial_norm3d",
    reference=_r,
    implementation=_i,
    inputs=_sn_inputs,
    build=_build(lambda s: ("CogVideoXSpatialNorm3D", (16, 4, int(s["groups"])), ())),
    examples=0.5,
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


_r, _i = _twin(("x",))
DOWNSAMPLE = Case(
    name="vae.downsample3d",
    reference=_r,
    implementation=_i,
    inputs=_sampler_inputs(((1, 8, 5, 8, 8), (1, 8, 4, 7, 9))),  # odd and even T; odd H, W (pitfall 5)
    build=_build(lambda s: ("CogVideoXDownsample3D", (8, 8), (("compress_time", bool(s["compress_time"])),))),
    examples=0.5,
)
UPSAMPLE = Case(
    name="vae.upsample3d",
    reference=_r,
    implementation=_i,
    inputs=_sampler_inputs(((1, 8, 3, 4, 4), (1, 8, 1, 3, 5), (1, 8, 2, 4, 4))),  # odd, T == 1, even
    build=_build(lambda s: ("CogVideoXUpsample3D", (8, 8), (("compress_time", bool(s["compress_time"])),))),
    examples=0.5,
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
    examples=0.5,
)
RESNET_OFFSET = Case(
    name="vae.resnet_block3d.offset",
    reference=_r,
    implementation=_i,
    inputs=_resnet_inputs(True),
    build=_build(_resnet_ctor),
    examples=0.34,
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
)

# -- tiny models end to end -------------------------------------------------------------------------------

TINY: CogVideoXVAEConfig = tiny2()
MICRO: CogVideoXVAEConfig = micro()
MICRO_TILED: CogVideoXVAEConfig = micro(sample_height=48, sample_width=48)  # tiles 24 px / 12 latents


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


_r, _i = _twin(("x",))
ENCODER = Case(
    name="vae.encoder",
    reference=_r,
    implementation=_i,
    inputs=_model_inputs((1, 3, 9, 16, 16)),
    build=_build(lambda s: ("CogVideoXEncoder3D", (TINY,), ())),
    examples=0.17,
)
DECODER = Case(
    name="vae.decoder",
    reference=_r,
    implementation=_i,
    inputs=_model_inputs((1, 4, 3, 8, 8), fraction_offset=False),
    build=_build(lambda s: ("CogVideoXDecoder3D", (TINY,), ())),
    examples=0.17,
)

# -- frame-batched and tiled: like for like (PT-batched vs JAX-batched, tiled vs tiled) --------------------


def _vae_call(
    method: str, tiling: bool, config: CogVideoXVAEConfig
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def r(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        return reference_vae_method(config, tiling, method, weights, x)

    def i(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        return implementation_vae_method(config, tiling, method, weights, x)

    return r, i


def _vae_case(
    name: str, method: str, tiling: bool, shape: tuple[int, ...], config: CogVideoXVAEConfig, examples: float
) -> Case:
    r, i = _vae_call(method, tiling, config)
    return Case(
        name=name,
        reference=r,
        implementation=i,
        inputs=_model_inputs(shape, fraction_offset=method == "encode"),
        build=_build(lambda s: ("AutoencoderKLCogVideoX", (config,), ())),
        examples=examples,
    )


# frame batches 8 (sample) and 2 (latent): 17 frames -> [0:9], [9:17]; 5 latents -> [0:3], [3:5]
ENCODE_FRAMES = _vae_case("vae.encode.frame_batched", "encode", False, (1, 3, 17, 8, 8), MICRO, 0.17)
DECODE_FRAMES = _vae_case("vae.decode.frame_batched", "decode", False, (1, 4, 5, 4, 4), MICRO, 0.17)
# tiles: encode 24 px, strides 20 / 19, blends 2 / 2 latents, crops 10; decode 12 latents, strides 10 / 9,
# blends 4 / 4 px, crops 20: a 2 x 2 grid with odd edge tiles, every seam blended
ENCODE_TILED = _vae_case("vae.encode.tiled", "encode", True, (1, 3, 9, 32, 32), MICRO_TILED, 0.17)
DECODE_TILED = _vae_case("vae.decode.tiled", "decode", True, (1, 4, 3, 16, 16), MICRO_TILED, 0.17)


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
    examples=0.5,
)

ALL = (
    CAUSAL_CONV,
    CAUSAL_CONV_REPLICATE,
    CAUSAL_CONV_CHUNKED,
    GROUP_NORM,
    GROUP_NORM_OFFSET,
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
    ENCODE_TILED,
    DECODE_TILED,
)
register(*ALL)
