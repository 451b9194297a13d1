"""Physical constants of the CEM tasks, shared by the PyTorch reference (`reference.cem.tasks`) and its JAX
twin (`implementations.cem.tasks`): gravity, the pendulum's and cart-pole's masses, lengths and damping, and
the point mass's mass and per-axis drag. The tasks' sizes, control bounds and step are
`contracts.cem.config.TASKS`."""

from __future__ import annotations

G = 9.81  # m s^-2
PENDULUM = {"m": 1.0, "length": 1.0, "b": 0.1}  # mass (kg), length (m), damping (N m s)
CARTPOLE = {"mc": 1.0, "mp": 0.1, "length": 0.5}  # cart mass, pole mass (kg), pole half-length (m)
POINTMASS = {"m": 2.0, "bx": 0.4, "by": 1.2}  # mass (kg), linear drag along x and y (s^-1)

__all__ = ["CARTPOLE", "PENDULUM", "POINTMASS", "G"]
