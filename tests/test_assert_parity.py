"""Meta-tests of assert_parity: pass/fail, the actionable message, unknown names, the precision policy."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from conformance import ParityError, PrecisionPolicyError, TierTableError, assert_parity, precision
from conformance.backends import Backend, BackendError, get, names, register


def test_passing_assertion_returns_the_result(table) -> None:
    ref = np.linspace(0, 1, 50)
    result = assert_parity("selftest.abs", ref, ref + 1e-17, backend="numpy", dtype="float64", table=table)
    assert result.passed and result.tier == "perfect" and result.required == "perfect"


def test_failure_message_is_actionable(table) -> None:
    ref = np.linspace(0, 1, 1000).reshape(20, 50)
    act = ref.astype(np.float32)
    act[13, 7] += 0.25
    with pytest.raises(ParityError) as info:
        assert_parity("selftest.abs", ref, act, backend="numpy", table=table)
    msg = str(info.value)
    result = info.value.result
    # MAE 2.5e-4 and max 0.25 < 30 x 1e-2: warning, the best tier whose mean and max bounds both hold
    assert result.tier == "warning" and result.required == "perfect" and not result.passed
    for fragment in (
        "Parity FAIL: selftest.abs[float32] on numpy/cpu: reached 'warning', required 'perfect'",
        "'perfect' at float32 needs normalized MAE < 1e-06 and max < 3e-05",
        "worst element at index (13, 7)",
        f"reference {float(ref[13, 7])!r}",
        "mismatched 1/1000 (0.10%)",
        "max ULP",
    ):
        assert fragment in msg, (fragment, msg)
    # Under pytest the message says how to run the example again.
    assert "reproduce: python -m pytest" in msg and "--hypothesis-profile" in msg


def test_unknown_case_and_backend_are_configuration_errors(table) -> None:
    with pytest.raises(TierTableError, match=r"unknown case 'selftest\.missing'"):
        assert_parity("selftest.missing", np.ones(2), np.ones(2), backend="numpy", table=table)
    with pytest.raises(BackendError, match="unknown backend 'tensorrt'"):
        assert_parity("selftest.abs", np.ones(2), np.ones(2), backend="tensorrt", table=table)


def test_float32_case_under_x64_breaks_the_policy(table) -> None:
    ref = np.ones(4, np.float32)
    with jax.enable_x64(True), pytest.raises(PrecisionPolicyError, match="x64 on for float64 cases only"):
        assert_parity("selftest.abs", ref, jnp.asarray(ref), backend="jax-jit", table=table)
    with precision.for_dtype("float32"):
        assert (
            assert_parity("selftest.abs", ref, jnp.asarray(ref), backend="jax-jit", table=table).tier
            == "exact"
        )


def test_float64_case_needs_x64(table) -> None:
    ref = np.ones(4)
    with precision.for_dtype("float64"):
        out = jnp.asarray(ref)
        assert out.dtype == jnp.float64
        assert_parity("selftest.abs", ref, out, backend="jax-jit", table=table)
    with pytest.raises(PrecisionPolicyError):
        assert_parity("selftest.abs", ref, np.asarray(out), backend="jax-jit", dtype="float64", table=table)


def test_matmul_precision_is_enforced(table) -> None:
    ref = np.ones(2, np.float32)
    with jax.default_matmul_precision("bfloat16"), pytest.raises(PrecisionPolicyError, match="'highest'"):
        assert_parity("selftest.abs", ref, jnp.asarray(ref), backend="jax-jit", table=table)


def test_a_jax_float32_port_that_promotes_to_float64_is_caught(table) -> None:
    """The harness rejects an output in the wrong dtype instead of crediting its extra precision."""
    ref = np.linspace(0, 1, 8)
    promoted = ref.astype(np.float64)
    with pytest.raises(ParityError, match="dtype mismatch: the float32 case returned float64"):
        assert_parity("selftest.abs", ref, promoted, backend="numpy", dtype="float32", table=table)


def test_backend_registry() -> None:
    assert {"jax-jit", "jax-eager", "numpy"} <= set(names())
    fn = get("jax-eager").prepare(jax.jit(lambda x: x + 1))
    assert float(fn(1.0)) == 2.0
    with pytest.raises(BackendError, match="already registered"):
        register(Backend("numpy", "other", "numpy", lambda f: f))
    with pytest.raises(BackendError, match="framework must be a name"):
        Backend("x", "y", "", lambda f: f)
    assert Backend("x", "y", "tensorflow", lambda f: f).framework == "tensorflow"  # frameworks are open
