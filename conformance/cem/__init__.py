"""Conformance tests of the CEM subsystem: `reference.cem` (PyTorch) against `implementations.cem` (JAX)
and its `jax.export` AOT pipeline."""

from pathlib import Path

from conformance.subsystems import Subsystem

_HERE = Path(__file__).resolve().parent

SUBSYSTEM = Subsystem(
    name="cem",
    cases="conformance.cem.cases",
    tiers=_HERE / "tiers.toml",
    suite=_HERE,
    backends="conformance.cem.backends",
    localize=None,
    benchmarks="benchmarks.cem",
    mutants="conformance.cem.catalogue",
)
