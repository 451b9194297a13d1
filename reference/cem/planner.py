"""Reference (PyTorch) of the batched CEM planner with hydrax's conventions (``hydrax/algs/cem.py``).

The noise is injected (standard normals, drawn by the caller), so the JAX twin can be fed the same samples:

- ``sample_knots(mean, std, noise, config)``: the first ``N - num_explore`` samples are ``mean + std * eps``,
  the last ``num_explore = int(N * explore_fraction)`` are ``mean + sigma_start * eps``; all are clipped to
  the task's control bounds (before the rollout, as hydrax does).
- ``rollout(x0, tk, knots, config, weights)``: controls at ``linspace(tk[0], tk[-1], ctrl_steps)`` (both
  ends included), the dynamics rolled forward, costs (N, ctrl_steps + 1) with the terminal cost appended.
- ``cem_iteration``: sum costs, ``argsort`` (stable), the first ``num_elites`` clipped samples are the
  elites; new mean = their mean, new std = ``max(std(ddof=0), sigma_min)``. No smoothing (hydrax has none).
- ``warm_start(time, tk, mean, config)``: new knot times ``linspace(0, H, K) + time``, the old mean
  re-interpolated at them.
- ``optimize``: warm start then ``iterations`` CEM iterations with ``noise[i]``.

Every function accepts NumPy arrays or tensors and computes in their dtype (float64 for the oracle).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from contracts.cem.config import CEMConfig
from reference.cem import tasks
from reference.cem.spline import interp


def _t(x: Any) -> torch.Tensor:
    return x if isinstance(x, torch.Tensor) else torch.from_numpy(np.asarray(x))


def _weights(weights: Mapping[str, Any] | None) -> dict[str, torch.Tensor] | None:
    return None if weights is None else {k: _t(v) for k, v in weights.items()}


def query_times(tk: torch.Tensor, config: CEMConfig) -> torch.Tensor:
    """hydrax: ``linspace(tk[0], tk[-1], ctrl_steps)``, both ends included (spacing is not exactly dt)."""
    steps = config.ctrl_steps
    frac = torch.arange(steps, dtype=tk.dtype) * (1.0 / max(steps - 1, 1))
    return tk[0] + (tk[-1] - tk[0]) * frac


def knot_offsets(config: CEMConfig, dtype: torch.dtype) -> torch.Tensor:
    """``linspace(0, H, K)`` written as ``i * (H / (K - 1))``: one multiply by a constant, which both twins
    round the same way (XLA rewrites a division by a constant into a multiply by its reciprocal, so a
    division here would differ from PyTorch's by an ulp, enough to move a zero-order knot lookup)."""
    i = torch.arange(config.num_knots, dtype=dtype)
    return i * (config.plan_horizon / (config.num_knots - 1))


def sample_knots(mean, std, noise, config: CEMConfig) -> torch.Tensor:
    mean, std, noise = _t(mean), _t(std), _t(noise)
    n_main = config.num_samples - config.num_explore
    main = mean + std * noise[:n_main]
    explore = mean + config.sigma_start * noise[n_main:]
    spec = config.spec
    return torch.clamp(torch.cat([main, explore], dim=0), spec.u_min, spec.u_max)


def rollout(
    x0, tk, knots, config: CEMConfig, weights: Mapping[str, Any] | None = None
) -> dict[str, torch.Tensor]:
    x0, tk, knots = _t(x0), _t(tk), _t(knots)
    w = _weights(weights)
    spec = config.spec
    controls = interp(query_times(tk, config), tk, knots, config.spline_type)  # (N, T, nu)
    x = x0[None, :].expand(knots.shape[0], -1)
    costs = []
    for t in range(controls.shape[1]):
        u = controls[:, t, :]
        x = tasks.step(config.task, x, u, spec.dt, w)
        costs.append(spec.dt * tasks.running_cost(config.task, x, u))
    costs.append(tasks.terminal_cost(config.task, x))
    return {"controls": controls, "costs": torch.stack(costs, dim=1)}


def elite_update(knots, costs, config: CEMConfig) -> dict[str, torch.Tensor]:
    total = costs.sum(dim=1)
    order = torch.argsort(total, stable=True)
    elites = knots[order[: config.num_elites]]
    mean = elites.mean(dim=0)
    std = torch.clamp(elites.std(dim=0, correction=0), min=config.sigma_min)
    return {"mean": mean, "std": std}


def cem_iteration(x0, tk, mean, std, noise, config: CEMConfig, weights=None) -> dict[str, torch.Tensor]:
    """One CEM iteration: the sampled (clipped) knots, their controls and costs, and the new mean and std."""
    knots = sample_knots(mean, std, noise, config)
    out = rollout(x0, tk, knots, config, weights)
    return {"knots": knots, **out, **elite_update(knots, out["costs"], config)}


def warm_start(time, tk, mean, config: CEMConfig) -> tuple[torch.Tensor, torch.Tensor]:
    tk, mean = _t(tk), _t(mean)
    time = torch.as_tensor(time, dtype=tk.dtype)
    new_tk = knot_offsets(config, tk.dtype) + time
    new_mean = interp(new_tk, tk, mean[None], config.spline_type)[0]
    return new_tk, new_mean


def optimize(x0, time, tk, mean, std, noise, config: CEMConfig, weights=None) -> dict[str, torch.Tensor]:
    """Warm start, then ``config.iterations`` CEM iterations with ``noise[i]`` (iterations, N, K, nu)."""
    noise = _t(noise)
    tk, mean = warm_start(time, tk, mean, config)
    std = _t(std)
    out: dict[str, torch.Tensor] = {}
    for i in range(config.iterations):
        out = cem_iteration(x0, tk, mean, std, noise[i], config, weights)
        mean, std = out["mean"], out["std"]
    return {"tk": tk, "mean": mean, "std": std, "costs": out["costs"]}
