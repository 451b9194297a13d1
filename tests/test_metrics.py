"""Meta-tests of the metrics: hand-computed values, ULP distances, pytrees, conversions, structural problems."""

from __future__ import annotations

import math
from typing import NamedTuple

import jax.numpy as jnp
import ml_dtypes
import numpy as np
import pytest
import torch

from conformance import compare
from conformance.metrics import compare_leaf, flatten, to_numpy, ulp_distance


def test_hand_computed_metrics() -> None:
    ref = np.array([[1.0, -2.0], [4.0, 0.0]])
    act = np.array([[1.5, -2.0], [3.0, 0.0]])
    m = compare_leaf("x", ref, act, scale="range")
    err = np.array([0.5, 0.0, 1.0, 0.0])
    assert m.mae == pytest.approx(err.mean())
    assert m.mse == pytest.approx((err**2).mean())
    assert m.max_abs == 1.0
    assert m.rel_l2 == pytest.approx(np.linalg.norm(err) / np.linalg.norm(ref))
    assert m.max_rel == pytest.approx(0.5)  # 0.5 / 1.0 beats 1.0 / 4.0; the zero reference is skipped
    assert m.denominator == 6.0  # max - min of the reference
    assert m.mae_norm == pytest.approx(err.mean() / 6.0)
    assert m.max_norm == pytest.approx(1.0 / 6.0)
    assert m.worst.index == (1, 0) and m.worst.reference == 4.0 and m.worst.actual == 3.0
    assert m.differing == 2 and m.compared == 4 and not m.bitwise_equal


def test_rel_scale_divides_by_mean_absolute_reference() -> None:
    m = compare_leaf("x", np.array([-2.0, 4.0]), np.array([-2.0, 4.3]), scale="rel")
    assert m.denominator == pytest.approx(3.0)
    assert m.max_norm == pytest.approx(0.1)


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.float64, ml_dtypes.bfloat16])
def test_ulp_distance_counts_representable_steps(dtype) -> None:
    x = np.array([1.0, -1.0, 0.0], dtype=dtype)
    info = ml_dtypes.finfo(dtype) if dtype == ml_dtypes.bfloat16 else np.finfo(dtype)
    tiny = info.smallest_subnormal
    # Steps toward +inf: nextafter three times, across zero, between the smallest subnormals.
    one_up = (x[0].astype(np.float64) + float(info.eps)).astype(dtype)
    assert ulp_distance(x[:1], np.array([one_up], dtype=dtype))[0] == 1
    assert ulp_distance(np.array([0.0], dtype=dtype), np.array([-0.0], dtype=dtype))[0] == 0
    pair = np.array([tiny], dtype=dtype), np.array([-tiny], dtype=dtype)
    assert ulp_distance(*pair)[0] == 2
    assert ulp_distance(x, x)[0] == 0


def test_ulp_distance_is_counted_in_the_actual_dtype() -> None:
    ref = np.array([1.0 + 2.0**-30])  # float64, below float32 resolution at 1.0
    act = np.array([1.0], dtype=np.float32)
    assert ulp_distance(ref, act)[0] == 0
    assert (
        compare_leaf("x", ref, np.array([np.nextafter(np.float32(1), np.float32(2))]), scale="abs").max_ulp
        == 1
    )


def test_float64_ulp_distance_does_not_overflow() -> None:
    big = np.finfo(np.float64).max
    assert int(ulp_distance(np.array([-big]), np.array([big]))[0]) == 2 * (0x7FEFFFFFFFFFFFFF)


def test_integer_leaves_compare_exactly() -> None:
    m = compare_leaf("idx", np.array([1, 2, 3]), np.array([1, 2, 4]), scale="abs")
    assert m.differing == 1 and m.max_abs == 1 and m.max_ulp == 1


class Pair(NamedTuple):
    mean: object
    std: object


def test_pytrees_are_compared_leaf_by_leaf_with_paths(table) -> None:
    ref = {"state": Pair(np.ones(3), np.zeros(2)), "cost": np.array(2.0)}
    act = {"state": Pair(np.ones(3), np.array([0.0, 1e-3])), "cost": np.array(2.0)}
    result = compare(ref, act, case="selftest.abs", backend="numpy", dtype="float64", table=table)
    paths = [leaf.path for leaf in result.leaves]
    assert paths == ["['cost']", "['state'].mean", "['state'].std"]
    assert result.worst.path == "['state'].std"
    assert result.tier == "severe"  # 1e-3 absolute at float64
    assert "['state'].std" in result.message()


def test_structure_mismatch_names_the_leaves(table) -> None:
    ref = {"a": np.ones(2), "b": np.ones(2)}
    act = {"a": np.ones(2), "c": np.ones(2)}
    result = compare(ref, act, case="selftest.abs", backend="numpy", dtype="float64", table=table)
    assert result.tier == "severe"
    msg = result.message()
    assert "missing leaves [\"['b']\"]" in msg and "unexpected leaves [\"['c']\"]" in msg


def test_shape_and_dtype_mismatches_are_severe_with_a_reason(table) -> None:
    r = compare(
        np.ones((2, 3)), np.ones((3, 2)), case="selftest.abs", backend="numpy", dtype="float64", table=table
    )
    assert r.tier == "severe" and "shape mismatch: reference (2, 3), actual (3, 2)" in r.message()
    r = compare(
        np.ones(3), np.ones(3, np.float64), case="selftest.abs", backend="numpy", dtype="float32", table=table
    )
    assert r.tier == "severe" and "dtype mismatch: the float32 case returned float64" in r.message()


def test_conversions_from_jax_and_torch(table) -> None:
    ref = np.linspace(-1, 1, 16, dtype=np.float32)
    for act in (
        jnp.asarray(ref),
        torch.from_numpy(ref.copy()),
        torch.from_numpy(ref.copy()).requires_grad_(),
    ):
        result = compare(ref, act, case="selftest.exact", backend="numpy", table=table)
        assert result.tier == "exact" and result.device == "cpu"
    bf = torch.tensor([1.0, 2.5, -3.0], dtype=torch.bfloat16)
    arr = to_numpy(bf)
    assert arr.dtype == ml_dtypes.bfloat16 and arr.astype(np.float64).tolist() == [1.0, 2.5, -3.0]
    result = compare(np.array([1.0, 2.5, -3.0]), bf, case="selftest.abs", backend="numpy", table=table)
    assert result.dtype == "bfloat16" and result.tier == "exact"


def test_flatten_single_array_has_a_readable_path() -> None:
    ((path, _leaf),) = flatten(np.ones(2))[0]
    assert path == "<output>"


def test_empty_arrays_compare_as_exact(table) -> None:
    r = compare(
        np.zeros((0, 3)), np.zeros((0, 3)), case="selftest.abs", backend="numpy", dtype="float64", table=table
    )
    assert r.tier == "exact" and math.isfinite(r.leaves[0].mae_norm)
