"""The CEM planner's configuration contract: plain data and input checks shared by `reference.cem` (PyTorch)
and `implementations.cem` (JAX). NumPy and the standard library only.

`CEMConfig` holds hydrax's CEM hyper-parameters (``hydrax/algs/cem.py``) plus the task name; `TASKS`
describes each task's state and control sizes, control bounds and integration step. `CEMInputError` is
the one exception type for bad input on both sides; it is raised at the public API, outside jitted code.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

SPLINE_TYPES = ("zero", "linear", "cubic")


class CEMInputError(ValueError):
    """Bad input to the CEM planner: wrong shape or dtype, non-finite values, inconsistent configuration."""


@dataclasses.dataclass(frozen=True)
class TaskSpec:
    name: str
    nx: int  # state size
    nu: int  # control size
    u_min: float
    u_max: float
    dt: float  # rollout (and plant) integration step
    x0: tuple[float, ...]  # the default initial state (the swing-up starts hanging down)
    doc: str


TASKS: dict[str, TaskSpec] = {
    "pendulum": TaskSpec(
        "pendulum",
        2,
        1,
        -5.0,
        5.0,
        0.02,
        (0.0, 0.0),
        "pendulum swing-up, state (theta, omega), theta = 0 hanging, pi upright; torque limited to 5 N m "
        "(below m g l = 9.81 N m, so it must pump; the default planner swings it up in about 4 s)",
    ),
    "cartpole": TaskSpec(
        "cartpole",
        4,
        1,
        -10.0,
        10.0,
        0.02,
        (0.0, math.pi, 0.0, 0.0),
        "cart-pole swing-up (Barto et al. dynamics), state (x, theta, x_dot, theta_dot), theta = 0 upright",
    ),
    "learned": TaskSpec(
        "learned",
        2,
        1,
        -5.0,
        5.0,
        0.02,
        (0.0, 0.0),
        "pendulum swing-up whose dynamics is an MLP (PyTorch, safetensors) fitted to the analytic pendulum",
    ),
    "pointmass": TaskSpec(
        "pointmass",
        4,
        2,
        -2.0,
        2.0,
        0.02,
        (1.0, -0.5, 0.0, 0.0),
        "planar point mass driven to the origin by two forces, state (x, y, x_dot, y_dot), control (f_x, f_y); "
        "the drag and the control costs differ per axis, so the two inputs are not interchangeable",
    ),
}


@dataclasses.dataclass(frozen=True)
class CEMConfig:
    """hydrax CEM parameters. Hashable: the JAX side uses it as a static argument (one compile per config)."""

    task: str = "pendulum"
    num_samples: int = 500
    num_elites: int = 20
    sigma_start: float = 0.3
    sigma_min: float = 0.05
    explore_fraction: float = 0.3
    iterations: int = 1
    plan_horizon: float = 0.5
    num_knots: int = 4
    spline_type: str = "zero"

    def __post_init__(self) -> None:
        problems = []
        if self.task not in TASKS:
            problems.append(f"unknown task {self.task!r} (tasks: {', '.join(TASKS)})")
        if self.spline_type not in SPLINE_TYPES:
            problems.append(f"unknown spline_type {self.spline_type!r} (one of {', '.join(SPLINE_TYPES)})")
        if not (isinstance(self.num_samples, int) and self.num_samples >= 2):
            problems.append(f"num_samples must be an int >= 2; got {self.num_samples!r}")
        elif not (isinstance(self.num_elites, int) and 1 <= self.num_elites <= self.num_samples):
            problems.append(
                f"num_elites must be an int in [1, num_samples={self.num_samples}]; got {self.num_elites!r}"
            )
        if not (0.0 <= self.explore_fraction < 1.0):
            problems.append(f"explore_fraction must be in [0, 1); got {self.explore_fraction!r}")
        if not (self.sigma_start > 0 and self.sigma_min >= 0):
            problems.append(
                f"sigma_start must be > 0 and sigma_min >= 0; got {self.sigma_start}, {self.sigma_min}"
            )
        if not (isinstance(self.iterations, int) and self.iterations >= 1):
            problems.append(f"iterations must be an int >= 1; got {self.iterations!r}")
        min_knots = 4 if self.spline_type == "cubic" else 2
        if not (isinstance(self.num_knots, int) and self.num_knots >= min_knots):
            problems.append(
                f"num_knots must be an int >= {min_knots} for a {self.spline_type} spline; got {self.num_knots!r}"
            )
        if not (self.plan_horizon > 0 and math.isfinite(self.plan_horizon)):
            problems.append(f"plan_horizon must be a positive finite number; got {self.plan_horizon!r}")
        elif self.task in TASKS and round(self.plan_horizon / TASKS[self.task].dt) < 1:
            problems.append(
                f"plan_horizon {self.plan_horizon} is shorter than one step of {TASKS[self.task].dt}"
            )
        if problems:
            raise CEMInputError("invalid CEMConfig: " + "; ".join(problems))

    @property
    def spec(self) -> TaskSpec:
        return TASKS[self.task]

    @property
    def ctrl_steps(self) -> int:
        """hydrax: ``round(plan_horizon / dt)`` rollout steps."""
        return round(self.plan_horizon / self.spec.dt)

    @property
    def num_explore(self) -> int:
        """hydrax: ``int(num_samples * explore_fraction)`` samples always drawn with ``sigma_start``."""
        return int(self.num_samples * self.explore_fraction)

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> CEMConfig:
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = set(d) - fields
        if unknown:
            raise CEMInputError(f"unknown CEMConfig fields {sorted(unknown)}")
        return cls(**d)


# The default planner of each task (the pendulum one is the seed's hydrax configuration).
DEFAULT_CONFIGS: dict[str, CEMConfig] = {
    # the seed's hydrax configuration (500 samples, 20 elites, 4 zero-order knots over 0.5 s, 1 iteration,
    # explore 0.3), with the sampling widths scaled to this task's torque range
    "pendulum": CEMConfig(task="pendulum", sigma_start=2.0, sigma_min=0.1),
    "cartpole": CEMConfig(
        task="cartpole",
        sigma_start=3.0,
        sigma_min=0.3,
        num_knots=5,
        spline_type="linear",
        plan_horizon=1.0,
        iterations=2,
    ),
    "learned": CEMConfig(task="learned", num_samples=256, num_elites=16, sigma_start=2.0, sigma_min=0.1),
    "pointmass": CEMConfig(
        task="pointmass", num_samples=256, num_elites=16, sigma_start=1.0, spline_type="linear"
    ),
}


def is_tracer(x: Any) -> bool:
    """A JAX tracer (the public JAX API traced by jit or jax.export): its values are not known."""
    return any(c.__name__.endswith("Tracer") for c in type(x).__mro__)


def check_array(name: str, x: Any, shape: tuple[int, ...], *, finite: bool = True) -> np.ndarray | None:
    """A float array of exactly ``shape``, finite when asked; otherwise a `CEMInputError` naming ``name``.

    A JAX tracer is checked for shape and dtype only (its values exist only when the compiled function
    runs) and ``None`` is returned."""
    if is_tracer(x):
        if np.dtype(x.dtype).kind not in "fiu":
            raise CEMInputError(f"{name} must be a real array; got dtype {x.dtype}")
        if tuple(x.shape) != tuple(shape):
            raise CEMInputError(f"{name} must have shape {tuple(shape)}; got {tuple(x.shape)}")
        return None
    a = x.detach().cpu().numpy() if type(x).__module__.startswith("torch") else np.asarray(x)
    if a.dtype.kind not in "fiu":
        raise CEMInputError(f"{name} must be a real array; got dtype {a.dtype}")
    if a.shape != tuple(shape):
        raise CEMInputError(f"{name} must have shape {tuple(shape)}; got {a.shape}")
    if finite and a.dtype.kind == "f" and not np.isfinite(a).all():
        bad = tuple(int(i) for i in np.argwhere(~np.isfinite(a))[0])
        raise CEMInputError(f"{name} must be finite; got {a[bad] if a.ndim else a} at index {bad}")
    return a
