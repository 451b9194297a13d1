"""npport's parity cases: the reference and the port on Hypothesis-drawn inputs (rows: tiers.toml)."""

from __future__ import annotations

import npport.implementation as impl
import npport.reference as ref
from hypothesis import strategies as st

from conformance.cases import Case, register
from conformance.strategies import fields, shape_buckets

SHAPES = shape_buckets((8, 16), (32, 5))

register(
    Case(
        name="npport.softplus",
        reference=ref.softplus,
        implementation=impl.softplus,
        inputs=lambda dtype: st.fixed_dictionaries(
            {"x": fields(SHAPES, magnitude=st.sampled_from((1.0, 30.0)))}
        ),
    ),
    Case(
        name="npport.logsumexp",
        reference=ref.logsumexp,
        implementation=impl.logsumexp,
        inputs=lambda dtype: st.fixed_dictionaries(
            {
                "x": fields(SHAPES, magnitude=3.0, offset=st.sampled_from((0.0, 500.0))),
                "axis": st.sampled_from((0, 1)),
            }
        ),
    ),
)
