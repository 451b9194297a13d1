"""Conformance tests of the GCM subsystem: `reference.gcm` (NumPy/SciPy) against `implementations.gcm` (JAX)."""

from pathlib import Path

from conformance.subsystems import Subsystem

_HERE = Path(__file__).resolve().parent

SUBSYSTEM = Subsystem(
    name="gcm",
    cases="conformance.gcm.cases",
    tiers=_HERE / "tiers.toml",
    suite=_HERE,
    backends=None,
    localize=None,
    benchmarks="benchmarks.gcm",
    mutants="conformance.gcm.catalogue",
)
