"""Error metrics of one output against its reference, leaf by leaf for nested outputs (pytrees).

All errors are computed in float64 on the positions where both sides are finite. Positions where either
side is NaN or infinite must agree exactly (same NaN positions, same signed infinities); any disagreement
is counted and located. ULP distances are counted in the implementation's dtype.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import ml_dtypes
import numpy as np

from conformance.tiers import SCALES


@dataclasses.dataclass(frozen=True)
class WorstElement:
    index: tuple[int, ...]
    reference: float
    actual: float


@dataclasses.dataclass(frozen=True)
class LeafMetrics:
    path: str
    shape: tuple[int, ...]
    reference_dtype: str
    actual_dtype: str
    size: int
    compared: int  # positions where both sides are finite
    mae: float
    mse: float
    max_abs: float
    rel_l2: float  # ||actual - reference||_2 / ||reference||_2
    max_rel: float  # max |actual - reference| / |reference| over |reference| > tiny
    max_ulp: int  # in the actual's dtype
    differing: int  # positions not bitwise equal (as values)
    nonfinite_mismatch: int
    first_nonfinite_mismatch: tuple[int, ...] | None
    scale: str
    denominator: float  # what the error is divided by (1 for abs)
    scale_fallback: bool  # the scale's denominator was 0 or non-finite, so abs was used
    mae_norm: float
    max_norm: float
    mismatched: int  # positions whose normalized error exceeds `element_bound` (or non-finite mismatch)
    element_bound: float | None
    bitwise_equal: bool
    worst: WorstElement | None
    problem: str | None = None  # a structural problem (shape, dtype) that makes the leaf severe

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["shape"] = list(self.shape)
        if self.first_nonfinite_mismatch is not None:
            d["first_nonfinite_mismatch"] = list(self.first_nonfinite_mismatch)
        if self.worst is not None:
            d["worst"]["index"] = list(self.worst.index)
        return d

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> LeafMetrics:
        d = dict(d)
        d["shape"] = tuple(d["shape"])
        if d.get("first_nonfinite_mismatch") is not None:
            d["first_nonfinite_mismatch"] = tuple(d["first_nonfinite_mismatch"])
        if d.get("worst") is not None:
            w = d["worst"]
            d["worst"] = WorstElement(tuple(w["index"]), w["reference"], w["actual"])
        return cls(**d)


# -- conversion -------------------------------------------------------------------------------------


def to_numpy(x: Any) -> np.ndarray:
    """A host NumPy array from NumPy, JAX, PyTorch (bfloat16 included) or Python values."""
    mod = type(x).__module__
    if mod.startswith("torch"):
        t = x.detach().cpu()
        import torch

        if t.dtype == torch.bfloat16:
            return t.view(torch.int16).numpy().view(ml_dtypes.bfloat16)
        return t.resolve_conj().resolve_neg().numpy()
    return np.asarray(x)


def dtype_name(x: np.ndarray) -> str:
    return x.dtype.name


def is_float(x: np.ndarray) -> bool:
    return x.dtype.kind == "f" or x.dtype == ml_dtypes.bfloat16


def is_numeric(x: np.ndarray) -> bool:
    return x.dtype.kind in "biuf" or x.dtype == ml_dtypes.bfloat16


# -- pytrees ----------------------------------------------------------------------------------------


def _is_leaf(x: Any) -> bool:
    return type(x).__module__.startswith("torch") and hasattr(x, "detach")


def flatten(tree: Any) -> tuple[list[tuple[str, Any]], Any]:
    """``([(path, leaf), ...], treedef)`` with JAX's key paths (``.u``, ``['mean']``, ``[0]``)."""
    import jax

    leaves, treedef = jax.tree_util.tree_flatten_with_path(tree, is_leaf=_is_leaf)
    return [(jax.tree_util.keystr(path) or "<output>", leaf) for path, leaf in leaves], treedef


# -- ULP --------------------------------------------------------------------------------------------

_UINT = {8: np.uint64, 4: np.uint32, 2: np.uint16}


def _ordinal(x: np.ndarray) -> np.ndarray:
    """Map floats to unsigned integers whose order is the float order (+0 and -0 map together)."""
    nbytes = x.dtype.itemsize
    utype = _UINT[nbytes]
    bits = x.view(utype).astype(np.uint64)
    sign = np.uint64(1) << np.uint64(8 * nbytes - 1)
    negative = (bits & sign) != 0
    magnitude = bits & (sign - np.uint64(1))
    # Non-negative floats map to sign + magnitude, negative floats to sign - magnitude: monotonic, and
    # +0 / -0 both map to `sign`.
    return np.where(negative, sign - magnitude, sign + magnitude)


def ulp_distance(reference: np.ndarray, actual: np.ndarray) -> np.ndarray:
    """Elementwise distance in units in the last place of ``actual``'s dtype (the reference is rounded to it)."""
    ref = reference.astype(actual.dtype)
    a, r = _ordinal(actual), _ordinal(ref)
    return np.where(a >= r, a - r, r - a)


# -- comparison -------------------------------------------------------------------------------------


# A rel/range denominator below this many units of precision of the reference's own magnitude is noise:
# the reference is (nearly) constant or (nearly) zero on average, and normalizing by it would turn
# one-ulp rounding into an O(1) error. Such scales fall back to max |reference| (or to abs if that is 0).
DEGENERATE_ULPS = 64.0


def _denominator(ref: np.ndarray, scale: str, eps: float) -> tuple[float, bool]:
    if scale == "abs" or ref.size == 0:
        return 1.0, False
    if scale == "rel":
        den = float(np.mean(np.abs(ref)))
    elif scale == "range":
        den = float(np.max(ref) - np.min(ref))
    else:
        raise ValueError(f"unknown scale {scale!r}; scales are {', '.join(SCALES)}")
    magnitude = float(np.max(np.abs(ref)))
    if math.isfinite(den) and den > DEGENERATE_ULPS * eps * magnitude and den > 0:
        return den, False
    return (magnitude if magnitude > 0 and math.isfinite(magnitude) else 1.0), True


def severe_leaf(
    path: str, reference: np.ndarray, actual: np.ndarray, scale: str, problem: str
) -> LeafMetrics:
    """A leaf that cannot be compared element by element (e.g. shapes differ): severe, with the reason."""
    return LeafMetrics(
        path=path,
        shape=tuple(actual.shape),
        reference_dtype=dtype_name(reference),
        actual_dtype=dtype_name(actual),
        size=int(actual.size),
        compared=0,
        mae=math.inf,
        mse=math.inf,
        max_abs=math.inf,
        rel_l2=math.inf,
        max_rel=math.inf,
        max_ulp=-1,
        differing=int(actual.size),
        nonfinite_mismatch=0,
        first_nonfinite_mismatch=None,
        scale=scale,
        denominator=1.0,
        scale_fallback=False,
        mae_norm=math.inf,
        max_norm=math.inf,
        mismatched=int(max(actual.size, reference.size)),
        element_bound=None,
        bitwise_equal=False,
        worst=None,
        problem=problem,
    )


def compare_leaf(
    path: str, reference: Any, actual: Any, *, scale: str, element_bound: float | None = None
) -> LeafMetrics:
    """Compare one array against its reference. ``element_bound`` (normalized) counts mismatched elements."""
    ref = to_numpy(reference)
    act = to_numpy(actual)
    if ref.shape != act.shape:
        return severe_leaf(
            path, ref, act, scale, f"shape mismatch: reference {ref.shape}, actual {act.shape}"
        )
    if not (is_numeric(ref) and is_numeric(act)):
        return severe_leaf(path, ref, act, scale, f"not numeric: reference {ref.dtype}, actual {act.dtype}")

    r64 = ref.astype(np.float64)
    a64 = act.astype(np.float64)
    r_fin, a_fin = np.isfinite(r64), np.isfinite(a64)
    both = r_fin & a_fin
    # Non-finite positions must agree: NaN with NaN, +inf with +inf, -inf with -inf.
    nonfinite_bad = ~both & ~((np.isnan(r64) & np.isnan(a64)) | (r64 == a64))
    n_nonfinite_bad = int(nonfinite_bad.sum())
    first_bad = tuple(int(i) for i in np.argwhere(nonfinite_bad)[0]) if n_nonfinite_bad else None

    equal_values = (r64 == a64) & (np.signbit(r64) == np.signbit(a64))
    equal_values |= np.isnan(r64) & np.isnan(a64)
    differing = int(act.size - equal_values.sum())
    bitwise_equal = differing == 0

    rf, af = r64[both], a64[both]
    n = int(rf.size)
    precision = float(ml_dtypes.finfo(act.dtype).eps) if is_float(act) else 0.0
    den, fallback = _denominator(rf, scale, precision)
    if n:
        err = np.abs(af - rf)
        mae = float(err.mean())
        mse = float(np.mean(err**2))
        worst_flat = int(np.argmax(err))
        max_abs = float(err[worst_flat])
        ref_norm = float(np.linalg.norm(rf))
        rel_l2 = (
            float(np.linalg.norm(af - rf) / ref_norm) if ref_norm > 0 else (0.0 if max_abs == 0 else math.inf)
        )
        tiny = np.finfo(np.float64).tiny
        nz = np.abs(rf) > tiny
        max_rel = float(np.max(err[nz] / np.abs(rf[nz]))) if nz.any() else 0.0
        worst_index = tuple(int(i) for i in np.argwhere(both)[worst_flat])
        worst = WorstElement(worst_index, float(r64[worst_index]), float(a64[worst_index]))
        if is_float(act):
            ulps = ulp_distance(ref[both], act[both])
            max_ulp = int(ulps.max())
        else:
            max_ulp = int(max_abs)  # integers: the distance is the difference itself
        mismatched = int(np.sum(err / den >= element_bound)) if element_bound is not None else differing
    else:
        mae = mse = max_abs = rel_l2 = max_rel = 0.0
        max_ulp = 0
        worst = None
        mismatched = 0
    mismatched += n_nonfinite_bad
    return LeafMetrics(
        path=path,
        shape=tuple(act.shape),
        reference_dtype=dtype_name(ref),
        actual_dtype=dtype_name(act),
        size=int(act.size),
        compared=n,
        mae=mae,
        mse=mse,
        max_abs=max_abs,
        rel_l2=rel_l2,
        max_rel=max_rel,
        max_ulp=max_ulp,
        differing=differing,
        nonfinite_mismatch=n_nonfinite_bad,
        first_nonfinite_mismatch=first_bad,
        scale=scale,
        denominator=den,
        scale_fallback=fallback,
        mae_norm=mae / den,
        max_norm=max_abs / den,
        mismatched=mismatched,
        element_bound=element_bound,
        bitwise_equal=bitwise_equal,
        worst=worst,
    )
