"""The AOT pipeline of the JAX CEM planner (the seed's goal, done honestly): `jax.export` artifacts of
``optimize``, ``interp`` and the policy warm start over flat arrays, a manifest that pins versions and
hashes, and a loader that compiles at load so that the first ``predict_controls`` call is not a compile.

What the seed claimed and what is true (``../shared/spec/cem.md`` section 3):

- A deserialized `jax.export` artifact is StableHLO, *compiled by XLA when first called*; "zero JIT
  overhead" is false. `load_pipeline` therefore compiles every function at load (``jax.jit(exp.call)
  .lower(...).compile()``), and can use JAX's persistent compilation cache (``cache_dir``) so that a later
  process loads faster. ``jax.experimental.serialize_executable`` is not used: it pickles the executable,
  and nothing here is unpickled.
- Artifacts expire (6 months backward, 3 weeks forward); the manifest records the JAX/jaxlib versions and
  the calling convention, and the loader refuses an artifact it cannot run with "regenerate it".
- Exported functions take flat arrays (no custom pytrees, typed keys travel as ``uint32[2]`` key data);
  the network weights are constants baked into the modules (and kept as safetensors for provenance).
- The planner state (knot times, mean, std, key) is carried between calls: fresh noise on every call and
  knots shifted in time, unlike the seed's pipeline, which reset them from a template on every call.

Artifact directory (every file's SHA-256 in ``manifest.json``)::

    optimize.jax  interp.jax  policy.jax     serialized jax.export modules
    config.json                              CEMConfig, replan steps, task
    templates.npz                            initial tk, std, key data, example state (allow_pickle=False)
    policy.safetensors [dynamics.safetensors] the PyTorch weights baked into the modules
    manifest.json                            versions, calling convention, platforms, shapes, hashes
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from implementations.cem import planner
from reference.cem.config import CEMConfig, CEMInputError, check_array

FORMAT = "cem-aot/1"
FUNCTIONS = ("optimize", "interp", "policy")
FILES = ("optimize.jax", "interp.jax", "policy.jax", "config.json", "templates.npz")
MANIFEST = "manifest.json"
REGENERATE = "regenerate it with `python -m implementations.cem export --task <task> --out <dir>`"


class ArtifactError(RuntimeError):
    """An AOT artifact directory that cannot be loaded."""


class MissingArtifactError(ArtifactError, FileNotFoundError):
    """Files of the artifact are missing (they are named)."""


class CorruptArtifactError(ArtifactError):
    """A file does not match the SHA-256 (or size) recorded in the manifest, or cannot be parsed."""


class IncompatibleArtifactError(ArtifactError):
    """The artifact was produced by a JAX this one cannot run (or for another platform)."""


# -- the flat functions that are exported ------------------------------------------------------------------


def flat_functions(
    config: CEMConfig,
    dynamics: Mapping[str, np.ndarray] | None,
    policy: Mapping[str, np.ndarray],
    replan_steps: int,
) -> dict[str, tuple[Callable[..., Any], tuple[jax.ShapeDtypeStruct, ...]]]:
    """``name -> (function of flat arrays, argument specs)``; the weights are closed over (constants)."""
    spec = config.spec
    K, nu, nx = config.num_knots, spec.nu, spec.nx
    dyn = None if dynamics is None else {k: jnp.asarray(v, jnp.float32) for k, v in dynamics.items()}
    pol = {k: jnp.asarray(v, jnp.float32) for k, v in policy.items()}
    f32 = jnp.float32

    def optimize(x0, time, tk, mean, std, key_data):
        out = planner._optimize_key(x0, time, tk, mean, std, key_data, config, dyn)
        return out["tk"], out["mean"], out["std"], out["key"], out["costs"].sum(axis=1).min()

    def interp(tq, tk, knots):
        return planner._interp(tq, tk, knots, config.spline_type)

    def policy_fn(x):
        return planner._policy_knots(pol, x, config)

    S = jax.ShapeDtypeStruct
    return {
        "optimize": (
            optimize,
            (S((nx,), f32), S((), f32), S((K,), f32), S((K, nu), f32), S((K, nu), f32), S((2,), jnp.uint32)),
        ),
        "interp": (interp, (S((replan_steps,), f32), S((K,), f32), S((1, K, nu), f32))),
        "policy": (policy_fn, (S((nx,), f32),)),
    }


# -- the pipeline ------------------------------------------------------------------------------------------


@dataclasses.dataclass
class PlannerState:
    tk: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    key: np.ndarray


class Pipeline:
    """``predict_controls(state, current_time)``: NN warm start on the first call (or after `reset`), then the
    carried planner state; CEM optimize; controls for the next ``replan_steps`` plant steps."""

    def __init__(
        self,
        config: CEMConfig,
        functions: Mapping[str, Callable[..., Any]],
        templates: Mapping[str, np.ndarray],
        replan_steps: int,
        source: str,
    ) -> None:
        self.config = config
        self.functions = dict(functions)
        self.templates = {k: np.asarray(v) for k, v in templates.items()}
        self.replan_steps = int(replan_steps)
        self.source = source
        self.state: PlannerState | None = None
        self.last_cost = float("nan")

    def warmup(self, calls: int = 2) -> None:
        """Run the whole ``predict_controls`` path ``calls`` times on the template state (policy, optimize,
        interp, and the Python around them), then forget the planner state: the next call starts fresh."""
        saved, cost = self.state, self.last_cost
        x = np.asarray(self.templates["x0"], np.float32)
        try:
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
        f = self.functions
        start = time.perf_counter()
        if self.state is None:
            mean = np.asarray(jax.block_until_ready(f["policy"](x)))
            # the policy's knots are placed at the current time; std and key come from the templates
            self.state = PlannerState(
                self.templates["tk0"] + t, mean, self.templates["std0"].copy(), self.templates["key"].copy()
            )
        t_nn = time.perf_counter()
        s = self.state
        out = jax.block_until_ready(f["optimize"](x, t, s.tk, s.mean, s.std, s.key))
        tk, mean, std, key, best = (np.asarray(o) for o in out)
        self.state = PlannerState(tk, mean, std, key)
        self.last_cost = float(best)
        t_cem = time.perf_counter()
        tq = (t + np.arange(self.replan_steps, dtype=np.float32) * np.float32(spec.dt)).astype(np.float32)
        controls = np.asarray(jax.block_until_ready(f["interp"](tq, tk, mean[None])))[0]
        end = time.perf_counter()
        if not return_timing:
            return controls
        return controls, {
            "nn_time": t_nn - start,
            "cem_time": t_cem - t_nn,
            "interp_time": end - t_cem,
            "total_time": end - start,
        }


def jit_pipeline(
    config: CEMConfig,
    dynamics: Mapping[str, np.ndarray] | None,
    policy: Mapping[str, np.ndarray],
    replan_steps: int = 2,
    key: int = 0,
) -> Pipeline:
    """The same pipeline with ``jax.jit`` functions (no export): the baseline the artifact must equal."""
    fns = flat_functions(config, dynamics, policy, replan_steps)
    jitted = {name: jax.jit(fn) for name, (fn, _) in fns.items()}
    return Pipeline(config, jitted, initial_templates(config, key), replan_steps, "jit")


def initial_templates(config: CEMConfig, key: int = 0) -> dict[str, np.ndarray]:
    spec = config.spec
    return {
        "tk0": np.asarray(planner.knot_offsets(config, jnp.float32)),
        "std0": np.full((config.num_knots, spec.nu), config.sigma_start, np.float32),
        "key": np.asarray(jax.random.key_data(jax.random.key(key, impl="threefry2x32")), np.uint32),
        "x0": np.asarray(spec.x0, np.float32),
    }


# -- export -------------------------------------------------------------------------------------------------


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _avals(avals: Any) -> list[dict[str, Any]]:
    return [{"shape": [int(d) for d in a.shape], "dtype": str(a.dtype)} for a in avals]


def export_pipeline(
    out_dir: str | Path,
    config: CEMConfig,
    *,
    policy: Mapping[str, np.ndarray],
    dynamics: Mapping[str, np.ndarray] | None = None,
    weight_files: Mapping[str, str | Path] | None = None,
    replan_steps: int = 2,
    key: int = 0,
    platforms: tuple[str, ...] | None = None,
) -> Path:
    """Export the pipeline's functions and write the artifact directory atomically (a temporary directory
    beside it, then a rename). ``weight_files`` (name -> safetensors path) are copied in for provenance."""
    from jax import export

    out_dir = Path(out_dir)
    if config.task == "learned" and dynamics is None:
        raise CEMInputError("exporting the 'learned' task needs the dynamics MLP's weights")
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        functions: dict[str, Any] = {}
        for name, (fn, specs) in flat_functions(config, dynamics, policy, replan_steps).items():
            kw = {"platforms": platforms} if platforms else {}
            exp = export.export(jax.jit(fn), **kw)(*specs)
            (tmp / f"{name}.jax").write_bytes(exp.serialize())
            functions[name] = {
                "file": f"{name}.jax",
                "calling_convention_version": exp.calling_convention_version,
                "platforms": list(exp.platforms),
                "in": _avals(exp.in_avals),
                "out": _avals(exp.out_avals),
            }
        cfg = {
            "config": config.to_json(),
            "replan_steps": replan_steps,
            "task": dataclasses.asdict(config.spec),
        }
        (tmp / "config.json").write_text(json.dumps(cfg, indent=2))
        with open(tmp / "templates.npz", "wb") as fh:
            np.savez(fh, **initial_templates(config, key))
        for name, src in (weight_files or {}).items():
            shutil.copyfile(src, tmp / f"{name}.safetensors")
        files = sorted(p.name for p in tmp.iterdir())
        import jaxlib

        manifest = {
            "format": FORMAT,
            "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__,
            "created_unix": int(time.time()),
            "functions": functions,
            "files": {n: {"sha256": _sha256(tmp / n), "bytes": (tmp / n).stat().st_size} for n in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


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
        digest = _sha256(path / name)
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
    jax.config.update("jax_compilation_cache_dir", str(cache_dir))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)


def load_pipeline(path: str | Path, *, cache_dir: str | Path | None = None, warmup: bool = True) -> Pipeline:
    """Verify the artifact, deserialize its functions and compile them now (so the first call runs
    compiled code), and return the `Pipeline`. Nothing is unpickled.

    With ``warmup`` the whole prediction path also runs twice on the template state (the planner state is
    then reset), so the first ``predict_controls`` does not pay first-run costs (buffer allocation,
    thread-pool start-up, Python paths); measured on a 2-core CPU, without it the first call took about
    10x the steady state even though nothing was compiled."""
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


# -- a task's artifact, from the PyTorch networks ----------------------------------------------------------


def export_task(
    task: str,
    out_dir: str | Path,
    *,
    config: CEMConfig | None = None,
    seed: int = 0,
    fit_seconds: float = 3.0,
    dynamics_hidden: tuple[int, ...] = (128, 128),
    policy_hidden: tuple[int, ...] = (64, 64),
    replan_steps: int = 2,
    platforms: tuple[str, ...] | None = None,
) -> Path:
    """Build the PyTorch networks (seeded init; the learned dynamics is fitted for ``fit_seconds`` to the
    analytic pendulum), save them as safetensors, convert them back through the checked loader, export."""
    from implementations.cem import networks
    from reference.cem import networks as torch_networks
    from reference.cem.config import DEFAULT_CONFIGS

    config = config or DEFAULT_CONFIGS[task]
    if config.task != task:
        raise CEMInputError(f"config is for task {config.task!r}, not {task!r}")
    with tempfile.TemporaryDirectory() as tmp:
        files: dict[str, Path] = {}
        pol_sizes = torch_networks.policy_sizes(config, policy_hidden)
        files["policy"] = torch_networks.save(
            torch_networks.init_mlp(pol_sizes, seed + 1), Path(tmp) / "policy.safetensors"
        )
        policy = networks.load_weights(files["policy"], networks.policy_sizes(config, policy_hidden))
        dynamics = None
        if task == "learned":
            model = torch_networks.init_mlp(torch_networks.dynamics_sizes(dynamics_hidden), seed)
            if fit_seconds > 0:
                torch_networks.fit_dynamics(model, seconds=fit_seconds, seed=seed)
            files["dynamics"] = torch_networks.save(model, Path(tmp) / "dynamics.safetensors")
            dynamics = networks.load_weights(files["dynamics"], networks.dynamics_sizes(dynamics_hidden))
        return export_pipeline(
            out_dir,
            config,
            policy=policy,
            dynamics=dynamics,
            weight_files=files,
            replan_steps=replan_steps,
            key=seed,
            platforms=platforms,
        )
