"""JAX implementation of the CEM planner subsystem (twin of `reference.cem`): hydrax-style CEM with spline
interpolation (jit once per config), and its `jax.export` AOT pipeline (`implementations.cem.export` writes
artifacts, `implementations.cem.runtime` loads and runs them). The configuration is `contracts.cem`'s,
re-exported here.

The planner's names are imported on first use, so that importing a submodule (the runtime, say) does not
import JAX and compile-wrap the planner.
"""

from __future__ import annotations

import importlib
from typing import Any

from contracts.cem.config import DEFAULT_CONFIGS, TASKS, CEMConfig, CEMInputError

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
_PLANNER = frozenset(
    __all__[4:]
)  # the planner's names, imported from implementations.cem.planner on first use


def __getattr__(name: str) -> Any:
    if name in _PLANNER:
        value = getattr(importlib.import_module("implementations.cem.planner"), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_PLANNER})
