"""The catalogue of realistic porting bugs of the cem port, for `python -m conformance mutate`: each entry is a
source patch of `implementations/cem` that a porter could plausibly make, and the suite, under the `ci`
profile, must fail on it."""

from __future__ import annotations

from conformance.mutate import Mutant

MUTANTS: list[Mutant] = []
