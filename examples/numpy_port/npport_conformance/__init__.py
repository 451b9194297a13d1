"""The parity suite's description of the npport subsystem (loaded through its entry point; cheap to import)."""

from pathlib import Path

from conformance.subsystems import Subsystem

_HERE = Path(__file__).resolve().parent

SUBSYSTEM = Subsystem(
    name="npport",
    cases="npport_conformance.cases",
    tiers=_HERE / "tiers.toml",
    suite=_HERE,
    backends="npport_conformance.backends",
    benchmarks="npport_conformance.benchmarks",
)
