"""A generated multivariate time series with injected anomalies: the training and evaluation data of the
anomaly detector (reference side; plain NumPy, deterministic for a seed).

Each variate is a sum of two sinusoids (its own periods and phases, shared components that correlate the
variates) plus white noise, of unit scale. Anomalies are point spikes, short level shifts and short
flat-lines, injected into random variates at random times; a window is anomalous when it holds any anomalous
point.
"""

from __future__ import annotations

import dataclasses

import numpy as np


@dataclasses.dataclass(frozen=True)
class Series:
    values: np.ndarray  # (T, D) float32, with anomalies
    clean: np.ndarray  # (T, D) float32, the same series without them
    labels: np.ndarray  # (T,) bool, True where any variate is anomalous


def normal_series(T: int, D: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    p1 = rng.uniform(8.0, 40.0, D)
    p2 = rng.uniform(3.0, 12.0, D)
    shared = np.sin(2 * np.pi * t / 25.0 + rng.uniform(0, 2 * np.pi))
    mix = rng.uniform(-0.5, 0.5, D)
    x = (
        np.sin(2 * np.pi * t / p1 + rng.uniform(0, 2 * np.pi, D))
        + 0.4 * np.sin(2 * np.pi * t / p2 + rng.uniform(0, 2 * np.pi, D))
        + mix * shared
        + 0.05 * rng.standard_normal((T, D))
    )
    return x.astype(np.float32)


def inject(
    x: np.ndarray, n_events: int, rng: np.random.Generator, kinds: tuple[int, ...] = (0, 1, 2)
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with ``n_events`` anomalies (spikes, level shifts, flat-lines) and the per-step labels."""
    x = x.copy()
    T, D = x.shape
    labels = np.zeros(T, bool)
    for _ in range(n_events):
        kind = rng.integers(0, len(kinds))
        kind = kinds[kind]
        d = rng.integers(0, D)
        t0 = int(rng.integers(0, T - 6))
        if kind == 0:  # spike
            x[t0, d] += rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 4.0)
            labels[t0] = True
        elif kind == 1:  # level shift over a few steps
            n = int(rng.integers(3, 6))
            x[t0 : t0 + n, d] += rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0)
            labels[t0 : t0 + n] = True
        else:  # flat-line (a stuck sensor)
            n = int(rng.integers(4, 7))
            x[t0 : t0 + n, d] = x[t0, d]
            labels[t0 : t0 + n] = True
    return x, labels


def make_series(T: int, D: int, *, anomaly_rate: float = 0.01, seed: int = 0) -> Series:
    clean = normal_series(T, D, seed)
    rng = np.random.default_rng(seed + 1)
    values, labels = inject(clean, max(1, int(anomaly_rate * T)), rng)
    return Series(values.astype(np.float32), clean, labels)


def windows(x: np.ndarray, L: int, stride: int = 1) -> np.ndarray:
    """Sliding windows (N, L, D) of a (T, D) series."""
    T = x.shape[0]
    starts = np.arange(0, T - L + 1, stride)
    return np.stack([x[s : s + L] for s in starts]).astype(np.float32)


def window_labels(labels: np.ndarray, L: int, stride: int = 1) -> np.ndarray:
    starts = np.arange(0, labels.shape[0] - L + 1, stride)
    return np.array([labels[s : s + L].any() for s in starts])


def roc_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (Mann-Whitney U with average ranks for ties)."""
    scores = np.asarray(scores, np.float64)
    labels = np.asarray(labels, bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        raise ValueError(f"ROC AUC needs both classes; got {n_pos} positive and {n_neg} negative windows")
    order = np.argsort(scores, kind="mergesort")
    ranks = np.empty(len(scores))
    sorted_scores = scores[order]
    i = 0
    while i < len(scores):
        j = i
        while j + 1 < len(scores) and sorted_scores[j + 1] == sorted_scores[i]:
            j += 1
        ranks[order[i : j + 1]] = (i + j) / 2.0 + 1.0
        i = j + 1
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))
