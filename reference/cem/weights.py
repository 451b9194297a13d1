"""The CEM networks' weights as the reference makes them: build the PyTorch MLPs (seeded initialisation), fit
the learned dynamics to the analytic pendulum, and save a weights directory (safetensors files and the
`contracts.cem.networks.WeightsManifest`) that the JAX side loads and exports (``python -m implementations.cem
export --weights DIR``). ``python -m reference.cem weights`` is its command line.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from contracts.cem.config import CEMConfig
from contracts.cem.networks import (
    DYNAMICS_HIDDEN,
    POLICY_HIDDEN,
    dynamics_sizes,
    policy_sizes,
    write_weights_manifest,
)
from reference.cem import networks


def write_weights(
    out_dir: str | Path,
    config: CEMConfig,
    *,
    seed: int = 0,
    fit_seconds: float = 3.0,
    dynamics_hidden: Sequence[int] = DYNAMICS_HIDDEN,
    policy_hidden: Sequence[int] = POLICY_HIDDEN,
) -> Path:
    """Write the task's networks to ``out_dir``: the policy (initialised with ``seed + 1``) and, for the
    learned task, the dynamics MLP (initialised with ``seed``, fitted for ``fit_seconds``); then the manifest,
    last. Returns ``out_dir``."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    files: dict[str, tuple[Path, list[int]]] = {}
    pol_sizes = policy_sizes(config, policy_hidden)
    files["policy"] = (
        networks.save(networks.init_mlp(pol_sizes, seed + 1), out_dir / "policy.safetensors"),
        pol_sizes,
    )
    if config.task == "learned":
        dyn_sizes = dynamics_sizes(dynamics_hidden)
        model = networks.init_mlp(dyn_sizes, seed)
        if fit_seconds > 0:
            networks.fit_dynamics(model, seconds=fit_seconds, seed=seed)
        files["dynamics"] = (networks.save(model, out_dir / "dynamics.safetensors"), dyn_sizes)
    else:
        (out_dir / "dynamics.safetensors").unlink(missing_ok=True)  # a previous learned task's
    write_weights_manifest(out_dir, config, files, seed=seed, fit_seconds=fit_seconds)
    return out_dir


__all__ = ["write_weights"]
