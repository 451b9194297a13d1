"""Does the port ask for full-precision matrix products itself?

The parity runs pin ``jax_default_matmul_precision="highest"`` for the whole process, and XLA's CPU backend
computes float32 products in float32 whatever the setting, so a dot that leaves its precision to the global
default passes every parity test here and runs as TF32 (GPU) or bf16 passes (TPU) in a deployment that does
not set the flag. These tests lower the deployed functions with the global default set to ``"default"`` (not
the pin) and read the precision of every ``dot_general`` in the StableHLO.

The CEM port's MLPs (`implementations.cem.tasks.mlp`: the learned dynamics and the policy warm start) ask
for ``Precision.HIGHEST`` themselves; the deployed function, ``plan``, holds both.
"""

from __future__ import annotations

import itertools

import jax
import numpy as np
import pytest

from conformance.controls import dot_precisions
from contracts.cem.config import CEMConfig
from implementations.cem import export

CONFIG = CEMConfig(task="learned", num_samples=8, num_elites=2, num_knots=4)


def _flat_functions() -> dict:
    rng = np.random.default_rng(0)

    def mlp(sizes: list[int]) -> dict[str, np.ndarray]:
        out = {}
        for i, (a, b) in enumerate(itertools.pairwise(sizes)):
            out[f"layers.{i}.weight"] = rng.standard_normal((b, a)).astype(np.float32)
            out[f"layers.{i}.bias"] = np.zeros(b, np.float32)
        return out

    dynamics = mlp([4, 8, 2])
    policy = mlp([CONFIG.spec.nx, 8, CONFIG.num_knots * CONFIG.spec.nu])
    return export.flat_functions(CONFIG, dynamics, policy, replan_steps=2)


@pytest.mark.parametrize("name", ["plan"])
def test_the_deployed_functions_request_highest_precision_themselves(name: str) -> None:
    fn, specs = _flat_functions()[name]
    with jax.default_matmul_precision("default"):
        text = jax.jit(fn).lower(*specs).as_text()
    dots = dot_precisions(text)
    assert len(dots) == 4, f"{name} has the two products of each MLP (policy and dynamics): {dots}"
    assert all(p == ("HIGHEST", "HIGHEST") for p in dots), dots
