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

Short horizons against float64. Over 7 steps the float32 port's error against the float64 reference is
bounded (no chaotic growth), so ``cem.rollout.short`` and ``cem.optimize.short`` judge the float32 port
against float64 PyTorch, and the float64 port (x64) against it too: a port that computes part of its grid or
knot times in float32 whatever the input dtype is seen there. They use the continuous splines only (a
zero-order lookup at a knot time is decided by rounding, see above). The float32 rows are bounded by the
resolution of float32 times: a knot time near 3 s carries 1e-5 of the 0.02 s knot spacing.

The noise of the deployed pipeline comes from a PRNG key: ``cem.optimize_key`` states the key contract on
the reference side (``noise = normal(split(key)[1])``, next key ``split(key)[0]``, drawn by JAX) and feeds
that noise to the PyTorch reference, so a port that splits or uses its keys otherwise fails.

Every task is covered, the point mass (two controls) included, so that the layout of (knots, controls)
arrays is visible. Each case lists explicit examples (its structural branches: every spline type, every
task, the second planner variant whose ``sigma_min`` and ``explore_fraction`` are not the defaults), which
every Hypothesis profile runs before its drawn examples.

Shapes and configurations come from small fixed sets, so each jitted function compiles a bounded number of
times (per task, spline type and dtype). The rollout, iteration and optimize cases run a fraction of the
profile's drawn examples (``examples``): their explicit examples already cover every task, spline type and
planner variant, and each drawn example runs whole rollouts on both sides.
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
    "pointmass": ((-2.0, -2.0, -1.0, -1.0), (2.0, 2.0, 1.0, 1.0)),
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


def _interp_explicit(spline: str) -> Callable[[str], list[Inputs]]:
    """4 and 6 knots, one and three controls, queries before, on and after the knots."""

    def explicit(dtype: str) -> list[Inputs]:
        out = []
        for k, (K, nu, t0) in enumerate(((4, 1, 0.0), (6, 3, 12.5))):
            rng = np.random.default_rng(700 + k)
            tk = t0 + np.concatenate([[0.0], np.cumsum(rng.uniform(0.05, 0.3, K - 1))])
            span = tk[-1] - tk[0]
            tq = np.sort(np.concatenate([np.linspace(tk[0] - 0.1 * span, tk[-1] + 0.1 * span, 18), tk]))
            knots = 3.0 * rng.standard_normal((8, K, nu))
            out.append({"tq": tq, "tk": tk, "knots": knots, "spline_type": spline})
        return out

    return explicit


def _interp_case(spline: str) -> Case:
    return Case(
        name=f"cem.interp.{spline}",
        reference=torch_single_thread(ref.interp),
        implementation=impl.interp,
        inputs=lambda dtype, s=spline: _interp_spec(s),
        explicit=_interp_explicit(spline),
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


def _rollout_inputs(rng: np.random.Generator, task: str, spline: str, t0: float, horizon: float) -> Inputs:
    spec = TASKS[task]
    tk = t0 + horizon * np.arange(KNOTS) / (KNOTS - 1)
    knots = rng.uniform(spec.u_min, spec.u_max, (ROLLOUT_SAMPLES, KNOTS, spec.nu))
    out: Inputs = {"x0": _state(rng, task), "tk": tk, "knots": knots, "task": task, "spline": spline}
    if horizon != 0.5:
        out["horizon"] = horizon
    return out


@st.composite
def _rollout_spec(draw: st.DrawFn, task: str) -> Inputs:
    rng = draw(_rng())
    spline = draw(st.sampled_from(SPLINES))
    return _rollout_inputs(rng, task, spline, draw(st.sampled_from((0.0, 0.25, 3.0))), 0.5)


def _rollout_explicit(task: str) -> Callable[[str], list[Inputs]]:
    """Every spline type."""

    def explicit(dtype: str) -> list[Inputs]:
        rng = np.random.default_rng(800)
        return [_rollout_inputs(rng, task, spline, 0.25 * k, 0.5) for k, spline in enumerate(SPLINES)]

    return explicit


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
    out["config"] = _config(spec["task"], spec["spline"], plan_horizon=float(spec.get("horizon", 0.5)))
    out["weights"] = _weights_like(dynamics_weights(), _dtype_of(spec)) if spec["task"] == "learned" else None
    return out


ROLLOUT = {
    task: Case(
        name=f"cem.rollout.{task}",
        reference=torch_single_thread(split_costs(ref.rollout)),
        implementation=split_costs(impl.rollout),
        inputs=lambda dtype, t=task: _rollout_spec(t),
        build=_rollout_build,
        explicit=_rollout_explicit(task),
        reference_dtype="float32",
        examples=0.5,
    )
    for task in TASKS
}

# Short horizons (7 steps) against the float64 reference: every task, each with one continuous spline (one
# configuration per task keeps the compilations few).
# 7 steps: the control grid's fractions k / 6 are not exact in float32 (with 5 steps, k / 4 would be, and a
# port computing them in float32 whatever the dtype would go unseen)
SHORT_HORIZON = 0.14
SHORT_SPLINE = {"pendulum": "linear", "cartpole": "cubic", "learned": "cubic", "pointmass": "linear"}


@st.composite
def _short_rollout_spec(draw: st.DrawFn) -> Inputs:
    rng = draw(_rng())
    task = draw(st.sampled_from(sorted(TASKS)))
    return _rollout_inputs(
        rng, task, SHORT_SPLINE[task], draw(st.sampled_from((0.0, 0.37, 3.0))), SHORT_HORIZON
    )


def _short_rollout_explicit(dtype: str) -> list[Inputs]:
    """Every task."""
    rng = np.random.default_rng(810)
    return [
        _rollout_inputs(rng, task, SHORT_SPLINE[task], 0.37 * k, SHORT_HORIZON)
        for k, task in enumerate(sorted(TASKS))
    ]


ROLLOUT_SHORT = Case(
    name="cem.rollout.short",
    reference=torch_single_thread(split_costs(ref.rollout)),
    implementation=split_costs(impl.rollout),
    inputs=lambda dtype: _short_rollout_spec(),
    build=_rollout_build,
    explicit=_short_rollout_explicit,
    examples=0.34,
)


# -- one CEM iteration and a full optimize, with injected noise -------------------------------------------

ITER_SAMPLES = 32
# Planner variants (the int ``variant`` of the inputs; a new config compiles, so it is not a float): the cases'
# default and one whose sigma_start, sigma_min (the floor of the elite std) and explore fraction are all other
# values than the `CEMConfig` defaults.
VARIANTS = {
    0: {"sigma_start": 0.5, "sigma_min": 0.05, "explore_fraction": 0.25},
    1: {"sigma_start": 1.5, "sigma_min": 0.4, "explore_fraction": 0.5},
}


def _iter_config(spec: Inputs) -> CEMConfig:
    return _config(
        spec["task"],
        spec["spline"],
        num_samples=ITER_SAMPLES,
        num_elites=6,
        iterations=int(spec.get("iterations", 1)),
        plan_horizon=float(spec.get("horizon", 0.5)),
        **VARIANTS[int(spec.get("variant", 0))],
    )


def _margin(total: np.ndarray, num_elites: int) -> float:
    s = np.sort(total)
    return float((s[num_elites] - s[num_elites - 1]) / max(np.abs(s).max(), 1e-30))


@torch_single_thread
def elite_margins(spec: Inputs) -> list[float]:
    """The relative elite-cut margin of every iteration, as the float32 reference sees the float32 inputs
    (``spec["noise"]``: one iteration's noise, or every iteration's after a warm start at ``spec["time"]``)."""
    s32 = cast_floats(spec, "float32")
    cfg = _iter_config(s32)
    weights = _weights_like(dynamics_weights(), np.dtype(np.float32)) if cfg.task == "learned" else None
    noise = s32["noise"]
    if noise.ndim == 3:
        out = ref.cem_iteration(s32["x0"], s32["tk"], s32["mean"], s32["std"], noise, cfg, weights)
        return [_margin(out["costs"].sum(1).numpy(), cfg.num_elites)]
    tk, mean = ref.warm_start(s32["time"], s32["tk"], s32["mean"], cfg)
    std, margins = torch.from_numpy(s32["std"]), []
    for i in range(cfg.iterations):
        out = ref.cem_iteration(s32["x0"], tk, mean, std, noise[i], cfg, weights)
        margins.append(_margin(out["costs"].sum(1).numpy(), cfg.num_elites))
        mean, std = out["mean"], out["std"]
    return margins


def _iter_inputs(
    rng: np.random.Generator,
    task: str,
    spline: str,
    t0: float,
    *,
    optimize: bool,
    variant: int = 0,
    shift: float = 0.02,
    horizon: float = 0.5,
) -> Inputs:
    spec = TASKS[task]
    tk = t0 + horizon * np.arange(KNOTS) / (KNOTS - 1)
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
    if variant:
        out["variant"] = variant
    if horizon != 0.5:
        out["horizon"] = horizon
    if optimize:
        out["iterations"] = 2
        # a float32 value, so both dtypes and both sides see exactly the same time
        out["time"] = float(np.float32(t0 + shift))
        out["noise"] = rng.standard_normal((2, ITER_SAMPLES, KNOTS, spec.nu))
    else:
        out["noise"] = rng.standard_normal((ITER_SAMPLES, KNOTS, spec.nu))
    return out


def has_clear_elite_cut(spec: Inputs) -> bool:
    return min(elite_margins(spec)) > ELITE_MARGIN


@st.composite
def _iter_spec(draw: st.DrawFn, task: str, optimize: bool) -> Inputs:
    """The drawn examples use the first planner variant (each variant is a configuration, compiled once per
    spline type); the explicit examples add the second."""
    rng = draw(_rng())
    spline = draw(st.sampled_from(SPLINES))
    t0 = draw(st.sampled_from((0.0, 0.25, 3.0)))
    shift = draw(st.sampled_from((0.02, 0.04, 0.06))) if optimize else 0.02
    out = _iter_inputs(rng, task, spline, t0, optimize=optimize, shift=shift)
    assume(has_clear_elite_cut(out))
    return out


def explicit_with_clear_cut(make: Callable[[np.random.Generator], Inputs], seed: int) -> Inputs:
    """The first inputs ``make`` builds from seeds ``seed, seed + 1, ...`` whose elite cuts have a clear
    margin (the explicit counterpart of the strategies' ``assume``)."""
    for s in range(seed, seed + 50):
        spec = make(np.random.default_rng(s))
        if has_clear_elite_cut(spec):
            return spec
    raise AssertionError(f"no inputs with a clear elite cut from seeds {seed}..{seed + 49}")


def _iter_explicit(task: str, optimize: bool) -> Callable[[str], list[Inputs]]:
    """Every spline type; the second planner variant with the last one."""

    @cache
    def examples() -> tuple[Inputs, ...]:
        return tuple(
            explicit_with_clear_cut(
                lambda rng, k=k, spline=spline: _iter_inputs(
                    rng, task, spline, 0.25 * k, optimize=optimize, variant=int(k == 2), shift=0.04
                ),
                900 + 100 * k,
            )
            for k, spline in enumerate(SPLINES)
        )

    return lambda dtype: list(examples())


def _iter_build(spec: Inputs) -> Inputs:
    noise = "key_data" if "key_data" in spec else "noise"
    out = {k: spec[k] for k in ("x0", "tk", "mean", "std", noise)}
    if "time" in spec:
        out = {"x0": spec["x0"], "time": spec["time"], **{k: spec[k] for k in ("tk", "mean", "std", noise)}}
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
        explicit=_iter_explicit(task, optimize=False),
        reference_dtype="float32",
        examples=0.5,
    )
    for task in TASKS
}

OPTIMIZE = Case(
    name="cem.optimize.pendulum",
    reference=torch_single_thread(split_costs(ref.optimize)),
    implementation=split_costs(impl.optimize),
    inputs=lambda dtype: _iter_spec("pendulum", optimize=True),
    build=_iter_build,
    explicit=_iter_explicit("pendulum", optimize=True),
    reference_dtype="float32",
    examples=0.5,
)


@st.composite
def _short_optimize_spec(draw: st.DrawFn) -> Inputs:
    rng = draw(_rng())
    task = draw(st.sampled_from(sorted(TASKS)))
    t0 = draw(st.sampled_from((0.0, 0.37, 3.0)))
    shift = draw(st.sampled_from((0.005, 0.013)))
    out = _iter_inputs(rng, task, SHORT_SPLINE[task], t0, optimize=True, shift=shift, horizon=SHORT_HORIZON)
    assume(has_clear_elite_cut(out))
    return out


@cache
def _short_optimize_examples() -> tuple[Inputs, ...]:
    """Every task; the second planner variant for the point mass."""
    return tuple(
        explicit_with_clear_cut(
            lambda rng, k=k, task=task: _iter_inputs(
                rng,
                task,
                SHORT_SPLINE[task],
                0.37 * k,
                optimize=True,
                variant=int(task == "pointmass"),
                shift=0.013,
                horizon=SHORT_HORIZON,
            ),
            1300 + 100 * k,
        )
        for k, task in enumerate(sorted(TASKS))
    )


# Warm start and two iterations over 7 steps, against the float64 reference (float32 and float64 port).
OPTIMIZE_SHORT = Case(
    name="cem.optimize.short",
    reference=torch_single_thread(split_costs(ref.optimize)),
    implementation=split_costs(impl.optimize),
    inputs=lambda dtype: _short_optimize_spec(),
    build=_iter_build,
    explicit=lambda dtype: list(_short_optimize_examples()),
    examples=0.34,
)


# -- the PRNG key path --------------------------------------------------------------------------------------


def key_noise(key_data: Any, config: CEMConfig, dtype: Any) -> tuple[np.ndarray, np.ndarray]:
    """The key contract of `implementations.cem.optimize_key`, stated independently: the key (threefry,
    ``uint32[2]`` key data) is split once; the second half draws the standard normals of every iteration,
    shape ``(iterations, num_samples, num_knots, nu)`` in the mean's dtype; the first half is the next key.
    Returns ``(noise, next key data)`` as NumPy arrays."""
    import jax

    key = jax.random.wrap_key_data(np.asarray(key_data, np.uint32), impl="threefry2x32")
    keys = jax.random.split(key)
    shape = (config.iterations, config.num_samples, config.num_knots, config.spec.nu)
    noise = np.array(jax.random.normal(keys[1], shape, dtype=dtype))  # a writable copy (PyTorch wraps it)
    return noise, np.array(jax.random.key_data(keys[0]))


def reference_optimize_key(
    x0, time, tk, mean, std, key_data, config: CEMConfig, weights=None
) -> dict[str, Any]:
    """The PyTorch ``optimize`` fed with the noise of `key_noise`; returns its outputs and the next key."""
    noise, next_key = key_noise(key_data, config, np.asarray(mean).dtype)
    out = ref.optimize(x0, time, tk, mean, std, noise, config, weights)
    return {**out, "key": next_key}


# The key path is the same for every configuration: one control and two, one spline type (few compilations).
KEY_TASKS = ("pendulum", "pointmass")


def _key_inputs(rng: np.random.Generator, task: str, t0: float) -> Inputs:
    spec = _iter_inputs(rng, task, "linear", t0, optimize=True, shift=0.04)
    key = np.asarray([rng.integers(0, 2**32), rng.integers(0, 2**32)], np.uint32)
    # the elite-cut margin is checked on the noise that the key gives
    spec["noise"] = key_noise(key, _iter_config(spec), np.float32)[0].astype(np.float64)
    spec["key_data"] = key
    return spec


def _without_noise(spec: Inputs) -> Inputs:
    return {k: v for k, v in spec.items() if k != "noise"}


@st.composite
def _key_spec(draw: st.DrawFn) -> Inputs:
    spec = _key_inputs(
        draw(_rng()), draw(st.sampled_from(KEY_TASKS)), draw(st.sampled_from((0.0, 0.25, 3.0)))
    )
    assume(has_clear_elite_cut(spec))
    return _without_noise(spec)


@cache
def _key_examples() -> tuple[Inputs, ...]:
    return tuple(
        _without_noise(
            explicit_with_clear_cut(
                lambda rng, k=k, task=task: _key_inputs(rng, task, 0.25 * k), 1800 + 100 * k
            )
        )
        for k, task in enumerate(KEY_TASKS)
    )


OPTIMIZE_KEY = Case(
    name="cem.optimize_key",
    reference=torch_single_thread(split_costs(reference_optimize_key)),
    implementation=split_costs(impl.optimize_key),
    inputs=lambda dtype: _key_spec(),
    build=_iter_build,
    explicit=lambda dtype: list(_key_examples()),
    reference_dtype="float32",
    examples=0.34,
)


# -- the policy network (converted weights) ---------------------------------------------------------------


# the policy's tasks: one control bounded at 5 and at 10, two controls (the knots' layout)
POLICY_TASKS = ("pendulum", "cartpole", "pointmass")


@st.composite
def _policy_spec(draw: st.DrawFn) -> Inputs:
    rng = draw(_rng())
    task = draw(st.sampled_from(POLICY_TASKS))
    return {"x": _state(rng, task), "num_knots": draw(st.sampled_from((4, 6))), "task": task}


def _policy_explicit(dtype: str) -> list[Inputs]:
    rng = np.random.default_rng(1000)
    return [
        {"x": _state(rng, task), "num_knots": 4 + 2 * (k % 2), "task": task}
        for k, task in enumerate(POLICY_TASKS)
    ]


def _policy_build(spec: Inputs) -> Inputs:
    K = int(spec["num_knots"])
    task = str(spec.get("task", "pendulum"))
    return {
        "weights": _weights_like(policy_weights(K, task), spec["x"].dtype),
        "x": spec["x"],
        "config": CEMConfig(task=task, num_knots=K),
    }


POLICY = Case(
    name="cem.policy_knots",
    reference=torch_single_thread(ref_networks.policy_knots),
    implementation=impl.policy_knots,
    inputs=lambda dtype: _policy_spec(),
    build=_policy_build,
    explicit=_policy_explicit,
)


ALL = [
    *INTERP.values(),
    *ROLLOUT.values(),
    ROLLOUT_SHORT,
    *ITERATION.values(),
    OPTIMIZE,
    OPTIMIZE_SHORT,
    OPTIMIZE_KEY,
    POLICY,
]
register(*ALL)
