"""JAX implementation of the batched CEM planner; twin of `reference.cem.planner` (same names, signatures
and hydrax conventions). Rollouts ``vmap`` over samples and ``lax.scan`` over time; ``optimize`` scans over
iterations. Each public function checks its inputs (shapes, finiteness: `CEMInputError`) outside jitted
code, then calls a module-level ``jax.jit`` whose static arguments are the hashable `CEMConfig` and the
spline type, so a configuration compiles once per input shape.

``optimize_key`` is the JAX-only variant used by the AOT pipeline: it draws the noise from a threefry key
(raw ``uint32[2]`` key data, so exported functions take flat arrays) and returns the next key.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from contracts.cem.config import CEMConfig, CEMInputError, check_array
from implementations.cem import tasks
from implementations.cem.spline import interp as _interp

# -- traceable kernels ------------------------------------------------------------------------------------


def knot_offsets(config: CEMConfig, dtype) -> jax.Array:
    i = jnp.arange(config.num_knots, dtype=dtype)
    return i * (config.plan_horizon / (config.num_knots - 1))


def query_times(tk, config: CEMConfig):
    steps = config.ctrl_steps
    frac = jnp.arange(steps, dtype=tk.dtype) * (1.0 / max(steps - 1, 1))
    return tk[0] + (tk[-1] - tk[0]) * frac


def _sample_knots(mean, std, noise, config: CEMConfig):
    n_main = config.num_samples - config.num_explore
    main = mean + std * noise[:n_main]
    explore = mean + config.sigma_start * noise[n_main:]
    spec = config.spec
    return jnp.clip(jnp.concatenate([main, explore], axis=0), spec.u_min, spec.u_max)


def _rollout_one(x0, controls, config: CEMConfig, weights):
    spec = config.spec

    def body(x, u):
        x = tasks.step(config.task, x, u, spec.dt, weights)
        return x, spec.dt * tasks.running_cost(config.task, x, u)

    xT, costs = jax.lax.scan(body, x0, controls)
    return jnp.concatenate([costs, tasks.terminal_cost(config.task, xT)[None]])


def _rollout(x0, tk, knots, config: CEMConfig, weights):
    controls = _interp(query_times(tk, config), tk, knots, config.spline_type)
    costs = jax.vmap(_rollout_one, in_axes=(None, 0, None, None))(x0, controls, config, weights)
    return {"controls": controls, "costs": costs}


def _elite_update(knots, costs, config: CEMConfig):
    order = jnp.argsort(costs.sum(axis=1), stable=True)
    elites = knots[order[: config.num_elites]]
    return {"mean": elites.mean(axis=0), "std": jnp.maximum(elites.std(axis=0, ddof=0), config.sigma_min)}


def _cem_iteration(x0, tk, mean, std, noise, config: CEMConfig, weights):
    knots = _sample_knots(mean, std, noise, config)
    out = _rollout(x0, tk, knots, config, weights)
    return {"knots": knots, **out, **_elite_update(knots, out["costs"], config)}


def _warm_start(time, tk, mean, config: CEMConfig):
    new_tk = knot_offsets(config, tk.dtype) + time
    return new_tk, _interp(new_tk, tk, mean[None], config.spline_type)[0]


def _optimize(x0, time, tk, mean, std, noise, config: CEMConfig, weights):
    tk, mean = _warm_start(time, tk, mean, config)

    def body(carry, eps):
        mean, std, _ = carry
        out = _cem_iteration(x0, tk, mean, std, eps, config, weights)
        return (out["mean"], out["std"], out["costs"]), None

    costs0 = jnp.zeros((config.num_samples, config.ctrl_steps + 1), mean.dtype)
    (mean, std, costs), _ = jax.lax.scan(body, (mean, std, costs0), noise)
    return {"tk": tk, "mean": mean, "std": std, "costs": costs}


def _optimize_key(x0, time, tk, mean, std, key_data, config: CEMConfig, weights):
    key = jax.random.wrap_key_data(key_data, impl="threefry2x32")
    key, sub = jax.random.split(key)
    shape = (config.iterations, config.num_samples, config.num_knots, config.spec.nu)
    noise = jax.random.normal(sub, shape, dtype=mean.dtype)
    out = _optimize(x0, time, tk, mean, std, noise, config, weights)
    return {**out, "key": jax.random.key_data(key)}


def _policy_knots(weights, x, config: CEMConfig):
    spec = config.spec
    out = tasks.mlp(weights, x[None, :])[0]
    return (spec.u_max * jnp.tanh(out)).reshape(config.num_knots, spec.nu)


# -- jitted once, at module level (static: the config / spline type) ---------------------------------------

_interp_jit = jax.jit(_interp, static_argnames=("spline_type",))
_sample_knots_jit = jax.jit(_sample_knots, static_argnames=("config",))
_rollout_jit = jax.jit(_rollout, static_argnames=("config",))
_elite_update_jit = jax.jit(_elite_update, static_argnames=("config",))
_cem_iteration_jit = jax.jit(_cem_iteration, static_argnames=("config",))
_warm_start_jit = jax.jit(_warm_start, static_argnames=("config",))
_optimize_jit = jax.jit(_optimize, static_argnames=("config",))
_optimize_key_jit = jax.jit(_optimize_key, static_argnames=("config",))
_policy_knots_jit = jax.jit(_policy_knots, static_argnames=("config",))


# -- input checks -------------------------------------------------------------------------------------------


def _check_config(config: Any) -> CEMConfig:
    if not isinstance(config, CEMConfig):
        raise CEMInputError(f"config must be a CEMConfig; got {type(config).__name__}")
    return config


def _float_dtype(*arrays: Any) -> np.dtype:
    found = [np.dtype(a.dtype) if hasattr(a, "dtype") else np.asarray(a).dtype for a in arrays]
    dtypes = {d for d in found if d.kind == "f"}
    if len(dtypes) > 1:
        raise CEMInputError(f"inputs mix float dtypes {sorted(d.name for d in dtypes)}")
    dtype = dtypes.pop() if dtypes else np.dtype(np.float32)
    if dtype == np.float64 and not jax.config.read("jax_enable_x64"):
        raise CEMInputError(
            "float64 input but jax_enable_x64 is off, so JAX would silently compute in float32: enable x64 or "
            "pass float32 arrays"
        )
    return dtype


def _check_weights(weights: Mapping[str, Any] | None, config: CEMConfig) -> Mapping[str, Any] | None:
    if config.task == "learned":
        if not weights:
            raise CEMInputError("the 'learned' task needs the dynamics MLP's weights (weights=...)")
        for k, v in weights.items():
            check_array(f"weights[{k!r}]", v, np.shape(v))
    return weights


def _check_knots(name: str, x: Any, config: CEMConfig, batch: int | None = None) -> None:
    shape = (config.num_knots, config.spec.nu)
    if batch is not None:
        shape = (batch, *shape)
    check_array(name, x, shape)


def _check_tk(tk: Any, n: int) -> None:
    a = check_array("tk", tk, (n,))
    if a is not None and n > 1 and not np.all(np.diff(a) > 0):
        raise CEMInputError(f"tk must be strictly increasing; got {a}")


# -- public API (same names and signatures as reference.cem) -----------------------------------------------


def interp(tq, tk, knots, spline_type: str = "zero"):
    """Controls at ``tq`` (T,) of the splines through ``knots`` (B, K, nu) at knot times ``tk`` (K,).

    Traceable (value checks are skipped for tracers), so it can itself be jitted or exported."""
    if spline_type not in ("zero", "linear", "cubic"):
        raise CEMInputError(f"unknown spline_type {spline_type!r}")
    k = np.ndim(knots)
    if k != 3:
        raise CEMInputError(f"knots must have shape (B, K, nu); got {np.shape(knots)}")
    _, K, _ = np.shape(knots)
    _check_tk(tk, K)
    if spline_type == "cubic" and K < 4:
        raise CEMInputError(f"a cubic spline needs at least 4 knots; got {K}")
    if np.ndim(tq) != 1:
        raise CEMInputError(f"tq must have shape (T,); got {np.shape(tq)}")
    check_array("tq", tq, np.shape(tq))
    check_array("knots", knots, np.shape(knots))
    _float_dtype(tq, tk, knots)
    return _interp_jit(tq, tk, knots, spline_type=spline_type)


def sample_knots(mean, std, noise, config: CEMConfig):
    config = _check_config(config)
    _check_knots("mean", mean, config)
    _check_knots("std", std, config)
    _check_knots("noise", noise, config, config.num_samples)
    _float_dtype(mean, std, noise)
    return _sample_knots_jit(mean, std, noise, config=config)


def rollout(x0, tk, knots, config: CEMConfig, weights: Mapping[str, Any] | None = None):
    config = _check_config(config)
    check_array("x0", x0, (config.spec.nx,))
    _check_tk(tk, config.num_knots)
    n = np.shape(knots)[0] if np.ndim(knots) == 3 else -1
    _check_knots("knots", knots, config, n)
    _float_dtype(x0, tk, knots)
    return _rollout_jit(x0, tk, knots, config=config, weights=_check_weights(weights, config))


def elite_update(knots, costs, config: CEMConfig):
    config = _check_config(config)
    _check_knots("knots", knots, config, config.num_samples)
    check_array("costs", costs, (config.num_samples, config.ctrl_steps + 1))
    return _elite_update_jit(knots, costs, config=config)


def cem_iteration(x0, tk, mean, std, noise, config: CEMConfig, weights=None):
    config = _check_config(config)
    check_array("x0", x0, (config.spec.nx,))
    _check_tk(tk, config.num_knots)
    _check_knots("mean", mean, config)
    _check_knots("std", std, config)
    _check_knots("noise", noise, config, config.num_samples)
    _float_dtype(x0, tk, mean, std, noise)
    return _cem_iteration_jit(
        x0, tk, mean, std, noise, config=config, weights=_check_weights(weights, config)
    )


def warm_start(time, tk, mean, config: CEMConfig):
    config = _check_config(config)
    check_array("time", time, ())
    _check_tk(tk, config.num_knots)
    _check_knots("mean", mean, config)
    dtype = _float_dtype(tk, mean)
    return _warm_start_jit(np.asarray(time, dtype), tk, mean, config=config)


def optimize(x0, time, tk, mean, std, noise, config: CEMConfig, weights=None):
    config = _check_config(config)
    check_array("x0", x0, (config.spec.nx,))
    check_array("time", time, ())
    _check_tk(tk, config.num_knots)
    _check_knots("mean", mean, config)
    _check_knots("std", std, config)
    check_array("noise", noise, (config.iterations, config.num_samples, config.num_knots, config.spec.nu))
    dtype = _float_dtype(x0, tk, mean, std, noise)
    return _optimize_jit(
        x0,
        np.asarray(time, dtype),
        tk,
        mean,
        std,
        noise,
        config=config,
        weights=_check_weights(weights, config),
    )


def optimize_key(x0, time, tk, mean, std, key_data, config: CEMConfig, weights=None):
    """`optimize` with the noise drawn from ``key_data`` (uint32[2], threefry); returns the next key too."""
    config = _check_config(config)
    check_array("x0", x0, (config.spec.nx,))
    check_array("time", time, ())
    _check_tk(tk, config.num_knots)
    _check_knots("mean", mean, config)
    _check_knots("std", std, config)
    kd = np.asarray(key_data)
    if kd.shape != (2,) or kd.dtype != np.uint32:
        raise CEMInputError(f"key_data must be uint32[2]; got {kd.dtype}{list(kd.shape)}")
    dtype = _float_dtype(x0, tk, mean, std)
    return _optimize_key_jit(
        x0, np.asarray(time, dtype), tk, mean, std, kd, config=config, weights=_check_weights(weights, config)
    )


def policy_knots(weights, x, config: CEMConfig):
    """The policy network's warm-start knots for state ``x`` (nx,): (K, nu)."""
    config = _check_config(config)
    check_array("x", x, (config.spec.nx,))
    _float_dtype(x)
    return _policy_knots_jit(weights, x, config=config)
