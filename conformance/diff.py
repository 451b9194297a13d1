"""Parity drift between two reports (two commits, two machines): the numeric twin of ``asv continuous``.

``python -m conformance diff BASE HEAD`` compares cells keyed by (case, backend, dtype, device) and lists

- **dropped**: the tier got worse (e.g. perfect -> excellent), or the cell went missing;
- **grew**: the worst normalized error (MAE or max) grew by more than ``--factor`` (default 10x) while the tier
  held, which is the drift a tier band hides until it crosses a bound;
- **disappeared**: a cell of BASE that HEAD does not have at all (coverage lost);
- **appeared**, **improved**: informational.

The exit status is 1 when anything dropped, grew or disappeared, 0 otherwise (identical reports pass).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

from conformance.tiers import tier_rank

DEFAULT_FACTOR = 10.0
# Errors below this (normalized) are rounding noise of an exact or near-exact result: a growth from 1e-18 to
# 1e-16 is not drift. It is the float64 'perfect' bound's scale.
NOISE_FLOOR = 1e-15


@dataclasses.dataclass(frozen=True)
class Change:
    kind: str  # dropped, grew, disappeared, appeared, improved
    key: tuple[str, str, str, str]  # case, backend, dtype, device
    base: str | None
    head: str | None
    detail: str

    @property
    def label(self) -> str:
        case, backend, dtype, device = self.key
        return f"{case}[{dtype}] on {backend}/{device}"


FAILING = ("dropped", "grew", "disappeared")


def _rank(tier: str) -> int:
    return 7 if tier == "missing" else tier_rank(tier)


def _errors(cell: Mapping[str, Any]) -> tuple[float, float] | None:
    w = cell.get("worst")
    if not w:
        return None
    leaves = [leaf for leaf in w["leaves"] if leaf.get("problem") is None]
    if not leaves:
        return None
    return max(leaf["mae_norm"] for leaf in leaves), max(leaf["max_norm"] for leaf in leaves)


def _cells(doc: Mapping[str, Any]) -> dict[tuple[str, str, str, str], Mapping[str, Any]]:
    return {(c["case"], c["backend"], c["dtype"], c["device"]): c for c in doc["cases"]}


def diff(base: Mapping[str, Any], head: Mapping[str, Any], *, factor: float = DEFAULT_FACTOR) -> list[Change]:
    if not (math.isfinite(factor) and factor > 1):
        raise ValueError(f"--factor must be a finite number > 1; got {factor}")
    a, b = _cells(base), _cells(head)
    changes: list[Change] = []
    for key in sorted(set(a) | set(b)):
        ca, cb = a.get(key), b.get(key)
        if cb is None:
            changes.append(Change("disappeared", key, ca["tier"], None, "the cell is not in HEAD"))
            continue
        if ca is None:
            changes.append(Change("appeared", key, None, cb["tier"], f"new cell at {cb['tier']}"))
            continue
        ta, tb = ca["tier"], cb["tier"]
        if _rank(tb) > _rank(ta):
            changes.append(Change("dropped", key, ta, tb, f"tier {ta} -> {tb} (required {cb['required']})"))
            continue
        if _rank(tb) < _rank(ta):
            changes.append(Change("improved", key, ta, tb, f"tier {ta} -> {tb}"))
            continue
        ea, eb = _errors(ca), _errors(cb)
        if ea is None or eb is None:
            continue
        for name, x, y in (("MAE", ea[0], eb[0]), ("max", ea[1], eb[1])):
            if y > NOISE_FLOOR and y > factor * max(x, NOISE_FLOOR):
                changes.append(
                    Change(
                        "grew",
                        key,
                        ta,
                        tb,
                        f"worst normalized {name} {x:.3g} -> {y:.3g} ({y / max(x, NOISE_FLOOR):.3g}x > {factor:g}x)",
                    )
                )
                break
    return changes


def render(changes: list[Change], base_label: str, head_label: str) -> str:
    failing = [c for c in changes if c.kind in FAILING]
    lines = [
        f"parity drift {base_label} -> {head_label}: "
        + (f"{len(failing)} regression(s)" if failing else "no regression")
        + f"; {sum(c.kind == 'improved' for c in changes)} improved, {sum(c.kind == 'appeared' for c in changes)} new"
    ]
    order = ("dropped", "grew", "disappeared", "improved", "appeared")
    for kind in order:
        for c in (c for c in changes if c.kind == kind):
            lines.append(f"  {kind:11s} {c.label}: {c.detail}")
    return "\n".join(lines)
