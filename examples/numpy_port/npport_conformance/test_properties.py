"""A property of the port that holds without the reference: softplus(x) - softplus(-x) == x."""

from __future__ import annotations

import npport.implementation as impl
import numpy as np


def test_softplus_is_x_plus_softplus_of_minus_x() -> None:
    x = np.linspace(-20, 20, 101)
    np.testing.assert_allclose(np.asarray(impl.softplus(x)) - np.asarray(impl.softplus(-x)), x, atol=1e-5)
