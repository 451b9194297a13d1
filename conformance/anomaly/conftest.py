"""Session fixtures of the anomaly conformance tests: the trained checkpoint and its artifacts, each made once
per process (shared with the parity cases through `conformance.anomaly.cases` and `.backends`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conformance.anomaly import backends, cases


@pytest.fixture(scope="session")
def ckpt() -> Path:
    return cases.trained()[0]


@pytest.fixture(scope="session")
def ref_model(ckpt: Path):
    return cases.reference_model(str(ckpt))


@pytest.fixture(scope="session")
def port(ckpt: Path):
    return cases._port(str(ckpt))


@pytest.fixture(scope="session")
def artifact(ckpt: Path):
    def get(fmt: str) -> Path:
        return backends.artifact(str(ckpt), fmt)

    return get


@pytest.fixture(scope="session")
def runtime(ckpt: Path):
    def get(backend: str):
        return backends.runtime(str(ckpt), backend)

    return get


def windows(B: int, seed: int = 0, L: int = 16, D: int = 8) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((B, L, D)).astype(np.float32)
