"""The port asks for full-precision matrix products itself.

The parity runs pin ``jax_default_matmul_precision="highest"`` for the whole process, and XLA's CPU backend
computes float32 products in float32 whatever the setting: a dot that leaves its precision to the global
default passes every parity test here and runs as TF32 (GPU) or bf16 passes (TPU) in a deployment that does
not set the flag. So this test lowers the port's programs with the global default set to ``"default"`` (not
the pin) and reads the precision of every ``dot_general`` in the StableHLO: each must say HIGHEST.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

from conformance.controls import dot_precisions
from implementations.gcm import ndimage as port

# Every mode whose order-3 prefilter runs as a matrix product (all but 'grid-wrap', which uses an FFT).
DENSE_PREFILTER_MODES = ("constant", "grid-constant", "nearest", "mirror", "reflect", "wrap")


@pytest.mark.parametrize("mode", DENSE_PREFILTER_MODES)
def test_the_spline_prefilter_requests_highest_precision_itself(mode: str) -> None:
    x = np.ones((12, 20), np.float32)
    coords = np.zeros((2, 5), np.float32)
    with jax.default_matmul_precision("default"):
        text = port._map_coordinates.lower(
            x, coords, np.float32(0.0), order=3, mode=mode, prefilter=True
        ).as_text()
    dots = dot_precisions(text)
    assert dots, "the dense prefilter is a matrix product per axis"
    assert all(p == ("HIGHEST", "HIGHEST") for p in dots), dots


def test_a_product_left_to_the_default_is_seen() -> None:
    """Negative control: a plain ``a @ b`` lowered without the pin reads DEFAULT."""
    x = np.ones((4, 4), np.float32)
    with jax.default_matmul_precision("default"):
        text = jax.jit(lambda a, b: a @ b).lower(x, x).as_text()
    assert dot_precisions(text) == [("DEFAULT", "DEFAULT")]
