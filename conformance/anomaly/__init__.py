"""Conformance tests of the anomaly subsystem: `reference.anomaly` against `implementations.anomaly`."""

from pathlib import Path

from conformance.subsystems import Subsystem

_HERE = Path(__file__).resolve().parent

SUBSYSTEM = Subsystem(
    name="anomaly",
    cases="conformance.anomaly.cases",
    tiers=_HERE / "tiers.toml",
    suite=_HERE,
    backends="conformance.anomaly.backends",
    localize=None,
    benchmarks="benchmarks.anomaly",
    mutants="conformance.anomaly.catalogue",
)
