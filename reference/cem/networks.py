"""Reference (PyTorch) networks of the CEM subsystem: the learned-dynamics MLP and the policy warm start.

Both are tanh MLPs whose parameters are named ``layers.{i}.weight`` / ``layers.{i}.bias`` (``nn.Linear``
layout; the architecture is `contracts.cem.networks`'). Weights come from a seeded initialisation, optionally a
short fit (the dynamics MLP to the analytic pendulum), and are saved as safetensors (`reference.cem.weights`
writes a task's weights directory); `implementations.cem.networks.load_weights` converts them to JAX,
checking every tensor's name and shape.

- dynamics: [sin theta, cos theta, omega, u] -> (theta_dot, omega_dot), hidden layers ``hidden``.
- policy: state (nx) -> K * nu spline knots, squashed to the control bounds (``u_max * tanh``), the seed's
  "NN -> knots" warm start (the seed's MLPRegressor 95 -> 512^3 -> 164 is a Linear/BatchNorm/ReLU stack;
  ours is smaller and has no BatchNorm, which folds into the Linear layers in eval mode anyway).
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from contracts.cem.config import TASKS, CEMConfig
from contracts.cem.networks import dynamics_sizes, policy_sizes
from contracts.common import replace
from reference.cem import tasks

__all__ = [
    "MLP",
    "dynamics_sizes",
    "fit_dynamics",
    "init_mlp",
    "policy_knots",
    "policy_sizes",
    "save",
    "state_dict",
]


class MLP(nn.Module):
    def __init__(self, sizes: Sequence[int]) -> None:
        super().__init__()
        self.layers = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(sizes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return tasks.mlp(dict(self.named_parameters()), x)


def init_mlp(sizes: Sequence[int], seed: int) -> MLP:
    """A float32 MLP from a seeded initialisation (PyTorch's default nn.Linear init)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return MLP(sizes).float()


def fit_dynamics(model: MLP, *, seconds: float = 3.0, seed: int = 0, batch: int = 512) -> float:
    """Fit the dynamics MLP to the analytic pendulum's state derivative (Adam, at most ``seconds``).
    Returns the final mean squared error."""
    gen = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    dt = TASKS["pendulum"].dt
    loss = torch.tensor(float("nan"))
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        th = (torch.rand(batch, generator=gen) * 2 - 1) * torch.pi * 1.5
        om = (torch.rand(batch, generator=gen) * 2 - 1) * 8.0
        u = (torch.rand(batch, generator=gen) * 2 - 1) * 5.0
        x = torch.stack([th, om], dim=1)
        target = (tasks.step("pendulum", x, u[:, None], dt) - x) / dt
        pred = model(torch.stack([torch.sin(th), torch.cos(th), om, u], dim=1))
        loss = ((pred - target) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return float(loss.detach())


def state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().contiguous() for k, v in model.state_dict().items()}


def save(model: nn.Module, path: str | Path) -> Path:
    """Write the model's tensors as safetensors (atomically: a temporary file, then a rename)."""
    from safetensors.torch import save_file

    path = Path(path)
    tmp = path.with_suffix(path.suffix + ".tmp")
    save_file(state_dict(model), str(tmp))
    return replace(tmp, path)


def policy_knots(weights: Mapping[str, torch.Tensor], x, config: CEMConfig) -> torch.Tensor:
    """The policy's spline knots for state ``x`` (nx,): (K, nu) within the control bounds."""
    x = torch.as_tensor(x)
    spec = config.spec
    out = tasks.mlp({k: torch.as_tensor(v) for k, v in weights.items()}, x[None, :])[0]
    return (spec.u_max * torch.tanh(out)).reshape(config.num_knots, spec.nu)
