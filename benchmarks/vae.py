"""Benchmarks of the VAE subsystem: the Flax NNX port (`implementations.vae`) against the PyTorch reference
(`reference.vae`), float32 on the CPU (random weights, converted to NNX).

- ``python -m benchmarks.vae [--json PATH] [--quick]`` measures, in ONE process (plus two fresh
  subprocesses for memory), and prints one table:
  - one row per entry of `ROWS`: the public ``decode`` / ``encode`` of the JAX port (jitted frame batches)
    against PyTorch eager (``torch.no_grad``), both float32, each at its best stated thread setting (PyTorch's
    default intra-op threads, one per core; XLA:CPU's pool, one per core), for tiny2 at the test size, tiny2
    on a small (dispatch-bound) latent and the real CogVideoX widths; with the FLOPs of one call (PyTorch's
    FLOP counter: convolutions and matmuls), the GFLOP/s each side reaches and the JAX side's share of this
    machine's float32 matmul peak measured in the same run (target: JAX >= PyTorch on every row);
  - ``jit vs eager``: the tiny2 decode jitted against the same call under ``jax.disable_jit()`` (reported;
    op-by-op dispatch on a CPU is not a target);
  - ``tiled decode peak memory``: a latent of 4x the tile area decoded with tiling vs one tile untiled,
    each in a fresh subprocess, both warmed up first; the peak RSS above the pre-call RSS (VmHWM reset
    through /proc/self/clear_refs) (target <= 1.5x);
  - ``tiled compile time``: first-call minus steady-state time and the number of XLA compilations of a
    tiled decode with a 2 x 2 and a 3 x 3 tile grid (the same tile shapes), after ``jax.clear_caches()``
    (target: independent of the number of tiles).
- asv: ``TimeDecode`` / ``TrackSpeedup`` follow asv's conventions (``setup`` warms up; ``time_*``);
  ``TrackParity.track_parity_tier``: the tier (index into `conformance.tiers.TIERS`, 0 = exact) the jitted
  decode reaches on the benchmark's own latent against the float64 PyTorch reference on the same values,
  judged as the ``vae.decode.frame_batched`` case (a decode that became fast by becoming wrong shows here);
  ``TrackTiled``: the tiled-decode peak memory ratio and the compile time of a 3 x 3 over a 2 x 2 tile grid.

Always ``block_until_ready``; medians of interleaved samples (`benchmarks.timer`). On a shared machine judge
ratios: PyTorch's OpenMP pool collapses when the cores are oversubscribed (a decode measured 40x slower while
another process kept both cores busy).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from typing import Any

import jax
import numpy as np

from contracts.vae.config import CogVideoXVAEConfig, tiny2

try:
    from benchmarks import coldstart
    from benchmarks import timer as timing
except ImportError:  # run by path as the memory child: sys.path[0] is this directory, not the repo root
    import coldstart  # type: ignore[no-redef]
    import timer as timing  # type: ignore[no-redef]

jax.config.update("jax_default_matmul_precision", "highest")

CONFIG = tiny2()
TILED_CONFIG = tiny2(sample_height=64, sample_width=64)  # tiles: 32 px / 16 latents, strides 13 / 12
LATENT = (1, 3, 16, 16, 4)  # -> (1, 5, 32, 32, 3): compute-bound on a CPU
SMALL_LATENT = (1, 3, 4, 4, 4)  # -> (1, 5, 8, 8, 3): dispatch-bound, where jit removes per-op overhead


def _models(cfg: CogVideoXVAEConfig = CONFIG, seed: int = 0) -> tuple[Any, Any]:
    import torch

    from implementations.vae import AutoencoderKLCogVideoX as J
    from implementations.vae.convert import load_model
    from reference.vae import AutoencoderKLCogVideoX as R

    torch.manual_seed(seed)
    tm = R(cfg).eval()
    return tm, load_model(J, (cfg,), _numpy_state(tm))


def _numpy_state(module: Any) -> dict[str, np.ndarray]:
    """A torch module's state dict as the NumPy arrays the port's converter reads."""
    from contracts.common import as_numpy

    return {k: as_numpy(v) for k, v in module.state_dict().items()}


def _latent(shape: tuple[int, ...] = LATENT, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def decode_fns(
    quick: bool = False, latent: tuple[int, ...] = LATENT, only: tuple[str, ...] | None = None
) -> dict[str, Callable[[], Any]]:
    """Warmed-up decode callables of the same latent: "jit", "eager", "torch", "module_jit", "module_eager"
    (or only those named in ``only``; the full set first checks the jitted decode against PyTorch)."""
    import torch

    tm, jm = _models()
    z = _latent(latent)
    zt = torch.from_numpy(np.moveaxis(z, -1, 1).copy())

    def jit() -> Any:
        return jax.block_until_ready(jm.decode(z))

    def eager() -> Any:
        with jax.disable_jit():
            return jax.block_until_ready(jm.decode(z))

    def torch_eager() -> Any:
        with torch.no_grad():
            return tm.decode(zt)

    from implementations.vae.model import apply_module, split_params

    graphdef, params = split_params(jm.decoder)

    def module_jit() -> Any:  # the decoder module itself: no public-API wrapper (validation, graph split)
        return jax.block_until_ready(apply_module(graphdef, params, z, None, None)[0])

    def module_eager() -> Any:
        with jax.disable_jit():
            return jax.block_until_ready(apply_module(graphdef, params, z, None, None)[0])

    fns = {
        "jit": jit,
        "eager": eager,
        "torch": torch_eager,
        "module_jit": module_jit,
        "module_eager": module_eager,
    }
    if only is not None:  # asv's time_decode: one backend per process (TrackParity judges the output)
        fns = {k: fns[k] for k in only}
        for fn in fns.values():
            fn()
        return fns
    # parity first: a benchmark of a wrong port is meaningless
    ref = torch_eager().numpy()
    got = np.moveaxis(np.asarray(jit()), -1, 1)
    mae = float(np.mean(np.abs(ref - got)))
    assert mae < 1e-4, f"decode parity MAE {mae:.3e}"
    eager()
    module_jit()
    module_eager()
    return fns


def measure(fns: dict[str, Callable[[], Any]], rounds: int = 5) -> dict[str, float]:
    """Median seconds per call of each callable, interleaved (`benchmarks.timer`)."""
    return {k: v.median for k, v in timing.measure(fns, rounds=rounds, sample_s=0.2).items()}


def conv_flops(module: Any, *args: Any) -> int:
    """Floating-point operations of one call of a torch module, counted by PyTorch's FLOP counter (the
    convolutions and matmuls, which are nearly all of the VAE's work): the numerator of GFLOP/s."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    with torch.no_grad(), FlopCounterMode(display=False) as counter:
        module(*args)
    return int(counter.get_total_flops())


# (name, configuration, method, input shape (channel-last)): tiny2 at the test size and a small, dispatch-bound
# latent, and the real CogVideoX widths (128, 256, 256, 512; 3 layers per block; latent 16) at 32 x 32 px.
REALISTIC = CogVideoXVAEConfig(sample_height=32, sample_width=32)
ROWS: tuple[tuple[str, CogVideoXVAEConfig, str, tuple[int, ...]], ...] = (
    ("tiny2 decode", CONFIG, "decode", LATENT),
    ("tiny2 decode small", CONFIG, "decode", SMALL_LATENT),
    ("tiny2 encode", CONFIG, "encode", (1, 9, 32, 32, 3)),
    ("cogvideox decode 32px", REALISTIC, "decode", (1, 2, 4, 4, 16)),
    ("cogvideox encode 32px", REALISTIC, "encode", (1, 5, 32, 32, 3)),
)


def row_fns(
    cfg: CogVideoXVAEConfig, method: str, shape: tuple[int, ...]
) -> tuple[dict[str, Callable[[], Any]], int]:
    """Warmed-up "jit" and "torch" callables of one method on one input (checked against each other first),
    and the FLOPs of one call."""
    import torch

    tm, jm = _models(cfg)
    x = _latent(shape)
    xt = torch.from_numpy(np.moveaxis(x, -1, 1).copy())
    jfn, tfn = getattr(jm, method), getattr(tm, method)

    def jit() -> Any:
        return jax.block_until_ready(jfn(x))

    def torch_eager() -> Any:
        with torch.no_grad():
            return tfn(xt)

    ref = torch_eager()
    ref = ref if isinstance(ref, torch.Tensor) else ref.latent_dist.parameters
    got = np.moveaxis(np.asarray(jit()), -1, 1)
    err = float(np.mean(np.abs(ref.numpy() - got)) / max(float(np.mean(np.abs(ref.numpy()))), 1e-30))
    assert err < 1e-4, f"{method} parity: relative MAE {err:.3e}"
    return {"jit": jit, "torch": torch_eager}, conv_flops(tfn, xt)


def speed_rows(quick: bool = False) -> list[dict[str, Any]]:
    out = []
    for name, cfg, method, shape in ROWS:
        fns, flops = row_fns(cfg, method, shape)
        t = measure(fns, rounds=3 if quick else 5)
        out.append(
            {
                "row": name,
                "input": list(shape),
                "jit_s": t["jit"],
                "torch_s": t["torch"],
                "jit_vs_torch": t["torch"] / t["jit"],
                "gflop": flops / 1e9,
                "jit_gflops": flops / t["jit"] / 1e9,
                "torch_gflops": flops / t["torch"] / 1e9,
            }
        )
    return out


def decode_parity(latent: tuple[int, ...] = LATENT) -> tuple[str, str | None]:
    """(tier reached, tier required) of the jitted float32 decode against the float64 torch reference."""
    import torch

    from conformance import compare, precision

    tm, jm = _models()
    z = _latent(latent)
    with precision.for_dtype("float32"):
        got = np.asarray(jax.block_until_ready(jm.decode(z)))
        with torch.no_grad():
            ref = tm.double().decode(torch.from_numpy(np.moveaxis(z, -1, 1).astype(np.float64).copy()))
        expected = np.moveaxis(ref.numpy(), 1, -1)
        res = compare(expected, got, case="vae.decode.frame_batched", backend="jax-jit", dtype="float32")
    return res.tier, res.required


# -- memory (fresh subprocess each) -------------------------------------------------------------------------


def _vm(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(field)


def exact_rss_malloc(threshold: int = 2**20) -> bool:
    """glibc: every allocation of ``threshold`` bytes or more is its own mmap, unmapped on free, so the
    resident set follows live memory (not the allocator's growth after warm-up). Before JAX's threads."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    if not name or not sys.platform.startswith("linux"):
        return False
    return bool(ctypes.CDLL(name).mallopt(-3, int(threshold)))  # M_MMAP_THRESHOLD


def memory_child(mode: str) -> dict[str, Any]:
    """Peak RSS above the pre-call RSS of one decode after a warm-up (``mode``: 'tile' or 'tiled4x')."""
    exact = exact_rss_malloc()
    _, jm = _models(TILED_CONFIG)
    t = 16  # the latent tile (TILED_CONFIG)
    if mode == "tile":
        z = _latent((1, 3, t, t, 4))
    else:
        jm.enable_tiling()
        z = _latent((1, 3, 2 * t, 2 * t, 4))
    jax.block_until_ready(jm.decode(z))  # warm-up: every compilation
    import gc

    gc.collect()
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM to the current RSS
    before = _vm("VmRSS")
    out = jax.block_until_ready(jm.decode(z))
    peak = _vm("VmHWM")
    return {
        "mode": mode,
        "exact_rss": exact,
        "peak_above_baseline": peak - before,
        "output_bytes": int(np.asarray(out).nbytes),
        "output_shape": list(out.shape),
    }


def memory_row() -> dict[str, Any]:
    res = {}
    for mode in ("tile", "tiled4x"):
        out = subprocess.run(
            [sys.executable, os.path.abspath(__file__), "--memory-child", mode],
            capture_output=True,
            text=True,
            check=True,
            # not the repo root: the child imports the project from the environment (under asv, the commit
            # being benchmarked), never from the working tree
            cwd=tempfile.gettempdir(),
            env={
                **os.environ,
                "XLA_FLAGS": re.sub(
                    r"--xla_force_host_platform_device_count[= ]\d+", "", os.environ.get("XLA_FLAGS", "")
                ),
            },
        )
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    ratio = res["tiled4x"]["peak_above_baseline"] / max(res["tile"]["peak_above_baseline"], 1)
    return {
        "quantity": "tiled decode peak memory (4x tile area / one tile)",
        "ratio": ratio,
        "target": "<= 1.5",
        "pass": ratio <= 1.5,
        "detail": res,
    }


# -- compile time vs number of tiles ------------------------------------------------------------------------


def _compile_seconds() -> tuple[list[float], Callable[[], None]]:
    """A list that collects the duration of every XLA backend compilation until the returned stop()."""
    import jax.monitoring

    from conformance.compiles import COMPILE_EVENT

    durations: list[float] = []

    def listener(name: str, secs: float, **_: Any) -> None:
        if name == COMPILE_EVENT:
            durations.append(secs)

    jax.monitoring.register_event_duration_secs_listener(listener)
    return durations, lambda: jax.monitoring.unregister_event_duration_listener(listener)


def compile_rows() -> list[dict[str, Any]]:
    _, jm = _models(TILED_CONFIG)
    jm.enable_tiling()
    rows = []
    # tile 16, strides 13 (H) / 12 (W): 29 x 28 -> starts 0, 13 | 0, 12 (sizes 16/3, 16/4): 2 x 2 tiles;
    # 42 x 40 -> starts 0, 13, 26 | 0, 12, 24 (sizes 16/16/3, 16/16/4): 3 x 3 tiles, the same four shapes
    for grid, shape in (("2x2", (1, 3, 29, 28, 4)), ("3x3", (1, 3, 42, 40, 4))):
        jax.clear_caches()
        z = _latent(shape)
        durations, stop = _compile_seconds()
        t = time.perf_counter()
        jax.block_until_ready(jm.decode(z))
        first = time.perf_counter() - t
        stop()
        steady = min(
            measure({"d": lambda z=z: jax.block_until_ready(jm.decode(z))}, rounds=3).values(), default=0
        )
        rows.append(
            {
                "grid": grid,
                "first_call_s": first,
                "steady_s": steady,
                "compile_s": sum(durations),
                "compiles": len(durations),
            }
        )
    return rows


def collect(quick: bool = False) -> dict[str, Any]:
    fns = decode_fns(quick)
    t = measure({k: fns[k] for k in ("jit", "eager", "module_jit", "module_eager")}, rounds=3 if quick else 5)
    out: dict[str, Any] = {
        "device": str(jax.devices()[0]),
        "threads": timing.threads(),
        "config": "tiny2, latent (1, 3, 16, 16, 4) -> video (1, 5, 32, 32, 3), float32",
        "times_s": t,
        "jit_vs_eager": t["eager"] / t["jit"],
        "module_jit_vs_eager": t["module_eager"] / t["module_jit"],
    }
    out["rows"] = speed_rows(quick)
    out["matmul"] = timing.matmul_peak()
    out["memory"] = memory_row()
    out["compile"] = compile_rows()
    return out


def render(res: dict[str, Any]) -> str:
    t = res["times_s"]
    m = res["memory"]
    peak = res["matmul"]["peak_gflops"]
    th = res["threads"]
    lines = [
        f"device: {res['device']}; threads: PyTorch {th['torch_intra_op']}, XLA:CPU pool {th['xla_cpu_pool']} "
        f"({th['cores']} cores); float32 matmul peak measured now {peak:.0f} GFLOP/s",
        f"{'row':24} {'input':>18} {'JAX jit':>9} {'PyTorch':>9} {'ratio':>6}  {'GFLOP':>6} "
        f"{'JAX GF/s':>9} {'% peak':>6} {'torch GF/s':>10}",
    ]
    for r in res["rows"]:
        ok = "PASS" if r["jit_vs_torch"] >= 1 else "MISS"
        lines.append(
            f"{r['row']:24} {tuple(r['input'])!s:>18} {r['jit_s'] * 1e3:7.1f}ms {r['torch_s'] * 1e3:7.1f}ms "
            f"{r['jit_vs_torch']:5.2f}x  {r['gflop']:6.2f} {r['jit_gflops']:9.1f} {r['jit_gflops'] / peak:6.1%} "
            f"{r['torch_gflops']:10.1f}  (target >= 1.0x) {ok}"
        )
    lines += [
        f"tiny2 decode jit vs JAX eager: {res['jit_vs_eager']:.1f}x (jit {t['jit'] * 1e3:.1f} ms, eager "
        f"{t['eager'] * 1e3:.1f} ms; reported, not a CPU target); decoder module alone {res['module_jit_vs_eager']:.1f}x",
        f"tiled peak memory, 4x area / one tile: {m['ratio']:.2f}  (target <= 1.5) {'PASS' if m['pass'] else 'MISS'}"
        f"  [tile {m['detail']['tile']['peak_above_baseline'] / 2**20:.1f} MiB, tiled 4x "
        f"{m['detail']['tiled4x']['peak_above_baseline'] / 2**20:.1f} MiB]",
    ]
    for r in res["compile"]:
        lines.append(
            f"tiled decode {r['grid']}: XLA compile {r['compile_s']:.2f} s ({r['compiles']} compilations), "
            f"first call {r['first_call_s']:.2f} s, steady {r['steady_s'] * 1e3:.1f} ms"
        )
    return "\n".join(lines)


# -- asv ------------------------------------------------------------------------------------------------------


class TimeDecode:
    params = (("jit", "eager", "torch"),)
    param_names = ("backend",)
    timeout = 600
    repeat = (1, 5, 6.0)  # the eager decode takes seconds: keep the suite within its 15-minute budget

    def setup(self, backend: str) -> None:
        self.fn = decode_fns(only=(backend,))[backend]

    def time_decode(self, backend: str) -> None:
        self.fn()


class TrackSpeedup:
    """JAX jit over PyTorch eager for each row of `ROWS` (interleaved in one process), and the tiny2 decode's
    jit over JAX eager (``setup_cache``: once per run)."""

    unit = "x"
    timeout = 900

    def setup_cache(self) -> dict[str, float]:
        ratios = {r["row"]: r["jit_vs_torch"] for r in speed_rows(quick=True)}
        t = measure({k: v for k, v in decode_fns().items() if k in ("jit", "eager")}, rounds=3)
        ratios["jit_vs_eager"] = t["eager"] / t["jit"]
        return ratios

    def track_jit_vs_eager(self, r: dict[str, float]) -> float:
        return r["jit_vs_eager"]

    def track_jit_vs_torch(self, r: dict[str, float], row: str) -> float:
        return r[row]

    track_jit_vs_torch.params = ([name for name, *_ in ROWS],)  # type: ignore[attr-defined]
    track_jit_vs_torch.param_names = ("row",)  # type: ignore[attr-defined]


class TrackParity:
    """Tier index (conformance.tiers.TIERS: 0 = exact, 1 = perfect, ...) of the jitted decode on the
    benchmark's latents (the timed one and the small one) against the float64 PyTorch reference."""

    params = (("latent", "small"),)
    param_names = ("latent",)
    unit = "tier index (0 = exact)"
    timeout = 600

    def setup_cache(self) -> dict[str, int]:
        from conformance.tiers import TIERS

        return {k: TIERS.index(decode_parity(v)[0]) for k, v in (("latent", LATENT), ("small", SMALL_LATENT))}

    def track_parity_tier(self, tiers: dict[str, int], latent: str) -> int:
        return tiers[latent]


def cold_start_decode(calls: int = 10) -> dict[str, float]:
    """The jitted decode of the benchmark's latent in a fresh interpreter (`benchmarks.coldstart`): setup is
    loading the converted weights from a safetensors file into an abstract model, the first call compiles."""
    from implementations.vae.convert import save_safetensors

    tm, _ = _models()
    path = os.path.join(tempfile.mkdtemp(prefix="vae-cold-"), "decoder.safetensors")
    save_safetensors(_numpy_state(tm), path)
    setup = (
        "import numpy as np\n"
        "from implementations.vae import AutoencoderKLCogVideoX\n"
        "from implementations.vae.convert import load_model\n"
        "from contracts.vae.config import tiny2\n"
        f"model = load_model(AutoencoderKLCogVideoX, (tiny2(),), {path!r})\n"
        f"z = np.random.default_rng(1).standard_normal({LATENT!r}).astype(np.float32)\n"
    )
    return coldstart.cold_start(setup, "jax.block_until_ready(model.decode(z))", calls)


class TrackColdStart(coldstart._ColdStartTracks):
    """The jitted decode in a fresh interpreter, once per run (``setup_cache``): weight loading, first call
    (trace + compile + run), XLA compile seconds, first/steady ratio, CV, recompilations in steady state."""

    timeout = 600

    def setup_cache(self) -> dict[str, float]:
        return cold_start_decode()


class TrackTiled:
    """Tiled decode: peak memory of a 4x-tile-area latent over one tile (fresh subprocesses; target <= 1.5)
    and XLA compile time of a 3 x 3 over a 2 x 2 tile grid (target: independent of the tile count, ~1.0),
    measured once per run (``setup_cache``)."""

    timeout = 600

    def setup_cache(self) -> dict[str, Any]:
        return {"memory": memory_row(), "compile": {r["grid"]: r for r in compile_rows()}}

    def track_tiled_peak_memory_ratio(self, r: dict[str, Any]) -> float:
        return r["memory"]["ratio"]

    track_tiled_peak_memory_ratio.unit = "ratio"  # type: ignore[attr-defined]

    def track_tiled_compile_ratio_3x3_over_2x2(self, r: dict[str, Any]) -> float:
        return r["compile"]["3x3"]["compile_s"] / r["compile"]["2x2"]["compile_s"]

    track_tiled_compile_ratio_3x3_over_2x2.unit = "ratio"  # type: ignore[attr-defined]

    def track_tiled_compiles_3x3_minus_2x2(self, r: dict[str, Any]) -> int:
        return r["compile"]["3x3"]["compiles"] - r["compile"]["2x2"]["compiles"]

    track_tiled_compiles_3x3_minus_2x2.unit = "compilations"  # type: ignore[attr-defined]


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.vae")
    p.add_argument("--json")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--memory-child", choices=("tile", "tiled4x"), help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.memory_child:
        print(json.dumps(memory_child(args.memory_child)))
        return 0
    res = collect(args.quick)
    print(render(res))
    if args.json:
        from contracts import common as atomic

        atomic.write_text(args.json, json.dumps(res, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
