"""Subprocess body of the sharding test: encode/decode of the micro NNX VAE, unsharded and batch-sharded
over simulated CPU devices (XLA_FLAGS must be set before JAX starts, hence a separate process).

Usage: python -m conformance.vae._sharded_run OUT.npz N_DEVICES
"""

from __future__ import annotations

import os
import re
import sys


def main(out: str, n_devices: int) -> None:
    # keep the caller's other flags (an ISA cap of `python -m conformance isa` among them)
    kept = re.sub(r"--xla_force_host_platform_device_count[= ]\d+", "", os.environ.get("XLA_FLAGS", ""))
    os.environ["XLA_FLAGS"] = f"{kept} --xla_force_host_platform_device_count={n_devices}".strip()
    os.environ.setdefault("JAX_PLATFORMS", "cpu")
    import jax
    import numpy as np

    from conformance import precision

    precision.apply()
    assert len(jax.devices()) == n_devices, jax.devices()
    from conformance.vae.twins import random_state_dict
    from contracts.vae.config import micro
    from implementations.vae import AutoencoderKLCogVideoX
    from implementations.vae.convert import load_model
    from implementations.vae.sharding import batch_mesh, sharded_decode, sharded_encode

    cfg = micro()
    ctor = ("AutoencoderKLCogVideoX", (cfg,), ())
    weights = random_state_dict(ctor, 7, "float32")
    model = load_model(AutoencoderKLCogVideoX, (cfg,), weights, dtype=np.float32)
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n_devices, 9, 8, 8, 3)).astype(np.float32)
    z = rng.standard_normal((n_devices, 3, 4, 4, 4)).astype(np.float32)
    mesh = batch_mesh()
    enc, dec = model.encode(x), model.decode(z)
    enc_s, dec_s = sharded_encode(model, x, mesh), sharded_decode(model, z, mesh)
    np.savez(
        out,
        enc=np.asarray(enc),
        dec=np.asarray(dec),
        enc_sharded=np.asarray(enc_s),
        dec_sharded=np.asarray(dec_s),
        enc_devices=len(enc_s.sharding.device_set),
        dec_devices=len(dec_s.sharding.device_set),
        enc_spec=str(enc_s.sharding.spec),
    )


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
