"""No vacuous requirement: for every graded row of every registered case, an all-zero output, a sign-flipped
output and the output rolled by one element must all fall below the row's required tier.

A requirement that one of these passes checks nothing (measured before this test: the VAE encoder and decoder
bfloat16 rows required 'excellent', an MAE below 6.55 on unit-scale outputs, which an all-zero output meets).
Each case is judged on its first explicit example, or on the first example its strategy draws under the
derandomized profile, with the reference computed as the parity test computes it.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, Phase, given, settings

from conformance import cases, precision, subsystems
from conformance.metrics import flatten, is_float, to_numpy
from conformance.parity import compare
from conformance.strategies import cast_floats
from conformance.tiers import default_table


def _first_example(case: cases.Case, dtype: str) -> dict[str, Any]:
    if case.explicit is not None and case.explicit(dtype):
        return case.explicit(dtype)[0]
    found: list[dict[str, Any]] = []

    @settings(
        max_examples=1,
        derandomize=True,
        database=None,
        deadline=None,
        phases=(Phase.generate,),
        suppress_health_check=list(HealthCheck),
    )
    @given(spec=case.inputs(dtype))
    def draw(spec: dict[str, Any]) -> None:
        found.append(spec)

    draw._hypothesis_internal_add_digest = f"vacuity {case.name}[{dtype}]".encode()  # type: ignore[attr-defined]
    draw()
    return found[0]


def _wrong(reference: Any, dtype: str, how: str) -> Any:
    import jax

    def bad(leaf: Any) -> Any:
        a = to_numpy(leaf)
        if not is_float(a):
            return a
        a64 = a.astype(np.float64)
        out = {
            "zero": np.zeros_like(a64),
            "negated": -a64,
            "rolled": np.roll(a64.ravel(), 1).reshape(a64.shape),
        }[how]
        return out.astype(a.dtype if dtype == "float64" else _np_dtype(dtype))

    leaves, treedef = flatten(reference)
    return jax.tree_util.tree_unflatten(treedef, [bad(leaf) for _, leaf in leaves])


def _np_dtype(dtype: str) -> Any:
    if dtype == "bfloat16":
        import ml_dtypes

        return ml_dtypes.bfloat16
    return np.dtype(dtype)


def _rows() -> list[tuple[str, str, str, str]]:
    table = default_table()
    subsystems.load()
    out = []
    for name, backend, dtype, tier in table.expected(subsystems.names(), "cpu"):
        if name in cases.registered() and tier != "exact":
            out.append((name, backend, dtype, tier))
    # one reference run per (case, dtype): the backend does not change the reference
    return sorted({(n, d): (n, b, d, t) for n, b, d, t in out}.values())


ROWS = _rows()


@pytest.mark.parametrize(("name", "backend", "dtype", "tier"), ROWS, ids=[f"{r[0]}[{r[2]}]" for r in ROWS])
def test_zero_negated_and_rolled_outputs_fail_the_row(name: str, backend: str, dtype: str, tier: str) -> None:
    case = cases.get(name)
    spec = _first_example(case, dtype)
    impl_spec = cast_floats(spec, dtype)
    ref_spec = cast_floats(impl_spec, case.reference_dtype_for(dtype))
    with precision.for_dtype(dtype):
        reference = case.reference(**case.kwargs(ref_spec))
    # the strictest graded row of the case for this dtype decides nothing: every row must reject the wrong outputs
    table = default_table()
    rows = [
        r
        for r in table.case(name).required
        if r.dtype == dtype and r.device in ("*", "cpu") and r.tier != "exact"
    ]
    passed = []
    for how in ("zero", "negated", "rolled"):
        wrong = _wrong(reference, dtype, how)
        for r in rows:
            res = compare(
                reference, wrong, case=name, backend=r.backend, dtype=dtype, device="cpu", check_dtype=False
            )
            if res.passed:
                passed.append(
                    f"{how} output passes {r.backend}/{dtype} (required {r.tier}, reached {res.tier})"
                )
    assert not passed, f"{name}: vacuous rows:\n" + "\n".join(passed)


def test_the_check_sees_a_vacuous_row(table_factory) -> None:
    """Negative control: a bfloat16 'excellent' row on the abs scale is passed by an all-zero output."""
    table = table_factory(
        '[cases."selftest.v"]\nscale = "abs"\nrequired = [["numpy", "*", "bfloat16", "excellent"]]\n'
    )
    import ml_dtypes

    ref = np.random.default_rng(0).standard_normal(64).astype(ml_dtypes.bfloat16)
    res = compare(
        ref,
        _wrong(ref, "bfloat16", "zero"),
        case="selftest.v",
        backend="numpy",
        dtype="bfloat16",
        table=table,
    )
    assert res.passed
