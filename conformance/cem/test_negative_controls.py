"""Negative controls: the CEM cases catch the classic porting defects, in the profile that gates merges.

Each control is an entry of the mutation catalogue (`conformance.cem.catalogue`: a source patch of the JAX
port; a common PyTorch CEM has several of these defects: ddof 1, no clipping, no explore
split; the others are easy slips: the 'left' side of searchsorted, a control grid that excludes the last knot,
a warm start that shifts the knot times without re-interpolating the mean, natural instead of not-a-knot
cubic ends), applied to the imported port in process (`conformance.controls`). The case named for it must judge at least one of its explicit examples below the required tier:
explicit examples run first in every Hypothesis profile, the ``ci`` profile included, so a control caught
there is caught by CI itself. ``python -m conformance mutate`` runs the whole catalogue against the whole
suite.
"""

from __future__ import annotations

import pytest

from conformance.cem import catalogue
from conformance.controls import assert_explicit_examples_catch

BY_ID = {m.id: m for m in catalogue.MUTANTS}

# mutant -> (case, dtype) whose explicit examples must catch it
CONTROLS = {
    "cem.interp.searchsorted-left": ("cem.interp.zero", "float32"),
    "cem.interp.linear-no-extrapolation": ("cem.interp.linear", "float32"),
    "cem.interp.cubic-natural-start": ("cem.interp.cubic", "float32"),
    "cem.rollout.grid-spacing-dt": ("cem.rollout.pendulum", "float32"),
    "cem.rollout.cost-before-step": ("cem.rollout.cartpole", "float32"),
    "cem.elite.std-ddof1": ("cem.iteration.pendulum", "float32"),
    "cem.samples.unclipped": ("cem.iteration.cartpole", "float32"),
    "cem.samples.no-explore-split": ("cem.iteration.pendulum", "float32"),
    "cem.elite.no-sigma-floor": ("cem.iteration.learned", "float32"),
    "cem.warm-start.shift-only": ("cem.optimize.pendulum", "float32"),
}


@pytest.mark.parametrize(("mutant_id", "case_dtype"), CONTROLS.items(), ids=list(CONTROLS))
def test_the_case_catches_the_defect_in_its_explicit_examples(
    mutant_id: str, case_dtype: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_explicit_examples_catch(BY_ID[mutant_id], *case_dtype, monkeypatch)
