"""Weight conversion between a PyTorch CogVideoX VAE state dict (diffusers' key names; `reference.vae`) and
the Flax NNX port (`implementations.vae`): name mapping, kernel transposes, full validation, exact round trip.

- ``a.b.0.conv.weight`` (5-D, O I kt kh kw) <-> path ``a/b/0/conv/kernel`` (kt kh kw I O): ``transpose(2,3,4,1,0)``
- Conv2d ``weight`` (O I kh kw) <-> ``kernel`` (kh kw I O): ``transpose(2,3,1,0)``; Linear ``weight`` <-> ``kernel.T``
- GroupNorm ``weight`` <-> ``scale``; every ``bias`` <-> ``bias``.

Every tensor of the checkpoint must be consumed and every parameter filled: otherwise `CheckpointError`
lists the missing, unexpected and mis-shaped tensors by name (nothing is dropped silently).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import jax
import numpy as np
from flax import nnx

_TO_NNX = {5: (2, 3, 4, 1, 0), 4: (2, 3, 1, 0), 2: (1, 0)}
_TO_TORCH = {5: (4, 3, 0, 1, 2), 4: (3, 2, 0, 1), 2: (1, 0)}


class CheckpointError(ValueError):
    """A checkpoint does not fit the model: ``missing``, ``unexpected`` and ``mismatched`` name the tensors."""

    def __init__(
        self,
        missing: list[str],
        unexpected: list[str],
        mismatched: list[tuple[str, tuple, tuple]],
        other: str = "",
    ):
        self.missing, self.unexpected, self.mismatched = missing, unexpected, mismatched
        lines = [other] if other else ["checkpoint does not match the model:"]
        if missing:
            lines.append(f"  missing tensors ({len(missing)}): {', '.join(missing)}")
        if unexpected:
            lines.append(f"  unexpected tensors ({len(unexpected)}): {', '.join(unexpected)}")
        for name, got, want in mismatched:
            lines.append(f"  mis-shaped tensor {name}: checkpoint {got}, model expects {want} (torch layout)")
        super().__init__("\n".join(lines))


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


def _to_numpy(t: Any) -> np.ndarray:
    if type(t).__module__.startswith("torch"):
        import torch

        t = t.detach().cpu()
        if t.dtype == torch.bfloat16:
            t = t.to(torch.float32)
        return t.numpy()
    return np.asarray(t)


def read_checkpoint(source: Mapping[str, Any] | str | Path) -> dict[str, np.ndarray]:
    """A state dict (torch tensors or arrays) or a ``.safetensors`` file, as NumPy arrays."""
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
    return {str(k): _to_numpy(v) for k, v in source.items()}


def torch_to_nnx_params(
    source: Mapping[str, Any] | str | Path, model: nnx.Module, *, prefix: str = "", dtype: Any = None
) -> dict:
    """The NNX pure-dict parameters of ``model`` from a torch state dict; ``prefix`` (e.g. ``"decoder."``)
    selects a submodule's tensors from a whole-model checkpoint (the others are then not unexpected)."""
    sd = read_checkpoint(source)
    if prefix:
        sd = {k[len(prefix) :]: v for k, v in sd.items() if k.startswith(prefix)}
    expected = param_paths(model)
    missing = sorted(k for k in expected if k not in sd)
    unexpected = sorted(k for k in sd if k not in expected)
    mismatched = []
    for key, (path, shape, _) in expected.items():
        if key in sd and tuple(sd[key].shape) != _torch_shape(path, shape):
            mismatched.append((key, tuple(sd[key].shape), _torch_shape(path, shape)))
    if missing or unexpected or mismatched:
        raise CheckpointError(missing, unexpected, mismatched)
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
    """Write a state dict as safetensors, atomically."""
    import os
    import tempfile

    from safetensors.numpy import save_file

    path = Path(path)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(fd)
    try:
        save_file({k: np.ascontiguousarray(_to_numpy(v)) for k, v in state_dict.items()}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


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
