"""The backend registry: every way of computing a case that claims to match the reference.

A backend turns a case's implementation into the callable it runs (``prepare``), and says which framework
it belongs to, so the harness can apply the framework's precision policy. Subsystems add backends
without touching the harness, either by calling `register` from their own modules or through the
entry-point group ``conformance.backends`` (each entry point is a zero-argument callable that registers
its backends when called).
"""

from __future__ import annotations

import dataclasses
import importlib.metadata
from collections.abc import Callable
from functools import cache
from typing import Any

# Frameworks with a precision policy (`conformance.precision`); a backend of another framework is allowed and
# runs without one.
FRAMEWORKS = ("jax", "torch", "onnx", "numpy")
ENTRY_POINT_GROUP = "conformance.backends"


class BackendError(LookupError):
    """An unknown backend, or a conflicting registration."""


@dataclasses.dataclass(frozen=True)
class Backend:
    name: str
    description: str
    framework: str  # one of FRAMEWORKS
    prepare: Callable[[Callable[..., Any]], Callable[..., Any]]

    def __post_init__(self) -> None:
        if not self.framework or not self.framework.isidentifier():
            raise BackendError(
                f"backend {self.name!r}: framework must be a name (e.g. one of {FRAMEWORKS}); got {self.framework!r}"
            )


_REGISTRY: dict[str, Backend] = {}


def register(backend: Backend, *, replace: bool = False) -> Backend:
    existing = _REGISTRY.get(backend.name)
    if existing is not None and existing != backend and not replace:
        raise BackendError(f"backend {backend.name!r} is already registered ({existing.description})")
    _REGISTRY[backend.name] = backend
    return backend


def get(name: str) -> Backend:
    _load_entry_points()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise BackendError(
            f"unknown backend {name!r}; registered backends: {', '.join(sorted(_REGISTRY))}"
        ) from None


def names() -> list[str]:
    _load_entry_points()
    return sorted(_REGISTRY)


@cache
def _load_entry_points() -> None:
    """Backends of other packages (entry-point group ``conformance.backends``: a callable that registers
    them) and of the installed subsystems (their ``backends`` module registers them on import): both load
    before the registry is first read."""
    for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        ep.load()()
    from conformance import subsystems

    for sub in subsystems.discovered().values():
        sub.load_backends()


# -- built-in backends ----------------------------------------------------------------------------


def _identity(fn: Callable[..., Any]) -> Callable[..., Any]:
    return fn


def _eager(fn: Callable[..., Any]) -> Callable[..., Any]:
    def run(*args: Any, **kwargs: Any) -> Any:
        import jax

        with jax.disable_jit():
            return fn(*args, **kwargs)

    run.__name__ = f"eager_{getattr(fn, '__name__', 'fn')}"
    return run


register(
    Backend(
        "jax-jit",
        "the JAX implementation's public API, compiled with jax.jit (jitted once, at module level)",
        "jax",
        _identity,
    )
)
register(
    Backend(
        "jax-eager",
        "the JAX implementation run op by op under jax.disable_jit()",
        "jax",
        _eager,
    )
)
register(
    Backend("numpy", "a NumPy/SciPy implementation (e.g. the reference against itself)", "numpy", _identity)
)
