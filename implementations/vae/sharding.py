"""Implementation (JAX) of batch-parallel encode/decode of the NNX CogVideoX VAE (`implementations.vae.model`)
over several devices.

Only the batch axis is sharded (``P("batch")``): time is never split (the causal convolutions and their
caches need every earlier frame), and GroupNorm statistics are per sample, so no cross-device reduction
is needed. The parameters are replicated. With one device this is the unsharded computation.
"""

from __future__ import annotations

from typing import Any

import jax
import numpy as np
from jax.sharding import Mesh, NamedSharding
from jax.sharding import PartitionSpec as P

from contracts.vae.config import VAEInputError

BATCH_AXIS = "batch"


def batch_mesh(devices: Any = None) -> Mesh:
    devices = list(devices if devices is not None else jax.devices())
    return Mesh(np.array(devices), (BATCH_AXIS,))


def shard_batch(x: Any, mesh: Mesh) -> jax.Array:
    """``x`` (B, T, H, W, C) placed batch-sharded on ``mesh``; B must be a multiple of the device count."""
    n = mesh.devices.size
    shape = np.shape(x)
    if len(shape) != 5:
        raise VAEInputError(f"sharded VAE calls take (B, T, H, W, C) arrays, got shape {shape}")
    if shape[0] % n:
        raise VAEInputError(
            f"batch {shape[0]} is not divisible by the {n} devices of the mesh (only the batch axis is "
            "sharded; time is never split, it would break causality)"
        )
    return jax.device_put(x, NamedSharding(mesh, P(BATCH_AXIS)))


def _replicated(model: Any, mesh: Mesh) -> Any:
    from flax import nnx

    graphdef, state = nnx.split(model)
    state = jax.device_put(state, NamedSharding(mesh, P()))
    return nnx.merge(graphdef, state)


def sharded_encode(model: Any, x: Any, mesh: Mesh | None = None) -> jax.Array:
    """``model.encode(x)`` with the batch sharded over ``mesh`` (default: every device)."""
    mesh = mesh or batch_mesh()
    model._check_sample(x)
    return _replicated(model, mesh).encode(shard_batch(x, mesh))


def sharded_decode(model: Any, z: Any, mesh: Mesh | None = None) -> jax.Array:
    """``model.decode(z)`` with the batch sharded over ``mesh`` (default: every device)."""
    mesh = mesh or batch_mesh()
    return _replicated(model, mesh).decode(shard_batch(z, mesh))
