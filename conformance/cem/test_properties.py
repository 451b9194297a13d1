"""Properties of the JAX CEM that follow from hydrax's conventions (spec section 4), and of the reference
against an independent oracle (SciPy's CubicSpline for the not-a-knot cubic)."""

from __future__ import annotations

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import implementations.cem as impl
import reference.cem as ref
from conformance import compiles
from conformance.exactness import Exactness, assert_bitwise, assert_within
from contracts.cem.config import TASKS, CEMConfig, CEMInputError

CFG = CEMConfig(
    task="cartpole",
    num_samples=32,
    num_elites=6,
    sigma_start=3.0,
    sigma_min=0.3,
    explore_fraction=0.25,
    num_knots=6,
    spline_type="linear",
    iterations=1,
)


def _inputs(seed: int, cfg: CEMConfig = CFG) -> dict:
    rng = np.random.default_rng(seed)
    K, nu = cfg.num_knots, cfg.spec.nu
    return {
        "x0": rng.uniform(-1, 1, cfg.spec.nx).astype(np.float32),
        "tk": (0.1 * np.arange(K)).astype(np.float32),
        "mean": rng.uniform(-8, 8, (K, nu)).astype(np.float32),
        "std": rng.uniform(0.01, 6, (K, nu)).astype(np.float32),
        "noise": rng.standard_normal((cfg.num_samples, K, nu)).astype(np.float32),
    }


@settings(max_examples=5)
@given(seed=st.integers(0, 2**31))
def test_iteration_invariants(seed: int) -> None:
    kw = _inputs(seed)
    out = jax.device_get(impl.cem_iteration(**kw, config=CFG))
    spec = CFG.spec
    assert out["costs"].shape == (CFG.num_samples, CFG.ctrl_steps + 1)
    assert out["controls"].shape == (CFG.num_samples, CFG.ctrl_steps, spec.nu)
    assert np.all(out["knots"] >= spec.u_min) and np.all(out["knots"] <= spec.u_max), "clipped before rollout"
    assert np.all(out["std"] >= CFG.sigma_min), "std floored at sigma_min"
    n_explore = CFG.num_explore
    assert n_explore == int(CFG.num_samples * CFG.explore_fraction) == 8
    raw = kw["mean"] + CFG.sigma_start * kw["noise"][-n_explore:]
    np.testing.assert_allclose(
        out["knots"][-n_explore:], np.clip(raw, spec.u_min, spec.u_max), rtol=1e-6, atol=1e-6
    )
    # the elites are the num_elites lowest total costs: the new mean is their mean
    order = np.argsort(out["costs"].sum(1), kind="stable")[: CFG.num_elites]
    np.testing.assert_allclose(out["mean"], out["knots"][order].mean(0), rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("task", sorted(TASKS))
def test_a_task_name_read_at_run_time_selects_the_same_dynamics_and_costs(task: str) -> None:
    """Task names arrive from argv and JSON at run time: equal strings, not the interned literal objects of the
    source. The port's dispatch must compare them by value (``==``), so a copy of the name computes exactly what
    the literal does (the same eager op sequence: one program)."""
    from implementations.cem import tasks
    from reference.cem import networks

    copy = "".join(list(task))
    assert copy == task and copy is not task
    spec = TASKS[task]
    rng = np.random.default_rng(3)
    x = rng.uniform(-1, 1, spec.nx).astype(np.float32)
    u = rng.uniform(-1, 1, spec.nu).astype(np.float32)
    weights = None
    if task == "learned":
        mlp = networks.init_mlp(networks.dynamics_sizes((16,)), 0)
        weights = {k: v.numpy() for k, v in networks.state_dict(mlp).items()}

    def run(name: str) -> dict:
        return {
            "step": tasks.step(name, x, u, spec.dt, weights),
            "running": tasks.running_cost(name, x, u),
            "terminal": tasks.terminal_cost(name, x),
        }

    assert_bitwise(run(task), run(copy), why=Exactness.SAME_PROGRAM)


def test_query_grid_includes_both_end_knots() -> None:
    from implementations.cem.planner import query_times

    tk = np.float32([0.0, 0.1, 0.2, 0.3, 0.4, 0.5])
    tq = np.asarray(query_times(tk, CFG))
    assert tq[0] == tk[0] and tq[-1] == tk[-1] and len(tq) == CFG.ctrl_steps


def test_two_iterations_equal_two_single_iterations() -> None:
    """hydrax's tests/test_opt_iterations.py, with injected noise: iterations=2 == two calls of one.

    Within `perfect`, not bitwise: the two-iteration ``optimize`` and the two separate calls are different XLA
    programs (a fused loop against two executables), which round differently when XLA vectorizes for a
    different ISA (one float32 ulp of ``std`` on AVX-512, bitwise on SSE4.2 and AVX2)."""
    cfg2 = CEMConfig(**{**CFG.to_json(), "iterations": 2})
    kw = _inputs(1)
    noise = np.stack([kw["noise"], _inputs(2)["noise"]])
    two = impl.optimize(kw["x0"], np.float32(0.05), kw["tk"], kw["mean"], kw["std"], noise, cfg2)
    a = impl.optimize(kw["x0"], np.float32(0.05), kw["tk"], kw["mean"], kw["std"], noise[:1], CFG)
    b = impl.cem_iteration(kw["x0"], a["tk"], a["mean"], a["std"], noise[1], CFG)
    assert_within({k: b[k] for k in ("mean", "std")}, {k: two[k] for k in ("mean", "std")}, "perfect")
    # the composition is not vacuous: a second iteration moves the distribution
    assert np.abs(np.asarray(b["mean"]) - np.asarray(a["mean"])).max() > 1e-3


def test_same_key_same_samples_and_no_recompile() -> None:
    kw = _inputs(3)
    key = np.asarray(jax.random.key_data(jax.random.key(7)), np.uint32)
    args = (kw["x0"], np.float32(0.0), kw["tk"], kw["mean"], kw["std"], key, CFG)
    first = jax.device_get(impl.optimize_key(*args))
    with compiles.counting() as c:
        second = jax.device_get(impl.optimize_key(*args))
        impl.optimize_key(kw["x0"], np.float32(0.3), *args[2:])  # another time value: traced, no recompile
    assert c.compiles == 0
    assert_bitwise(
        first, second, why=f"{Exactness.SAME_PROGRAM}: one executable called twice on the same inputs"
    )
    assert np.any(first["key"] != key), "the key must advance"


def test_warm_start_reinterpolates_at_shifted_knots() -> None:
    cfg = CEMConfig(**{**CFG.to_json(), "spline_type": "linear"})
    tk = (0.1 * np.arange(6)).astype(np.float32)
    mean = (np.arange(6, dtype=np.float32) * 2.0)[:, None]  # a line: u(t) = 20 t
    new_tk, new_mean = impl.warm_start(np.float32(0.05), tk, mean, cfg)
    np.testing.assert_allclose(np.asarray(new_tk), tk + 0.05, atol=1e-7)
    np.testing.assert_allclose(
        np.asarray(new_mean)[:, 0], 20 * (tk + 0.05), rtol=1e-5
    )  # extrapolated at the end


def test_reference_cubic_equals_scipy_not_a_knot() -> None:
    from scipy.interpolate import CubicSpline

    rng = np.random.default_rng(0)
    tk = np.cumsum(rng.uniform(0.05, 0.3, 7))
    knots = rng.standard_normal((3, 7, 2))
    tq = np.linspace(tk[0] - 0.2, tk[-1] + 0.2, 41)
    expected = CubicSpline(tk, knots, axis=1, bc_type="not-a-knot", extrapolate=True)(tq)
    np.testing.assert_allclose(ref.interp(tq, tk, knots, "cubic").numpy(), expected, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (
            lambda kw: impl.cem_iteration(kw["x0"][:1], kw["tk"], kw["mean"], kw["std"], kw["noise"], CFG),
            r"x0 must have shape \(4,\)",
        ),
        (
            lambda kw: impl.cem_iteration(
                kw["x0"] * np.nan, kw["tk"], kw["mean"], kw["std"], kw["noise"], CFG
            ),
            r"x0 must be finite",
        ),
        (
            lambda kw: impl.cem_iteration(
                kw["x0"], kw["tk"][::-1].copy(), kw["mean"], kw["std"], kw["noise"], CFG
            ),
            r"tk must be strictly increasing",
        ),
        (
            lambda kw: impl.cem_iteration(kw["x0"], kw["tk"], kw["mean"], kw["std"], kw["noise"][:3], CFG),
            r"noise must have shape \(32, 6, 1\)",
        ),
        (
            lambda kw: impl.cem_iteration(
                kw["x0"].astype(np.float64), kw["tk"], kw["mean"], kw["std"], kw["noise"], CFG
            ),
            r"mix float dtypes",
        ),
        (
            lambda kw: impl.rollout(
                kw["x0"][:2], kw["tk"], kw["noise"], CEMConfig(task="learned", num_knots=6)
            ),
            r"needs the dynamics MLP's weights",
        ),
        (
            lambda kw: impl.interp(kw["tk"], kw["tk"][:3], kw["noise"][:, :3], "cubic"),
            r"cubic spline needs at least 4 knots",
        ),
        (
            lambda kw: CEMConfig(num_samples=4, num_elites=8),
            r"num_elites must be an int in \[1, num_samples=4\]",
        ),
        (lambda kw: CEMConfig(spline_type="quadratic"), r"unknown spline_type"),
    ],
)
def test_bad_input_is_a_clear_error(call, match: str) -> None:
    with pytest.raises(CEMInputError, match=match):
        call(_inputs(0))
