"""Negative controls in process: a catalogue mutant (`conformance.mutate.Mutant`) applied to the imported port,
and a case's explicit examples run against it.

`apply_in_process` executes a patched copy of the mutant's module and of every module of the same package that
imports names from it (in import order), and puts the copies' objects into the real modules' namespaces with
``monkeypatch`` (restored when the test ends). The public functions that the registered cases hold look their
kernels up in those namespaces at call time, so they run the patched code; the copies' jitted functions are new
objects, so JAX compiles them afresh instead of reusing the unpatched programs; JAX's trace caches (keyed by
function object, and a patched function keeps its identity) are cleared on apply and again on undo.

`dot_precisions` reads the precision of every matrix product of a lowered program (for the tests that check
that a port asks for full precision itself instead of relying on the suite's global pin).

`explicit_failures` runs a case's explicit examples, which every Hypothesis profile runs before its drawn ones
(the ``ci`` profile included), and returns those the case's oracle judges below its required tier: a control
caught there is caught by the profile that gates merges. Nothing is recorded for the report.
"""

from __future__ import annotations

import ast
import contextlib
import importlib
import re
import sys
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import Phase, settings

from conformance import backends, cases, precision, recorder
from conformance.mutate import ROOT, Mutant
from conformance.parity import ParityError, ParityResult, compare
from conformance.strategies import cast_floats


def _module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def _imports_from(module: types.ModuleType) -> set[str]:
    """The modules that ``module`` imports names from (``from X import name``)."""
    tree = ast.parse(Path(module.__file__).read_text(encoding="utf-8"))
    return {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.module}


def _dependents(name: str) -> list[str]:
    """``name`` and the loaded modules of its package that import names from it, directly or not, in an
    order where each module comes after the modules it imports from."""
    package = name.rsplit(".", 1)[0]
    siblings = {
        m: sys.modules[m]
        for m in list(sys.modules)
        if m.startswith(package + ".") and m.count(".") == name.count(".")
    }
    imports = {
        m: _imports_from(mod) & set(siblings) for m, mod in siblings.items() if getattr(mod, "__file__", None)
    }
    affected = {name}
    grew = True
    while grew:  # everything that imports from an affected module is affected
        new = {m for m, deps in imports.items() if deps & affected} - affected
        affected |= new
        grew = bool(new)
    order: list[str] = []
    while len(order) < len(affected):  # each module after the affected modules it imports from
        order += sorted(m for m in affected - set(order) if not (imports[m] & affected) - set(order) - {m})
    return order


def apply_in_process(mutant: Mutant, monkeypatch: pytest.MonkeyPatch) -> None:
    """Run the port with ``mutant`` applied, until ``monkeypatch`` is undone.

    Skips the test when the mutant's old text is not in the file exactly once (the port is being changed, as
    under ``conformance mutate``, which patches the same files: the catalogue's own check,
    ``tests/test_mutants.py``, covers a stale entry)."""
    name = _module_name(mutant.path)
    module = importlib.import_module(name)
    text = (ROOT / mutant.path).read_text(encoding="utf-8")
    if text.count(mutant.old) != 1:
        pytest.skip(f"{mutant.id}: its old text is not in {mutant.path} exactly once (the port differs)")
    sources = {name: text.replace(mutant.old, mutant.new)}
    # first set, so last restored: JAX's trace caches are cleared again once every patch is undone
    monkeypatch.setattr(_TRACE_CACHES, "patched", True)
    for dep in _dependents(name):
        fresh = types.ModuleType(dep)
        real = sys.modules[dep]
        fresh.__file__ = real.__file__
        fresh.__package__ = real.__package__
        source = sources.get(dep) or Path(real.__file__).read_text(encoding="utf-8")
        exec(compile(source, real.__file__, "exec"), fresh.__dict__)
        for key, value in fresh.__dict__.items():
            if key.startswith("__"):
                continue
            old = real.__dict__.get(key)
            if _own_function(old, dep) and _own_function(value, dep):
                # Held elsewhere (a registered case, the package's re-exports): patch the function itself.
                monkeypatch.setattr(old, "__code__", value.__code__)
                monkeypatch.setattr(old, "__defaults__", value.__defaults__)
                monkeypatch.setattr(old, "__kwdefaults__", value.__kwdefaults__)
            else:
                monkeypatch.setitem(real.__dict__, key, value)
    assert module.__dict__ is sys.modules[name].__dict__
    _TRACE_CACHES.clear()


class _TraceCaches:
    """JAX caches traces by function object, and a patched function keeps its identity (only its code
    changes): a jit that traced it before the patch would reuse the old jaxpr, and one that traces it while
    patched would leave the mutant's jaxpr for the tests after. Setting ``patched`` (as monkeypatch does on
    apply and on undo) clears those caches."""

    patched = False

    def __setattr__(self, key: str, value: Any) -> None:
        object.__setattr__(self, key, value)
        self.clear()

    @staticmethod
    def clear() -> None:
        import jax

        jax.clear_caches()


_TRACE_CACHES = _TraceCaches()


def _own_function(x: Any, module: str) -> bool:
    return isinstance(x, types.FunctionType) and x.__module__ == module and not x.__code__.co_freevars


def explicit_failures(
    case_name: str, dtype: str, backend: str = "jax-jit", *, first: bool = True
) -> list[ParityResult]:
    """The explicit examples of ``case_name`` (``dtype``, ``backend``) that fall below the required tier, judged
    as the parity test judges them (same casts, precision policy and oracle), without recording; with
    ``first``, only up to the first such example (Hypothesis stops there too)."""
    case = cases.get(case_name)
    assert case.explicit is not None, f"{case_name} has no explicit examples"
    fn = backends.get(backend).prepare(case.implementation)
    failed = []
    for spec in case.explicit(dtype):
        impl_spec = cast_floats(spec, dtype)
        ref_spec = cast_floats(impl_spec, case.reference_dtype_for(dtype))
        with precision.for_dtype(dtype):
            expected = case.reference(**case.kwargs(ref_spec))
            actual = _materialize(fn(**case.kwargs(impl_spec)))
        result = compare(expected, actual, case=case.name, backend=backend, dtype=dtype)
        if not result.passed:
            failed.append(result)
            if first:
                break
    return failed


def _materialize(x: Any) -> Any:
    import jax

    return jax.device_get(x)


_DOT = re.compile(r"stablehlo\.dot_general.*?precision = \[(\w+), (\w+)\]")


def dot_precisions(lowered_text: str) -> list[tuple[str, str]]:
    """The operand precisions of every ``dot_general`` of a lowered module's StableHLO text (a dot without a
    precision attribute reads as DEFAULT)."""
    out = []
    for line in lowered_text.splitlines():
        if "stablehlo.dot_general" in line:
            m = _DOT.search(line)
            out.append((m.group(1), m.group(2)) if m else ("DEFAULT", "DEFAULT"))
    return out


def assert_explicit_examples_catch(
    mutant: Mutant, case: str, dtype: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Apply ``mutant`` in process and require that at least one explicit example of ``case`` at ``dtype`` is
    judged below its required tier."""
    apply_in_process(mutant, monkeypatch)
    failures = explicit_failures(case, dtype)
    assert failures, f"{case}[{dtype}]: no explicit example catches {mutant.id} ({mutant.doc})"


@contextlib.contextmanager
def ci_check_without_shrinking() -> Iterator[None]:
    """The active Hypothesis profile minus its shrink phase (the same examples, in the same order), with the
    report's recorder detached (a control's failures are expected, not parity results) and a fresh record of
    the input signatures each case has compiled for (a mutant compiles its own program or ops)."""
    name = settings.get_current_profile_name()
    parent = settings.get_profile(name)
    settings.register_profile(
        f"{name}-control", parent=parent, phases=[p for p in parent.phases if p is not Phase.shrink]
    )
    rec, seen = recorder.current(), cases._SEEN
    settings.load_profile(f"{name}-control")
    recorder.install(None)
    cases._SEEN = {}
    try:
        yield
    finally:
        cases._SEEN = seen
        recorder.install(rec)
        settings.load_profile(name)


def assert_the_check_fails(check: Callable[[], None]) -> ParityError:
    """Run a parity check that must fail below its tier; return the (first) `ParityError`."""
    try:
        check()
    except ParityError as exc:
        return exc
    except BaseExceptionGroup as group:  # several explicit examples failed
        matched, rest = group.split(ParityError)
        if matched is None or rest is not None:
            raise
        return matched.exceptions[0]  # type: ignore[return-value]
    pytest.fail("the case's check passed with the defect injected: the suite cannot see this defect")
