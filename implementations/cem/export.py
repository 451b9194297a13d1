"""The export side of the JAX CEM planner's AOT pipeline: a `jax.export` artifact of ``plan`` (one planner
call: the policy warm start on a fresh call, one CEM optimize, the controls interpolated at the query times)
over flat arrays, with a manifest that pins versions and hashes; read back by `implementations.cem.runtime`.

- One exported function per call, not one per stage: XLA:CPU charges a call 17-58 us more when the executable
  run just before it was a different one (measured on a 2-core AMD EPYC: a trivial function 8 us back to
  back, 25 us after the optimize; the policy 10.5 us back to back, 60-68 us after the optimize), so a
  policy -> optimize -> interp chain of three executables paid it on every stage. The policy runs under a
  ``lax.cond`` on the ``fresh`` flag, so a carried call does not compute it.
- Exported functions take flat arrays (no custom pytrees, typed keys travel as ``uint32[2]`` key data);
  the network weights are constants baked into the modules.
- The weights come from a weights directory written by the PyTorch reference (``python -m reference.cem
  weights``, `contracts.cem.networks`): `export_weights` loads them through the checked loader
  (`implementations.cem.networks`) and copies them, with their manifest, into the artifact for provenance.
- `jit_pipeline` is the same pipeline with ``jax.jit`` functions (no export): the baseline the artifact must
  equal bit for bit.
"""

from __future__ import annotations

import dataclasses
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

from contracts.cem.config import CEMConfig, CEMInputError
from contracts.cem.networks import WEIGHTS_MANIFEST, read_weights_manifest
from contracts.common import sha256_file
from implementations.cem import networks, planner
from implementations.cem.runtime import FORMAT, MANIFEST, Pipeline

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

    def plan(x0, time, tk, mean, std, key_data, fresh, tq):
        # fresh (the first call, or after a reset): the policy's knots replace the placeholder mean
        mean = jax.lax.cond(fresh, lambda: planner._policy_knots(pol, x0, config), lambda: mean)
        out = planner._optimize_key(x0, time, tk, mean, std, key_data, config, dyn)
        controls = planner._interp(tq, out["tk"], out["mean"][None], config.spline_type)[0]
        return out["tk"], out["mean"], out["std"], out["key"], out["costs"].sum(axis=1).min(), controls

    S = jax.ShapeDtypeStruct
    knots = S((K, nu), f32)
    return {
        "plan": (
            plan,
            (
                S((nx,), f32),
                S((), f32),
                S((K,), f32),
                knots,
                knots,
                S((2,), jnp.uint32),
                S((), jnp.bool_),
                S((replan_steps,), f32),
            ),
        ),
    }


def initial_templates(config: CEMConfig, key: int = 0) -> dict[str, np.ndarray]:
    spec = config.spec
    return {
        "tk0": np.asarray(planner.knot_offsets(config, jnp.float32)),
        "std0": np.full((config.num_knots, spec.nu), config.sigma_start, np.float32),
        "key": np.asarray(jax.random.key_data(jax.random.key(key, impl="threefry2x32")), np.uint32),
        "x0": np.asarray(spec.x0, np.float32),
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


# -- export -------------------------------------------------------------------------------------------------


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
    beside it, then a rename). ``weight_files`` (file name in the artifact -> source path) are copied in for
    provenance."""
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
            shutil.copyfile(src, tmp / name)
        files = sorted(p.name for p in tmp.iterdir())
        import jaxlib

        manifest = {
            "format": FORMAT,
            "jax_version": jax.__version__,
            "jaxlib_version": jaxlib.__version__,
            "created_unix": int(time.time()),
            "functions": functions,
            "files": {n: {"sha256": sha256_file(tmp / n), "bytes": (tmp / n).stat().st_size} for n in files},
        }
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2))
        if out_dir.exists():
            shutil.rmtree(out_dir)
        os.replace(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def export_weights(
    weights_dir: str | Path,
    out_dir: str | Path,
    *,
    config: CEMConfig | None = None,
    replan_steps: int = 2,
    key: int | None = None,
    platforms: tuple[str, ...] | None = None,
) -> Path:
    """Export the pipeline of the weights directory ``weights_dir`` (its manifest names the task, the
    configuration and the networks; an artifact is one too). ``config`` overrides the manifest's (same task,
    and a policy of the same output size); ``key`` (the PRNG seed of the first call) defaults to the weights'
    seed. The networks are checked tensor by tensor against their manifest's layer sizes."""
    weights_dir = Path(weights_dir)
    manifest = read_weights_manifest(weights_dir)
    config = config or manifest.config
    if config.task != manifest.task:
        raise CEMInputError(
            f"config is for task {config.task!r}, the weights in {weights_dir} for {manifest.task!r}"
        )
    pol = manifest.networks["policy"]
    policy = networks.load_weights(weights_dir / pol.file, networks.policy_sizes(config, pol.hidden))
    weight_files = {pol.file: weights_dir / pol.file, WEIGHTS_MANIFEST: weights_dir / WEIGHTS_MANIFEST}
    dynamics = None
    if "dynamics" in manifest.networks:
        dyn = manifest.networks["dynamics"]
        dynamics = networks.load_weights(weights_dir / dyn.file, networks.dynamics_sizes(dyn.hidden))
        weight_files[dyn.file] = weights_dir / dyn.file
    return export_pipeline(
        out_dir,
        config,
        policy=policy,
        dynamics=dynamics,
        weight_files=weight_files,
        replan_steps=replan_steps,
        key=manifest.seed if key is None else key,
        platforms=platforms,
    )


__all__ = ["export_pipeline", "export_weights", "flat_functions", "initial_templates", "jit_pipeline"]
