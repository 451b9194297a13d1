"""The VAE's twin harness: builds a layer, block or model of the PyTorch reference (`reference.vae`, float64)
and its Flax NNX twin (`implementations.vae`) from one constructor spec, loads the same torch-layout weights
into both (the NNX side through `implementations.vae.convert`), and runs them on the same activations
(channel-first outside, as the reference takes them; channel-last inside the port).

The parity cases (`conformance.vae.cases`), the localizer, the sharding run and the property tests use it.
"""

from __future__ import annotations

import itertools
from functools import cache
from typing import Any

import numpy as np

import implementations.vae as impl
import reference.vae as ref
from contracts.vae.config import CogVideoXVAEConfig
from implementations.vae.convert import abstract_model, from_torch_state_dict, torch_to_nnx_params
from implementations.vae.layers import WINOGRAD_MIN_CHANNELS
from implementations.vae.model import apply_module

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


def cf_to_cl(a: Any) -> Any:
    return np.moveaxis(np.asarray(a), 1, -1) if a is not None and np.ndim(a) == 5 else a


def cl_to_cf(a: Any) -> Any:
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
        graphdef, params, *[None if a is None else cf_to_cl(np.asarray(a, dtype)) for a in args]
    )
    if with_cache:
        return {"out": cl_to_cf(out[0]), "cache": cl_to_cf(out[1])}
    return cl_to_cf(_first(out))


@cache
def vae_pair(config: CogVideoXVAEConfig, tiling: bool) -> tuple[Any, Any]:
    """The torch VAE and its abstract NNX twin for ``config`` (cached), with tiling on or off."""
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


def implementation_chunked(ctor: Ctor, weights: dict, x: np.ndarray) -> np.ndarray:
    """The NNX conv run on frames [0:1], [1:3], [3:5]..., threading its cache, concatenated."""
    model, graphdef = nnx_module(ctor)
    params = torch_to_nnx_params(weights, model, dtype=x.dtype)
    xc = cf_to_cl(x)
    outs, cache_ = [], None
    bounds = [0, 1, *range(3, xc.shape[1], 2), xc.shape[1]]
    for a, b in itertools.pairwise(bounds):
        out, cache_ = apply_module(graphdef, params, xc[:, a:b], cache_)
        outs.append(np.asarray(out))
    return cl_to_cf(np.concatenate(outs, axis=1))


def reference_vae_method(
    config: CogVideoXVAEConfig, tiling: bool, method: str, weights: dict[str, np.ndarray], x: np.ndarray
) -> np.ndarray:
    """``encode`` or ``decode`` (``method``) of the float64 torch VAE, frame-batched or tiled, channel-first."""
    import torch

    tm, _ = vae_pair(config, tiling)
    tm.load_state_dict({k: torch.from_numpy(v) for k, v in weights.items()})
    with torch.no_grad():
        return getattr(tm, method)(torch.from_numpy(np.asarray(x, np.float64))).numpy()


def implementation_vae_method(
    config: CogVideoXVAEConfig,
    tiling: bool,
    method: str,
    weights: dict[str, np.ndarray],
    x: np.ndarray,
    winograd_min_channels: int | None = WINOGRAD_MIN_CHANNELS,
) -> np.ndarray:
    """The same method of the NNX twin on the same weights (in ``x``'s dtype), channel-first outside, its
    float32 3x3x3 convolutions from ``winograd_min_channels`` input channels run by Winograd (the port's
    default unless a case lowers it to exercise that path on a small model)."""
    _, model = vae_pair(config, tiling)
    from_torch_state_dict(weights, model, dtype=x.dtype)
    model.winograd_min_channels = winograd_min_channels
    return cl_to_cf(getattr(model, method)(cf_to_cl(x)))
