"""Cases: one function of one subsystem, its reference, its implementation, and its inputs.

A `Case` pairs a reference callable with the implementation under test and a Hypothesis strategy that
draws a *flat* mapping of inputs (arrays, numbers, strings) for a dtype; an optional ``build`` turns that
mapping into the call's keyword arguments (e.g. a ``Grid`` from its sizes). Flat inputs are what a safe
``.npz`` holds, so the worst example of every case can be saved and replayed without Hypothesis.

A case is declared once: its rows in the tier table (``[cases."<name>"]``) are the only place its backend x
dtype x device matrix is written. The Python side registers only what computes: the reference, the
implementation, the input strategy and ``build``. `cells` crosses the two: every row of a registered case that
applies on the current device becomes one parity test (`conformance/test_parity.py`). Rows of cases that a
bespoke test asserts (an integration, a whole pipeline) carry no registered `Case`; that test says so with
``@pytest.mark.parity_cases("<name>", ...)``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from conformance import backends, compiles, precision, profiles
from conformance.parity import ParityResult, assert_parity, compare
from conformance.recorder import META_KEYS
from conformance.strategies import cast_floats
from conformance.tiers import TierTable, default_table

Inputs = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    reference: Callable[..., Any]
    implementation: Callable[..., Any]
    inputs: Callable[[str], st.SearchStrategy[Inputs]]  # dtype -> strategy of flat inputs (float64 arrays)
    build: Callable[[Inputs], Inputs] | None = None  # flat inputs -> keyword arguments of both callables
    examples: float = 1.0  # fraction of the profile's max_examples (expensive cases run fewer)
    # Flat inputs that cover the case's structural branches (offset means, odd/even sizes, T == 1, poles,
    # every mode), run as explicit examples before the drawn ones in every profile, CI's included.
    explicit: Callable[[str], Sequence[Inputs]] | None = None
    # The reference runs on the same values at this precision: one dtype for every row, or a mapping from
    # the case's dtype (e.g. {"float32": "float32", "float64": "float64"} for a chaotic rollout whose float32
    # rows are judged against a float32 reference and whose float64 rows against float64).
    reference_dtype: str | Mapping[str, str] = "float64"

    @property
    def subsystem(self) -> str:
        return self.name.split(".", 1)[0]

    def reference_dtype_for(self, dtype: str) -> str:
        if isinstance(self.reference_dtype, str):
            return self.reference_dtype
        try:
            return self.reference_dtype[dtype]
        except KeyError:
            raise KeyError(
                f"case {self.name!r}: reference_dtype has no entry for {dtype!r} ({dict(self.reference_dtype)})"
            ) from None

    def kwargs(self, spec: Inputs) -> Inputs:
        return self.build(spec) if self.build is not None else dict(spec)


_REGISTRY: dict[str, Case] = {}


def register(*cases: Case) -> None:
    for case in cases:
        if case.name in _REGISTRY and _REGISTRY[case.name] is not case:
            raise ValueError(f"case {case.name!r} is already registered")
        _REGISTRY[case.name] = case


def get(name: str) -> Case:
    """The registered case; importing its subsystem's cases module on first use."""
    if name not in _REGISTRY:
        from conformance import subsystems

        try:
            sub = subsystems.get(subsystems.of_case(name))
        except subsystems.SubsystemError:
            sub = None
        if sub is not None:
            sub.load_cases()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise KeyError(
            f"no registered case {name!r}; registered: {', '.join(sorted(_REGISTRY)) or 'none'}"
        ) from None


def of_subsystem(subsystem: str) -> list[Case]:
    from conformance import subsystems

    subsystems.get(subsystem).load_cases()
    return [c for n, c in sorted(_REGISTRY.items()) if c.subsystem == subsystem]


def registered() -> dict[str, Case]:
    return dict(_REGISTRY)


@cache
def _prepared(case_name: str, backend: str) -> Callable[..., Any]:
    return backends.get(backend).prepare(_REGISTRY[case_name].implementation)


class RecompileError(AssertionError):
    """A JAX implementation compiled again on a call whose input signature it had already seen."""


# (case, backend, dtype) -> input signatures already run: a repeat signature must not compile.
_SEEN: dict[tuple[str, str, str], set[tuple[Any, ...]]] = {}


def signature(spec: Inputs) -> tuple[Any, ...]:
    """What may legitimately trigger a compilation: array shapes and dtypes, and non-float values (ints,
    strings and bools may be static arguments). Float scalars are traced values: changing them must not
    recompile, so they are left out, and a port that makes one static is caught."""
    sig: list[Any] = []
    for key in sorted(spec):
        v = spec[key]
        if isinstance(v, np.ndarray):
            sig.append((key, v.shape, v.dtype.str))
        elif isinstance(v, float):
            sig.append((key, "float"))
        else:
            sig.append((key, v))
    return tuple(sig)


def _call_checked(case: Case, dtype: str, backend: str, impl_spec: Inputs) -> Any:
    fn = _prepared(case.name, backend)
    if backends.get(backend).framework != "jax":
        return fn(**case.kwargs(impl_spec))
    import jax

    sig = signature(impl_spec)
    seen = _SEEN.setdefault((case.name, backend, dtype), set())
    with compiles.counting() as counts:
        actual = jax.block_until_ready(fn(**case.kwargs(impl_spec)))
    if sig in seen and counts.compiles:
        raise RecompileError(
            f"{case.name}[{dtype}] on {backend} compiled {counts.compiles} time(s) on a call whose input "
            f"signature it had already run ({sig}): a jit built per call, a float made static, or a cache key "
            "that depends on values"
        )
    seen.add(sig)
    return actual


def run(
    case: Case, dtype: str, backend: str, spec: Inputs, *, record: bool = True, table: TierTable | None = None
) -> ParityResult:
    """Run the reference and the implementation on the same inputs and judge the result.

    The implementation sees the inputs rounded to ``dtype``; the reference sees exactly those values at
    ``case.reference_dtype_for(dtype)``. With ``record`` the assertion is recorded and raises below the required tier.
    """
    impl_spec = cast_floats(spec, dtype)
    ref_spec = cast_floats(impl_spec, case.reference_dtype_for(dtype))
    with precision.for_dtype(dtype):
        expected = case.reference(**case.kwargs(ref_spec))
        actual = _call_checked(case, dtype, backend, impl_spec)
        if record:
            return assert_parity(
                case.name, expected, actual, backend=backend, dtype=dtype, inputs=impl_spec, table=table
            )
        return compare(expected, actual, case=case.name, backend=backend, dtype=dtype, table=table)


def check(case: Case, dtype: str, backend: str, *, table: TierTable | None = None) -> None:
    """Hypothesis-driven parity of ``case`` under the active profile (scaled by ``case.examples``).

    Each cell draws its own choice stream: the cell's name is part of the test's digest, which seeds the
    derandomized ``ci`` profile (and keys the example database of the others), so two cases with the same
    strategy shape do not draw the same examples. The case's explicit examples (its structural branches) run
    first, in every profile.
    """

    def parity(spec: Inputs) -> None:
        run(case, dtype, backend, spec, table=table)

    parity._hypothesis_internal_add_digest = f"{case.name}[{dtype}]@{backend}".encode()  # type: ignore[attr-defined]
    test = given(spec=case.inputs(dtype))(parity)
    for spec in reversed(case.explicit(dtype) if case.explicit is not None else []):
        test = example(spec=spec)(test)
    profiles.scaled(case.examples)(test)()


Cell = tuple[Case, str, str]  # (case, dtype, backend)


def cells(subsystem_names: Iterable[str], device: str, table: TierTable | None = None) -> list[Cell]:
    """Every (case, dtype, backend) the tier table declares for ``device`` for the registered cases of the
    given subsystems (their cases modules are imported), in table order."""
    table = table or default_table()
    wanted = set(subsystem_names)
    for name in wanted:
        of_subsystem(name)
    out: list[Cell] = []
    for case, backend, dtype, _ in table.expected(wanted, device):
        if case in _REGISTRY:
            out.append((_REGISTRY[case], dtype, backend))
    return out


def cell_id(item: Cell) -> str:
    case, dtype, backend = item
    return f"{case.name}[{dtype}]@{backend}"


def load_example(path: str | Path) -> tuple[Case, str, str, Inputs]:
    """Read a saved worst example: (case, dtype, backend, inputs)."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    missing = [k for k in META_KEYS if k not in arrays]
    if missing:
        raise ValueError(f"{path} is not a saved parity example (missing {', '.join(missing)})")
    case = get(str(arrays.pop("__case__")))
    dtype, backend = str(arrays.pop("__dtype__")), str(arrays.pop("__backend__"))
    arrays.pop("__device__")
    spec = {k: (v.item() if v.ndim == 0 else v) for k, v in arrays.items()}
    return case, dtype, backend, spec


def replay(path: str | Path) -> ParityResult:
    """Re-run a saved example (``report/examples/*.npz``) and return its result without raising."""
    case, dtype, backend, spec = load_example(path)
    return run(case, dtype, backend, spec, record=False)
