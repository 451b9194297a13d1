"""The contract of the CEM networks' weights between the PyTorch reference, which builds, fits and saves them
(`reference.cem.weights`, ``python -m reference.cem weights``), and the JAX side, which loads them
(`implementations.cem.networks`) and bakes them into its AOT artifacts (`implementations.cem.export`).

- Architecture: tanh MLPs with the layer sizes of `dynamics_sizes` and `policy_sizes`; their tensors are
  ``layers.{i}.weight`` (out, in) and ``layers.{i}.bias`` (out,), float32, PyTorch's ``nn.Linear`` layout
  (`expected_tensors`).
- A weights directory: ``policy.safetensors``, ``dynamics.safetensors`` (the learned task only) and
  ``weights.json``, the `WeightsManifest`: task, configuration, seed, fit time, and per network its file,
  layer sizes, SHA-256 and size in bytes. `read_weights_manifest` checks every file against it.

NumPy and the standard library only (the safetensors files are read and written by the two sides).
"""

from __future__ import annotations

import dataclasses
import itertools
import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from contracts.cem.config import CEMConfig, CEMInputError
from contracts.common import Spec, sha256_file, write_text

WEIGHTS_FORMAT = "cem-weights/1"
WEIGHTS_MANIFEST = "weights.json"
NETWORKS = ("policy", "dynamics")
DYNAMICS_HIDDEN = (128, 128)
POLICY_HIDDEN = (64, 64)
WRITE_WEIGHTS = "write them with `python -m reference.cem weights --task <task> --out <dir>`"


class WeightsError(CEMInputError):
    """A checkpoint that does not match the architecture (names, shapes, dtypes) or cannot be read, or a
    weights directory whose manifest is missing, unreadable or does not match its files."""


def dynamics_sizes(hidden: Sequence[int] = DYNAMICS_HIDDEN) -> list[int]:
    """[sin theta, cos theta, omega, u] -> (theta_dot, omega_dot)."""
    return [4, *hidden, 2]


def policy_sizes(config: CEMConfig, hidden: Sequence[int] = POLICY_HIDDEN) -> list[int]:
    """state (nx) -> K * nu spline knots."""
    spec = config.spec
    return [spec.nx, *hidden, config.num_knots * spec.nu]


def expected_tensors(sizes: Sequence[int]) -> dict[str, Spec]:
    """``name -> (shape, dtype)`` of a tanh MLP with layer ``sizes``: ``layers.{i}.weight`` (out, in) and
    ``layers.{i}.bias`` (out,), float32 (the form `contracts.common.state_dict_mismatch` compares)."""
    out: dict[str, Spec] = {}
    for i, (a, b) in enumerate(itertools.pairwise(sizes)):
        out[f"layers.{i}.weight"] = ((b, a), "float32")
        out[f"layers.{i}.bias"] = ((b,), "float32")
    return out


@dataclasses.dataclass(frozen=True)
class NetworkFile:
    file: str  # file name inside the weights directory
    sizes: tuple[int, ...]  # the MLP's layer sizes
    sha256: str
    bytes: int

    @property
    def hidden(self) -> tuple[int, ...]:
        return self.sizes[1:-1]


@dataclasses.dataclass(frozen=True)
class WeightsManifest:
    task: str
    config: CEMConfig  # the configuration the policy was sized for
    seed: int
    fit_seconds: float
    networks: dict[str, NetworkFile]  # "policy", and "dynamics" for the learned task
    format: str = WEIGHTS_FORMAT

    def to_json(self) -> dict[str, Any]:
        return {
            "format": self.format,
            "task": self.task,
            "config": self.config.to_json(),
            "seed": self.seed,
            "fit_seconds": self.fit_seconds,
            "networks": {
                name: {**dataclasses.asdict(n), "sizes": list(n.sizes)} for name, n in self.networks.items()
            },
        }

    @classmethod
    def from_json(cls, d: Mapping[str, Any]) -> WeightsManifest:
        networks = {
            name: NetworkFile(
                str(n["file"]), tuple(int(s) for s in n["sizes"]), str(n["sha256"]), int(n["bytes"])
            )
            for name, n in d["networks"].items()
        }
        return cls(
            task=str(d["task"]),
            config=CEMConfig.from_json(dict(d["config"])),
            seed=int(d["seed"]),
            fit_seconds=float(d["fit_seconds"]),
            networks=networks,
            format=str(d["format"]),
        )


def write_weights_manifest(
    directory: str | Path,
    config: CEMConfig,
    files: Mapping[str, tuple[str | Path, Sequence[int]]],
    *,
    seed: int,
    fit_seconds: float,
) -> Path:
    """Write ``weights.json`` (atomically) beside the network files ``name -> (path, layer sizes)``, which
    must lie in ``directory``; the manifest is written last, so a directory with one is complete."""
    directory = Path(directory)
    unknown = sorted(set(files) - set(NETWORKS))
    if unknown:
        raise WeightsError(f"unknown networks {unknown} (known: {', '.join(NETWORKS)})")
    networks = {}
    for name, (file, sizes) in files.items():
        path = Path(file)
        if path.parent.resolve() != directory.resolve():
            raise WeightsError(f"{path} is not in the weights directory {directory}")
        networks[name] = NetworkFile(
            path.name, tuple(int(s) for s in sizes), sha256_file(path), path.stat().st_size
        )
    manifest = WeightsManifest(config.task, config, int(seed), float(fit_seconds), networks)
    return write_text(directory / WEIGHTS_MANIFEST, json.dumps(manifest.to_json(), indent=2))


def read_weights_manifest(directory: str | Path) -> WeightsManifest:
    """Read ``weights.json`` and check that every network file it lists is there with its SHA-256, and that
    the networks are the task's (a policy, plus the dynamics for the learned task)."""
    directory = Path(directory)
    path = directory / WEIGHTS_MANIFEST
    if not path.is_file():
        raise WeightsError(
            f"{directory} has no {WEIGHTS_MANIFEST}: it is not a weights directory; {WRITE_WEIGHTS}"
        )
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise WeightsError(f"{path} is not valid JSON ({e}); {WRITE_WEIGHTS}") from e
    found = data.get("format") if isinstance(data, dict) else None
    if found != WEIGHTS_FORMAT:
        raise WeightsError(
            f"{path} has format {found!r}, this reader reads {WEIGHTS_FORMAT!r}; {WRITE_WEIGHTS}"
        )
    try:
        manifest = WeightsManifest.from_json(data)
    except (KeyError, TypeError, ValueError, AttributeError) as e:  # CEMInputError is a ValueError
        raise WeightsError(f"{path} cannot be read ({type(e).__name__}: {e}); {WRITE_WEIGHTS}") from e
    wanted = {"policy", "dynamics"} if manifest.task == "learned" else {"policy"}
    if set(manifest.networks) != wanted:
        raise WeightsError(
            f"{path} lists networks {sorted(manifest.networks)}; the {manifest.task!r} task needs {sorted(wanted)}"
        )
    for name, net in manifest.networks.items():
        f = directory / net.file
        if not f.is_file():
            raise WeightsError(f"{name} weights {f} are missing; {WRITE_WEIGHTS}")
        digest = sha256_file(f)
        if digest != net.sha256:
            raise WeightsError(
                f"{f} does not match {WEIGHTS_MANIFEST} ({f.stat().st_size} bytes, expected {net.bytes}; SHA-256 "
                f"{digest[:16]}... instead of {net.sha256[:16]}...); {WRITE_WEIGHTS}"
            )
    return manifest


__all__ = [
    "DYNAMICS_HIDDEN",
    "NETWORKS",
    "POLICY_HIDDEN",
    "WEIGHTS_FORMAT",
    "WEIGHTS_MANIFEST",
    "NetworkFile",
    "WeightsError",
    "WeightsManifest",
    "dynamics_sizes",
    "expected_tensors",
    "policy_sizes",
    "read_weights_manifest",
    "write_weights_manifest",
]
