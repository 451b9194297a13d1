"""Contracts of the CEM subsystem, shared by `reference.cem` (PyTorch) and `implementations.cem` (JAX): the
planner's configuration, task specs and input checks (`contracts.cem.config`), the tasks' physical constants
(`contracts.cem.tasks`), and the networks' weights (architecture, tensor names, the weights directory and its
manifest: `contracts.cem.networks`). NumPy and the standard library only."""

from contracts.cem.config import DEFAULT_CONFIGS, TASKS, CEMConfig, CEMInputError, TaskSpec, check_array

__all__ = ["DEFAULT_CONFIGS", "TASKS", "CEMConfig", "CEMInputError", "TaskSpec", "check_array"]
