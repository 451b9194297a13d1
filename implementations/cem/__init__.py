"""JAX implementation of the CEM planner subsystem (twin of `reference.cem`): hydrax-style CEM with spline
interpolation (jit once per config), and the `jax.export` AOT pipeline in `implementations.cem.aot`."""

from implementations.cem.planner import (
    cem_iteration,
    elite_update,
    interp,
    optimize,
    optimize_key,
    policy_knots,
    rollout,
    sample_knots,
    warm_start,
)
from reference.cem.config import DEFAULT_CONFIGS, TASKS, CEMConfig, CEMInputError

__all__ = [
    "DEFAULT_CONFIGS",
    "TASKS",
    "CEMConfig",
    "CEMInputError",
    "cem_iteration",
    "elite_update",
    "interp",
    "optimize",
    "optimize_key",
    "policy_knots",
    "rollout",
    "sample_knots",
    "warm_start",
]
