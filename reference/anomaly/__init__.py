"""Reference (ground truth) of the anomaly subsystem: the iTAC-AD style detector in PyTorch, its checkpoints
(safetensors + JSON config, strict loading), the generated data set and a short deterministic training run.

The JAX port and the exported artifacts live in `implementations.anomaly` under the same names.
"""

from reference.anomaly.config import SMALL, AnomalyConfig, ConfigError
from reference.anomaly.inputs import InputError, validate_window

__all__ = ["SMALL", "AnomalyConfig", "ConfigError", "InputError", "validate_window"]
