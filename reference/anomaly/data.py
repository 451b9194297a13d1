"""A generated multivariate time series with injected anomalies: the training and evaluation data of the
anomaly detector (reference side; plain NumPy, deterministic for a seed).

Each variate is a sum of two sinusoids (its own periods and phases; the slower one with a period of 8-20
steps, so that every 16-step window spans a good part of a cycle and has a real spread), a shared component
that correlates the variates, and white noise; unit scale. Anomalies are point spikes, short level shifts and
short flat-lines (a stuck sensor), injected into random variates at random times. The detector normalises each
variate over its window, so an anomaly is sized against the variate's spread: a flat-line is placed where it
leaves the signal's path (its mean deviation at least one standard deviation of the variate), and a point is
labelled anomalous where an injection moved some variate by at least a quarter of that variate's standard
deviation (the first step of a flat-line, which keeps its value, is not). A window is anomalous when it holds
an anomalous point.
"""

from __future__ import annotations

import dataclasses

import numpy as np

LABEL_FRACTION = 0.25
"""A step is anomalous where an injection moved a variate by this fraction of its standard deviation."""


@dataclasses.dataclass(frozen=True)
class Series:
    values: np.ndarray  # (T, D) float32, with anomalies
    clean: np.ndarray  # (T, D) float32, the same series without them
    labels: np.ndarray  # (T,) bool, True where an injection moved some variate (see `inject`)


def normal_series(T: int, D: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(T)[:, None]
    p1 = rng.uniform(8.0, 20.0, D)
    p2 = rng.uniform(6.0, 16.0, D)
    shared = np.sin(2 * np.pi * t / 25.0 + rng.uniform(0, 2 * np.pi))
    mix = rng.uniform(-0.5, 0.5, D)
    x = (
        np.sin(2 * np.pi * t / p1 + rng.uniform(0, 2 * np.pi, D))
        + 0.25 * np.sin(2 * np.pi * t / p2 + rng.uniform(0, 2 * np.pi, D))
        + mix * shared
        + 0.05 * rng.standard_normal((T, D))
    )
    return x.astype(np.float32)


def inject(
    x: np.ndarray, n_events: int, rng: np.random.Generator, kinds: tuple[int, ...] = (0, 1, 2)
) -> tuple[np.ndarray, np.ndarray]:
    """``x`` with ``n_events`` anomalies (spikes, level shifts, flat-lines) and the per-step labels.

    Kinds: 0 a spike of 2-4, 1 a level shift of 1.5-3 over 3-5 steps, 2 a flat-line of 5-8 steps (re-placed, up
    to 20 draws, until its mean deviation from the signal is at least the variate's standard deviation). A step
    is labelled where some variate moved by at least ``LABEL_FRACTION`` of its standard deviation in ``x``.
    """
    x0 = x
    x = x.copy()
    T, D = x.shape
    for _ in range(n_events):
        kind = rng.integers(0, len(kinds))
        kind = kinds[kind]
        d = rng.integers(0, D)
        t0 = int(rng.integers(0, T - 12))
        if kind == 0:  # spike
            x[t0, d] += rng.choice([-1.0, 1.0]) * rng.uniform(2.0, 4.0)
        elif kind == 1:  # level shift over a few steps
            n = int(rng.integers(3, 6))
            x[t0 : t0 + n, d] += rng.choice([-1.0, 1.0]) * rng.uniform(1.5, 3.0)
        else:  # flat-line (a stuck sensor), placed where the signal moves away from the held value
            n = int(rng.integers(5, 9))
            for _ in range(20):
                if np.abs(x[t0 : t0 + n, d] - x[t0, d]).mean() >= x[:, d].std():
                    break
                t0 = int(rng.integers(0, T - 12))
            x[t0 : t0 + n, d] = x[t0, d]
    labels = (np.abs(x - x0) >= LABEL_FRACTION * x0.std(axis=0)).any(axis=1)
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
