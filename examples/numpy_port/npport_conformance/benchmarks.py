"""asv benchmarks of npport: the port against the reference on the same input (timed with the suite's timer)."""

from __future__ import annotations

import numpy as np


class TimeSoftplus:
    params = (["numpy", "jax"],)
    param_names = ("side",)

    def setup(self, side: str) -> None:
        import jax
        import npport.implementation as impl
        import npport.reference as ref

        self.x = np.random.default_rng(0).standard_normal((512, 512)).astype(np.float32)
        self.fn = ref.softplus if side == "numpy" else (lambda x: jax.block_until_ready(impl.softplus(x)))
        self.fn(self.x)  # warm-up: compile outside the timing

    def time_softplus(self, side: str) -> None:
        self.fn(self.x)
