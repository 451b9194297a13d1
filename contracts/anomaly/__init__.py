"""Contracts of the anomaly detector (framework-free): its configuration (`config`), its inputs (`inputs`), and
its exported artifacts (`artifacts`: the table of formats and runtimes, and the manifest schema)."""

from contracts.anomaly.config import SMALL, AnomalyConfig, ConfigError
from contracts.anomaly.inputs import InputError, validate_window

__all__ = ["SMALL", "AnomalyConfig", "ConfigError", "InputError", "validate_window"]
