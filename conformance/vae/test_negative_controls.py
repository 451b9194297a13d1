"""Negative controls: under the profile CI runs, the VAE cases catch each porting defect the spec measured.

Each control injects one defect of `conformance.vae.mutants` into the port (a function replacement, run eagerly
so that the replacement is traced) and runs the case's own parity check exactly as the generic parity test runs
it: the active profile's explicit examples and derandomized draws, the case's oracle and required tier. The
control passes only if that check fails. Shrinking is skipped (it only minimises the failing example), and
nothing is recorded for the report. The case's explicit examples cover each defect's branch, so a control stops
at its first example or two.

The same defects, and many more, are source patches in the mutation catalogue (`conformance.vae.catalogue`, run
by ``python -m conformance mutate``).
"""

from __future__ import annotations

import pytest

from conformance import cases, precision
from conformance.controls import assert_the_check_fails, ci_check_without_shrinking
from conformance.vae.mutants import PATCHES, patched

# (case, defect): the defect is a key of PATCHES
CONTROLS: list[tuple[str, str]] = [
    ("vae.group_norm.offset", "fast-variance"),
    ("vae.resnet_block3d.offset", "fast-variance"),
    ("vae.group_norm", "unbiased-variance"),
    ("vae.group_norm", "eps-1e-5"),
    ("vae.group_norm.bf16_rounding", "gn-bf16-statistics"),
    ("vae.downsample3d", "no-transpose"),
    ("vae.down_block3d", "no-transpose"),
    ("vae.downsample3d", "same-padding"),
    ("vae.spatial_norm3d", "half-pixel-nearest"),
    ("vae.upsample3d", "t1-two-frames"),
]


@pytest.mark.parametrize(("case_name", "defect"), CONTROLS, ids=[f"{c}: {d}" for c, d in CONTROLS])
def test_the_ci_check_catches_the_defect(case_name: str, defect: str) -> None:
    precision.apply()
    case = cases.get(case_name)
    with ci_check_without_shrinking(), patched(PATCHES[defect]):
        err = assert_the_check_fails(lambda: cases.check(case, "float32", "jax-jit"))
    assert err.result.case == case_name


def test_the_unmutated_port_passes_the_same_eager_check() -> None:
    """Sanity of the controls: with no defect the same eager check passes (so the controls test the defect)."""
    precision.apply()
    with ci_check_without_shrinking(), patched([]):
        cases.check(cases.get("vae.group_norm.offset"), "float32", "jax-jit")
