"""Negative controls: the GCM cases must catch the porting defects the spec warns about.

Each mutant is the kernel with one realistic defect (the seam, SciPy's 'wrap' mode name, a one-sided pole
row, a substep that forgets to divide dt, ...). For each, Hypothesis searches the case's own input
distribution for an example that the case's oracle (scale, tier, max guard) judges below the required
tier. If no such example exists, the case could not have caught the defect, and this test fails.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax.scipy.ndimage as jndi
import numpy as np
import pytest
from hypothesis import find, settings
from scipy import ndimage

import reference.gcm as ref
from conformance import cases, compare
from conformance.gcm import cases as gcm_cases
from reference.gcm import dynamics as rdyn
from reference.gcm import physics as rphys


def _lap_seam(F, dlat, dlon, coslat, a):
    """The original model's convention: longitude includes its endpoint, so dlon is 2 pi / (n - 1)."""
    n = F.shape[1]
    return rdyn._laplacian(F, dlat, 2 * np.pi / (n - 1), np.asarray(coslat)[:, None], a)


def _lap_edge_order2(F, dlat, dlon, coslat, a):
    """np.gradient(edge_order=2): second-order one-sided pole rows instead of first-order."""
    c = np.asarray(coslat)[:, None]

    def d(x):
        return np.gradient(x, dlat, axis=0, edge_order=2)

    merid = d(c * d(F)) / c
    zonal = (np.roll(F, -1, axis=1) - 2 * F + np.roll(F, 1, axis=1)) / (c * c * dlon * dlon)
    return (merid + zonal) / (a * a)


def _lap_no_floor(F, dlat, dlon, coslat, a):
    """Ignores the metric floor: true cos(lat), clamped only away from zero."""
    n_lat = F.shape[0]
    c = np.maximum(np.cos(np.linspace(-np.pi / 2, np.pi / 2, n_lat)), 1e-3)[:, None]
    return rdyn._laplacian(F, dlat, dlon, c, a)


def _hyper_dt_not_split(F, k4, dt, n_substeps, dlat, dlon, coslat, a):
    return rdyn._hyperdiffuse(F, k4, dt, n_substeps, dlat, dlon, np.asarray(coslat)[:, None], a)


def _advect_scipy_wrap(field, u, v, dt, a, dlat, dlon, coslat):
    """SciPy's 'wrap' (period n - 1) where 'grid-wrap' (period n) is meant: the spec's first pitfall."""
    jd, id_ = rdyn._departure_points(u, v, dt, a, dlat, dlon, np.asarray(coslat)[:, None])
    return ndimage.map_coordinates(field, [jd, id_], order=1, mode="wrap", prefilter=False)


def _advect_pole_wrap(field, u, v, dt, a, dlat, dlon, coslat):
    """No latitude clamp: departure points past a pole wrap to the other pole."""
    n_lat, n_lon = field.shape
    j = np.arange(n_lat)[:, None]
    i = np.arange(n_lon)[None, :]
    jd = j - v * dt / (a * dlat)
    id_ = i - u * dt / (a * np.maximum(np.asarray(coslat)[:, None], 1e-6) * dlon)
    return ndimage.map_coordinates(field, [jd, id_], order=1, mode="grid-wrap", prefilter=False)


def _shapiro_wrap_lat(F, n_passes=1):
    w = np.array([0.25, 0.5, 0.25])
    for _ in range(n_passes):
        F = ndimage.convolve1d(ndimage.convolve1d(F, w, axis=1, mode="wrap"), w, axis=0, mode="wrap")
    return F


def _divergence_sign(u, v, dlat, dlon, coslat, a):
    c = np.asarray(coslat)[:, None]
    return rdyn._zero_poles((rdyn._d_lambda(u, dlon) - rdyn._d_phi_interior(v * c, dlat)) / (a * c))


def _q_sat_triple_point(t, p=1.0e5):
    return rphys.q_sat(np.asarray(t) - 0.01, p)  # 273.16 K where 273.15 K is meant


def _map1_jax_wrap(input, coordinates, output=None, order=1, mode="constant", cval=0.0, prefilter=True):
    """Passing SciPy's mode name straight to jax.scipy.ndimage ('wrap' there is SciPy's 'grid-wrap')."""
    jmode = {"grid-wrap": "wrap", "grid-constant": "constant", "grid-mirror": "reflect"}.get(mode, mode)
    return np.asarray(jndi.map_coordinates(input, list(coordinates), order=order, mode=jmode, cval=cval))


MUTANTS: list[tuple[str, str, Callable[..., Any]]] = [
    ("gcm.laplacian_sphere", "seam (dlon of a grid that repeats 360 degrees)", _lap_seam),
    ("gcm.laplacian_sphere", "second-order one-sided pole rows", _lap_edge_order2),
    ("gcm.laplacian_sphere", "metric floor ignored", _lap_no_floor),
    ("gcm.hyperdiffuse", "substeps use dt, not dt / n", _hyper_dt_not_split),
    ("gcm.advect_semilag", "SciPy 'wrap' (period n - 1)", _advect_scipy_wrap),
    ("gcm.advect_semilag.poles", "pole-to-pole wrap in latitude", _advect_pole_wrap),
    ("gcm.shapiro_filter", "'wrap' in latitude", _shapiro_wrap_lat),
    ("gcm.divergence", "sign of the meridional term", _divergence_sign),
    ("gcm.q_sat", "273.16 K for 273.15 K", _q_sat_triple_point),
    ("gcm.map_coordinates.order1", "SciPy mode names passed to jax.scipy.ndimage", _map1_jax_wrap),
]


def _wrap_like(case: cases.Case, mutant: Callable[..., Any]) -> Callable[..., Any]:
    if case is gcm_cases.HYPERDIFFUSE:
        return gcm_cases._with_increment(mutant)
    return mutant


@pytest.mark.parametrize(("case_name", "defect", "mutant"), MUTANTS, ids=[f"{c}: {d}" for c, d, _ in MUTANTS])
def test_the_case_catches_the_defect(case_name: str, defect: str, mutant: Callable[..., Any]) -> None:
    case = cases.get(case_name)
    broken = _wrap_like(case, mutant)

    def caught(spec: dict[str, Any]) -> bool:
        kwargs = case.kwargs(spec)
        result = compare(
            case.reference(**kwargs), broken(**kwargs), case=case_name, backend="jax-jit", dtype="float64"
        )
        return not result.passed

    example = find(case.inputs("float64"), caught, settings=settings(max_examples=50, database=None))
    assert example is not None


def test_the_mutants_differ_from_the_reference_only_by_their_defect() -> None:
    """Sanity: on an input where the defect cannot act, a mutant agrees with the reference (e.g. the pole wrap
    mutant with v = 0 never crosses a pole)."""
    grid = ref.Grid(17, 32)
    rng = np.random.default_rng(0)
    F, u = rng.standard_normal(grid.shape), rng.uniform(-20, 20, grid.shape)
    v = np.zeros(grid.shape)
    dlat, dlon, coslat, a = grid.metrics()
    np.testing.assert_allclose(
        _advect_pole_wrap(F, u, v, 600.0, a, dlat, dlon, coslat),
        ref.advect_semilag(F, u, v, 600.0, a, dlat, dlon, coslat),
        rtol=0,
        atol=1e-13,
    )
