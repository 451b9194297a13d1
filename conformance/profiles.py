"""Hypothesis profiles of the suite: ``ci`` (the default), ``thorough`` and ``dev``.

Select one with pytest's ``--hypothesis-profile NAME`` or the environment variable ``CONFORMANCE_PROFILE``
(read once, by the pytest plugin, at configuration time).
"""

from __future__ import annotations

from hypothesis import HealthCheck, Phase, settings

ENV_VAR = "CONFORMANCE_PROFILE"
DEFAULT = "ci"

# JIT compilation makes the first example of every shape bucket slow; that is expected, not a health
# problem, and dense float fields are large by design.
_SUPPRESS = [HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.differing_executors]

PROFILES: dict[str, dict[str, object]] = {
    # Deterministic: the same examples on every run and machine, no database, no deadline, bounded
    # examples, and the reproduction blob printed on failure.
    "ci": {
        "derandomize": True,
        "database": None,
        "deadline": None,
        "max_examples": 12,
        "print_blob": True,
        "suppress_health_check": _SUPPRESS,
        "phases": (Phase.explicit, Phase.reuse, Phase.generate, Phase.shrink),
    },
    # Random seeds and many more examples; failures are kept in the local example database.
    "thorough": {
        "derandomize": False,
        "deadline": None,
        "max_examples": 200,
        "print_blob": True,
        "suppress_health_check": _SUPPRESS,
    },
    # A quick look while developing.
    "dev": {
        "derandomize": False,
        "deadline": None,
        "max_examples": 3,
        "print_blob": True,
        "suppress_health_check": _SUPPRESS,
        "phases": (Phase.explicit, Phase.reuse, Phase.generate),
    },
}


def register() -> None:
    for name, kwargs in PROFILES.items():
        settings.register_profile(name, **kwargs)


# The fewest drawn examples any case gets (the profile's own count if it is smaller): an expensive case runs
# fewer examples, but never so few that its strategy's branches are left to one or two draws; its structural
# branches also run as explicit examples (`conformance.cases.Case.explicit`).
MIN_EXAMPLES = 4


def scaled(fraction: float) -> settings:
    """The active profile with ``max_examples`` scaled by ``fraction`` (at least `MIN_EXAMPLES`): for expensive
    cases."""
    base = settings.default
    floor = min(MIN_EXAMPLES, base.max_examples)
    return settings(base, max_examples=max(floor, round(base.max_examples * fraction)))


register()
