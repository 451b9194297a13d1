"""Batch-sharded encode/decode over 4 simulated CPU devices equals the unsharded run (`jax-sharded`).

The run happens in a subprocess: ``--xla_force_host_platform_device_count`` must be set before JAX
initialises, and must not leak into the other tests of this process.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conformance import assert_parity
from contracts.vae.config import VAEInputError

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def sharded_outputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, np.ndarray]:
    out = tmp_path_factory.mktemp("vae_sharded") / "out.npz"
    env = dict(os.environ)  # the child adds its device count to the caller's XLA_FLAGS
    subprocess.run(
        [sys.executable, "-m", "conformance.vae._sharded_run", str(out), "4"],
        check=True,
        cwd=ROOT,
        env=env,
        timeout=600,
    )
    with np.load(out, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


@pytest.mark.parity_cases("vae.encode.sharded")
def test_sharded_encode_equals_unsharded(sharded_outputs: dict[str, np.ndarray]) -> None:
    assert int(sharded_outputs["enc_devices"]) == 4
    assert "batch" in str(sharded_outputs["enc_spec"])
    assert_parity(
        "vae.encode.sharded",
        sharded_outputs["enc"],
        sharded_outputs["enc_sharded"],
        backend="jax-sharded",
        dtype="float32",
        device="cpu",
    )


@pytest.mark.parity_cases("vae.decode.sharded")
def test_sharded_decode_equals_unsharded(sharded_outputs: dict[str, np.ndarray]) -> None:
    assert int(sharded_outputs["dec_devices"]) == 4
    assert_parity(
        "vae.decode.sharded",
        sharded_outputs["dec"],
        sharded_outputs["dec_sharded"],
        backend="jax-sharded",
        dtype="float32",
        device="cpu",
    )


def test_batch_not_divisible_by_devices_is_an_error() -> None:
    import jax

    from implementations.vae.sharding import Mesh, shard_batch

    mesh = Mesh(np.array(jax.devices()[:1] * 1), ("batch",))
    shard_batch(np.zeros((3, 1, 2, 2, 3), np.float32), mesh)  # one device: any batch
    fake = type("M", (), {"devices": np.zeros(2)})()
    with pytest.raises(VAEInputError, match="not divisible"):
        shard_batch(np.zeros((3, 1, 2, 2, 3), np.float32), fake)
    with pytest.raises(VAEInputError, match=r"\(B, T, H, W, C\)"):
        shard_batch(np.zeros((4, 2, 2, 3), np.float32), mesh)
