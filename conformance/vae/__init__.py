"""Conformance suite of the VAE subsystem: `reference.vae` (PyTorch CogVideoX VAE) vs `implementations.vae`."""

from pathlib import Path

from conformance.subsystems import Subsystem

_HERE = Path(__file__).resolve().parent

SUBSYSTEM = Subsystem(
    name="vae",
    cases="conformance.vae.cases",
    tiers=_HERE / "tiers.toml",
    suite=_HERE,
    backends="conformance.vae.backends",
    localize="conformance.vae.localize",
    benchmarks="benchmarks.vae",
    mutants="conformance.vae.catalogue",
)
