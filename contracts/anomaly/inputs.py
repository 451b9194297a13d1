"""Contract of the anomaly detector's inputs (NumPy only): `InputError` and `validate_window`, applied by the
reference (`reference.anomaly`), the JAX port (`implementations.anomaly`) and every runtime of an exported artifact.

Runs on the host, outside any traced or jitted code, so a bad window fails with a specific message instead of a
shape error deep inside a graph (or, worse, a silently broadcast result).
"""

from __future__ import annotations

import numpy as np


class InputError(ValueError):
    """A window that the model (or an artifact of it) cannot score: wrong rank, L, D, dtype, or non-finite."""


def validate_window(W: object, L: int, D: int, *, what: str = "the model") -> None:
    """Raise `InputError` unless ``W`` is a finite float32 array of shape (B, L, D) with B >= 1.

    Accepts torch tensors (CPU), NumPy and JAX arrays.
    """
    shape = tuple(int(n) for n in getattr(W, "shape", ()))
    if not hasattr(W, "shape") or not hasattr(W, "dtype"):
        raise InputError(f"{what} expects an array W of shape (B, L={L}, D={D}); got {type(W).__name__}")
    if len(shape) != 3:
        raise InputError(
            f"{what} expects a window W of shape (B, L={L}, D={D}); got rank {len(shape)} shape {shape}"
        )
    if shape[0] < 1:
        raise InputError(f"{what} expects at least one window (B >= 1); got shape {shape}")
    if shape[1] != L or shape[2] != D:
        raise InputError(
            f"{what} was built for windows of L={L} steps and D={D} variates; got shape {shape} "
            f"(L={shape[1]}, D={shape[2]}). L and D are static: re-export for another window size."
        )
    name = str(W.dtype).replace("torch.", "")
    if name != "float32":
        raise InputError(f"{what} expects float32 windows; got dtype {name}. Cast explicitly to float32.")
    if type(W).__module__.startswith("torch"):
        finite = bool(W.isfinite().all())  # type: ignore[attr-defined]
    else:
        finite = bool(np.isfinite(np.asarray(W)).all())
    if not finite:
        raise InputError(f"{what} expects finite windows; W contains NaN or Inf")
