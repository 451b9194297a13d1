"""Negative controls: the GCM cases catch the classic porting defects, in the profile that gates merges.

Each control is an entry of the mutation catalogue (`conformance.gcm.catalogue`: a source patch of the port,
the seam, SciPy's 'wrap' mode name, a one-sided pole row, a substep that forgets to divide dt, ...), applied to
the imported port in process (`conformance.controls`). The case named for it must judge at least one of
its explicit examples below the required tier: explicit examples run first in every Hypothesis profile, the
``ci`` profile included, so a control caught there is caught by CI itself. ``python -m conformance mutate``
runs the whole catalogue, these included, against the whole suite.
"""

from __future__ import annotations

import pytest

from conformance.controls import apply_in_process, assert_explicit_examples_catch, explicit_failures
from conformance.gcm import catalogue

BY_ID = {m.id: m for m in catalogue.MUTANTS}

# mutant -> (case, dtype) whose explicit examples must catch it
CONTROLS = {
    "gcm.laplacian.seam-dlon": ("gcm.laplacian_sphere", "float64"),
    "gcm.laplacian.pole-rows-second-order": ("gcm.laplacian_sphere", "float64"),
    "gcm.laplacian.metric-floor-ignored": ("gcm.laplacian_sphere", "float64"),
    "gcm.hyperdiffuse.dt-not-split": ("gcm.hyperdiffuse", "float64"),
    "gcm.advect.scipy-wrap-period": ("gcm.advect_semilag", "float64"),
    "gcm.advect.pole-to-pole-wrap": ("gcm.advect_semilag.poles", "float64"),
    "gcm.shapiro.wrap-in-latitude": ("gcm.shapiro_filter", "float64"),
    "gcm.divergence.sign": ("gcm.divergence", "float64"),
    "gcm.q_sat.triple-point": ("gcm.q_sat", "float32"),
    "gcm.map_coordinates.jax-wrap-name": ("gcm.map_coordinates.order1", "float64"),
}


@pytest.mark.parametrize(("mutant_id", "case_dtype"), CONTROLS.items(), ids=list(CONTROLS))
def test_the_case_catches_the_defect_in_its_explicit_examples(
    mutant_id: str, case_dtype: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert_explicit_examples_catch(BY_ID[mutant_id], *case_dtype, monkeypatch)


def test_a_control_is_undone_after_its_test() -> None:
    """The in-process application is reversible: with the patch undone, the same explicit examples pass
    again (a control that leaked into later tests would fail them for the wrong reason)."""
    with pytest.MonkeyPatch.context() as mp:
        apply_in_process(BY_ID["gcm.laplacian.seam-dlon"], mp)
        assert explicit_failures("gcm.laplacian_sphere", "float64")
    assert not explicit_failures("gcm.laplacian_sphere", "float64")
