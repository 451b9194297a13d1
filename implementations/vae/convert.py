"""Implementation side of the CogVideoX VAE's weights: conversion between a PyTorch-layout state dict
(diffusers' key names, as NumPy arrays or a ``.safetensors`` file) and the Flax NNX port (`implementations.vae`):
name mapping, kernel transposes, full validation, exact round trip. PyTorch is never imported: a caller
holding torch tensors converts them with `contracts.common.as_numpy`.

- ``a.b.0.conv.weight`` (5-D, O I kt kh kw) <-> path ``a/b/0/conv/kernel`` (kt kh kw I O): ``transpose(2,3,4,1,0)``
- Conv2d ``weight`` (O I kh kw) <-> ``kernel`` (kh kw I O): ``transpose(2,3,1,0)``; Linear ``weight`` <-> ``kernel.T``
- GroupNorm ``weight`` <-> ``scale``; every ``bias`` <-> ``bias``.

Every tensor of the checkpoint must be consumed and every parameter filled: otherwise `CheckpointError`
lists the missing, unexpected and mis-shaped tensors by name (`contracts.common.state_dict_mismatch`; nothing
is dropped silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

from contracts.common import StateDictMismatch, state_dict_mismatch, write_bytes

_TO_NNX = {5: (2, 3, 4, 1, 0), 4: (2, 3, 1, 0), 2: (1, 0)}
_TO_TORCH = {5: (4, 3, 0, 1, 2), 4: (3, 2, 0, 1), 2: (1, 0)}


class CheckpointError(ValueError):
    """A checkpoint does not fit the model: ``missing``, ``unexpected`` and ``mismatched`` name the tensors
    (``mismatched``: ``"name: checkpoint (shape) dtype, model (shape) dtype"``, torch layout)."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[str],
        other: str = "",
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        super().__init__(other or StateDictMismatch(missing, unexpected, mismatched).message("checkpoint"))

    @classmethod
    def of(cls, mismatch: StateDictMismatch) -> CheckpointError:
        return cls(mismatch.missing, mismatch.unexpected, mismatch.mismatched)


def _leaf_name(path: tuple[Any, ...]) -> str:
    *head, leaf = (str(p) for p in path)
    return ".".join([*head, {"kernel": "weight", "scale": "weight"}.get(leaf, leaf)])


def param_paths(model: nnx.Module) -> dict[str, tuple[tuple[Any, ...], tuple[int, ...], Any]]:
    """torch key -> (NNX path, NNX shape, dtype) for every parameter of ``model``."""
    flat = nnx.to_flat_state(nnx.state(model, nnx.Param))
    out = {}
    for path, var in flat:
        value = var.get_value() if hasattr(var, "get_value") else var[...]
        out[_leaf_name(path)] = (tuple(path), tuple(value.shape), value.dtype)
    return out


def _torch_shape(path: tuple[Any, ...], shape: tuple[int, ...]) -> tuple[int, ...]:
    if path[-1] == "kernel" and len(shape) in _TO_TORCH:
        return tuple(shape[i] for i in _TO_TORCH[len(shape)])
    return shape


def _to_numpy(name: str, value: Any) -> np.ndarray:
    if hasattr(value, "detach"):
        raise CheckpointError(
            [],
            [],
            [],
            f"tensor {name} is a {type(value).__module__}.{type(value).__name__}: the port reads NumPy arrays "
            "(convert a PyTorch state dict with contracts.common.as_numpy)",
        )
    return np.asarray(value)


def read_checkpoint(source: Mapping[str, Any] | str | Path) -> dict[str, np.ndarray]:
    """A state dict of NumPy arrays (diffusers' key names) or a ``.safetensors`` file, as NumPy arrays."""
    if isinstance(source, (str, Path)):
        path = Path(source)
        if path.suffix != ".safetensors":
            raise CheckpointError(
                [], [], [], f"{path}: only .safetensors checkpoints are read (never pickle)"
            )
        if not path.exists():
            raise CheckpointError([], [], [], f"{path}: no such checkpoint")
        from safetensors import SafetensorError
        from safetensors.numpy import load_file

        try:
            return dict(load_file(str(path)))
        except (SafetensorError, OSError, ValueError) as exc:
            raise CheckpointError(
                [], [], [], f"{path}: corrupt or truncated safetensors file ({exc})"
            ) from exc
    if not isinstance(source, Mapping):
        raise CheckpointError(
            [], [], [], f"expected a state dict or a .safetensors path, got {type(source).__name__}"
        )
    return {str(k): _to_numpy(str(k), v) for k, v in source.items()}


def torch_to_nnx_params(
    source: Mapping[str, Any] | str | Path, model: nnx.Module, *, prefix: str = "", dtype: Any = None
) -> dict:
    """The NNX pure-dict parameters of ``model`` from a torch state dict; ``prefix`` (e.g. ``"decoder."``)
    selects a submodule's tensors from a whole-model checkpoint (the others are then not unexpected)."""
    sd = read_checkpoint(source)
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    expected = param_paths(model)
    mismatch = state_dict_mismatch(
        {k: (_torch_shape(path, shape), np.dtype(dt).name) for k, (path, shape, dt) in expected.items()},
        sd,
        check_dtype=False,  # any float dtype is cast to the model's (the check below refuses others)
    )
    if mismatch:
        raise CheckpointError.of(mismatch)
    pure: dict = {}
    for key, (path, _, pdtype) in expected.items():
        v = sd[key]
        if v.dtype.kind != "f" and v.dtype.name != "bfloat16":
            raise CheckpointError([], [], [], f"tensor {key} has non-float dtype {v.dtype}")
        if path[-1] == "kernel" and v.ndim in _TO_NNX:
            v = np.transpose(v, _TO_NNX[v.ndim])
        node = pure
        for p in path[:-1]:
            node = node.setdefault(p, {})
        # device_put of a host array compiles nothing (jnp.asarray compiles a staging copy per shape)
        node[path[-1]] = jax.device_put(np.ascontiguousarray(v.astype(np.dtype(dtype or pdtype))))
    return pure


def from_torch_state_dict(
    source: Mapping[str, Any] | str | Path, model: nnx.Module, *, prefix: str = "", dtype: Any = None
) -> nnx.Module:
    """Load a torch state dict (or ``.safetensors`` file) into ``model`` in place and return it."""
    pure = torch_to_nnx_params(source, model, prefix=prefix, dtype=dtype)
    state = nnx.state(model, nnx.Param)
    nnx.replace_by_pure_dict(state, pure)
    nnx.update(model, state)
    return model


load_torch_weights = from_torch_state_dict


def to_torch_state_dict(model: nnx.Module) -> dict[str, np.ndarray]:
    """The torch-layout state dict (NumPy arrays, diffusers' key names) of an NNX model."""
    out = {}
    for path, var in nnx.to_flat_state(nnx.state(model, nnx.Param)):
        value = np.asarray(jax.device_get(var.get_value() if hasattr(var, "get_value") else var[...]))
        if path[-1] == "kernel" and value.ndim in _TO_TORCH:
            value = np.ascontiguousarray(np.transpose(value, _TO_TORCH[value.ndim]))
        out[_leaf_name(tuple(path))] = value
    return out


def save_safetensors(state_dict: Mapping[str, Any], path: str | Path) -> None:
    """Write a state dict of NumPy arrays as safetensors, atomically."""
    from safetensors.numpy import save

    write_bytes(path, save({k: np.ascontiguousarray(_to_numpy(k, v)) for k, v in state_dict.items()}))


def abstract_model(cls: Any, *args: Any, **kwargs: Any) -> nnx.Module:
    """``cls(*args, **kwargs)`` built without running its initializers (parameters are shape placeholders);
    fill it with `from_torch_state_dict`. Eager NNX initialisation compiles one random kernel per shape."""
    return nnx.eval_shape(lambda: cls(*args, **kwargs))


def load_model(
    cls: Any,
    config_args: tuple,
    source: Mapping[str, Any] | str | Path,
    *,
    prefix: str = "",
    dtype: Any = None,
    **kwargs: Any,
) -> nnx.Module:
    """An NNX module of ``cls(*config_args, **kwargs)`` holding the converted torch weights of ``source``."""
    return from_torch_state_dict(
        source, abstract_model(cls, *config_args, **kwargs), prefix=prefix, dtype=dtype
    )
