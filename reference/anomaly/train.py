"""A short deterministic training run of the reference detector (`reference.anomaly.model`) on the generated
data set (`reference.anomaly.data`), so that checkpoints and exported artifacts carry real weights.

Objective: a denoising reconstruction. Clean windows are corrupted with random anomalies (a different random
stream from the evaluation's) and ``O1 = dec1(enc(W)) + W`` is trained to reproduce the clean window under a
SmoothL1 loss; so ``score = mean |O1 - W|`` is the size of the correction the model makes to a window, small
on normal windows and large on anomalous ones. (With the plain reconstruction loss of the original, a residual
O1 has the trivial optimum dec1 = 0 and the score carries no signal.) The evaluation reports the ROC AUC of
the score on a held-out series with injected anomalies.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import torch

from reference.anomaly import data
from reference.anomaly.checkpoint import save_checkpoint
from reference.anomaly.config import SMALL, AnomalyConfig
from reference.anomaly.model import AnomalyDetector, build, detect


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model: AnomalyDetector
    losses: tuple[float, ...]
    auc: float
    auc_untrained: float


def _corrupt(batch: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Half of the windows (alternating, so both classes are always present) get 1-2 injected anomalies."""
    out = batch.copy()
    flags = np.zeros(len(out), bool)
    flags[::2] = True
    for i in np.flatnonzero(flags):
        out[i], _ = data.inject(out[i], int(rng.integers(1, 3)), rng)
    return out, flags


def evaluate(model: AnomalyDetector, *, T: int = 800, seed: int = 100, stride: int = 2) -> float:
    """ROC AUC of the score on a held-out series with injected anomalies."""
    cfg = model.cfg
    s = data.make_series(T, cfg.D, anomaly_rate=0.02, seed=seed)
    W = data.windows(s.values, cfg.L, stride)
    y = data.window_labels(s.labels, cfg.L, stride)
    _, score = detect(model, W)
    return data.roc_auc(score.numpy(), y)


def train(
    cfg: AnomalyConfig = SMALL,
    *,
    steps: int = 30,
    batch: int = 32,
    lr: float = 3e-3,
    margin: float = 0.2,
    seed: int = 0,
) -> TrainResult:
    """Train ``steps`` Adam steps on clean windows of a generated series; deterministic for a seed."""
    model = build(cfg, seed=seed)
    auc0 = evaluate(model)
    series = data.normal_series(4000, cfg.D, seed=seed + 10)
    clean = data.windows(series, cfg.L, stride=1)
    rng = np.random.default_rng(seed + 20)
    gen_state = torch.random.get_rng_state()
    torch.manual_seed(seed)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    losses = []
    model.train()
    try:
        for _ in range(steps):
            idx = rng.integers(0, len(clean), batch)
            W, is_anomalous = _corrupt(clean[idx], rng)
            _, score = model(torch.from_numpy(W))
            y = torch.from_numpy(is_anomalous)
            # normal windows: score -> 0; corrupted windows: score above the margin (hinge)
            loss = score[~y].mean() + torch.relu(margin - score[y]).mean()
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
    finally:
        torch.random.set_rng_state(gen_state)
        model.eval()
    return TrainResult(model, tuple(losses), evaluate(model), auc0)


def train_checkpoint(directory: str | Path, cfg: AnomalyConfig = SMALL, **kwargs: object) -> TrainResult:
    """Train and save the checkpoint (safetensors + config.json) into ``directory``."""
    result = train(cfg, **kwargs)  # type: ignore[arg-type]
    save_checkpoint(result.model, directory)
    return result
