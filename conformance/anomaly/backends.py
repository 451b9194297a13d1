"""Backends of the anomaly subsystem: the exported artifacts of the reference detector, each run in its own
runtime (`implementations.anomaly.runtimes`), and the deserialized ``jax.export`` module of the JAX port; one
backend per runtime of the artifact table (`contracts.anomaly.artifacts`).

``prepare`` receives the case's implementation, a detector bound to a checkpoint (it has a ``checkpoint``
attribute: the directory of ``model.safetensors`` + ``config.json``), exports that checkpoint to the backend's
format once per process (cached, in a temporary directory), loads the artifact and returns its runtime.
`export` is the harness's one entry to both sides' exporters: each format goes to the exporter of the side
whose model it exports (`reference.anomaly.export` or `implementations.anomaly.export`).
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from collections.abc import Callable
from functools import cache
from pathlib import Path
from typing import Any

from conformance.backends import Backend, register
from contracts.anomaly.artifacts import BACKENDS, FORMATS, check_formats

_EXPORTERS = {"reference": "reference.anomaly.export", "implementation": "implementations.anomaly.export"}

_DIRS: list[str] = []


def _cleanup() -> None:
    for d in _DIRS:
        shutil.rmtree(d, ignore_errors=True)


atexit.register(_cleanup)


def export(checkpoint: str | Path, formats: tuple[str, ...], out_dir: str | Path) -> dict[str, Path]:
    """Export ``checkpoint`` to each of ``formats`` (any of the table's) into ``out_dir``, each by the exporter
    of the side whose model the format exports; ``{format: artifact path}`` in the order of ``formats``."""
    import importlib

    check_formats(formats)
    out: dict[str, Path] = {}
    for side, module in _EXPORTERS.items():
        mine = tuple(f for f in formats if FORMATS[f].exported_from == side)
        if mine:
            out.update(importlib.import_module(module).export(checkpoint, mine, out_dir))
    return {f: out[f] for f in formats}


@cache
def artifact(checkpoint: str, fmt: str) -> Path:
    """Export ``checkpoint`` to ``fmt`` once per process; the path of the artifact (manifest beside it)."""
    out = tempfile.mkdtemp(prefix=f"anomaly-{fmt}-")
    _DIRS.append(out)
    return export(checkpoint, (fmt,), out)[fmt]


@cache
def runtime(checkpoint: str, backend: str) -> Callable[..., Any]:
    from implementations.anomaly.runtimes import load

    rt = BACKENDS[backend]
    return load(rt.name, artifact(checkpoint, rt.format))


def _preparer(backend: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def prepare(impl: Callable[..., Any]) -> Callable[..., Any]:
        ckpt = getattr(impl, "checkpoint", None)
        if ckpt is None:
            raise TypeError(
                f"backend {backend!r} runs an exported artifact of a checkpoint; the case's implementation must "
                f"have a 'checkpoint' attribute (got {impl!r})"
            )
        return runtime(str(ckpt), backend)

    return prepare


for _rt in BACKENDS.values():
    register(Backend(_rt.backend, _rt.description, _rt.framework, _preparer(_rt.backend)))
