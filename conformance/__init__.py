"""The parity suite's harness: tiers, metrics, strategies, backends, cases, the pytest plugin and the report.

Public API::

    from conformance import assert_parity, compare, record_series
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance import recorder
from conformance.parity import ParityError, ParityResult, assert_parity, compare
from conformance.precision import PrecisionPolicyError
from conformance.tiers import TierTableError

__all__ = [
    "ParityError",
    "ParityResult",
    "PrecisionPolicyError",
    "TierTableError",
    "assert_parity",
    "compare",
    "record_series",
]


def record_series(
    name: str,
    x: Sequence[float],
    y: Sequence[float],
    *,
    case: str | None = None,
    label: str | None = None,
    xlabel: str = "",
    ylabel: str = "",
    logy: bool = True,
) -> None:
    """Record a curve for the report's plots (e.g. error against integration step); a no-op outside pytest."""
    rec = recorder.current()
    if rec is not None:
        rec.record_series(name, x, y, case=case, label=label, xlabel=xlabel, ylabel=ylabel, logy=logy)
