"""JAX implementation of the CEM tasks; twin of `reference.cem.tasks` (same dynamics, costs and rollout
order), written per sample (x: (nx,), u: (nu,)) and vmapped over samples by the planner."""

from __future__ import annotations

from collections.abc import Mapping

import jax
import jax.numpy as jnp

from contracts.cem.tasks import CARTPOLE, PENDULUM, POINTMASS, G


def mlp(weights: Mapping[str, jnp.ndarray], x):
    """tanh MLP over ``layers.{i}.weight`` (out, in) / ``layers.{i}.bias``: y = x W^T + b.

    The products ask for full float32 precision themselves (``Precision.HIGHEST``), so a deployed artifact does
    not depend on the caller pinning ``jax_default_matmul_precision`` (a GPU would otherwise use TF32)."""
    n = len([k for k in weights if k.endswith(".weight")])
    for i in range(n):
        w = weights[f"layers.{i}.weight"]
        x = jnp.matmul(x, w.T, precision=jax.lax.Precision.HIGHEST) + weights[f"layers.{i}.bias"]
        if i < n - 1:
            x = jnp.tanh(x)
    return x


def step(task: str, x, u, dt: float, weights=None):
    if task == "pendulum":
        m, length, b = PENDULUM["m"], PENDULUM["length"], PENDULUM["b"]
        acc = (u[0] - b * x[1] - m * G * length * jnp.sin(x[0])) * (1.0 / (m * length * length))
        omega = x[1] + dt * acc
        return jnp.stack([x[0] + dt * omega, omega])
    if task == "cartpole":
        mc, mp, length = CARTPOLE["mc"], CARTPOLE["mp"], CARTPOLE["length"]
        th, xd, thd = x[1], x[2], x[3]
        sin, cos = jnp.sin(th), jnp.cos(th)
        inv_total = 1.0 / (mc + mp)  # multiply by constants: XLA turns x / c into x * (1 / c)
        temp = (u[0] + mp * length * thd * thd * sin) * inv_total
        thdd = (G * sin - cos * temp) / (length * (4.0 / 3.0 - mp * cos * cos * inv_total))
        xdd = temp - mp * length * thdd * cos * inv_total
        xd1 = xd + dt * xdd
        thd1 = thd + dt * thdd
        return jnp.stack([x[0] + dt * xd1, th + dt * thd1, xd1, thd1])
    if task == "pointmass":
        inv_m, bx, by = 1.0 / POINTMASS["m"], POINTMASS["bx"], POINTMASS["by"]
        vx = x[2] + dt * (u[0] * inv_m - bx * x[2])
        vy = x[3] + dt * (u[1] * inv_m - by * x[3])
        return jnp.stack([x[0] + dt * vx, x[1] + dt * vy, vx, vy])
    if task == "learned":
        feats = jnp.stack([jnp.sin(x[0]), jnp.cos(x[0]), x[1], u[0]])
        return x + dt * mlp(weights, feats)
    raise ValueError(f"unknown task {task!r}")


def _half_cos_sq(theta):
    """cos(theta / 2)^2 = (1 + cos theta) / 2, written without the cancellation of 1 + cos theta near the
    upright theta = pi (there 1 + cos theta loses all but a few bits in float32)."""
    c = jnp.cos(0.5 * theta)
    return c * c


def _half_sin_sq(theta):
    """sin(theta / 2)^2 = (1 - cos theta) / 2, without the cancellation near theta = 0."""
    s = jnp.sin(0.5 * theta)
    return s * s


def running_cost(task: str, x, u):
    if task in ("pendulum", "learned"):
        return 4.0 * _half_cos_sq(x[0]) + 0.01 * x[1] * x[1] + 0.001 * u[0] * u[0]
    if task == "cartpole":
        return (
            0.5 * x[0] * x[0]
            + 4.0 * _half_sin_sq(x[1])
            + 0.01 * x[2] * x[2]
            + 0.01 * x[3] * x[3]
            + 1e-4 * u[0] * u[0]
        )
    if task == "pointmass":
        return (
            x[0] * x[0]
            + x[1] * x[1]
            + 0.1 * (x[2] * x[2] + x[3] * x[3])
            + 0.01 * u[0] * u[0]
            + 0.02 * u[1] * u[1]
        )
    raise ValueError(f"unknown task {task!r}")


def terminal_cost(task: str, x):
    if task in ("pendulum", "learned"):
        return 20.0 * _half_cos_sq(x[0]) + 0.1 * x[1] * x[1]
    if task == "cartpole":
        return x[0] * x[0] + 20.0 * _half_sin_sq(x[1]) + 0.1 * (x[2] * x[2] + x[3] * x[3])
    if task == "pointmass":
        return 10.0 * (x[0] * x[0] + x[1] * x[1]) + x[2] * x[2] + x[3] * x[3]
    raise ValueError(f"unknown task {task!r}")
