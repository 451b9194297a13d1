"""Parity of a 100-step integration: the JAX model (float64 and float32) against the NumPy model in float64.

One integration per dtype from the default initial state; every state field is compared after steps 1, 10
and 100 (cases ``gcm.integrate.step1/10/100``), and so is the increment that the step made to each field
there (cases ``gcm.integrate.tendency.step1/10/100``, judged on the increment's own range: one step moves
t_surf by a few 1e-5 of its range, so an error of a few percent in a tendency is invisible in the states).
The error after every step is recorded as a series for the report's plot, so a port whose error grows faster
than the reference's own rounding shows it.
"""

from __future__ import annotations

import functools

import numpy as np
import pytest

import implementations.gcm as impl
import reference.gcm as ref
from conformance import ParityError, assert_parity, compare, precision, record_series
from contracts.gcm.grid import Grid, State, StepParams

GRID = Grid(33, 64)
PARAMS = StepParams(dt=900.0)
STEPS = 100
CHECKPOINTS = (1, 10, 100)


def _as_dict(state: State) -> dict[str, np.ndarray]:
    return {k: np.asarray(v) for k, v in state._asdict().items()}


@functools.cache
def reference_run() -> tuple[dict[str, np.ndarray], ...]:
    """The NumPy float64 states after steps 1..STEPS (index 0 is the initial state)."""
    state = ref.initial_state(GRID, seed=0)
    forcing = ref.default_forcing(GRID)
    states = [_as_dict(state)]
    for _ in range(STEPS):
        state = ref.step(state, forcing, PARAMS, GRID)
        states.append(_as_dict(state))
    return tuple(states)


def implementation_run(dtype: str) -> list[dict[str, np.ndarray]]:
    """The JAX states after steps 0..STEPS, started from the reference's initial state rounded to ``dtype``."""
    state = State(*(np.asarray(v, dtype) for v in ref.initial_state(GRID, seed=0)))
    forcing = ref.default_forcing(GRID, dtype=np.dtype(dtype))
    states = [_as_dict(state)]
    with precision.for_dtype(dtype):
        for _ in range(STEPS):
            state = impl.step(state, forcing, PARAMS, GRID)
            states.append(_as_dict(state))
    return states


def _increments(states: list[dict[str, np.ndarray]] | tuple[dict[str, np.ndarray], ...], n: int) -> dict:
    """What step ``n`` added to each field (in the fields' dtype)."""
    return {k: states[n][k] - states[n - 1][k] for k in states[n]}


@pytest.mark.parity_cases(
    "gcm.integrate.step1",
    "gcm.integrate.step10",
    "gcm.integrate.step100",
    "gcm.integrate.tendency.step1",
    "gcm.integrate.tendency.step10",
    "gcm.integrate.tendency.step100",
)
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_integration_parity_at_steps_1_10_100(dtype: str) -> None:
    expected = reference_run()
    actual = implementation_run(dtype)
    assert len(actual) == STEPS + 1

    errors = [
        compare(
            expected[n], actual[n], case="gcm.integrate.step1", backend="jax-jit", dtype=dtype
        ).worst.mae_norm
        for n in range(1, STEPS + 1)
    ]
    record_series(
        "gcm.integrate.error",
        range(1, STEPS + 1),
        errors,
        case="gcm.integrate.step100",
        label=f"jax-jit {dtype} vs numpy float64",
        xlabel="step",
        ylabel="worst field's normalized MAE",
    )
    # The error is the port's own rounding: it stays bounded (no blow-up) and is nonzero in float32.
    assert all(np.isfinite(errors))
    if dtype == "float32":
        assert errors[0] > 0.0

    failures = []
    with precision.for_dtype(dtype):  # the policy the assertion checks: x64 on for float64 only
        for n in CHECKPOINTS:
            try:
                assert_parity(
                    f"gcm.integrate.step{n}", expected[n], actual[n], backend="jax-jit", dtype=dtype
                )
            except ParityError as exc:
                failures.append(str(exc))
            try:
                assert_parity(
                    f"gcm.integrate.tendency.step{n}",
                    _increments(expected, n),
                    _increments(actual, n),
                    backend="jax-jit",
                    dtype=dtype,
                )
            except ParityError as exc:
                failures.append(str(exc))
    assert not failures, "\n\n".join(failures)


def test_integration_reference_moves() -> None:
    """The integration is not trivial: every prognostic field changes over the 100 steps."""
    states = reference_run()
    for name, first in states[0].items():
        if name in ("cloud",):  # diagnostic: recomputed each step from humidity
            continue
        assert np.any(first != states[-1][name]), name
