"""Subsystems are discovered, not listed: each one is an entry point of the group ``conformance.subsystems``.

A subsystem is a reference, its port, its cases, its tier-table rows, its backends, its tests and its
benchmarks. A project (this one or a third party's) declares it in its ``pyproject.toml``::

    [project.entry-points."conformance.subsystems"]
    mysub = "mysub_conformance:SUBSYSTEM"

where ``SUBSYSTEM = Subsystem(name="mysub", cases="mysub_conformance.cases", tiers=..., suite=...)``. The
entry point's module must be cheap to import (no JAX, no PyTorch): the harness loads every subsystem's
description to list, select and validate them, and imports a subsystem's ``cases`` and ``backends`` modules
only when it runs that subsystem.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import re
from collections.abc import Iterable
from functools import cache
from pathlib import Path

ENTRY_POINT_GROUP = "conformance.subsystems"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
# Reserved for the harness's own meta-tests (their tier tables are written by the tests).
SELFTEST = "selftest"


class SubsystemError(LookupError):
    """An unknown subsystem, or a subsystem entry point that does not describe one."""


@dataclasses.dataclass(frozen=True)
class Subsystem:
    name: str
    cases: str  # module that registers the subsystem's `Case`s when imported
    tiers: Path  # TOML with the subsystem's [cases.*] rows (and any [backends] it adds)
    suite: Path | None = None  # directory of the subsystem's own conformance tests (test_*.py)
    backends: str | None = None  # module that registers the subsystem's backends when imported
    localize: str | None = None  # module with main(argv) for `python -m conformance localize <name>`
    benchmarks: str | None = None  # asv benchmark module (documentation and the perf gate's selection)
    mutants: str | None = None  # module with MUTANTS, the catalogue of porting bugs (`conformance mutate`)
    doc: str = ""

    def __post_init__(self) -> None:
        if not _NAME.match(self.name) or self.name == SELFTEST:
            raise SubsystemError(
                f"subsystem name {self.name!r} must match {_NAME.pattern} and not be {SELFTEST!r}"
            )

    def load_cases(self) -> None:
        importlib.import_module(self.cases)

    def load_backends(self) -> None:
        if self.backends:
            importlib.import_module(self.backends)


@cache
def discovered() -> dict[str, Subsystem]:
    """Every installed subsystem, by name (entry-point order does not matter: sorted by name)."""
    found: dict[str, Subsystem] = {}
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        obj = ep.load()
        if not isinstance(obj, Subsystem):
            raise SubsystemError(
                f"entry point {ep.name} = {ep.value} in group {ENTRY_POINT_GROUP} is a {type(obj).__name__}, "
                "not a conformance.subsystems.Subsystem"
            )
        if obj.name != ep.name:
            raise SubsystemError(
                f"entry point {ep.name!r} describes subsystem {obj.name!r}: the names must agree"
            )
        if obj.name in found and found[obj.name] != obj:
            raise SubsystemError(f"two installed packages declare subsystem {obj.name!r}")
        found[obj.name] = obj
    return dict(sorted(found.items()))


def names() -> list[str]:
    return list(discovered())


def get(name: str) -> Subsystem:
    try:
        return discovered()[name]
    except KeyError:
        known = ", ".join(discovered()) or "none (is the project installed? pip install -e .)"
        raise SubsystemError(f"unknown subsystem {name!r}; installed subsystems: {known}") from None


def of_case(case: str) -> str:
    return case.split(".", 1)[0]


def load(selected: Iterable[str] | None = None) -> list[Subsystem]:
    """Import the backends and cases of the selected subsystems (default: all), backends first."""
    subs = [get(n) for n in selected] if selected is not None else list(discovered().values())
    for s in subs:
        s.load_backends()
    for s in subs:
        s.load_cases()
    return subs
