"""The GCM model runner: the NumPy backend (`reference.gcm.runner`) and the JAX backend
(`implementations.gcm.runner`) on the shared run loop (`contracts.gcm.runner`): non-finite stop report,
timings, memory, the CPU client's dispatch mode, and the two command lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import jax
import numpy as np
import pytest

from contracts.gcm import runner
from contracts.gcm.grid import StepParams
from implementations.gcm import runner as jax_runner
from reference.gcm import runner as numpy_runner

ROOT = Path(__file__).resolve().parents[2]
RUN = {"numpy": numpy_runner.run, "jax": jax_runner.run}
UNSTABLE = StepParams(
    dt=3600.0, sigma4=5.0
)  # hyperdiffusion far past its stability limit: blows up at step 6


def _run(backend: str, dtype: str = "float64", **kw) -> runner.RunResult:
    config = runner.RunConfig(n_lat=17, n_lon=32, dtype=dtype, **kw)
    with jax.enable_x64(dtype == "float64"):
        return RUN[backend](config)


def test_both_backends_integrate_and_agree() -> None:
    assert set(RUN) == set(runner.BACKENDS)
    results = {b: _run(b, steps=6) for b in runner.BACKENDS}
    for b, r in results.items():
        assert r.ok and r.steps_done == 6, r.summary()
        assert r.backend == b
        assert r.per_step_samples == 5 and r.per_step_min_s > 0
        assert r.peak_rss_bytes > 0 and r.first_step_s > 0
    jax_ranges, np_ranges = results["jax"].field_ranges, results["numpy"].field_ranges
    assert jax_ranges.keys() == np_ranges.keys()
    for name in np_ranges:
        np.testing.assert_allclose(jax_ranges[name], np_ranges[name], rtol=1e-12, atol=1e-12, err_msg=name)


@pytest.mark.parametrize(("backend", "check_every"), [("numpy", 1), ("jax", 1), ("jax", 4)])
def test_blow_up_stops_at_the_first_nonfinite_step_with_its_location(backend: str, check_every: int) -> None:
    """Both backends stop at the same step, field and grid point; the JAX runner reads its finite flags once
    per window and replays the window to find the first bad step (check_every=4 exercises the replay)."""
    r = _run(backend, steps=20, params=UNSTABLE, check_every=check_every)
    reference = _run("numpy", steps=20, params=UNSTABLE)
    assert not r.ok
    assert r.steps_done == reference.steps_done == 6
    bad = r.nonfinite
    assert (bad.step, bad.field, bad.row, bad.col) == (
        reference.nonfinite.step,
        reference.nonfinite.field,
        reference.nonfinite.row,
        reference.nonfinite.col,
    )
    assert not np.isfinite(bad.value)
    assert -90.0 <= bad.lat_deg <= 90.0 and 0.0 <= bad.lon_deg < 360.0
    assert f"after step 6 at (row {bad.row}, col {bad.col})" in r.summary()


def test_nonfinite_initial_state_is_reported_as_step_0() -> None:
    from contracts import gcm

    grid = gcm.Grid(17, 32)
    state = gcm.initial_state(grid)
    q = state.q.copy()
    q[3, 4] = np.nan
    r = _run("numpy", steps=3, state=state._replace(q=q))
    assert not r.ok and r.steps_done == 0
    assert (r.nonfinite.step, r.nonfinite.field, r.nonfinite.row, r.nonfinite.col) == (0, "q", 3, 4)


def test_run_config_rejects_bad_values() -> None:
    with pytest.raises(ValueError, match="steps must be an int >= 1"):
        runner.RunConfig(steps=0)
    with pytest.raises(ValueError, match="dtype must be one of"):
        runner.RunConfig(dtype="float16")
    with pytest.raises(ValueError, match="check_every must be an int >= 1"):
        runner.RunConfig(check_every=0)
    with pytest.raises(ValueError, match="grid"):
        runner.parse_grid("121by240")


def _cli(backend: str, *args: str, backend_env: str | None) -> subprocess.CompletedProcess[str]:
    """``python -m <the backend's package> run --grid 17x32 ...`` with ``GCM_BACKEND`` set (or not)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("GCM_", "JAX_"))}
    if backend_env is not None:
        env["GCM_BACKEND"] = backend_env
    return subprocess.run(
        [sys.executable, "-m", runner.ENTRY_POINTS[backend], "run", "--grid", "17x32", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
        check=False,
    )


def test_cli_backend_from_environment_and_json(tmp_path: Path) -> None:
    out = tmp_path / "run.json"
    proc = _cli("jax", "--steps", "3", "--dtype", "float32", "--json", str(out), backend_env="jax")
    assert proc.returncode == 0, proc.stderr
    data = json.loads(out.read_text())
    assert data["backend"] == "jax" and data["platform"] == "cpu" and data["dtype"] == "float32"
    assert data["steps_done"] == 3 and data["ok"] is True
    assert "per step over 2 sample(s)" in proc.stdout and "peak memory above baseline" in proc.stdout
    # the flag wins over the environment
    proc = _cli("numpy", "--steps", "2", "--backend", "numpy", "--json", str(out), backend_env="jax")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["backend"] == "numpy"
    # without flag or environment, each entry point runs its own backend
    proc = _cli("numpy", "--steps", "2", "--json", str(out), backend_env=None)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(out.read_text())["backend"] == "numpy"


CONFIGURE_AND_REPORT = """
import sys
import jax
from implementations.gcm.runner import configure_jax
configure_jax("cpu", True, **({"cpu_async_dispatch": True} if sys.argv[1] == "async" else {}))
before = jax.config.read("jax_cpu_enable_async_dispatch")
jax.numpy.zeros(1).block_until_ready()  # the CPU client now exists
configure_jax("cpu", True, cpu_async_dispatch=sys.argv[1] != "async")  # too late: left as it was
print(before, jax.config.read("jax_cpu_enable_async_dispatch"))
"""


@pytest.mark.parametrize("mode", ["default", "async"])
def test_the_runner_configures_the_cpu_client_synchronous_unless_asked(mode: str) -> None:
    """`configure_jax` turns the CPU client's asynchronous dispatch off by default (each step's temporary
    block then stays in one malloc arena) and on when asked, and only before the client exists: once it
    does, a later call leaves the setting as the client was made with."""
    env = {**os.environ, "JAX_PLATFORMS": "cpu", "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, "-c", CONFIGURE_AND_REPORT, mode],
        capture_output=True,
        text=True,
        env=env,
        check=True,
    )
    expected = "True" if mode == "async" else "False"
    assert proc.stdout.split() == [expected, expected]


def test_cli_refuses_the_other_side_s_backend() -> None:
    """Each entry point runs only its own backend; asked for the other one, it names the command that runs it."""
    proc = _cli("jax", "--steps", "2", backend_env="numpy")
    assert proc.returncode == 2
    assert "GCM_BACKEND asks for the numpy backend" in proc.stderr
    assert "python -m reference.gcm run" in proc.stderr
    proc = _cli("numpy", "--steps", "2", "--backend", "jax", backend_env=None)
    assert proc.returncode == 2
    assert "python -m implementations.gcm run" in proc.stderr


def test_cli_exit_status_on_blow_up_and_on_bad_environment() -> None:
    proc = _cli("numpy", "--steps", "12", "--dt", "360000", backend_env="numpy")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "STOPPED: non-finite" in proc.stdout
    proc = _cli("jax", "--steps", "2", backend_env="cupy")
    assert proc.returncode == 2
    assert "GCM_BACKEND must be one of" in proc.stderr
    proc = _cli("jax", "--steps", "2", "--dt", "-5", backend_env=None)
    assert proc.returncode == 2
    assert "dt must be finite and > 0" in proc.stderr


@pytest.mark.parametrize("block_points", [100, 32, 1])
def test_physics_in_row_blocks_matches_the_reference(monkeypatch, block_points: int) -> None:
    """The runner's step computes the pointwise physics over blocks of whole rows on large grids
    (`model.PHYSICS_BLOCK_POINTS`, 131072 points). The conformance grids are smaller and run in one block, so
    here a smaller block size splits a 17x32 grid into uneven blocks (6, 17 and 17 blocks: one row each at the
    two smallest sizes), and three steps must still agree with the NumPy reference to rounding."""
    from contracts.gcm.grid import Grid
    from contracts.gcm.setup import default_forcing, initial_state
    from implementations.gcm import model
    from reference.gcm.model import _step as reference_step

    grid, params = Grid(17, 32), StepParams(dt=900.0)
    monkeypatch.setattr(model, "PHYSICS_BLOCK_POINTS", block_points)
    blocks = model._row_blocks(*grid.shape)
    assert [b.start for b in blocks] == [0] + [b.stop for b in blocks[:-1]] and blocks[-1].stop == 17
    assert len(blocks) == (6 if block_points == 100 else 17)
    step = jax.jit(model._step_stacked_kernel, static_argnames=("n_substeps", "shapiro_passes", "longwave"))
    with jax.enable_x64(True):
        state, forcing = initial_state(grid, 0, np.float64), default_forcing(grid, np.float64)
        rows, s, static = model.step_inputs(params, grid, np.dtype("float64"))
        x, expected = model.stack_state(jax.device_put(state)), state
        for _ in range(3):
            x, ok = step(x, jax.device_put(forcing), rows, s, **static)
            expected = reference_step(expected, forcing, params, grid)
        assert bool(ok)
        got = model.unstack_state(np.asarray(x))
    for name in expected._fields:
        want = getattr(expected, name)
        scale = max(float(np.max(np.abs(want))), 1e-30)
        np.testing.assert_allclose(getattr(got, name), want, rtol=0, atol=1e-13 * scale, err_msg=name)


def test_the_memory_baseline_waits_for_the_resident_set_to_settle(monkeypatch) -> None:
    """`settled_rss_bytes` reads until the resident set stops shrinking and returns the lowest read, so a
    temporary block that XLA frees just after the result is ready is not counted in the baseline."""
    from contracts.gcm import memory

    def reads(values: list[int]) -> list[int]:
        it = iter(values)
        monkeypatch.setattr(memory, "current_rss_bytes", lambda: next(it))
        return values

    reads([100, 90, 80, 80, 10])
    assert memory.settled_rss_bytes(sleep=lambda _: None) == 80  # stops at the first read that is not lower
    reads([100, 120, 10])
    assert memory.settled_rss_bytes(sleep=lambda _: None) == 100
    reads([50 - k for k in range(30)])
    assert memory.settled_rss_bytes(polls=5, sleep=lambda _: None) == 45  # at most `polls` more reads
    monkeypatch.undo()
    assert 0 < memory.settled_rss_bytes(polls=2) <= memory.peak_rss_bytes()


def test_malloc_totals_follow_allocations() -> None:
    """`malloc_totals` (glibc's ``mallinfo2``): a live 32 MiB block counts as in use, and no longer once freed."""
    from contracts.gcm import memory

    before = memory.malloc_totals()
    if before is None:
        pytest.skip("glibc's mallinfo2 is not available here")
    block = np.ones(1 << 22)  # 32 MiB, written so that it is a real allocation
    during = memory.malloc_totals()
    del block
    after = memory.malloc_totals()
    assert during.in_use_bytes - before.in_use_bytes >= 32 * 2**20
    assert during.in_use_bytes - after.in_use_bytes >= 32 * 2**20
    assert min(before.free_held_bytes, during.free_held_bytes, after.free_held_bytes) >= 0


def test_the_runner_reports_memory_still_in_use_apart_from_memory_malloc_holds() -> None:
    """A backend that keeps 8 MiB per step shows it as malloc memory in use; the correct backend does not. The
    growth figures are the change from the memory baseline (after step 1) to the end of the loop."""
    from contracts.gcm import memory

    if memory.malloc_totals() is None:
        pytest.skip("glibc's mallinfo2 is not available here")

    kept: list[np.ndarray] = []

    class Leaky(numpy_runner.NumpyBackend):
        def advance(self, state):
            kept.append(np.ones(1 << 20))  # 8 MiB still referenced after the step
            return super().advance(state)

    config = runner.RunConfig(n_lat=17, n_lon=32, steps=5)
    leaky = runner.integrate(config, Leaky)
    kept.clear()
    correct = numpy_runner.run(config)
    # steps 2..5 keep 4 x 8 MiB; the rest of the process may free a few KiB meanwhile (measured once: 8.5
    # KiB less than the four blocks), so the bound leaves 1 MiB: 31 MiB, against 4 MiB for the correct backend
    assert leaky.malloc_in_use_growth_bytes >= 4 * 8 * 2**20 - 2**20
    assert abs(correct.malloc_in_use_growth_bytes) < 4 * 2**20
    for r in (leaky, correct):
        assert isinstance(r.malloc_free_held_growth_bytes, int)
        assert "freed but held" in r.summary()
        assert r.to_dict()["malloc_in_use_growth_bytes"] == r.malloc_in_use_growth_bytes
    assert runner._malloc_growth(None, memory.malloc_totals()) == (None, None)
