"""Reference (PyTorch) of the CEM planner subsystem: hydrax-style batched CEM, spline interpolation, tasks
and networks, and the networks' weights (`reference.cem.weights`, ``python -m reference.cem weights``) that the
JAX side exports. The JAX twins live in `implementations.cem` under the same names and signatures; the
configuration both share is `contracts.cem`'s, re-exported here."""

from contracts.cem.config import DEFAULT_CONFIGS, TASKS, CEMConfig, CEMInputError
from reference.cem.networks import policy_knots
from reference.cem.planner import cem_iteration, elite_update, optimize, rollout, sample_knots, warm_start
from reference.cem.spline import interp

__all__ = [
    "DEFAULT_CONFIGS",
    "TASKS",
    "CEMConfig",
    "CEMInputError",
    "cem_iteration",
    "elite_update",
    "interp",
    "optimize",
    "policy_knots",
    "rollout",
    "sample_knots",
    "warm_start",
]
