"""The catalogue of realistic porting bugs of the cem port, for `python -m conformance mutate`: each entry is a
source patch of `implementations/cem` that a porter could plausibly make, and the suite, under the `ci`
profile, must fail on it.

The first group are the classic defects (a common PyTorch CEM has several: ddof 1, no clipping, no
explore split; others are easy slips: the 'left' side of searchsorted, a control grid that
excludes the last knot, a warm start that shifts the knot times without re-interpolating the mean, natural
instead of not-a-knot cubic ends); `test_negative_controls.py` also applies them in process and checks that
the explicit examples of the case named in `CONTROLS` catch each one. The others: elite selection and
planner state, a default used instead of the configuration's value, the layout of (knots, controls) arrays
with two controls, how the PRNG key is split and used, the deployed pipeline's warm start at a time other
than 0 and its carried state, constants, integrators and float32 where the input's dtype should rule.
"""

from __future__ import annotations

from conformance.mutate import Mutant

PLANNER = "implementations/cem/planner.py"
SPLINE = "implementations/cem/spline.py"
TASKS = "implementations/cem/tasks.py"
RUNTIME = "implementations/cem/runtime.py"
EXPORT = "implementations/cem/export.py"

_ROLLOUT_BODY = """    def body(x, u):
        x = tasks.step(config.task, x, u, spec.dt, weights)
        return x, spec.dt * tasks.running_cost(config.task, x, u)"""
_QUERY_TIMES = """    frac = jnp.arange(steps, dtype=tk.dtype) * (1.0 / max(steps - 1, 1))
    return tk[0] + (tk[-1] - tk[0]) * frac"""
_ELITE_STD = "jnp.maximum(elites.std(axis=0, ddof=0), config.sigma_min)"
_SAMPLES = "return jnp.clip(jnp.concatenate([main, explore], axis=0), spec.u_min, spec.u_max)"
_ORDER = "order = jnp.argsort(costs.sum(axis=1), stable=True)"
_KEY_SPLIT = "key, sub = jax.random.split(key)"
_NOISE = """    shape = (config.iterations, config.num_samples, config.num_knots, config.spec.nu)
    noise = jax.random.normal(sub, shape, dtype=mean.dtype)"""
_POLICY_OUT = "return (spec.u_max * jnp.tanh(out)).reshape(config.num_knots, spec.nu)"
_FRESH_MEAN = "mean = jax.lax.cond(fresh, lambda: planner._policy_knots(pol, x0, config), lambda: mean)"

MUTANTS: list[Mutant] = [
    # -- the classic defects (also applied in process by test_negative_controls.py) ---------------------------
    Mutant(
        "cem.interp.searchsorted-left",
        SPLINE,
        'jnp.searchsorted(tk, tq, side="right")',
        'jnp.searchsorted(tk, tq, side="left")',
        "off-by-one",
        "searchsorted side 'left': a query on a knot takes the previous segment",
    ),
    Mutant(
        "cem.interp.linear-no-extrapolation",
        SPLINE,
        "dt = (tq - t0)[None, :, None]",
        "dt = (jnp.clip(tq, tk[0], tk[-1]) - t0)[None, :, None]",
        "spline-boundary",
        "no extrapolation past the end knots (np.interp's behaviour): queries outside take the end values",
    ),
    Mutant(
        "cem.interp.cubic-natural-start",
        SPLINE,
        """    lower, diag, upper, rhs = [None], [dx[1]], [dx[0] + dx[1]], []
    d0, d1 = dx[0], dx[1]
    rhs.append(((d0 + 2 * (d0 + d1)) * d1 * m[:, 0] + d0 * d0 * m[:, 1]) / (d0 + d1))""",
        """    lower, diag, upper, rhs = [None], [2.0 * dx[0]], [dx[0]], []
    d0, d1 = dx[0], dx[1]
    rhs.append(3.0 * dx[0] * m[:, 0])""",
        "spline-boundary",
        "a natural end condition (zero curvature) at the first knot instead of not-a-knot",
    ),
    Mutant(
        "cem.rollout.grid-spacing-dt",
        PLANNER,
        _QUERY_TIMES,
        "    return tk[0] + jnp.arange(steps, dtype=tk.dtype) * config.spec.dt",
        "off-by-one",
        "control grid with spacing exactly dt, so the last knot is never reached (hydrax's is inclusive)",
    ),
    Mutant(
        "cem.rollout.cost-before-step",
        PLANNER,
        _ROLLOUT_BODY,
        """    def body(x, u):
        return tasks.step(config.task, x, u, spec.dt, weights), spec.dt * tasks.running_cost(config.task, x, u)""",
        "state",
        "the running cost of the state before the step instead of after it",
    ),
    Mutant(
        "cem.elite.std-ddof1",
        PLANNER,
        _ELITE_STD,
        "jnp.maximum(elites.std(axis=0, ddof=1), config.sigma_min)",
        "ddof",
        "elite std with ddof 1 (torch.std's default) instead of 0",
    ),
    Mutant(
        "cem.samples.unclipped",
        PLANNER,
        _SAMPLES,
        "return jnp.concatenate([main, explore], axis=0)",
        "clamp",
        "samples not clipped to the control bounds before the rollout",
    ),
    Mutant(
        "cem.samples.no-explore-split",
        PLANNER,
        "explore = mean + config.sigma_start * noise[n_main:]",
        "explore = mean + std * noise[n_main:]",
        "formula",
        "no explore split: every sample drawn at the current std (none at sigma_start)",
    ),
    Mutant(
        "cem.elite.no-sigma-floor",
        PLANNER,
        _ELITE_STD,
        "elites.std(axis=0, ddof=0)",
        "clamp",
        "no sigma_min floor on the elite std",
    ),
    Mutant(
        "cem.warm-start.shift-only",
        PLANNER,
        "return new_tk, _interp(new_tk, tk, mean[None], config.spline_type)[0]",
        "return new_tk, mean",
        "state",
        "the warm start moves the knot times but keeps the old knot values (no re-interpolation)",
    ),
    # -- elite selection and the planner's state --------------------------------------------------------------
    Mutant(
        "cem.samples.explore-first",
        PLANNER,
        _SAMPLES,
        "return jnp.clip(jnp.concatenate([explore, main], axis=0), spec.u_min, spec.u_max)",
        "layout",
        "the explore samples placed first in the sample array (their noise rows are still the last ones)",
    ),
    Mutant(
        "cem.elite.terminal-cost-ignored",
        PLANNER,
        _ORDER,
        "order = jnp.argsort(costs[:, :-1].sum(axis=1), stable=True)",
        "off-by-one",
        "elites ranked by the running costs only: the terminal cost column left out of the total",
    ),
    Mutant(
        "cem.elite.maximize",
        PLANNER,
        _ORDER,
        "order = jnp.argsort(-costs.sum(axis=1), stable=True)",
        "sign",
        "elites taken from the highest total costs (a maximizing CEM's convention)",
    ),
    Mutant(
        "cem.elite.sigma-min-default",
        PLANNER,
        _ELITE_STD,
        "jnp.maximum(elites.std(axis=0, ddof=0), CEMConfig.sigma_min)",
        "default-argument",
        "the elite std floored at the class default sigma_min (0.05) instead of the configuration's",
    ),
    Mutant(
        "cem.knots.linspace-without-endpoint",
        PLANNER,
        "return i * (config.plan_horizon / (config.num_knots - 1))",
        "return i * (config.plan_horizon / config.num_knots)",
        "off-by-one",
        "knot offsets as linspace(0, H, K, endpoint=False): the last knot falls short of the horizon",
    ),
    Mutant(
        "cem.optimize.std-not-carried",
        PLANNER,
        'return (out["mean"], out["std"], out["costs"]), None',
        'return (out["mean"], std, out["costs"]), None',
        "state",
        "the iterations carry the new mean but restart every iteration from the first std",
    ),
    Mutant(
        "cem.rollout.query-times-float32",
        PLANNER,
        _QUERY_TIMES,
        _QUERY_TIMES.replace("jnp.arange(steps, dtype=tk.dtype)", "jnp.arange(steps, dtype=jnp.float32)"),
        "accumulation-dtype",
        "the control grid's fractions in float32 whatever the knot times' dtype",
    ),
    # -- two controls: the layout of knots -------------------------------------------------------------------
    Mutant(
        "cem.policy.knot-layout",
        PLANNER,
        _POLICY_OUT,
        "return (spec.u_max * jnp.tanh(out)).reshape(spec.nu, config.num_knots).T",
        "transpose",
        "the policy's K * nu outputs reshaped control-major, (nu, K).T, where PyTorch's layout is (K, nu)",
    ),
    Mutant(
        "cem.policy.bound-default",
        PLANNER,
        _POLICY_OUT,
        "return (5.0 * jnp.tanh(out)).reshape(config.num_knots, spec.nu)",
        "default-argument",
        "the policy's output squashed to the pendulum's bound 5 instead of the task's u_max",
    ),
    Mutant(
        "cem.pointmass.controls-swapped",
        TASKS,
        """        vx = x[2] + dt * (u[0] * inv_m - bx * x[2])
        vy = x[3] + dt * (u[1] * inv_m - by * x[3])""",
        """        vx = x[2] + dt * (u[1] * inv_m - bx * x[2])
        vy = x[3] + dt * (u[0] * inv_m - by * x[3])""",
        "transpose",
        "the two control inputs of the point mass applied to the wrong axes",
    ),
    # -- the PRNG key --------------------------------------------------------------------------------------------
    Mutant(
        "cem.keys.noise-from-carried-key",
        PLANNER,
        _NOISE,
        _NOISE.replace("jax.random.normal(sub,", "jax.random.normal(key,"),
        "random-keys",
        "the noise drawn from the key that is also returned as the next one (the split's halves swapped in use)",
    ),
    Mutant(
        "cem.keys.split-order",
        PLANNER,
        _KEY_SPLIT,
        "sub, key = jax.random.split(key)",
        "random-keys",
        "the first half of the split used for the noise and the second carried on",
    ),
    Mutant(
        "cem.keys.unsplit",
        PLANNER,
        _KEY_SPLIT,
        "sub = key",
        "random-keys",
        "the key never split: the same noise on every call",
    ),
    Mutant(
        "cem.keys.noise-layout",
        PLANNER,
        _NOISE,
        """    shape = (config.iterations, config.num_samples, config.spec.nu, config.num_knots)
    noise = jax.random.normal(sub, shape, dtype=mean.dtype).swapaxes(-1, -2)""",
        "transpose",
        "the noise drawn control-major, (nu, K), then transposed: other numbers for the same key",
    ),
    # -- the deployed pipeline -------------------------------------------------------------------------------------
    Mutant(
        "cem.aot.warm-start-at-zero",
        RUNTIME,
        'self.templates["tk0"] + t,',
        'self.templates["tk0"].copy(),',
        "state",
        "the first call's knots at the template's times linspace(0, H, K) whatever the current time",
    ),
    Mutant(
        "cem.aot.warmup-keeps-its-state",
        RUNTIME,
        "            self.state, self.last_cost = saved, cost",
        "            self.last_cost = cost",
        "state",
        "the load-time warm-up leaves its own planner state behind: the first call after load carries the "
        "warm-up's knots, mean and key instead of starting from the policy",
    ),
    Mutant(
        "cem.aot.std-reset",
        RUNTIME,
        "self.state = PlannerState(tk, mean, std, key)",
        'self.state = PlannerState(tk, mean, self.templates["std0"].copy(), key)',
        "state",
        "the std reset to sigma_start on every call (a template state reused) instead of carried",
    ),
    Mutant(
        "cem.aot.policy-on-template-state",
        EXPORT,
        _FRESH_MEAN,
        _FRESH_MEAN.replace(
            "_policy_knots(pol, x0, config)", "_policy_knots(pol, jnp.asarray(spec.x0, f32), config)"
        ),
        "default-argument",
        "the policy's warm start evaluated on the template state instead of the state passed",
    ),
    Mutant(
        "cem.aot.policy-on-every-call",
        RUNTIME,
        "np.bool_(fresh)",
        "np.bool_(True)",
        "state",
        "every call flagged fresh: the policy's knots replace the carried mean on every call",
    ),
    Mutant(
        "cem.aot.controls-from-time-zero",
        RUNTIME,
        "tq = (t + np.arange(self.replan_steps, dtype=np.float32) * np.float32(spec.dt)).astype(np.float32)",
        "tq = (np.arange(self.replan_steps, dtype=np.float32) * np.float32(spec.dt)).astype(np.float32)",
        "state",
        "the controls queried at [0, dt] (the template's times) instead of [t, t + dt]",
    ),
    # -- dynamics ------------------------------------------------------------------------------------------------
    Mutant(
        "cem.pendulum.gravity-constant",
        TASKS,
        "acc = (u[0] - b * x[1] - m * G * length * jnp.sin(x[0]))",
        "acc = (u[0] - b * x[1] - m * 9.8 * length * jnp.sin(x[0]))",
        "constant",
        "g = 9.8 in the pendulum where the model uses 9.81",
    ),
    Mutant(
        "cem.pendulum.explicit-euler",
        TASKS,
        "return jnp.stack([x[0] + dt * omega, omega])",
        "return jnp.stack([x[0] + dt * x[1], omega])",
        "formula",
        "explicit Euler (the angle advanced with the old velocity) where the model is semi-implicit",
    ),
]
