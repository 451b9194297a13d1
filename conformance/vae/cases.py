"""Parity cases of the VAE subsystem: every layer, block and tiny model of `reference.vae` (PyTorch, run in
float64 on the same values) against its Flax NNX twin in `implementations.vae` (converted weights).

Inputs are flat: the activations (channel-first, as the reference takes them), a weight ``seed`` and the
case dtype as ``wdtype``. ``build`` draws the torch state dict from the seed and rounds it to ``wdtype``,
so both sides see exactly the same weights; the NNX side gets them through `implementations.vae.convert`
and channel-last activations. Shapes come from two or three buckets per case (bounded compilations), and
activations include offset means with small spreads, where a careless GroupNorm fails.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
from hypothesis import strategies as st

import implementations.vae as impl
import reference.vae as ref
from conformance.cases import Case, Inputs, register
from conformance.strategies import fields, log_uniform
from implementations.vae.convert import abstract_model, torch_to_nnx_params
from implementations.vae.model import apply_module
from reference.vae.config import CogVideoXVAEConfig, micro, tiny2

# -- twins: build a layer from a constructor spec, load the same weights on both sides, run --------------

# name -> (torch class, nnx class); constructor args are hashable tuples so the modules are cached
CLASSES: dict[str, tuple[Any, Any]] = {
    "CogVideoXCausalConv3d": (ref.CogVideoXCausalConv3d, impl.CogVideoXCausalConv3d),
    "GroupNorm": (None, impl.GroupNorm),
    "CogVideoXSpatialNorm3D": (ref.CogVideoXSpatialNorm3D, impl.CogVideoXSpatialNorm3D),
    "CogVideoXDownsample3D": (ref.CogVideoXDownsample3D, impl.CogVideoXDownsample3D),
    "CogVideoXUpsample3D": (ref.CogVideoXUpsample3D, impl.CogVideoXUpsample3D),
    "CogVideoXResnetBlock3D": (ref.CogVideoXResnetBlock3D, impl.CogVideoXResnetBlock3D),
    "CogVideoXDownBlock3D": (ref.CogVideoXDownBlock3D, impl.CogVideoXDownBlock3D),
    "CogVideoXMidBlock3D": (ref.CogVideoXMidBlock3D, impl.CogVideoXMidBlock3D),
    "CogVideoXUpBlock3D": (ref.CogVideoXUpBlock3D, impl.CogVideoXUpBlock3D),
    "CogVideoXEncoder3D": (ref.CogVideoXEncoder3D, impl.CogVideoXEncoder3D),
    "CogVideoXDecoder3D": (ref.CogVideoXDecoder3D, impl.CogVideoXDecoder3D),
    "AutoencoderKLCogVideoX": (ref.AutoencoderKLCogVideoX, impl.AutoencoderKLCogVideoX),
}

Ctor = tuple[str, tuple[Any, ...], tuple[tuple[str, Any], ...]]


def _torch_cls(name: str) -> Any:
    import torch

    return torch.nn.GroupNorm if name == "GroupNorm" else CLASSES[name][0]


@cache
def torch_module(ctor: Ctor) -> Any:
    """The float64 torch module of a constructor spec (cached; weights are loaded per call)."""
    import torch

    name, args, kwargs = ctor
    with torch.random.fork_rng():
        torch.manual_seed(0)
        return _torch_cls(name)(*args, **dict(kwargs)).double().eval()


@cache
def nnx_module(ctor: Ctor) -> Any:
    """The abstract NNX twin (no initializers run) and its graph definition."""
    from flax import nnx

    name, args, kwargs = ctor
    model = abstract_model(CLASSES[name][1], *args, **dict(kwargs))
    graphdef, _ = nnx.split(model)
    return model, graphdef


@cache
def state_shapes(ctor: Ctor) -> tuple[tuple[str, tuple[int, ...]], ...]:
    return tuple((k, tuple(v.shape)) for k, v in torch_module(ctor).state_dict().items())


def random_state_dict(ctor: Ctor, seed: int, dtype: str) -> dict[str, np.ndarray]:
    """Deterministic torch-layout weights: convs and linears ~ N(0, 1/fan_in), norm weights ~ 1 + N(0, 0.1^2),
    biases ~ N(0, 0.1^2); rounded to ``dtype`` (the case dtype) and returned as float64 arrays."""
    rng = np.random.default_rng(seed)
    out = {}
    for key, shape in state_shapes(ctor):
        if len(shape) >= 2:
            fan_in = int(np.prod(shape[1:]))
            w = rng.standard_normal(shape) / np.sqrt(fan_in)
        elif key.endswith("weight"):
            w = 1.0 + 0.1 * rng.standard_normal(shape)
        else:
            w = 0.1 * rng.standard_normal(shape)
        out[key] = w.astype(dtype).astype(np.float64)
    return out


def _first(out: Any) -> Any:
    return out[0] if isinstance(out, tuple) else out


def _cf_to_cl(a: Any) -> Any:
    return np.moveaxis(np.asarray(a), 1, -1) if a is not None and np.ndim(a) == 5 else a


def _cl_to_cf(a: Any) -> Any:
    return np.moveaxis(np.asarray(a), -1, 1) if a is not None and np.ndim(a) == 5 else a


def reference_forward(
    ctor: Ctor, weights: dict[str, np.ndarray], args: tuple, *, with_cache: bool = False
) -> Any:
    """Run the torch layer (float64) on channel-first ``args``; the output (and the conv cache) as NumPy."""
    import torch

    module = torch_module(ctor)
    module.load_state_dict({k: torch.from_numpy(np.asarray(v, np.float64)) for k, v in weights.items()})
    targs = [None if a is None else torch.from_numpy(np.asarray(a, np.float64)) for a in args]
    with torch.no_grad():
        out = module(*targs)
    if with_cache:
        return {"out": out[0].numpy(), "cache": out[1].numpy()}
    return _first(out).numpy()


def implementation_forward(
    ctor: Ctor, weights: dict[str, np.ndarray], args: tuple, *, with_cache: bool = False
) -> Any:
    """Run the NNX twin (jitted once per constructor and shapes) on the same weights, channel-last inside."""
    x0 = next(a for a in args if a is not None)
    dtype = np.asarray(x0).dtype
    model, graphdef = nnx_module(ctor)
    params = torch_to_nnx_params(weights, model, dtype=dtype)
    out = apply_module(
        graphdef, params, *[None if a is None else _cf_to_cl(np.asarray(a, dtype)) for a in args]
    )
    if with_cache:
        return {"out": _cl_to_cf(out[0]), "cache": _cl_to_cf(out[1])}
    return _cl_to_cf(_first(out))


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


LAYER_DTYPES = ("float32", "bfloat16")

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
    dtypes=LAYER_DTYPES,
    backends=("jax-jit", "jax-eager"),
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
    dtypes=("float32",),
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
    dtypes=LAYER_DTYPES,
    backends=("jax-jit", "jax-eager"),
    examples=0.5,
)
GROUP_NORM_OFFSET = Case(
    name="vae.group_norm.offset",
    reference=_r,
    implementation=_i,
    inputs=_gn_inputs(True),
    build=_build(_gn_ctor),
    dtypes=("float32",),
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
    dtypes=LAYER_DTYPES,
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
    dtypes=LAYER_DTYPES,
    examples=0.5,
)
UPSAMPLE = Case(
    name="vae.upsample3d",
    reference=_r,
    implementation=_i,
    inputs=_sampler_inputs(((1, 8, 3, 4, 4), (1, 8, 1, 3, 5), (1, 8, 2, 4, 4))),  # odd, T == 1, even
    build=_build(lambda s: ("CogVideoXUpsample3D", (8, 8), (("compress_time", bool(s["compress_time"])),))),
    dtypes=LAYER_DTYPES,
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
    dtypes=("float32", "bfloat16"),
    examples=0.5,
)
RESNET_OFFSET = Case(
    name="vae.resnet_block3d.offset",
    reference=_r,
    implementation=_i,
    inputs=_resnet_inputs(True),
    build=_build(_resnet_ctor),
    dtypes=("float32",),
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
    dtypes=("float32",),
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
    dtypes=("float32",),
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
    dtypes=("float32",),
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
    dtypes=("float32", "bfloat16"),
    examples=0.17,
)
DECODER = Case(
    name="vae.decoder",
    reference=_r,
    implementation=_i,
    inputs=_model_inputs((1, 4, 3, 8, 8), fraction_offset=False),
    build=_build(lambda s: ("CogVideoXDecoder3D", (TINY,), ())),
    dtypes=("float32", "bfloat16"),
    examples=0.17,
)

# -- frame-batched and tiled: like for like (PT-batched vs JAX-batched, tiled vs tiled) --------------------


@cache
def _vae_pair(config: CogVideoXVAEConfig, tiling: bool) -> tuple[Any, Any]:
    ctor: Ctor = ("AutoencoderKLCogVideoX", (config,), ())
    tm = torch_module(ctor)
    model, _ = nnx_module(ctor)
    if tiling:
        tm.enable_tiling()
        model.enable_tiling()
    else:
        tm.disable_tiling()
        model.disable_tiling()
    return tm, model


def _vae_call(
    method: str, tiling: bool, config: CogVideoXVAEConfig
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    def r(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        import torch

        tm, _ = _vae_pair(config, tiling)
        tm.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
        with torch.no_grad():
            return getattr(tm, method)(torch.from_numpy(np.asarray(x, np.float64))).numpy()

    def i(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
        from implementations.vae.convert import from_torch_state_dict

        _, model = _vae_pair(config, tiling)
        from_torch_state_dict(weights, model, dtype=x.dtype)
        return _cl_to_cf(getattr(model, method)(_cf_to_cl(x)))

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
        dtypes=("float32",),
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


def _chunked_impl(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
    """The NNX conv run on frames [0:1], [1:3], [3:5]..., threading its cache, concatenated."""
    model, graphdef = nnx_module(ctor)
    params = torch_to_nnx_params(weights, model, dtype=x.dtype)
    xc = _cf_to_cl(x)
    outs, cache_ = [], None
    bounds = [0, 1, *range(3, xc.shape[1], 2), xc.shape[1]]
    for a, b in itertools.pairwise(bounds):
        out, cache_ = apply_module(graphdef, params, xc[:, a:b], cache_)
        outs.append(np.asarray(out))
    return _cl_to_cf(np.concatenate(outs, axis=1))


CAUSAL_CONV_CHUNKED = Case(
    name="vae.causal_conv3d.chunked",
    reference=_chunked_ref,
    implementation=_chunked_impl,
    inputs=lambda dtype: st.builds(
        lambda base, x: {**base, "x": x, "cin": 4, "cout": 8, "pad_mode": "first"},
        st.fixed_dictionaries(_base(dtype)),
        _activations((1, 4, 7, 6, 6), offset=False),
    ),
    build=_build(_conv_ctor),
    dtypes=("float32",),
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
