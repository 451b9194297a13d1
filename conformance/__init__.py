"""The parity suite's harness: tiers, metrics, strategies, backends, cases, the pytest plugin and the report.

Public API::

    from conformance import assert_parity, compare, record_series

The names are imported on first use (PEP 562), so that importing the package, as the pytest plugin and the
subsystem entry points do in every session, loads neither NumPy nor JAX.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_LAZY = {
    "ParityError": "conformance.parity",
    "ParityResult": "conformance.parity",
    "assert_parity": "conformance.parity",
    "compare": "conformance.parity",
    "PrecisionPolicyError": "conformance.precision",
    "TierTableError": "conformance.tiers",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'conformance' has no attribute {name!r}")


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
    from conformance import recorder

    rec = recorder.current()
    if rec is not None:
        rec.record_series(name, x, y, case=case, label=label, xlabel=xlabel, ylabel=ylabel, logy=logy)
