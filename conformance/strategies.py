"""Hypothesis strategies for parity cases: shape buckets, magnitudes, offset means and dense float fields.

Shapes come from small fixed buckets so that JAX compiles a bounded number of times per case.

Why fields are not drawn element by element with ``hypothesis.extra.numpy.arrays`` alone: that strategy
builds *sparse* arrays (one fill value plus a few drawn elements), which is right for shrinking but
leaves a stencil or a GroupNorm almost nothing to compute on. `fields` therefore draws the distribution
parameters and a seed with Hypothesis and fills the array densely with NumPy's generator; on top it lays
a sparse overlay of "spikes" drawn with ``hypothesis.extra.numpy.arrays``, whose positions and values
Hypothesis does shrink (a single spike at a pole row or a seam column is how such defects show).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, TypeVar

import numpy as np
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

T = TypeVar("T")

KINDS = ("normal", "uniform", "smooth")


def _strategy(x: T | st.SearchStrategy[T]) -> st.SearchStrategy[T]:
    return x if isinstance(x, st.SearchStrategy) else st.just(x)


def shape_buckets(*shapes: Sequence[int]) -> st.SearchStrategy[tuple[int, ...]]:
    """One of a fixed set of shapes (so a jitted function compiles at most ``len(shapes)`` times)."""
    if not shapes:
        raise ValueError("shape_buckets needs at least one shape")
    return st.sampled_from([tuple(int(n) for n in s) for s in shapes])


def log_uniform(lo: float, hi: float) -> st.SearchStrategy[float]:
    """Positive magnitudes spread evenly over decades (``lo`` to ``hi``)."""
    if not 0 < lo <= hi:
        raise ValueError(f"log_uniform needs 0 < lo <= hi; got {lo}, {hi}")
    return st.floats(np.log10(lo), np.log10(hi)).map(lambda e: float(10.0**e))


def finite_floats(lo: float, hi: float) -> st.SearchStrategy[float]:
    return st.floats(lo, hi, allow_nan=False, allow_infinity=False, allow_subnormal=False)


def _smooth(rng: np.random.Generator, shape: tuple[int, ...]) -> np.ndarray:
    """A few low wavenumbers per axis (periodic along the last axis) plus 5 % noise, unit amplitude."""
    out = np.zeros(shape)
    grids = np.meshgrid(*[np.arange(n) / n for n in shape], indexing="ij")
    for _ in range(4):
        phase = rng.uniform(0, 2 * np.pi)
        arg = phase
        for axis, g in enumerate(grids):
            k = rng.integers(0, 4) if axis == len(shape) - 1 else rng.uniform(0, 2)
            arg = arg + 2 * np.pi * k * g
        out += rng.normal() * np.cos(arg)
    out /= max(np.max(np.abs(out)), 1e-12)
    return out + 0.05 * rng.standard_normal(shape)


@st.composite
def fields(
    draw: st.DrawFn,
    shape: Sequence[int] | st.SearchStrategy[tuple[int, ...]],
    *,
    magnitude: float | st.SearchStrategy[float] = 1.0,
    offset: float | st.SearchStrategy[float] = 0.0,
    kinds: Sequence[str] = KINDS,
    spikes: bool = True,
) -> np.ndarray:
    """A dense finite float64 array: ``offset + magnitude * base`` with ``base`` of unit scale.

    ``offset`` far from zero relative to ``magnitude`` gives the ill-conditioned "offset mean, small
    spread" inputs that break naive variance formulas; keep such draws in their own cases.
    """
    shp = tuple(draw(_strategy(shape)))  # type: ignore[arg-type]
    mag = float(draw(_strategy(magnitude)))
    off = float(draw(_strategy(offset)))
    unknown = set(kinds) - set(KINDS)
    if unknown:
        raise ValueError(f"unknown field kinds {sorted(unknown)}; kinds are {KINDS}")
    kind = draw(st.sampled_from(list(kinds)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if kind == "normal":
        base = rng.standard_normal(shp)
    elif kind == "uniform":
        base = rng.uniform(-1.0, 1.0, shp)
    else:
        base = _smooth(rng, shp)
    if spikes and draw(st.booleans()):
        overlay = draw(
            hnp.arrays(
                np.float64,
                shp,
                elements=finite_floats(-3.0, 3.0),
                fill=st.just(0.0),
            )
        )
        base = base + overlay
    return off + mag * base


def is_float_array(v: Any) -> bool:
    """A NumPy float array, ml_dtypes' bfloat16 (NumPy kind 'V') included."""
    return isinstance(v, np.ndarray) and (v.dtype.kind == "f" or v.dtype.name == "bfloat16")


def cast_floats(spec: dict[str, Any], dtype: str) -> dict[str, Any]:
    """Cast every float array (bfloat16 included) of a flat input mapping to ``dtype``; scalars and other
    values unchanged."""
    if dtype == "bfloat16":
        import ml_dtypes

        target: Any = ml_dtypes.bfloat16
    else:
        target = dtype
    return {k: (v.astype(target) if is_float_array(v) else v) for k, v in spec.items()}
