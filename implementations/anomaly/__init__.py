"""Implementations of the anomaly subsystem (twins of `reference.anomaly`): the JAX/Flax NNX port of the
detector with converted weights (`model`, `convert`), the exporters of the reference to torch.export, ONNX and
TorchScript and of the port to jax.export (`export`), the runtimes that run those artifacts (`runtimes`), and
the command line (`python -m implementations.anomaly export ...`).
"""

from reference.anomaly.config import SMALL, AnomalyConfig, ConfigError
from reference.anomaly.inputs import InputError, validate_window

__all__ = ["SMALL", "AnomalyConfig", "ConfigError", "InputError", "validate_window"]
