"""The `jax.export` AOT pipeline (`implementations.cem.export` from the reference's weights,
`implementations.cem.runtime`): bit-for-bit equal to the jitted pipeline, the same controls and planner state
as the PyTorch reference run through the pipeline's contract (warm start at a time other than 0, noise from
the key, state carried between calls), no compilation on the first call after load, and every bad-input path
(missing, truncated, corrupted or incompatible artifacts and weights; bad states) a clear, specific error.

The artifacts use continuous splines: the pipeline's first call places the policy's knots at the very times
where the warm start re-interpolates them, a tie that a zero-order lookup resolves by rounding (see
`conformance.cem.cases`), while a continuous spline is insensitive to it."""

from __future__ import annotations

import dataclasses
import json
import pickle
import re
import shutil
from pathlib import Path

import jax
import numpy as np
import pytest
import torch

import reference.cem as ref
from conformance import assert_parity, compiles
from conformance.cem.cases import ELITE_MARGIN, STATE_BOX, key_noise
from conformance.exactness import Exactness, assert_bitwise
from contracts.cem.config import CEMConfig, CEMInputError
from contracts.cem.networks import WEIGHTS_MANIFEST, read_weights_manifest
from contracts.common import sha256_file
from implementations.cem import export, networks, runtime
from reference.cem import networks as ref_networks
from reference.cem.weights import write_weights

SMALL = {
    "pendulum": CEMConfig(
        task="pendulum", num_samples=32, num_elites=6, sigma_start=0.5, iterations=2, spline_type="linear"
    ),
    "learned": CEMConfig(task="learned", num_samples=32, num_elites=6, sigma_start=0.5, spline_type="cubic"),
    "pointmass": CEMConfig(
        task="pointmass", num_samples=32, num_elites=6, sigma_start=0.5, sigma_min=0.1, spline_type="linear"
    ),
}
EXPORT_SEED = 3
HIDDEN = {"dynamics_hidden": (16, 16), "policy_hidden": (16, 16)}


def _export(task: str, out: Path, *, seed: int = 0, fit_seconds: float = 0.0, **kw) -> Path:
    """The reference writes the task's weights (PyTorch), the JAX side exports them."""
    weights = write_weights(
        out.parent / f"{out.name}-weights", SMALL[task], seed=seed, fit_seconds=fit_seconds, **HIDDEN
    )
    return export.export_weights(weights, out, **kw)


@pytest.fixture(scope="module", params=sorted(SMALL))
def artifact(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    task = request.param
    out = tmp_path_factory.mktemp(f"aot-{task}") / "artifact"
    return _export(task, out, seed=EXPORT_SEED)


def _refuse_pickle(*_a: object, **_k: object) -> None:
    raise AssertionError("pickle used while loading or running an artifact")


@dataclasses.dataclass
class Loaded:
    pipeline: runtime.Pipeline
    compiles_at_load: int
    compiles_on_first_calls: int
    traces_on_first_calls: int


@pytest.fixture(scope="module")
def loaded(artifact: Path) -> Loaded:
    """The artifact loaded once per module (compiling is the slow part), with pickle disabled throughout
    the load and the first calls, and the compilations of the load and of the first two calls counted."""
    with pytest.MonkeyPatch.context() as mp:
        for name in ("load", "loads", "Unpickler"):
            mp.setattr(pickle, name, _refuse_pickle)
        with compiles.counting() as at_load:
            pipeline = runtime.load_pipeline(artifact)
        x = np.asarray(pipeline.config.spec.x0, np.float32)
        with compiles.counting() as first:
            pipeline.predict_controls(x, 0.0)
            pipeline.predict_controls(x, 0.04)
    pipeline.reset()
    return Loaded(pipeline, at_load.compiles, first.compiles, first.traces)


@pytest.fixture(scope="module")
def base_artifact(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("aot-base") / "artifact"
    return _export("pendulum", out, seed=EXPORT_SEED)


@pytest.fixture
def pendulum_artifact(base_artifact: Path, tmp_path: Path) -> Path:
    """A copy of a small artifact that a test may damage."""
    return Path(shutil.copytree(base_artifact, tmp_path / "artifact"))


def _weights(path: Path, config: CEMConfig) -> tuple[dict | None, dict]:
    policy = networks.load_weights(
        path / "policy.safetensors", networks.policy_sizes(config, HIDDEN["policy_hidden"])
    )
    dynamics = None
    if config.task == "learned":
        dynamics = networks.load_weights(
            path / "dynamics.safetensors", networks.dynamics_sizes(HIDDEN["dynamics_hidden"])
        )
    return dynamics, policy


def _drive(pipeline: runtime.Pipeline, steps: int = 4) -> dict[str, np.ndarray]:
    """A short closed loop with a fixed state sequence: every output and the carried planner state."""
    rng = np.random.default_rng(0)
    out: dict[str, list[np.ndarray]] = {"controls": [], "tk": [], "mean": [], "std": [], "key": []}
    for i in range(steps):
        x = rng.uniform(-3, 3, pipeline.config.spec.nx).astype(np.float32)
        out["controls"].append(pipeline.predict_controls(x, 0.04 * i))
        s = pipeline.state
        for k in ("tk", "mean", "std", "key"):
            out[k].append(getattr(s, k))
    return {k: np.stack(v) for k, v in out.items()}


@pytest.mark.parity_cases("cem.aot.pipeline")
def test_exported_pipeline_equals_jit_bit_for_bit(artifact: Path, loaded: Loaded) -> None:
    p = loaded.pipeline
    p.reset()
    dynamics, policy = _weights(artifact, p.config)
    jitted = export.jit_pipeline(p.config, dynamics, policy, replan_steps=p.replan_steps, key=EXPORT_SEED)
    expected, actual = _drive(jitted), _drive(p)
    assert_bitwise(expected["key"], actual["key"], why=f"{Exactness.ORDER_INDEPENDENT}: integer PRNG keys")
    floats = {k: v for k, v in actual.items() if k != "key"}
    assert_parity(
        "cem.aot.pipeline", {k: expected[k] for k in floats}, floats, backend="jax-export", dtype="float32"
    )


# The reference drive: the first call at t = 1.3 s (not 0: the warm start must place the policy's knots at
# the current time), then every 0.04 s (two plant steps), from states spread over the task's box.
DRIVE_START, DRIVE_PERIOD, DRIVE_CALLS = 1.3, 0.04, 4


def _drive_states(config: CEMConfig, seed: int) -> list[np.ndarray]:
    lo, hi = STATE_BOX[config.task]
    rng = np.random.default_rng(seed)
    return [rng.uniform(lo, hi).astype(np.float32) for _ in range(DRIVE_CALLS)]


def _reference_pipeline(
    config: CEMConfig, dynamics: dict | None, policy: dict, replan_steps: int, seed: int
) -> tuple[dict[str, np.ndarray], list[float]]:
    """The pipeline's contract run with the PyTorch reference (float32): the policy's knots placed at the
    first call's time; each call warm-starts and optimizes with the noise of the carried key (`key_noise`);
    the controls are the mean spline at ``t + k dt``. Returns the outputs of every call and the elite-cut
    margins of every iteration (the comparison is meaningful only where they are clear)."""
    dyn = None if dynamics is None else {k: torch.from_numpy(v) for k, v in dynamics.items()}
    pol = {k: torch.from_numpy(v) for k, v in policy.items()}
    offsets = ref.planner.knot_offsets(config, torch.float32).numpy()
    key = np.asarray(jax.random.key_data(jax.random.key(EXPORT_SEED, impl="threefry2x32")), np.uint32)
    out: dict[str, list[np.ndarray]] = {"controls": [], "tk": [], "mean": [], "std": [], "key": []}
    margins: list[float] = []
    tk = mean = std = None
    for i, x in enumerate(_drive_states(config, seed)):
        t = np.float32(DRIVE_START + DRIVE_PERIOD * i)
        if i == 0:
            mean = ref_networks.policy_knots(pol, torch.from_numpy(x), config)
            tk = torch.from_numpy(offsets + t)
            std = torch.full((config.num_knots, config.spec.nu), config.sigma_start)
        noise, next_key = key_noise(key, config, np.float32)
        tk, mean = ref.warm_start(t, tk, mean, config)
        for it in range(config.iterations):
            res = ref.cem_iteration(torch.from_numpy(x), tk, mean, std, noise[it], config, dyn)
            total = np.sort(res["costs"].sum(1).numpy())
            margins.append(
                float((total[config.num_elites] - total[config.num_elites - 1]) / np.abs(total).max())
            )
            mean, std = res["mean"], res["std"]
        key = next_key
        tq = (t + np.arange(replan_steps, dtype=np.float32) * np.float32(config.spec.dt)).astype(np.float32)
        out["controls"].append(
            ref.interp(torch.from_numpy(tq), tk, mean[None], config.spline_type)[0].numpy()
        )
        for k, v in (("tk", tk), ("mean", mean), ("std", std)):
            out[k].append(v.numpy())
        out["key"].append(key)
    return {k: np.stack(v) for k, v in out.items()}, margins


@pytest.mark.parity_cases("cem.aot.reference")
def test_exported_pipeline_follows_the_reference(artifact: Path, loaded: Loaded) -> None:
    """The deployed artifact against the PyTorch reference, call by call: same controls and carried planner
    state, the first call at t = 1.3 s. A port that warm-starts at time 0, resets std, queries the controls
    from time 0, splits or uses its key otherwise, or lays out its knots otherwise, fails here (the jitted
    pipeline, built from the same code, would not tell)."""
    p = loaded.pipeline
    p.reset()
    dynamics, policy = _weights(artifact, p.config)
    # The first drive (states seed) whose elite cuts all have a clear margin: at a near-tie the two sides may
    # keep different elites, which is no defect (`test_near_ties.py`).
    for seed in range(30):
        expected, margins = _reference_pipeline(p.config, dynamics, policy, p.replan_steps, seed)
        if min(margins) > ELITE_MARGIN:
            break
    else:
        pytest.fail(f"no drive with clear elite cuts among 30 state seeds (last margins {margins})")
    actual: dict[str, list[np.ndarray]] = {k: [] for k in expected}
    for i, x in enumerate(_drive_states(p.config, seed)):
        actual["controls"].append(p.predict_controls(x, DRIVE_START + DRIVE_PERIOD * i))
        for k in ("tk", "mean", "std", "key"):
            actual[k].append(getattr(p.state, k))
    p.reset()
    got = {k: np.stack(v) for k, v in actual.items()}
    assert_bitwise(expected["key"], got["key"], why=f"{Exactness.ORDER_INDEPENDENT}: integer PRNG keys")
    floats = [k for k in expected if k != "key"]
    assert_parity(
        "cem.aot.reference",
        {k: expected[k] for k in floats},
        {k: got[k] for k in floats},
        backend="jax-export",
        dtype="float32",
    )


def test_first_call_after_load_is_not_a_compile(loaded: Loaded) -> None:
    assert loaded.compiles_at_load >= len(runtime.FUNCTIONS), "load_pipeline must compile every function"
    assert loaded.compiles_on_first_calls == 0, f"{loaded.compiles_on_first_calls} compilation(s) after load"
    assert loaded.traces_on_first_calls == 0


def test_nothing_is_unpickled(loaded: Loaded) -> None:
    """`loaded` ran with pickle.load/loads/Unpickler replaced by functions that raise: reaching here means
    the load and the first calls never unpickled anything."""
    assert loaded.pipeline.source.endswith("artifact")


def test_planner_state_is_carried_between_calls(loaded: Loaded) -> None:
    """The knots move with time and every call draws fresh noise (a pipeline that reused its template would
    keep tk at linspace(0, H, K) and key(0) on every call, and its knots would collapse past the horizon)."""
    p = loaded.pipeline
    p.reset()
    cfg = p.config
    x = np.asarray(cfg.spec.x0, np.float32)
    offsets = cfg.plan_horizon * np.arange(cfg.num_knots, dtype=np.float32) / (cfg.num_knots - 1)
    keys = []
    for t in (0.0, 0.02, 0.7, 1.5):  # past the horizon, where the seed's template reuse collapsed the knots
        p.predict_controls(x, t)
        np.testing.assert_allclose(p.state.tk, t + offsets, rtol=0, atol=1e-6)
        keys.append(tuple(p.state.key))
    assert len(set(keys)) == len(keys), "the same noise was drawn twice"
    p.reset()
    p.predict_controls(x, 0.0)
    assert tuple(p.state.key) == keys[0], "reset must restart from the artifact's key"


def test_warmup_runs_every_path_and_leaves_the_next_call_unchanged(loaded: Loaded) -> None:
    """`Pipeline.warmup` runs ``plan`` on every call, fresh (policy branch) once per round, then puts the
    planner state back: a pipeline mid-run continues as if it had not warmed up, and a reset one starts
    from the policy again."""
    p = loaded.pipeline
    calls: list[bool] = []  # the ``fresh`` flag of each plan call

    def counted(x, t, tk, mean, std, key, fresh, tq):
        calls.append(bool(fresh))
        return p.functions["plan"](x, t, tk, mean, std, key, fresh, tq)

    counting = runtime.Pipeline(p.config, {"plan": counted}, p.templates, p.replan_steps, "counted")
    x = np.asarray(p.config.spec.x0, np.float32) + np.float32(0.25)
    counting.predict_controls(x, 0.0)
    carried, cost = counting.state, counting.last_cost
    plain = runtime.Pipeline(p.config, p.functions, p.templates, p.replan_steps, "plain")
    plain.predict_controls(x, 0.0)
    calls.clear()
    counting.warmup(rounds=3, calls=2)
    assert calls == [True, False] * 3
    assert counting.state is carried and counting.last_cost == cost
    same = f"{Exactness.SAME_PROGRAM}: the same compiled function on the same inputs and planner state"
    assert_bitwise(plain.predict_controls(x, 0.02), counting.predict_controls(x, 0.02), why=same)
    assert_bitwise(plain.state.mean, counting.state.mean, why=same)
    counting.reset()
    calls.clear()
    counting.warmup(rounds=1, calls=1)
    assert counting.state is None
    counting.predict_controls(x, 0.04)
    assert calls == [True, True], "a reset pipeline starts from the policy again"


# -- bad input -------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", [*runtime.FILES, runtime.MANIFEST])
def test_missing_file_is_named(pendulum_artifact: Path, name: str) -> None:
    (pendulum_artifact / name).unlink()
    with pytest.raises(runtime.MissingArtifactError, match=name.replace(".", r"\.")) as err:
        runtime.load_pipeline(pendulum_artifact)
    assert "regenerate" in str(err.value)


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(runtime.MissingArtifactError, match="does not exist"):
        runtime.load_pipeline(tmp_path / "nowhere")


def test_truncated_file_fails_its_hash(pendulum_artifact: Path) -> None:
    f = pendulum_artifact / "plan.jax"
    f.write_bytes(f.read_bytes()[:100])
    with pytest.raises(runtime.CorruptArtifactError, match=r"plan\.jax is corrupted \(truncated"):
        runtime.load_pipeline(pendulum_artifact)


def test_corrupted_byte_fails_its_hash(pendulum_artifact: Path) -> None:
    f = pendulum_artifact / "templates.npz"
    data = bytearray(f.read_bytes())
    data[len(data) // 2] ^= 0xFF
    f.write_bytes(bytes(data))
    with pytest.raises(runtime.CorruptArtifactError, match=r"templates\.npz is corrupted.*SHA-256"):
        runtime.load_pipeline(pendulum_artifact)


def _edit_manifest(path: Path, edit) -> None:
    m = json.loads((path / runtime.MANIFEST).read_text())
    edit(m)
    (path / runtime.MANIFEST).write_text(json.dumps(m))


def test_artifact_of_the_three_module_format_must_be_regenerated(pendulum_artifact: Path) -> None:
    """Format 1 held optimize, interp and policy as three modules; this loader runs one ``plan``."""
    _edit_manifest(pendulum_artifact, lambda m: m.update(format="cem-aot/1"))
    with pytest.raises(
        runtime.IncompatibleArtifactError, match=r"'cem-aot/1'.*reads 'cem-aot/2'.*regenerate"
    ):
        runtime.load_pipeline(pendulum_artifact)


def test_artifact_from_a_newer_jax_must_be_regenerated(pendulum_artifact: Path) -> None:
    _edit_manifest(pendulum_artifact, lambda m: m.update(jax_version="99.0.0"))
    with pytest.raises(runtime.IncompatibleArtifactError, match=r"JAX 99\.0\.0.*regenerate"):
        runtime.load_pipeline(pendulum_artifact)


def test_artifact_with_an_unsupported_calling_convention_must_be_regenerated(pendulum_artifact: Path) -> None:
    _edit_manifest(pendulum_artifact, lambda m: m["functions"]["plan"].update(calling_convention_version=1))
    with pytest.raises(runtime.IncompatibleArtifactError, match=r"calling convention 1.*must be regenerated"):
        runtime.load_pipeline(pendulum_artifact)


def test_unreadable_module_is_incompatible(pendulum_artifact: Path) -> None:
    """A module whose hash matches (manifest rewritten) but that JAX cannot deserialize."""
    f = pendulum_artifact / "plan.jax"
    f.write_bytes(b"not a flatbuffer")

    def fix(m):
        m["files"]["plan.jax"] = {"sha256": sha256_file(f), "bytes": f.stat().st_size}

    _edit_manifest(pendulum_artifact, fix)
    with pytest.raises(runtime.IncompatibleArtifactError, match=r"plan\.jax cannot be deserialized"):
        runtime.load_pipeline(pendulum_artifact)


def test_artifact_for_another_platform_is_refused(tmp_path: Path) -> None:
    """Lowered for another platform only (cross-lowering needs no such device); loading it names both."""
    import jax

    here = jax.default_backend()
    other = "cuda" if here == "cpu" else "cpu"
    out = _export("pendulum", tmp_path / other, platforms=(other,))
    manifest = json.loads((out / runtime.MANIFEST).read_text())
    assert manifest["functions"]["plan"]["platforms"] == [other]
    with pytest.raises(
        runtime.IncompatibleArtifactError, match=rf"exported for \['{other}'\], not for this '{here}'"
    ):
        runtime.load_pipeline(out)


@pytest.mark.parametrize(
    ("state", "time", "match"),
    [
        (np.zeros(3, np.float32), 0.0, r"state must have shape \(2,\); got \(3,\)"),
        (np.zeros((1, 2), np.float32), 0.0, r"state must have shape \(2,\)"),
        (np.array([np.nan, 0.0], np.float32), 0.0, r"state must be finite"),
        (np.array([0.0, np.inf], np.float32), 0.0, r"state must be finite"),
        (np.zeros(2, np.float32), float("nan"), r"current_time must be a finite scalar"),
        (np.array(["a", "b"]), 0.0, r"state must be a real array"),
    ],
)
def test_bad_state_is_refused_before_any_computation(loaded: Loaded, state, time, match: str) -> None:
    p = loaded.pipeline
    if p.config.task != "pendulum":
        pytest.skip("one task is enough for the state checks")
    p.reset()
    with pytest.raises(CEMInputError, match=match):
        p.predict_controls(state, time)
    assert p.state is None, "a refused call must not touch the planner state"


# -- weight conversion -------------------------------------------------------------------------------------


def test_weights_with_missing_unexpected_or_misshaped_tensors_are_listed(tmp_path: Path) -> None:
    from safetensors.numpy import save_file

    sizes = networks.dynamics_sizes((8, 8))
    good = {k: np.zeros(s, np.float32) for k, s in networks.expected_shapes(sizes).items()}
    bad = dict(good)
    del bad["layers.1.bias"]
    bad["layers.9.weight"] = np.zeros((1, 1), np.float32)
    bad["layers.0.weight"] = np.zeros((8, 5), np.float32)
    save_file(bad, str(tmp_path / "bad.safetensors"))
    with pytest.raises(networks.WeightsError) as err:
        networks.load_weights(tmp_path / "bad.safetensors", sizes)
    msg = str(err.value)
    assert "bad.safetensors (MLP [4, 8, 8, 2]) does not match the model" in msg
    assert "missing tensors (1): layers.1.bias" in msg
    assert "unexpected tensors (1): layers.9.weight" in msg
    assert "layers.0.weight: checkpoint (8, 5) float32, model (8, 4) float32" in msg
    bad = {**good, "layers.2.bias": np.zeros(2, np.float64)}
    save_file(bad, str(tmp_path / "f64.safetensors"))
    with pytest.raises(
        networks.WeightsError, match=r"layers\.2\.bias: checkpoint \(2,\) float64, model \(2,\) float32"
    ):
        networks.load_weights(tmp_path / "f64.safetensors", sizes)
    save_file(good, str(tmp_path / "good.safetensors"))
    loaded = networks.load_weights(tmp_path / "good.safetensors", sizes)
    assert set(loaded) == set(good)
    (tmp_path / "trunc.safetensors").write_bytes((tmp_path / "good.safetensors").read_bytes()[:40])
    with pytest.raises(networks.WeightsError, match="cannot be read as safetensors"):
        networks.load_weights(tmp_path / "trunc.safetensors", sizes)


# -- the weights directory between the reference and the export ---------------------------------------------


def test_artifact_carries_its_weights_and_reexports_to_the_same_modules(
    base_artifact: Path, tmp_path: Path
) -> None:
    """The artifact holds the reference's weights and their manifest (hashed in its own manifest), so it is a
    weights directory itself: exporting from it again gives the same modules (StableHLO text without its
    source locations, which name the calling test's line)."""
    manifest = json.loads((base_artifact / runtime.MANIFEST).read_text())
    assert {WEIGHTS_MANIFEST, "policy.safetensors"} <= set(manifest["files"])
    weights = read_weights_manifest(base_artifact)
    assert weights.task == "pendulum" and weights.seed == EXPORT_SEED and weights.config == SMALL["pendulum"]
    again = export.export_weights(base_artifact, tmp_path / "again")
    for name in runtime.FUNCTIONS:
        assert _module_text(again / f"{name}.jax") == _module_text(base_artifact / f"{name}.jax"), name


def _module_text(path: Path) -> str:
    from jax import export as jax_export

    text = jax_export.deserialize(bytearray(path.read_bytes())).mlir_module()
    text = re.sub(r"(?m)^#loc\d* = .*\n", "", text)  # the location table
    return re.sub(r" loc\((?:[^()]|\([^()]*\))*\)", "", text)  # each operation's location


def test_weights_directory_problems_are_named(tmp_path: Path) -> None:
    weights = write_weights(tmp_path / "w", SMALL["pendulum"], seed=1, **HIDDEN)
    with pytest.raises(CEMInputError, match="config is for task 'learned'"):
        export.export_weights(weights, tmp_path / "out", config=SMALL["learned"])
    with pytest.raises(
        networks.WeightsError, match=r"(?s)does not match the model.*mis-shaped tensors \(2\)"
    ):
        export.export_weights(
            weights, tmp_path / "out", config=dataclasses.replace(SMALL["pendulum"], num_knots=5)
        )
    f = weights / "policy.safetensors"
    f.write_bytes(f.read_bytes()[:-1])
    with pytest.raises(networks.WeightsError, match=r"policy\.safetensors does not match weights\.json"):
        export.export_weights(weights, tmp_path / "out")
    (weights / WEIGHTS_MANIFEST).unlink()
    with pytest.raises(networks.WeightsError, match=r"no weights\.json.*python -m reference\.cem weights"):
        export.export_weights(weights, tmp_path / "out")
    assert not (tmp_path / "out").exists()
