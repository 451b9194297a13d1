"""Meta-tests of the Case machinery: Hypothesis-driven checks, the recompile guard, saving and replaying."""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import strategies as st

from conformance import ParityError, cases, recorder
from conformance.exactness import Exactness, assert_bitwise
from conformance.strategies import fields, shape_buckets

SHAPES = shape_buckets((8,), (16,))


def _inputs(dtype: str) -> st.SearchStrategy[dict]:
    return st.fixed_dictionaries({"x": fields(SHAPES), "scale": st.sampled_from((1.0, 2.0, 3.0))})


def _reference(x: np.ndarray, scale: float) -> np.ndarray:
    return np.sin(x) * scale


@jax.jit
def _good(x: jax.Array, scale: float) -> jax.Array:
    return jnp.sin(x) * scale


def _jit_per_call(x: jax.Array, scale: float) -> jax.Array:
    return jax.jit(lambda y: jnp.sin(y) * scale)(x)  # the closure's jit is new on every call


@functools.partial(jax.jit, static_argnames=("scale",))
def _static_float(x: jax.Array, scale: float) -> jax.Array:
    return jnp.sin(x) * scale


def _case(name: str, impl) -> cases.Case:
    case = cases.Case(name=name, reference=_reference, implementation=impl, inputs=_inputs)
    if name not in cases._REGISTRY:
        cases.register(case)
    return cases._REGISTRY[name]


GOOD = _case("selftest.abs", _good)


@pytest.fixture
def sine_table(table_factory):
    return table_factory(
        '[cases."selftest.abs"]\nscale = "abs"\nrequired = [["jax-jit", "*", "float32", "perfect"]]\n'
    )


def test_check_runs_the_case_under_hypothesis(sine_table) -> None:
    cases.check(GOOD, "float32", "jax-jit", table=sine_table)


@pytest.mark.parametrize("impl", [_jit_per_call, _static_float], ids=["jit-per-call", "static-float"])
def test_recompiling_implementations_are_caught(sine_table, impl) -> None:
    case = cases.Case(name="selftest.abs", reference=_reference, implementation=impl, inputs=_inputs)
    cases._prepared.cache_clear()
    cases._REGISTRY["selftest.abs"] = case
    cases._SEEN.clear()
    try:
        spec = {"x": np.linspace(0, 1, 8), "scale": 2.0}
        cases.run(case, "float32", "jax-jit", spec, table=sine_table)  # first call: compiling is expected
        with pytest.raises(cases.RecompileError, match=r"compiled .* on a call whose input signature"):
            cases.run(case, "float32", "jax-jit", {**spec, "scale": 3.0}, table=sine_table)
    finally:
        cases._REGISTRY["selftest.abs"] = GOOD
        cases._prepared.cache_clear()
        cases._SEEN.clear()


def test_signature_ignores_float_values_but_not_shapes_or_static_values() -> None:
    a = cases.signature({"x": np.ones(3), "dt": 1.0, "n": 2, "mode": "wrap"})
    assert a == cases.signature({"x": np.zeros(3), "dt": 7.5, "n": 2, "mode": "wrap"})
    assert a != cases.signature({"x": np.ones(4), "dt": 1.0, "n": 2, "mode": "wrap"})
    assert a != cases.signature({"x": np.ones(3, np.float32), "dt": 1.0, "n": 2, "mode": "wrap"})
    assert a != cases.signature({"x": np.ones(3), "dt": 1.0, "n": 3, "mode": "wrap"})


def test_saved_worst_example_replays_to_the_same_metrics(sine_table, tmp_path, monkeypatch) -> None:
    broken = cases.Case(
        name="selftest.abs",
        reference=_reference,
        implementation=jax.jit(lambda x, scale: jnp.sin(x) * scale + 1e-3 * (x > 0.5)),
        inputs=_inputs,
    )
    monkeypatch.setitem(cases._REGISTRY, "selftest.abs", broken)
    cases._prepared.cache_clear()
    rec = recorder.Recorder(tmp_path)
    previous = recorder.current()
    recorder.install(rec)
    try:
        x = np.linspace(0, 1, 16)
        with pytest.raises(ParityError) as info:
            cases.run(broken, "float32", "jax-jit", {"x": x, "scale": 2.0}, table=sine_table)
        merged = recorder.merge([rec.export()], tmp_path)
    finally:
        recorder.install(previous)
    (entry,) = merged["entries"]
    saved = tmp_path / entry["inputs_file"]
    case, dtype, backend, spec = cases.load_example(saved)
    assert (case.name, dtype, backend) == ("selftest.abs", "float32", "jax-jit")
    assert spec["scale"] == 2.0 and isinstance(spec["scale"], float)
    assert_bitwise(x.astype(np.float32), spec["x"], why=f"{Exactness.ORDER_INDEPENDENT}: a cast")
    replayed = cases.run(case, dtype, backend, spec, record=False, table=sine_table)
    original = info.value.result
    assert replayed.tier == original.tier
    assert replayed.worst.max_abs == original.worst.max_abs and replayed.worst.worst == original.worst.worst
    cases._prepared.cache_clear()


def test_load_example_rejects_files_that_are_not_examples(tmp_path) -> None:
    np.savez(tmp_path / "x.npz", x=np.ones(2))
    with pytest.raises(ValueError, match="not a saved parity example"):
        cases.load_example(tmp_path / "x.npz")


_REFERENCE_DTYPES_SEEN: list[str] = []


def _recording_reference(x: np.ndarray, scale: float) -> np.ndarray:
    _REFERENCE_DTYPES_SEEN.append(x.dtype.name)
    return np.sin(x) * scale


REF_DTYPE_CASE = cases.Case(
    name="selftest.refdtype",
    reference=_recording_reference,
    implementation=_good,
    inputs=_inputs,
    reference_dtype={"float32": "float32", "float64": "float64"},
)
if REF_DTYPE_CASE.name not in cases._REGISTRY:
    cases.register(REF_DTYPE_CASE)


def test_reference_dtype_per_case_dtype(table_factory) -> None:
    """A mapping picks the reference's precision per row; the reference sees exactly the rounded values."""
    table = table_factory(
        '[cases."selftest.refdtype"]\nscale = "abs"\nrequired = [["jax-jit", "*", "float32", "exact", "same-program: the same function at the same precision"]]\n'
    )
    case = cases._REGISTRY["selftest.refdtype"]
    assert case.reference_dtype_for("float32") == "float32"
    assert case.reference_dtype_for("float64") == "float64"
    _REFERENCE_DTYPES_SEEN.clear()
    result = cases.run(
        case, "float32", "jax-jit", {"x": np.linspace(-1.0, 1.0, 8), "scale": 2.0}, record=False, table=table
    )
    assert _REFERENCE_DTYPES_SEEN == ["float32"]
    assert result.dtype == "float32"
    assert result.worst.mae_norm < 1e-6  # float32 sin on both sides of the same float32 values
    with pytest.raises(KeyError, match="reference_dtype has no entry for 'bfloat16'"):
        case.reference_dtype_for("bfloat16")
    assert GOOD.reference_dtype_for("float32") == "float64"  # the default: one dtype for every row


def _drawn(name: str, table, monkeypatch, explicit=None) -> list[float]:
    seen: list[float] = []

    def reference(x: np.ndarray, scale: float) -> np.ndarray:
        seen.append(float(x[0]) * scale)
        return np.sin(x) * scale

    case = cases.Case(name=name, reference=reference, implementation=_good, inputs=_inputs, explicit=explicit)
    monkeypatch.setitem(cases._REGISTRY, name, case)
    cases.check(case, "float32", "jax-jit", table=table)
    return seen


def test_each_case_draws_its_own_stream_and_runs_its_explicit_examples_first(
    table_factory, monkeypatch
) -> None:
    rows = 'scale = "abs"\nrequired = [["jax-jit", "*", "float32", "perfect"]]\n'
    table = table_factory(f'[cases."selftest.one"]\n{rows}[cases."selftest.two"]\n{rows}')
    one, one_again, two = (
        _drawn("selftest.one", table, monkeypatch),
        _drawn("selftest.one", table, monkeypatch),
        _drawn("selftest.two", table, monkeypatch),
    )
    assert one == one_again, "derandomized: the same case draws the same examples"
    assert one != two, "two cases with the same strategy must not draw the same examples"
    branch = {"x": np.full(8, 0.5), "scale": 3.0}
    first = _drawn("selftest.one", table, monkeypatch, explicit=lambda dtype: [branch])
    assert first[0] == 1.5 and first[1:] == one
