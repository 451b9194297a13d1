"""The exactness policy: when two results may be required to be bitwise equal, and the tools to say so.

Bitwise equality holds on every machine only in three situations, and the suite allows ``exact`` (a tier-table
row, or an assertion in a test) only in them:

- ``same-program``: one compiled program, run twice or run from its serialized form (an AOT artifact against
  the jit of the same function on the same backend; the same ATen kernel sequence in one process), on the
  same inputs;
- ``order-independent``: the result involves no rounding whose order a compiler may change: gathers, copies,
  casts, comparisons, integer arithmetic, multiplications by exact 0 or 1;
- ``reference-self``: a reference compared with itself.

Everything else that compares two different programs (two XLA compilations of different functions, XLA
against PyTorch, a loop against its unrolled form) is compared with a tier, because the vectorization width
(SSE4.2 / AVX2 / AVX-512), fusion, FMA contraction and accumulation order change the last bits from one
machine to the next.

`assert_bitwise` is the only bitwise assertion the suite's tests use (a meta-test rejects raw
``assert_array_equal`` / ``array_equal`` in test code); its ``why`` argument keeps the justification next to
the assertion. `assert_within` compares two programs with a named tier without declaring a case.
"""

from __future__ import annotations

import enum
from typing import Any

import numpy as np

from conformance.metrics import compare_leaf, flatten, to_numpy
from conformance.tiers import EXACT_REASONS, TIERS, default_table, justification_error, tier_rank


class Exactness(enum.StrEnum):
    SAME_PROGRAM = "same-program"
    ORDER_INDEPENDENT = "order-independent"
    REFERENCE_SELF = "reference-self"


REASONS: tuple[str, ...] = EXACT_REASONS
assert tuple(e.value for e in Exactness) == REASONS

__all__ = ["REASONS", "Exactness", "assert_bitwise", "assert_within", "justification_error"]


def assert_bitwise(expected: Any, actual: Any, *, why: Exactness | str, err_msg: str = "") -> None:
    """Assert that two arrays (or matching pytrees) are bitwise equal, for a stated reason.

    ``why`` is an `Exactness` category, or ``"<category>: <detail>"``. NaNs compare equal to NaNs at the same
    positions; ``-0.0`` and ``0.0`` differ.
    """
    reason = why.value if isinstance(why, Exactness) else str(why)
    if reason not in REASONS and justification_error(reason) is not None:
        raise ValueError(justification_error(reason))
    exp_leaves, exp_def = flatten(expected)
    act_leaves, act_def = flatten(actual)
    if exp_def != act_def:
        raise AssertionError(f"{err_msg}: structures differ: {exp_def} vs {act_def}".lstrip(": "))
    for (path, e), (_, a) in zip(exp_leaves, act_leaves, strict=True):
        e_np, a_np = to_numpy(e), to_numpy(a)
        if e_np.shape != a_np.shape or e_np.dtype != a_np.dtype:
            raise AssertionError(
                f"{err_msg} {path}: {e_np.dtype}{e_np.shape} vs {a_np.dtype}{a_np.shape} ({reason})".strip()
            )
        if e_np.dtype.kind in "fc" or e_np.dtype.name == "bfloat16":
            same = e_np.view(f"u{e_np.dtype.itemsize}") == a_np.view(f"u{a_np.dtype.itemsize}")
            same |= np.isnan(e_np.astype(np.float64)) & np.isnan(a_np.astype(np.float64))
        else:
            same = e_np == a_np
        if not np.all(same):
            bad = np.argwhere(~np.asarray(same))
            first = tuple(int(i) for i in bad[0]) if bad.size else ()
            raise AssertionError(
                f"{err_msg} {path}: not bitwise equal ({reason}) at {len(bad)} of {e_np.size} positions; "
                f"first at {first}: expected {e_np[first]!r}, actual {a_np[first]!r}".strip()
            )


def assert_within(
    expected: Any, actual: Any, tier: str = "perfect", *, scale: str = "rel", dtype: str | None = None
) -> str:
    """Assert that ``actual`` reaches ``tier`` against ``expected`` (leaf by leaf, on ``scale``) and return
    the tier reached. For two programs that compute the same function (a loop against its unrolled form,
    two jitted functions) where no declared case applies; the bounds are the tier table's."""
    if tier not in TIERS or tier in ("exact", "severe"):
        raise ValueError(
            f"tier must be a graded tier ({', '.join(TIERS[1:-1])}); for bitwise use assert_bitwise"
        )
    table = default_table()
    exp_leaves, exp_def = flatten(expected)
    act_leaves, act_def = flatten(actual)
    if exp_def != act_def:
        raise AssertionError(f"structures differ: {exp_def} vs {act_def}")
    reached = "exact"
    for (path, e), (_, a) in zip(exp_leaves, act_leaves, strict=True):
        a_np = to_numpy(a)
        leaf_dtype = dtype or (a_np.dtype.name if a_np.dtype.kind == "f" else "float32")
        m = compare_leaf(path, e, a_np, scale=scale)
        got = table.classify_leaf(m, leaf_dtype)
        if tier_rank(got) > tier_rank(tier):
            raise AssertionError(
                f"{path}: reached {got!r}, required {tier!r} ({scale} scale, {leaf_dtype}): normalized MAE "
                f"{m.mae_norm:.3e}, max {m.max_norm:.3e}, max ULP {m.max_ulp}; {m.problem or ''}".rstrip("; ")
            )
        reached = max(reached, got, key=tier_rank)
    return reached
