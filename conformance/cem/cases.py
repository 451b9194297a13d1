"""Parity cases of the CEM subsystem: the PyTorch reference (`reference.cem`) against the JAX twins
(`implementations.cem`), with the noise injected so both sides see the same samples.

Which oracle. Interpolation and the policy network run the float64 reference on the float32-rounded inputs
(the harness's default), for float32 and float64 cases. Rollouts, iterations and optimize are float32 cases
judged against the **float32** PyTorch reference (``reference_dtype="float32"``): against float64 they
measure float32 rounding accumulated over 25 chaotic steps, not the port (measured over 30 draws: rel MAE up
to 3.3e-6, "excellent", for the pendulum tasks; against float32 PyTorch 4.6e-7 or better, "perfect", with the
remaining difference from ``sin``/``cos``/``tanh`` implementations and matmul summation order).

Knot-time ties. hydrax's control grid ``linspace(tk[0], tk[-1], ctrl_steps)`` lands exactly on interior knot
times whenever (K - 1) divides (ctrl_steps - 1): with H = 0.5 s, dt = 0.02 s (25 steps) and K = 4, the 9th
query is the 2nd knot (8/24 = 1/3). A zero-order lookup then compares two derived values that are equal in
exact arithmetic, and any rounding difference (float64 vs float32, or XLA's x / c -> x * (1 / c) rewrite and
FMA contraction vs PyTorch's separate roundings, both measured here) selects the neighbouring knot: a whole
knot of "error" that is no defect of the port. The rollout, iteration and optimize cases therefore use K = 6
(5 does not divide 24: every query is at least H / 120 from a knot) and warm-start shifts that are not
multiples of the knot spacing; `test_near_ties.py` documents the tie behaviour of the default K = 4.

Costs are compared as separate leaves (running costs, terminal cost, totals) because their magnitudes differ
by two orders (dt * running cost vs the terminal cost): one relative scale for the whole (N, H + 1) array
would judge the terminal column by the running costs' mean.

Elite selection is discontinuous: an ``argsort`` cut whose two neighbouring total costs differ by less than
the implementations' rounding can pick different elites. The iteration and optimize strategies therefore
compute the reference's total costs and keep only draws whose elite cut has a clear relative margin
(`ELITE_MARGIN`); `test_near_ties.py` shows and documents what happens without it.

Shapes and configurations come from small fixed sets, so each jitted function compiles a bounded number of
times (per task, spline type and dtype).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from typing import Any

import numpy as np
import torch
from hypothesis import assume
from hypothesis import strategies as st

import implementations.cem as impl
import reference.cem as ref
from conformance.cases import Case, Inputs, register
from conformance.strategies import cast_floats
from contracts.cem.config import TASKS, CEMConfig
from reference.cem import networks as ref_networks

SPLINES = ("zero", "linear", "cubic")
ELITE_MARGIN = 1e-4  # relative gap between the last elite's and the first non-elite's total cost
DYNAMICS_HIDDEN = (32, 32)
POLICY_HIDDEN = (32, 32)
WEIGHT_SEED = 1234

# Where each task's state is drawn from (uniform per component).
STATE_BOX = {
    "pendulum": ((-3.5, -4.0), (3.5, 4.0)),
    "learned": ((-3.5, -4.0), (3.5, 4.0)),
    "cartpole": ((-1.0, -3.5, -2.0, -4.0), (1.0, 3.5, 2.0, 4.0)),
}


def torch_single_thread(fn: Callable[..., Any]) -> Callable[..., Any]:
    """Run a reference call with one PyTorch thread (restored afterwards). The references' batched ops are
    small (32 x 128 matmuls), and PyTorch's OpenMP pool collapses when the cores are oversubscribed, as under
    pytest-xdist on 2 cores: measured 32 ms vs 0.4 ms for a 256 x 128 x 128 matmul with 2 threads vs 1.
    The thread count does not change PyTorch's float32 results for these ops (no split reductions)."""

    def run(*args: Any, **kw: Any) -> Any:
        before = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            return fn(*args, **kw)
        finally:
            torch.set_num_threads(before)

    run.__name__ = getattr(fn, "__name__", "fn")
    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


@cache
def dynamics_weights() -> dict[str, np.ndarray]:
    """The learned task's MLP: seeded PyTorch init (float64 NumPy; the harness rounds it with the case)."""
    model = ref_networks.init_mlp(ref_networks.dynamics_sizes(DYNAMICS_HIDDEN), WEIGHT_SEED)
    return {k: v.numpy().astype(np.float64) for k, v in ref_networks.state_dict(model).items()}


@cache
def policy_weights(num_knots: int, task: str = "pendulum") -> dict[str, np.ndarray]:
    config = CEMConfig(task=task, num_knots=num_knots)
    model = ref_networks.init_mlp(ref_networks.policy_sizes(config, POLICY_HIDDEN), WEIGHT_SEED + 1)
    return {k: v.numpy().astype(np.float64) for k, v in ref_networks.state_dict(model).items()}


def _weights_like(weights: dict[str, np.ndarray], dtype: np.dtype) -> dict[str, np.ndarray]:
    return {k: v.astype(dtype) for k, v in weights.items()}


def _dtype_of(spec: Inputs) -> np.dtype:
    return next(v.dtype for v in spec.values() if isinstance(v, np.ndarray) and v.dtype.kind == "f")


@st.composite
def _rng(draw: st.DrawFn) -> np.random.Generator:
    return np.random.default_rng(draw(st.integers(0, 2**32 - 1)))


def _state(rng: np.random.Generator, task: str) -> np.ndarray:
    lo, hi = STATE_BOX[task]
    return rng.uniform(lo, hi)


# -- interpolation ----------------------------------------------------------------------------------------


@st.composite
def _interp_spec(draw: st.DrawFn, spline: str) -> Inputs:
    rng = draw(_rng())
    B = 8
    K = draw(st.sampled_from((4, 6)))
    nu = draw(st.sampled_from((1, 3)))
    T = 24
    t0 = draw(st.sampled_from((0.0, 0.37, 12.5)))
    gaps = rng.uniform(0.05, 0.3, K - 1)
    tk = t0 + np.concatenate([[0.0], np.cumsum(gaps)])
    span = tk[-1] - tk[0]
    # query times: inside, slightly outside (extrapolation), and exactly on knots (zero-order ties)
    n_on = T // 4
    tq = np.concatenate(
        [rng.uniform(tk[0] - 0.1 * span, tk[-1] + 0.1 * span, T - n_on), rng.choice(tk, n_on)]
    )
    tq.sort()
    scale = draw(st.sampled_from((0.3, 1.0, 10.0)))
    knots = scale * rng.standard_normal((B, K, nu))
    return {"tq": tq, "tk": tk, "knots": knots, "spline_type": spline}


def _interp_case(spline: str) -> Case:
    return Case(
        name=f"cem.interp.{spline}",
        reference=torch_single_thread(ref.interp),
        implementation=impl.interp,
        inputs=lambda dtype, s=spline: _interp_spec(s),
    )


INTERP = {s: _interp_case(s) for s in SPLINES}


# -- rollouts ---------------------------------------------------------------------------------------------

ROLLOUT_SAMPLES = 16
KNOTS = 6  # no exact knot-time ties with 25 steps (see the module docstring)


def _config(task: str, spline: str, **kw: Any) -> CEMConfig:
    base = dict(
        task=task,
        num_samples=ROLLOUT_SAMPLES,
        num_elites=4,
        sigma_start=0.5,
        sigma_min=0.05,
        explore_fraction=0.25,
        iterations=1,
        plan_horizon=0.5,
        num_knots=KNOTS,
        spline_type=spline,
    )
    base.update(kw)
    return CEMConfig(**base)


@st.composite
def _rollout_spec(draw: st.DrawFn, task: str) -> Inputs:
    rng = draw(_rng())
    spec = TASKS[task]
    spline = draw(st.sampled_from(SPLINES))
    t0 = draw(st.sampled_from((0.0, 0.25, 3.0)))
    tk = t0 + 0.5 * np.arange(KNOTS) / (KNOTS - 1)
    knots = rng.uniform(spec.u_min, spec.u_max, (ROLLOUT_SAMPLES, KNOTS, spec.nu))
    return {"x0": _state(rng, task), "tk": tk, "knots": knots, "task": task, "spline": spline}


def split_costs(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn``'s outputs with ``costs`` (N, H + 1) split into running costs, terminal cost and totals."""

    def run(**kw: Any) -> dict[str, Any]:
        out = dict(fn(**kw))
        costs = out.pop("costs")
        out["running_costs"] = costs[:, :-1]
        out["terminal_cost"] = costs[:, -1]
        out["total_cost"] = costs.sum(1)
        return out

    run.__name__ = getattr(fn, "__name__", "fn")
    run.__wrapped__ = fn  # type: ignore[attr-defined]
    return run


def _rollout_build(spec: Inputs) -> Inputs:
    out = {k: spec[k] for k in ("x0", "tk", "knots")}
    out["config"] = _config(spec["task"], spec["spline"])
    out["weights"] = _weights_like(dynamics_weights(), _dtype_of(spec)) if spec["task"] == "learned" else None
    return out


ROLLOUT = {
    task: Case(
        name=f"cem.rollout.{task}",
        reference=torch_single_thread(split_costs(ref.rollout)),
        implementation=split_costs(impl.rollout),
        inputs=lambda dtype, t=task: _rollout_spec(t),
        build=_rollout_build,
        reference_dtype="float32",
    )
    for task in TASKS
}


# -- one CEM iteration and a full optimize, with injected noise -------------------------------------------

ITER_SAMPLES = 32


def _iter_config(spec: Inputs) -> CEMConfig:
    return _config(
        spec["task"],
        spec["spline"],
        num_samples=ITER_SAMPLES,
        num_elites=6,
        iterations=int(spec.get("iterations", 1)),
        sigma_start=0.5,
        sigma_min=0.05,
    )


def _margin(total: np.ndarray, num_elites: int) -> float:
    s = np.sort(total)
    return float((s[num_elites] - s[num_elites - 1]) / max(np.abs(s).max(), 1e-30))


@torch_single_thread
def elite_margins(spec: Inputs) -> list[float]:
    """The relative elite-cut margin of every iteration, as the float32 reference sees the float32 inputs."""
    kw = _iter_build(cast_floats(spec, "float32"))
    cfg = kw["config"]
    if "noise" in kw and np.ndim(kw["noise"]) == 4:  # optimize: warm start, then iterate
        tk, mean = ref.warm_start(kw["time"], kw["tk"], kw["mean"], cfg)
        std, margins = torch.from_numpy(kw["std"]), []
        for i in range(cfg.iterations):
            out = ref.cem_iteration(kw["x0"], tk, mean, std, kw["noise"][i], cfg, kw["weights"])
            margins.append(_margin(out["costs"].sum(1).numpy(), cfg.num_elites))
            mean, std = out["mean"], out["std"]
        return margins
    out = ref.cem_iteration(**kw)
    return [_margin(out["costs"].sum(1).numpy(), cfg.num_elites)]


@st.composite
def _iter_spec(draw: st.DrawFn, task: str, optimize: bool) -> Inputs:
    rng = draw(_rng())
    spec = TASKS[task]
    spline = draw(st.sampled_from(SPLINES))
    t0 = draw(st.sampled_from((0.0, 0.25, 3.0)))
    tk = t0 + 0.5 * np.arange(KNOTS) / (KNOTS - 1)
    width = spec.u_max - spec.u_min
    mean = rng.uniform(spec.u_min, spec.u_max, (KNOTS, spec.nu)) * 0.8
    std = width * rng.uniform(0.01, 0.4, (KNOTS, spec.nu))  # small stds exercise the sigma_min floor
    out: Inputs = {
        "x0": _state(rng, task),
        "tk": tk,
        "mean": mean,
        "std": std,
        "task": task,
        "spline": spline,
    }
    if optimize:
        out["iterations"] = 2
        # a float32 value, so both dtypes and both sides see exactly the same time
        out["time"] = float(np.float32(t0 + draw(st.sampled_from((0.02, 0.04, 0.06)))))
        out["noise"] = rng.standard_normal((2, ITER_SAMPLES, KNOTS, spec.nu))
    else:
        out["noise"] = rng.standard_normal((ITER_SAMPLES, KNOTS, spec.nu))
    assume(min(elite_margins(out)) > ELITE_MARGIN)
    return out


def _iter_build(spec: Inputs) -> Inputs:
    out = {k: spec[k] for k in ("x0", "tk", "mean", "std", "noise")}
    if "time" in spec:
        out = {"x0": spec["x0"], "time": spec["time"], **{k: spec[k] for k in ("tk", "mean", "std", "noise")}}
    out["config"] = _iter_config(spec)
    out["weights"] = _weights_like(dynamics_weights(), _dtype_of(spec)) if spec["task"] == "learned" else None
    return out


ITERATION = {
    task: Case(
        name=f"cem.iteration.{task}",
        reference=torch_single_thread(split_costs(ref.cem_iteration)),
        implementation=split_costs(impl.cem_iteration),
        inputs=lambda dtype, t=task: _iter_spec(t, optimize=False),
        build=_iter_build,
        reference_dtype="float32",
    )
    for task in TASKS
}

OPTIMIZE = Case(
    name="cem.optimize.pendulum",
    reference=torch_single_thread(split_costs(ref.optimize)),
    implementation=split_costs(impl.optimize),
    inputs=lambda dtype: _iter_spec("pendulum", optimize=True),
    build=_iter_build,
    reference_dtype="float32",
)


# -- the policy network (converted weights) ---------------------------------------------------------------


@st.composite
def _policy_spec(draw: st.DrawFn) -> Inputs:
    rng = draw(_rng())
    return {"x": _state(rng, "pendulum"), "num_knots": draw(st.sampled_from((4, 6)))}


def _policy_build(spec: Inputs) -> Inputs:
    K = int(spec["num_knots"])
    return {
        "weights": _weights_like(policy_weights(K), spec["x"].dtype),
        "x": spec["x"],
        "config": CEMConfig(task="pendulum", num_knots=K),
    }


POLICY = Case(
    name="cem.policy_knots",
    reference=torch_single_thread(ref_networks.policy_knots),
    implementation=impl.policy_knots,
    inputs=lambda dtype: _policy_spec(),
    build=_policy_build,
)


register(*INTERP.values(), *ROLLOUT.values(), *ITERATION.values(), OPTIMIZE, POLICY)

ALL = [*INTERP.values(), *ROLLOUT.values(), *ITERATION.values(), OPTIMIZE, POLICY]
