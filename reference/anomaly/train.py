"""A short deterministic training run of the reference detector (`reference.anomaly.model`) on the generated
data set (`reference.anomaly.data`), so that checkpoints and exported artifacts carry real weights.

Objective: denoising. The training windows come from generated series with anomalies injected densely
(``train_rate`` events per step, spikes, level shifts and flat-lines alike), and ``O1 = dec1(enc(W)) + W`` is
trained under a mean squared error to reproduce the *clean* window: dec1 learns to output minus the anomaly,
and zero on normal stretches, so ``score = mean |O1 - W|`` is the size of the correction the model makes to a
window: about zero on normal windows, about the anomaly's size on anomalous ones. The model itself is the one
the port and the exports reproduce; only the objective, the data and the optimiser live here.

Why this objective (the alternatives fail): the plain reconstruction loss of the original has the trivial
optimum dec1 = 0 with a residual O1, so the score carries no signal; SmoothL1 denoising at the evaluation's
anomaly rate (about 1 element in 128 anomalous) sits on that same trivial optimum, and a hinge on the score of
clean against corrupted windows collapses. What makes the denoising target learnable in seconds is density
(about a fifth of the training elements are anomalous, so the gradient sees many anomalies per batch),
anomalies injected into long series before windowing (so they sit anywhere in a window, partly cut, as in the
evaluation), many series (so "normal" is not one set of periods), gradient clipping (the first steps leave the
trivial optimum reliably for every initialisation seed tried) and a warm-up plus cosine learning-rate schedule.

The evaluation reports the ROC AUC of the score, with window-level labels (a window is anomalous when it holds
an anomalous point), pooled over held-out series that no training window comes from.
"""

from __future__ import annotations

import dataclasses
import math
import time
from pathlib import Path

import numpy as np
import torch

from contracts.anomaly.config import SMALL, AnomalyConfig
from reference.anomaly import data
from reference.anomaly.checkpoint import save_checkpoint
from reference.anomaly.model import AnomalyDetector, build, detect

EVAL_SEEDS = (100, 101, 102)
"""Seeds of the held-out evaluation series (training series use seeds from 1000 on)."""


@dataclasses.dataclass(frozen=True)
class TrainResult:
    model: AnomalyDetector
    losses: tuple[float, ...]
    auc: float  # held-out ROC AUC of the trained score
    auc_untrained: float  # the same, before training
    seconds: float  # wall time of the training loop (the two evaluations excluded)


def training_windows(
    cfg: AnomalyConfig, *, n_series: int, T: int, rate: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Windows (stride 1) of ``n_series`` generated series with ``rate * T`` injected anomalies each, and the
    same windows without them (the denoising targets)."""
    corrupted, clean = [], []
    for k in range(n_series):
        c = data.normal_series(T, cfg.D, seed=seed * 100_000 + 1000 + 7 * k)
        v, _ = data.inject(c, max(1, int(rate * T)), np.random.default_rng(seed * 100_000 + 5000 + k))
        corrupted.append(data.windows(v, cfg.L))
        clean.append(data.windows(c, cfg.L))
    return np.concatenate(corrupted), np.concatenate(clean)


def evaluate(
    model: AnomalyDetector, *, T: int = 800, seeds: tuple[int, ...] = EVAL_SEEDS, stride: int = 2
) -> float:
    """ROC AUC of the score on held-out series with injected anomalies (anomaly rate 0.02), windows pooled."""
    cfg = model.cfg
    scores, labels = [], []
    for seed in seeds:
        s = data.make_series(T, cfg.D, anomaly_rate=0.02, seed=seed)
        _, score = detect(model, data.windows(s.values, cfg.L, stride))
        scores.append(score.numpy())
        labels.append(data.window_labels(s.labels, cfg.L, stride))
    return data.roc_auc(np.concatenate(scores), np.concatenate(labels))


def train(
    cfg: AnomalyConfig = SMALL,
    *,
    steps: int = 500,
    batch: int = 32,
    lr: float = 4e-3,
    warmup: int = 20,
    clip: float = 0.5,
    n_series: int = 20,
    series_length: int = 1000,
    train_rate: float = 0.3,
    seed: int = 0,
) -> TrainResult:
    """``steps`` Adam steps of the denoising objective; deterministic for a seed (one CPU thread, deterministic
    algorithms, a private NumPy generator, torch's global generator restored afterwards)."""
    model = build(cfg, seed=seed)
    auc0 = evaluate(model)
    W_all, clean_all = training_windows(cfg, n_series=n_series, T=series_length, rate=train_rate, seed=seed)
    rng = np.random.default_rng(seed + 20)
    gen_state = torch.random.get_rng_state()
    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    torch.manual_seed(seed)  # dropout, where the config has any
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / max(1, warmup)) * 0.5 * (1.0 + math.cos(math.pi * s / steps))
    )
    losses = []
    model.train()
    start = time.perf_counter()
    try:
        for _ in range(steps):
            idx = rng.integers(0, len(W_all), batch)
            W, target = torch.from_numpy(W_all[idx]), torch.from_numpy(clean_all[idx])
            O1, _ = model(W)
            loss = torch.nn.functional.mse_loss(O1, target)
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), clip)
            opt.step()
            sched.step()
            losses.append(loss.item())
    finally:
        seconds = time.perf_counter() - start
        torch.random.set_rng_state(gen_state)
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        model.eval()
    return TrainResult(model, tuple(losses), evaluate(model), auc0, seconds)


def train_checkpoint(directory: str | Path, cfg: AnomalyConfig = SMALL, **kwargs: object) -> TrainResult:
    """Train and save the checkpoint (safetensors + config.json) into ``directory``."""
    result = train(cfg, **kwargs)  # type: ignore[arg-type]
    save_checkpoint(result.model, directory)
    return result
