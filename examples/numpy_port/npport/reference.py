"""The NumPy reference: softplus and a numerically stable log-sum-exp."""

from __future__ import annotations

import numpy as np


def softplus(x: np.ndarray) -> np.ndarray:
    """log(1 + exp(x)), without overflow for large x."""
    return np.logaddexp(0.0, x)


def logsumexp(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(sum(exp(x), axis)), shifted by the maximum so that it neither overflows nor underflows."""
    m = np.max(x, axis=axis, keepdims=True)
    return np.squeeze(m, axis) + np.log(np.sum(np.exp(x - m), axis=axis))
