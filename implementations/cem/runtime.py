"""The loader and runtime of the JAX CEM planner's AOT artifacts (written by `implementations.cem.export`):
verify an artifact directory, deserialize its `jax.export` module, compile it at load so that the first
``predict_controls`` call is not a compile, and run the planner with its state carried between calls.

Importing this module is cheap: it needs neither PyTorch nor the planner's source, and imports JAX only when
an artifact is loaded (`load_pipeline`) or a `Pipeline` is built.

- A deserialized `jax.export` artifact is StableHLO, *compiled by XLA when first called*; "zero JIT
  overhead" is false. `load_pipeline` therefore compiles the function at load (``jax.jit(exp.call)
  .lower(...).compile()``), and can use JAX's persistent compilation cache (``cache_dir``) so that a later
  process loads faster. ``jax.experimental.serialize_executable`` is not used: it pickles the executable,
  and nothing here is unpickled.
- Artifacts expire (6 months backward, 3 weeks forward); the manifest records the JAX/jaxlib versions and
  the calling convention, and the loader refuses an artifact it cannot run with "regenerate it".
- The planner state (knot times, mean, std, key) is carried between calls: fresh noise on every call and
  knots shifted in time.
- A call is one compiled function, ``plan`` (policy warm start when the call is fresh, CEM optimize, controls
  at the query times), and one host round trip; `implementations.cem.export` says why.

Artifact directory (every file's SHA-256 in ``manifest.json``)::

    plan.jax                                 the serialized jax.export module
    config.json                              CEMConfig, replan steps, task
    templates.npz                            initial tk, std, key data, example state (allow_pickle=False)
    policy.safetensors [dynamics.safetensors] the PyTorch weights baked into the modules, and their
    weights.json                             manifest (`contracts.cem.networks`): the artifact is its own
                                             weights directory, so it can be re-exported from itself
    manifest.json                            versions, calling convention, platforms, shapes, hashes
"""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import numpy as np

from contracts.cem.config import CEMConfig, CEMInputError, check_array
from contracts.common import sha256_file

FORMAT = "cem-aot/2"  # 1: optimize, interp and policy as three modules
FUNCTIONS = ("plan",)
FILES = ("plan.jax", "config.json", "templates.npz")
MANIFEST = "manifest.json"
REGENERATE = "regenerate it with `python -m implementations.cem export --weights <weights dir> --out <dir>`"


class ArtifactError(RuntimeError):
    """An AOT artifact directory that cannot be loaded."""


class MissingArtifactError(ArtifactError, FileNotFoundError):
    """Files of the artifact are missing (they are named)."""


class CorruptArtifactError(ArtifactError):
    """A file does not match the SHA-256 (or size) recorded in the manifest, or cannot be parsed."""


class IncompatibleArtifactError(ArtifactError):
    """The artifact was produced by a JAX this one cannot run (or for another platform)."""


# -- the pipeline ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PlannerState:
    tk: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    key: np.ndarray


class Pipeline:
    """``predict_controls(state, current_time)``: NN warm start on the first call (or after `reset`), then the
    carried planner state; CEM optimize; controls for the next ``replan_steps`` plant steps.

    ``functions`` holds ``plan`` over flat arrays (compiled from an artifact, or jitted:
    `implementations.cem.export.jit_pipeline`): ``plan(x, t, tk, mean, std, key, fresh, tq) -> (tk, mean,
    std, key, best cost, controls)``, where a ``fresh`` call replaces ``mean`` by the policy's knots."""

    def __init__(
        self,
        config: CEMConfig,
        functions: Mapping[str, Callable[..., Any]],
        templates: Mapping[str, np.ndarray],
        replan_steps: int,
        source: str,
    ) -> None:
        import jax

        self._ready = jax.block_until_ready
        self.config = config
        self.functions = dict(functions)
        self.templates = {k: np.asarray(v) for k, v in templates.items()}
        # what a fresh call passes as the mean: `plan` replaces it by the policy's knots
        self._no_mean = np.zeros_like(self.templates["std0"])
        self.replan_steps = int(replan_steps)
        self.source = source
        self.state: PlannerState | None = None
        self.last_cost = float("nan")

    def warmup(self, rounds: int = 5, calls: int = 3) -> None:
        """Run the whole ``predict_controls`` path ``rounds`` times from a fresh planner state, ``calls`` calls
        each (so ``plan`` runs its policy branch ``rounds`` times and its carried branch ``rounds * (calls -
        1)`` times, with the Python around them), then restore the planner state: the next call starts as it
        would have.

        The fresh path runs in every round because a first call after load takes it: measured on a 2-core AMD
        EPYC, 10 fresh processes each (with the policy, optimize and interp still three executables), a
        warm-up of 2 calls (one fresh) left the first call at a median 1.52x the steady call, 15 calls in one
        round at 1.31x, and 5 rounds of 3 calls at 1.19x."""
        saved, cost = self.state, self.last_cost
        x = np.asarray(self.templates["x0"], np.float32)
        try:
            for _ in range(rounds):
                self.state = None
                for i in range(calls):
                    self.predict_controls(x, 0.02 * i)
        finally:
            self.state, self.last_cost = saved, cost

    def reset(self, key: np.ndarray | None = None) -> None:
        self.state = None
        if key is not None:
            self.templates["key"] = np.asarray(key, np.uint32)

    def predict_controls(self, state: Any, current_time: float, return_timing: bool = False) -> Any:
        spec = self.config.spec
        x = check_array("state", state, (spec.nx,)).astype(np.float32)
        t = np.asarray(current_time)
        if t.shape != () or t.dtype.kind not in "fiu" or not np.isfinite(t):
            raise CEMInputError(f"current_time must be a finite scalar; got {current_time!r}")
        t = np.float32(t)
        start = time.perf_counter()
        s = self.state
        fresh = s is None
        if fresh:
            # the policy's knots (computed by `plan`) are placed at the current time; std and key come from the
            # templates
            s = PlannerState(
                self.templates["tk0"] + t,
                self._no_mean,
                self.templates["std0"].copy(),
                self.templates["key"].copy(),
            )
        tq = (t + np.arange(self.replan_steps, dtype=np.float32) * np.float32(spec.dt)).astype(np.float32)
        t_call = time.perf_counter()
        out = self._ready(self.functions["plan"](x, t, s.tk, s.mean, s.std, s.key, np.bool_(fresh), tq))
        t_done = time.perf_counter()
        tk, mean, std, key, best, controls = (np.asarray(o) for o in out)
        self.state = PlannerState(tk, mean, std, key)
        self.last_cost = float(best)
        end = time.perf_counter()
        if not return_timing:
            return controls
        # cem_time: the compiled call (policy on a fresh call, optimize, interp); the rest is host work
        return controls, {"cem_time": t_done - t_call, "total_time": end - start}


# -- load ----------------------------------------------------------------------------------------------------


def _version(v: str) -> tuple[int, ...]:
    parts = []
    for p in v.split(".")[:3]:
        digits = "".join(ch for ch in p if ch.isdigit())
        parts.append(int(digits or 0))
    return tuple(parts)


def read_manifest(path: Path) -> dict[str, Any]:
    missing = [n for n in (MANIFEST, *FILES) if not (path / n).is_file()]
    if not path.is_dir():
        raise MissingArtifactError(f"AOT artifact directory {path} does not exist; {REGENERATE}")
    if missing:
        raise MissingArtifactError(f"AOT artifact {path} is missing files: {missing}; {REGENERATE}")
    try:
        manifest = json.loads((path / MANIFEST).read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise CorruptArtifactError(f"{path / MANIFEST} is not valid JSON ({e}); {REGENERATE}") from e
    if manifest.get("format") != FORMAT:
        raise IncompatibleArtifactError(
            f"{path} has artifact format {manifest.get('format')!r}, this loader reads {FORMAT!r}; {REGENERATE}"
        )
    return manifest


def verify(path: str | Path) -> dict[str, Any]:
    """Check the manifest, the versions and every file's size and SHA-256; return the manifest."""
    import jax
    from jax import export

    path = Path(path)
    manifest = read_manifest(path)
    listed = manifest.get("files", {})
    unlisted = [n for n in FILES if n not in listed]
    if unlisted:
        raise CorruptArtifactError(f"{path / MANIFEST} does not list {unlisted}; {REGENERATE}")
    missing = [n for n in listed if not (path / n).is_file()]
    if missing:
        raise MissingArtifactError(f"AOT artifact {path} is missing files: {missing}; {REGENERATE}")
    for name, meta in listed.items():
        size = (path / name).stat().st_size
        digest = sha256_file(path / name)
        if digest != meta.get("sha256"):
            how = (
                f"truncated: {size} of {meta.get('bytes')} bytes"
                if size < meta.get("bytes", 0)
                else (f"{size} bytes, expected {meta.get('bytes')}")
            )
            raise CorruptArtifactError(
                f"{path / name} is corrupted ({how}; SHA-256 {digest[:16]}... does not match the manifest's "
                f"{str(meta.get('sha256'))[:16]}...); {REGENERATE}"
            )
    made_with = manifest.get("jax_version", "?")
    if _version(made_with) > _version(jax.__version__):
        raise IncompatibleArtifactError(
            f"{path} was exported with JAX {made_with}, newer than this JAX {jax.__version__} (artifacts are "
            f"only guaranteed to load within 3 weeks forward); {REGENERATE} or upgrade JAX"
        )
    lo = export.minimum_supported_calling_convention_version
    hi = export.maximum_supported_calling_convention_version
    for name in FUNCTIONS:
        cc = manifest["functions"][name]["calling_convention_version"]
        if not lo <= cc <= hi:
            raise IncompatibleArtifactError(
                f"{path}/{name}.jax uses calling convention {cc}; JAX {jax.__version__} supports {lo}..{hi}. "
                f"The artifact comes from an incompatible JAX version ({made_with}) and must be regenerated: "
                f"{REGENERATE}"
            )
    return manifest


def enable_compilation_cache(cache_dir: str | Path) -> None:
    """JAX's persistent compilation cache in ``cache_dir`` (every entry written, however fast it compiled).
    Call it before the first compilation of the process."""
    import jax

    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def load_pipeline(path: str | Path, *, cache_dir: str | Path | None = None, warmup: bool = True) -> Pipeline:
    """Verify the artifact, deserialize its functions and compile them now (so the first call runs
    compiled code), and return the `Pipeline`. Nothing is unpickled.

    With ``warmup`` the whole prediction path also runs on the template state (`Pipeline.warmup`: 5 rounds
    from a fresh planner state, which is restored afterwards), so the first ``predict_controls`` does not
    pay first-run costs (buffer allocation, thread-pool start-up, Python paths); measured on a 2-core CPU,
    without it the first call took about 10x the steady state even though nothing was compiled."""
    import jax
    from jax import export

    path = Path(path)
    verify(path)
    if cache_dir is not None:
        enable_compilation_cache(cache_dir)
    try:
        cfg = json.loads((path / "config.json").read_text())
        config = CEMConfig.from_json(cfg["config"])
        replan_steps = int(cfg["replan_steps"])
        with np.load(path / "templates.npz", allow_pickle=False) as data:
            templates = {k: data[k] for k in data.files}
    except (KeyError, ValueError, TypeError, OSError) as e:
        raise CorruptArtifactError(
            f"{path}: config.json or templates.npz cannot be read ({e}); {REGENERATE}"
        ) from e
    platform = jax.default_backend()
    exported = {}
    for name in FUNCTIONS:  # deserialize and check everything before spending time on compilation
        try:
            exp = export.deserialize(bytearray((path / f"{name}.jax").read_bytes()))
        except Exception as e:
            raise IncompatibleArtifactError(
                f"{path}/{name}.jax cannot be deserialized by JAX {jax.__version__} ({type(e).__name__}: {e}); "
                f"{REGENERATE}"
            ) from e
        if platform not in exp.platforms:
            raise IncompatibleArtifactError(
                f"{path}/{name}.jax was exported for {list(exp.platforms)}, not for this {platform!r} backend; "
                f"{REGENERATE} on this platform (or export with --platforms cpu,cuda)"
            )
        exported[name] = exp
    compiled = {name: jax.jit(exp.call).lower(*exp.in_avals).compile() for name, exp in exported.items()}
    pipeline = Pipeline(config, compiled, templates, replan_steps, str(path))
    if warmup:
        pipeline.warmup()
    return pipeline


__all__ = [
    "FILES",
    "FORMAT",
    "FUNCTIONS",
    "MANIFEST",
    "ArtifactError",
    "CorruptArtifactError",
    "IncompatibleArtifactError",
    "MissingArtifactError",
    "Pipeline",
    "PlannerState",
    "enable_compilation_cache",
    "load_pipeline",
    "read_manifest",
    "verify",
]
