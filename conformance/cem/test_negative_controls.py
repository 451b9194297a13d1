"""Negative controls: the CEM cases must catch the porting defects the spec warns about.

Each mutant is the reference with one realistic defect (the seed repository's own PyTorch CEM had several:
ddof 1, no clipping, no explore split; others are easy slips: the 'left' side of searchsorted, a control
grid that excludes the last knot, a warm start that shifts the knot times without re-interpolating the
mean, natural instead of not-a-knot cubic ends). For each, Hypothesis searches the case's own input
distribution for an example that the case's oracle (scale, tier, max guard) judges below the required tier.
If no such example exists, the case could not have caught the defect, and this test fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import find, settings

import implementations.cem as impl
import reference.cem as ref
from conformance import cases, compare
from conformance.cem import cases as cem_cases
from conformance.strategies import cast_floats
from contracts.cem.config import CEMConfig
from reference.cem import planner as rp
from reference.cem import tasks as rt


def _zero_left(tq, tk, knots, spline_type="zero"):
    tq, tk, knots = (torch.as_tensor(a) for a in (tq, tk, knots))
    idx = (torch.searchsorted(tk, tq, right=False) - 1).clamp(0, tk.shape[0] - 1)
    return knots[:, idx, :]


def _linear_clamped(tq, tk, knots, spline_type="linear"):
    """No extrapolation: queries outside the knots take the end values (np.interp's behaviour)."""
    tq_c = torch.clamp(torch.as_tensor(tq), float(tk[0]), float(tk[-1]))
    return ref.interp(tq_c, tk, knots, "linear")


def _cubic_natural(tq, tk, knots, spline_type="cubic"):
    from scipy.interpolate import CubicSpline

    k = np.asarray(knots)
    out = CubicSpline(np.asarray(tk), k, axis=1, bc_type="natural", extrapolate=True)(np.asarray(tq))
    return torch.from_numpy(out.astype(k.dtype))


def _rollout(x0, tk, knots, config: CEMConfig, weights=None, *, exclusive_grid=False, cost_before_step=False):
    x0, tk, knots = (torch.as_tensor(a) for a in (x0, tk, knots))
    w = None if weights is None else {k: torch.as_tensor(v) for k, v in weights.items()}
    spec = config.spec
    tq = rp.query_times(tk, config)
    if exclusive_grid:  # spacing exactly dt: the last knot is never reached
        tq = tk[0] + spec.dt * torch.arange(config.ctrl_steps, dtype=tk.dtype)
    controls = ref.interp(tq, tk, knots, config.spline_type)
    x = x0[None, :].expand(knots.shape[0], -1)
    costs = []
    for t in range(controls.shape[1]):
        u = controls[:, t, :]
        if cost_before_step:
            costs.append(spec.dt * rt.running_cost(config.task, x, u))
        x = rt.step(config.task, x, u, spec.dt, w)
        if not cost_before_step:
            costs.append(spec.dt * rt.running_cost(config.task, x, u))
    costs.append(rt.terminal_cost(config.task, x))
    return {"controls": controls, "costs": torch.stack(costs, dim=1)}


def _iteration(
    x0, tk, mean, std, noise, config: CEMConfig, weights=None, *, ddof=0, clip=True, explore=True, floor=True
):
    mean, std, noise = (torch.as_tensor(a) for a in (mean, std, noise))
    n_main = config.num_samples - (config.num_explore if explore else 0)
    knots = torch.cat([mean + std * noise[:n_main], mean + config.sigma_start * noise[n_main:]])
    if clip:
        knots = torch.clamp(knots, config.spec.u_min, config.spec.u_max)
    out = ref.rollout(x0, tk, knots, config, weights)
    order = torch.argsort(out["costs"].sum(1), stable=True)
    elites = knots[order[: config.num_elites]]
    new_std = elites.std(dim=0, correction=ddof)
    if floor:
        new_std = torch.clamp(new_std, min=config.sigma_min)
    return {"knots": knots, **out, "mean": elites.mean(0), "std": new_std}


def _optimize_shift_only(x0, time, tk, mean, std, noise, config: CEMConfig, weights=None):
    """Warm start that moves the knot times but keeps the old knot values (no re-interpolation)."""
    tk = torch.as_tensor(tk)
    new_tk = rp.knot_offsets(config, tk.dtype) + torch.as_tensor(time, dtype=tk.dtype)
    mean, std = torch.as_tensor(mean), torch.as_tensor(std)
    out: dict[str, Any] = {}
    for i in range(config.iterations):
        out = ref.cem_iteration(x0, new_tk, mean, std, torch.as_tensor(noise)[i], config, weights)
        mean, std = out["mean"], out["std"]
    return {"tk": new_tk, "mean": mean, "std": std, "costs": out["costs"]}


def _with(fn: Callable[..., Any], **flags: Any) -> Callable[..., Any]:
    return lambda **kw: fn(**kw, **flags)


MUTANTS: list[tuple[str, str, Callable[..., Any]]] = [
    ("cem.interp.zero", "searchsorted side 'left' (a query on a knot takes the previous knot)", _zero_left),
    ("cem.interp.linear", "no extrapolation past the end knots", _linear_clamped),
    ("cem.interp.cubic", "natural instead of not-a-knot end conditions", _cubic_natural),
    (
        "cem.rollout.pendulum",
        "control grid with spacing dt (last knot excluded)",
        _with(_rollout, exclusive_grid=True),
    ),
    (
        "cem.rollout.cartpole",
        "running cost of the state before the step",
        _with(_rollout, cost_before_step=True),
    ),
    ("cem.iteration.pendulum", "std with ddof 1 (torch.std's default)", _with(_iteration, ddof=1)),
    ("cem.iteration.cartpole", "samples not clipped to the control bounds", _with(_iteration, clip=False)),
    (
        "cem.iteration.pendulum",
        "no explore split (every sample at the current std)",
        _with(_iteration, explore=False),
    ),
    ("cem.iteration.learned", "no sigma_min floor on the std", _with(_iteration, floor=False)),
    ("cem.optimize.pendulum", "warm start shifts knot times without re-interpolating", _optimize_shift_only),
]


@pytest.mark.parametrize(("case_name", "defect", "mutant"), MUTANTS, ids=[f"{c}: {d}" for c, d, _ in MUTANTS])
def test_the_case_catches_the_defect(case_name: str, defect: str, mutant: Callable[..., Any]) -> None:
    case = cases.get(case_name)
    dtype = "float32"
    interp_case = case_name.startswith("cem.interp.")
    broken = cem_cases.torch_single_thread(mutant if interp_case else cem_cases.split_costs(mutant))

    def caught(spec: dict[str, Any]) -> bool:
        impl_spec = cast_floats(spec, dtype)
        ref_spec = cast_floats(impl_spec, case.reference_dtype)
        expected = case.reference(**case.kwargs(ref_spec))
        actual = broken(**case.kwargs(impl_spec))
        actual = (
            {k: np.asarray(v).astype(dtype) for k, v in actual.items()}
            if isinstance(actual, dict)
            else (np.asarray(actual).astype(dtype))
        )
        return not compare(expected, actual, case=case_name, backend="jax-jit", dtype=dtype).passed

    example = find(case.inputs(dtype), caught, settings=settings(max_examples=40, database=None))
    assert example is not None


def test_mutants_agree_with_the_reference_where_their_defect_cannot_act() -> None:
    """Sanity: a mutant differs from the reference only by its defect: with sigma_min = 0 the floor cannot
    act, and the no-floor mutant equals the reference bit for bit."""
    cfg = CEMConfig(task="pendulum", num_samples=16, num_elites=4, sigma_min=0.0, num_knots=6)
    rng = np.random.default_rng(0)
    kw = {
        "x0": rng.normal(size=2),
        "tk": 0.1 * np.arange(6),
        "mean": rng.normal(size=(6, 1)),
        "std": np.full((6, 1), 0.3),
        "noise": rng.normal(size=(16, 6, 1)),
        "config": cfg,
    }
    a, b = ref.cem_iteration(**kw), _iteration(**kw, floor=False)
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)


def test_a_defect_in_the_jax_port_itself_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """The same oracle on the real JAX path: ``ddof=1`` patched into the JAX elite update (a fresh config
    forces a new trace, so the patch is compiled in) drops the iteration below its tier."""
    import jax.numpy as jnp

    from implementations.cem import planner

    def ddof1(knots, costs, config):
        order = jnp.argsort(costs.sum(axis=1), stable=True)
        elites = knots[order[: config.num_elites]]
        return {"mean": elites.mean(axis=0), "std": jnp.maximum(elites.std(axis=0, ddof=1), config.sigma_min)}

    monkeypatch.setattr(planner, "_elite_update", ddof1)
    cfg = CEMConfig(
        task="pendulum", num_samples=24, num_elites=5, num_knots=6, sigma_min=0.05, sigma_start=0.5
    )
    rng = np.random.default_rng(0)
    kw = {
        "x0": np.float32([0.3, -0.2]),
        "tk": (0.1 * np.arange(6)).astype(np.float32),
        "mean": rng.uniform(-2, 2, (6, 1)).astype(np.float32),
        "std": np.full((6, 1), 1.0, np.float32),
        "noise": rng.standard_normal((24, 6, 1)).astype(np.float32),
    }
    expected = cem_cases.split_costs(ref.cem_iteration)(**kw, config=cfg)
    try:
        actual = cem_cases.split_costs(impl.cem_iteration)(**kw, config=cfg)
    finally:
        planner._cem_iteration_jit.clear_cache()  # drop the mutant's compiled trace
    result = compare(expected, actual, case="cem.iteration.pendulum", backend="jax-jit", dtype="float32")
    assert not result.passed and result.worst.path == "['std']", result.message()
