"""Reference (PyTorch) of the CEM tasks: dynamics ``step``, ``running_cost`` and ``terminal_cost``, batched
over samples (x: (N, nx), u: (N, nu)).

- pendulum: mass 1 kg, length 1 m, g = 9.81, damping 0.1; semi-implicit Euler. theta = 0 hangs, pi is upright.
- cartpole: Barto, Sutton & Anderson (1983) dynamics (cart 1 kg, pole 0.1 kg, half-length 0.5 m),
  semi-implicit Euler; theta = 0 upright.
- pointmass: mass 2 kg, drag 0.4 / 1.2 s^-1 along x / y, forces u = (f_x, f_y); semi-implicit Euler.
- learned: x' = x + dt * MLP([sin theta, cos theta, omega, u]) with the MLP's weights given by name
  (``layers.{i}.weight`` (out, in) and ``layers.{i}.bias``, PyTorch's ``nn.Linear`` layout), tanh between
  layers; pendulum costs.

Costs: pendulum running 2 (1 + cos theta) + 0.01 omega^2 + 0.001 u^2, terminal 10 (1 + cos theta) + 0.1 omega^2;
cart-pole running 0.5 x^2 + 2 (1 - cos theta) + 0.01 (x_dot^2 + theta_dot^2) + 1e-4 u^2, terminal x^2 +
10 (1 - cos theta) + 0.1 (x_dot^2 + theta_dot^2); point mass running x^2 + y^2 + 0.1 (x_dot^2 + y_dot^2) +
0.01 f_x^2 + 0.02 f_y^2, terminal 10 (x^2 + y^2) + x_dot^2 + y_dot^2. ``1 +- cos theta`` is computed as
``2 cos^2(theta / 2)`` / ``2 sin^2(theta / 2)``: the same function without the cancellation at the goal, where
in float32 it kept only a few bits and made near-goal costs differ by ~1e-6 relative between two correct implementations (measured:
it took the learned-task iteration from 1.1e-6 to 3e-7 rel MAE).

hydrax's rollout order: x_{t+1} = step(x_t, u_t), then cost_t = dt * running_cost(x_{t+1}, u_t); the
terminal cost of x_H is appended, giving (N, H + 1).
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from contracts.cem.tasks import CARTPOLE, PENDULUM, POINTMASS, G


def mlp(weights: Mapping[str, torch.Tensor], x: torch.Tensor) -> torch.Tensor:
    """tanh MLP over ``layers.{i}.weight`` / ``layers.{i}.bias`` (nn.Linear layout: y = x W^T + b)."""
    n = len([k for k in weights if k.endswith(".weight")])
    for i in range(n):
        x = x @ weights[f"layers.{i}.weight"].T + weights[f"layers.{i}.bias"]
        if i < n - 1:
            x = torch.tanh(x)
    return x


def _pendulum_accel(x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    m, length, b = PENDULUM["m"], PENDULUM["length"], PENDULUM["b"]
    return (u[:, 0] - b * x[:, 1] - m * G * length * torch.sin(x[:, 0])) * (1.0 / (m * length * length))


def step(task: str, x: torch.Tensor, u: torch.Tensor, dt: float, weights=None) -> torch.Tensor:
    if task == "pendulum":
        omega = x[:, 1] + dt * _pendulum_accel(x, u)
        return torch.stack([x[:, 0] + dt * omega, omega], dim=1)
    if task == "cartpole":
        mc, mp, length = CARTPOLE["mc"], CARTPOLE["mp"], CARTPOLE["length"]
        th, xd, thd = x[:, 1], x[:, 2], x[:, 3]
        sin, cos = torch.sin(th), torch.cos(th)
        inv_total = 1.0 / (mc + mp)  # multiply by constants: XLA turns x / c into x * (1 / c)
        temp = (u[:, 0] + mp * length * thd * thd * sin) * inv_total
        thdd = (G * sin - cos * temp) / (length * (4.0 / 3.0 - mp * cos * cos * inv_total))
        xdd = temp - mp * length * thdd * cos * inv_total
        xd1 = xd + dt * xdd
        thd1 = thd + dt * thdd
        return torch.stack([x[:, 0] + dt * xd1, th + dt * thd1, xd1, thd1], dim=1)
    if task == "pointmass":
        inv_m, bx, by = 1.0 / POINTMASS["m"], POINTMASS["bx"], POINTMASS["by"]
        vx = x[:, 2] + dt * (u[:, 0] * inv_m - bx * x[:, 2])
        vy = x[:, 3] + dt * (u[:, 1] * inv_m - by * x[:, 3])
        return torch.stack([x[:, 0] + dt * vx, x[:, 1] + dt * vy, vx, vy], dim=1)
    if task == "learned":
        feats = torch.stack([torch.sin(x[:, 0]), torch.cos(x[:, 0]), x[:, 1], u[:, 0]], dim=1)
        return x + dt * mlp(weights, feats)
    raise ValueError(f"unknown task {task!r}")


def _half_cos_sq(theta):
    """cos(theta / 2)^2 = (1 + cos theta) / 2, written without the cancellation of 1 + cos theta near the
    upright theta = pi (there 1 + cos theta loses all but a few bits in float32)."""
    c = torch.cos(0.5 * theta)
    return c * c


def _half_sin_sq(theta):
    """sin(theta / 2)^2 = (1 - cos theta) / 2, without the cancellation near theta = 0."""
    s = torch.sin(0.5 * theta)
    return s * s


def running_cost(task: str, x: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
    if task in ("pendulum", "learned"):
        return 4.0 * _half_cos_sq(x[:, 0]) + 0.01 * x[:, 1] * x[:, 1] + 0.001 * u[:, 0] * u[:, 0]
    if task == "cartpole":
        return (
            0.5 * x[:, 0] * x[:, 0]
            + 4.0 * _half_sin_sq(x[:, 1])
            + 0.01 * x[:, 2] * x[:, 2]
            + 0.01 * x[:, 3] * x[:, 3]
            + 1e-4 * u[:, 0] * u[:, 0]
        )
    if task == "pointmass":
        return (
            x[:, 0] * x[:, 0]
            + x[:, 1] * x[:, 1]
            + 0.1 * (x[:, 2] * x[:, 2] + x[:, 3] * x[:, 3])
            + 0.01 * u[:, 0] * u[:, 0]
            + 0.02 * u[:, 1] * u[:, 1]
        )
    raise ValueError(f"unknown task {task!r}")


def terminal_cost(task: str, x: torch.Tensor) -> torch.Tensor:
    if task in ("pendulum", "learned"):
        return 20.0 * _half_cos_sq(x[:, 0]) + 0.1 * x[:, 1] * x[:, 1]
    if task == "cartpole":
        return (
            x[:, 0] * x[:, 0] + 20.0 * _half_sin_sq(x[:, 1]) + 0.1 * (x[:, 2] * x[:, 2] + x[:, 3] * x[:, 3])
        )
    if task == "pointmass":
        return 10.0 * (x[:, 0] * x[:, 0] + x[:, 1] * x[:, 1]) + x[:, 2] * x[:, 2] + x[:, 3] * x[:, 3]
    raise ValueError(f"unknown task {task!r}")
