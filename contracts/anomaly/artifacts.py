"""Contract of the anomaly detector's exported artifacts (NumPy and the standard library only): the one table of
artifact formats (file suffix, which side's model is exported, and each runtime that loads the format with its
backend name and framework), the artifacts' fixed interface (input/output names, example batch), and the JSON
manifest written beside every artifact (its schema, writer, reader and the check of an artifact against it).

Everyone reads the table: the reference's exporters (`reference.anomaly.export`: pt2, onnx, ts), the JAX port's
(`implementations.anomaly.export`: jax), the runtimes (`implementations.anomaly.runtimes`), the harness's
backends and health check (`conformance.anomaly`) and the benchmarks.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import platform
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from contracts.common import sha256_file, write_text

# -- the table of formats and runtimes ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class ArtifactRuntime:
    """A runtime that loads one format: its name (`implementations.anomaly.runtimes.load`), the harness
    backend (and tier-table) name, the framework it needs, and a one-line description."""

    name: str
    backend: str
    framework: str
    description: str
    format: str = ""  # the format it loads (filled in by `ArtifactFormat`)


@dataclasses.dataclass(frozen=True)
class ArtifactFormat:
    """An artifact format: its name, file suffix, whose model it exports (``"reference"``: the PyTorch
    reference, ``"implementation"``: the JAX port), and the runtimes that load it."""

    name: str
    suffix: str
    exported_from: str
    runtimes: tuple[ArtifactRuntime, ...]

    def __post_init__(self) -> None:
        if self.exported_from not in ("reference", "implementation"):
            raise ValueError(f"format {self.name!r}: exported_from {self.exported_from!r}")
        object.__setattr__(
            self, "runtimes", tuple(dataclasses.replace(r, format=self.name) for r in self.runtimes)
        )

    @property
    def filename(self) -> str:
        """The artifact's file name in an export directory (``anomaly.pt2``, ...)."""
        return f"anomaly{self.suffix}"


TABLE: tuple[ArtifactFormat, ...] = (
    ArtifactFormat(
        "pt2",
        ".pt2",
        "reference",
        (
            ArtifactRuntime(
                "torch-export",
                "torch-export",
                "torch",
                "the reference's torch.export program (.pt2, dynamic batch), saved and loaded",
            ),
        ),
    ),
    ArtifactFormat(
        "onnx",
        ".onnx",
        "reference",
        (
            ArtifactRuntime(
                "onnxruntime",
                "onnxruntime",
                "onnx",
                "the reference's ONNX export (dynamo exporter) on onnxruntime's CPU provider",
            ),
            ArtifactRuntime(
                "onnx-reference",
                "onnx-reference",
                "onnx",
                "the reference's ONNX export on onnx.reference.ReferenceEvaluator (pure Python)",
            ),
        ),
    ),
    ArtifactFormat(
        "ts",
        ".ts",
        "reference",
        (
            ArtifactRuntime(
                "torchscript",
                "torchscript",
                "torch",
                "frozen TorchScript of the reference (script, freeze), run under no_grad",
            ),
        ),
    ),
    ArtifactFormat(
        "jax",
        ".jaxexport",
        "implementation",
        (
            ArtifactRuntime(
                "jax-export",
                "jax-export-symbolic",
                "jax",
                "the JAX port serialized with jax.export (symbolic batch), deserialized and called",
            ),
        ),
    ),
)

FORMATS: dict[str, ArtifactFormat] = {f.name: f for f in TABLE}
"""format name -> format, in the table's order (``pt2``, ``onnx``, ``ts``, ``jax``)."""
RUNTIMES: dict[str, ArtifactRuntime] = {r.name: r for f in TABLE for r in f.runtimes}
"""runtime name -> runtime."""
BACKENDS: dict[str, ArtifactRuntime] = {r.backend: r for r in RUNTIMES.values()}
"""harness backend name -> runtime."""


def formats_of(side: str) -> tuple[str, ...]:
    """The formats that export ``side``'s model (``"reference"`` or ``"implementation"``)."""
    return tuple(f.name for f in TABLE if f.exported_from == side)


def format_of_path(path: str | Path) -> ArtifactFormat:
    """The format of an artifact file, by its suffix; `ArtifactError` for an unknown suffix."""
    suffix = Path(path).suffix
    for f in TABLE:
        if f.suffix == suffix:
            return f
    raise ArtifactError(
        f"{path}: unknown artifact suffix {suffix!r}; suffixes are "
        + ", ".join(f"{f.suffix} ({f.name})" for f in TABLE)
    )


# -- the artifacts' interface ------------------------------------------------------------------------------

EXAMPLE_BATCH = 2
"""The batch of the example input of every export: a batch-1 example lets a tracer 0/1-specialise the
"dynamic" batch dimension."""
MAX_BATCH = 4096
INPUT_NAMES = ("W",)
OUTPUT_NAMES = ("O1", "score")


class ArtifactError(ValueError):
    """An artifact that cannot be used: missing, corrupt, truncated, modified, or of another format/version."""


class ExportError(RuntimeError):
    """An exporter failed (after its fallbacks, where it has any), or was asked for a format it does not make."""


def check_formats(formats: tuple[str, ...] | list[str], side: str | None = None) -> None:
    """Raise `ExportError` for a format outside the table (or not exported from ``side``, where given)."""
    allowed = formats_of(side) if side else tuple(FORMATS)
    unknown = [f for f in formats if f not in allowed]
    if unknown:
        raise ExportError(f"unknown format(s) {unknown}; formats are {', '.join(allowed)}")


# -- the manifest ------------------------------------------------------------------------------------------

MANIFEST_VERSION = 1
VERSIONED_LIBRARIES = (
    "torch",
    "onnx",
    "onnxruntime",
    "onnxscript",
    "jax",
    "jaxlib",
    "flax",
    "numpy",
    "safetensors",
)


def library_versions() -> dict[str, str]:
    """Python's version and each of `VERSIONED_LIBRARIES`' (``"not installed"`` where absent)."""
    import importlib.metadata as md

    out = {"python": platform.python_version()}
    for dist in VERSIONED_LIBRARIES:
        try:
            out[dist] = md.version(dist)
        except md.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def manifest_path(artifact: str | Path) -> Path:
    """The manifest beside an artifact: ``<artifact>.json``."""
    artifact = Path(artifact)
    return artifact.with_name(artifact.name + ".json")


def manifest(fmt: str, artifact: Path, L: int, D: int, checksum: str, **extra: Any) -> dict[str, Any]:
    """The manifest of a written artifact: format, its SHA-256 and size, the interface (names, shapes, dtypes,
    dynamic and static dimensions), the example batch, the parameter checksum of the exported weights
    (`contracts.common.parameter_checksum`), library versions, and the exporter's ``extra`` fields
    (``exporter``, ``opset``, fallbacks, timings)."""
    return {
        "manifest_version": MANIFEST_VERSION,
        "format": fmt,
        "artifact": artifact.name,
        "artifact_sha256": sha256_file(artifact),
        "artifact_bytes": artifact.stat().st_size,
        "inputs": [{"name": "W", "shape": ["batch", L, D], "dtype": "float32"}],
        "outputs": [
            {"name": "O1", "shape": ["batch", L, D], "dtype": "float32"},
            {"name": "score", "shape": ["batch"], "dtype": "float32"},
        ],
        "dynamic_dims": {"W": {"0": "batch"}, "O1": {"0": "batch"}, "score": {"0": "batch"}},
        "static_dims": {"L": L, "D": D},
        "example_batch": EXAMPLE_BATCH,
        "parameter_checksum": checksum,
        "versions": library_versions(),
        **extra,
    }


def write_manifest(artifact: Path, data: dict[str, Any]) -> Path:
    """Write ``data`` as the artifact's manifest (atomically); its path."""
    return write_text(manifest_path(artifact), json.dumps(data, indent=2, sort_keys=True) + "\n")


def read_manifest(artifact: str | Path) -> dict[str, Any]:
    """The manifest beside ``artifact``; `ArtifactError` if it is absent, not JSON or of another version."""
    path = manifest_path(artifact)
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise ArtifactError(f"no manifest {path} beside the artifact {artifact}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"manifest {path} is not valid JSON: {e}") from None
    if not isinstance(m, dict) or m.get("manifest_version") != MANIFEST_VERSION:
        raise ArtifactError(
            f"manifest {path} has version {m.get('manifest_version') if isinstance(m, dict) else None!r}; "
            f"this code reads version {MANIFEST_VERSION}"
        )
    return m


def check_artifact(path: Path, fmt: str, verify: bool = True) -> dict[str, Any]:
    """The manifest of the artifact at ``path``, after checking that the file exists and, with ``verify``,
    that the manifest names format ``fmt`` and the file's SHA-256 (a corrupt, truncated or modified artifact
    fails here, before any library parses it). Without ``verify`` a missing manifest is tolerated."""
    if not path.is_file():
        raise ArtifactError(f"no artifact file at {path}")
    if not verify:
        try:
            return read_manifest(path)
        except ArtifactError:
            return {"static_dims": {}, "format": fmt}
    m = read_manifest(path)
    if m.get("format") != fmt:
        raise ArtifactError(
            f"{path} is a {m.get('format')!r} artifact according to its manifest, not {fmt!r}"
        )
    digest = sha256_file(path)
    if digest != m.get("artifact_sha256"):
        raise ArtifactError(
            f"{path} does not match its manifest (SHA-256 {digest[:16]}..., manifest {str(m.get('artifact_sha256'))[:16]}...): "
            "the file is corrupt, truncated or was modified after export; re-export it"
        )
    return m


# -- the TorchScript format's deprecation warnings ---------------------------------------------------------


@contextlib.contextmanager
def quiet_torchscript() -> Iterator[None]:
    """Swallow TorchScript's deprecation warnings (one per submodule on ``script``, one per ``load``; fatal
    under ``-W error``) and nothing else: other warnings raised inside the block are re-issued to the caller.
    Applied by the TorchScript exporter and by the TorchScript runtime alike."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        yield
    for w in caught:
        text = str(w.message)
        is_ts = issubclass(w.category, DeprecationWarning) and (
            "torch/jit" in w.filename.replace("\\", "/")
            or "TorchScript" in text
            or "torch.jit" in text
            or "torch.export" in text
        )
        if not is_ts:
            warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
