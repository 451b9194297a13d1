"""The hardware fingerprint of a run: which machine, instruction set and runtime produced a verdict.

Two programs that compute the same function round differently on different instruction sets (XLA vectorizes
for the widest ISA it is allowed; PyTorch dispatches its CPU kernels by capability), so a report that says only
"cpu" cannot be traced. The fingerprint names the CPU model, the ISA XLA compiles for (the CPU's own, capped by
``--xla_cpu_max_isa`` in ``XLA_FLAGS``), PyTorch's CPU capability (capped by ``ATEN_CPU_CAPABILITY``), the
thread counts, and for accelerators the device kind, driver and runtime versions.

The standard library only at import: `benchmarks/machine.py` loads this file into asv's tox environment, which
has neither JAX nor PyTorch; both are probed only when asked for (``probe_torch`` / ``probe_jax``).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

# XLA:CPU's values of --xla_cpu_max_isa, oldest first, and the /proc/cpuinfo flags each one needs.
XLA_ISAS: tuple[str, ...] = (
    "SSE4_2",
    "AVX",
    "AVX2",
    "AVX512",
    "AVX512_VNNI",
    "AVX512_BF16",
    "AMX",
    "AMX_FP16",
)
_ISA_FLAGS: dict[str, tuple[str, ...]] = {
    "SSE4_2": ("sse4_2",),
    "AVX": ("avx",),
    "AVX2": ("avx2", "fma"),
    "AVX512": ("avx512f", "avx512bw", "avx512dq", "avx512vl"),
    "AVX512_VNNI": ("avx512_vnni",),
    "AVX512_BF16": ("avx512_bf16",),
    "AMX": ("amx_tile", "amx_int8", "amx_bf16"),
    "AMX_FP16": ("amx_fp16",),
}
# PyTorch's CPU capabilities (ATEN_CPU_CAPABILITY), oldest first, on x86-64.
TORCH_CAPABILITIES: tuple[str, ...] = ("default", "AVX2", "AVX512")
ENV_KEYS: tuple[str, ...] = (
    "JAX_PLATFORMS",
    "XLA_FLAGS",
    "ATEN_CPU_CAPABILITY",
    "OMP_NUM_THREADS",
    "MKL_NUM_THREADS",
    "CUDA_VISIBLE_DEVICES",
    "TPU_VISIBLE_CHIPS",
)


def _cpuinfo() -> dict[str, str]:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return {}
    first = text.split("\n\n", 1)[0]
    out = {}
    for line in first.splitlines():
        key, sep, value = line.partition(":")
        if sep:
            out[key.strip()] = value.strip()
    return out


def cpu_model() -> str:
    info = _cpuinfo()
    model = info.get("model name") or info.get("Model") or info.get("cpu model") or platform.processor()
    return re.sub(r"\s+", " ", model or platform.machine() or "unknown").strip()


def cpu_flags() -> frozenset[str]:
    info = _cpuinfo()
    return frozenset((info.get("flags") or info.get("Features") or "").split())


def native_isa(flags: frozenset[str] | None = None) -> str | None:
    """The newest XLA ISA whose instructions this CPU has (each one needs its predecessors'); ``None`` when the
    CPU is not x86 (or its flags cannot be read)."""
    flags = cpu_flags() if flags is None else flags
    best = None
    for isa in XLA_ISAS:
        if not all(f in flags for f in _ISA_FLAGS[isa]):
            break
        best = isa
    return best


def max_isa_flag(xla_flags: str | None) -> str | None:
    """The value of ``--xla_cpu_max_isa`` in an ``XLA_FLAGS`` string (the last one wins), upper-cased."""
    found = re.findall(r"--xla_cpu_max_isa[= ]([A-Za-z0-9_]+)", xla_flags or "")
    return found[-1].upper() if found else None


def isa_rank(isa: str) -> int:
    try:
        return XLA_ISAS.index(isa)
    except ValueError:
        raise ValueError(f"unknown XLA ISA {isa!r}; XLA:CPU knows {', '.join(XLA_ISAS)}") from None


def xla_isa(native: str | None, cap: str | None) -> str | None:
    """The ISA XLA compiles for: the CPU's own, lowered to the cap when one is set."""
    if native is None or cap is None:
        return native
    return cap if isa_rank(cap) < isa_rank(native) else native


def native_torch_capability(flags: frozenset[str] | None = None) -> str | None:
    """PyTorch's CPU capability on this CPU without an override (x86-64 only)."""
    flags = cpu_flags() if flags is None else flags
    if not flags or "sse4_2" not in flags:
        return None
    if all(f in flags for f in ("avx512f", "avx512bw", "avx512dq", "avx512vl")):
        return "AVX512"
    if all(f in flags for f in ("avx2", "fma")):
        return "AVX2"
    return "default"


def probe_torch() -> dict[str, Any] | None:
    """PyTorch's own view (imports torch: about 2 s); ``None`` when torch is not installed."""
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    return {
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "num_threads": torch.get_num_threads(),
        "num_interop_threads": torch.get_num_interop_threads(),
        "version": torch.__version__,
        "cuda": torch.version.cuda,
        "cuda_available": bool(torch.cuda.is_available()),
    }


def _nvidia_smi() -> list[dict[str, str]] | None:
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version,memory.total", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=20,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    rows = []
    for line in out.strip().splitlines():
        name, driver, memory = ([x.strip() for x in line.split(",")] + ["", "", ""])[:3]
        rows.append({"name": name, "driver": driver, "memory": memory})
    return rows


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


def probe_jax() -> dict[str, Any]:
    """JAX's devices and, on an accelerator, its runtime: platform version, driver, CUDA/cuDNN or libtpu."""
    import jax

    devices = jax.devices()
    backend = jax.default_backend()
    out: dict[str, Any] = {
        "backend": backend,
        "device_count": len(devices),
        "device_kind": devices[0].device_kind if devices else None,
        "devices": [{"platform": d.platform, "kind": d.device_kind, "id": d.id} for d in devices],
    }
    try:
        out["platform_version"] = devices[0].client.platform_version
    except Exception:  # a private attribute on some platforms: the fingerprint is best effort
        out["platform_version"] = None
    if backend in ("cuda", "rocm", "gpu"):
        out["gpus"] = _nvidia_smi()
        for name in ("jax-cuda12-plugin", "jax-cuda12-pjrt", "nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12"):
            out[name] = _version(name)
        try:
            from jax._src.lib import cuda_versions

            out["cudnn"] = cuda_versions.cudnn_get_version() if cuda_versions else None
            out["cuda_runtime"] = cuda_versions.cuda_runtime_get_version() if cuda_versions else None
        except Exception:  # private module: best effort
            pass
    if backend == "tpu":
        out["libtpu"] = _version("libtpu") or _version("libtpu-nightly")
    return out


def fingerprint(
    *, probe_torch_too: bool = True, probe_jax_too: bool = True, env: Mapping[str, str] | None = None
) -> dict[str, Any]:
    """The machine, as a JSON-able mapping (what the report and asv record)."""
    env = os.environ if env is None else env
    flags = cpu_flags()
    native = native_isa(flags)
    cap = max_isa_flag(env.get("XLA_FLAGS"))
    torch_native = native_torch_capability(flags)
    override = (env.get("ATEN_CPU_CAPABILITY") or "").strip() or None
    torch_info = probe_torch() if probe_torch_too else None
    if torch_info is not None:
        torch_cap, torch_source = torch_info["cpu_capability"], "torch.backends.cpu.get_cpu_capability()"
    elif torch_native is not None and override is not None and override in TORCH_CAPABILITIES:
        lower = min(TORCH_CAPABILITIES.index(override), TORCH_CAPABILITIES.index(torch_native))
        torch_cap, torch_source = (
            TORCH_CAPABILITIES[lower],
            "derived from the CPU flags and ATEN_CPU_CAPABILITY",
        )
    else:
        torch_cap, torch_source = torch_native, "derived from the CPU flags"
    try:
        affinity = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        affinity = os.cpu_count()
    return {
        "cpu_model": cpu_model(),
        "machine": platform.machine(),
        "system": platform.platform(),
        "python": sys.version.split()[0],
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "xla_isa": xla_isa(native, cap),
        "xla_isa_native": native,
        "xla_cpu_max_isa": cap,
        "xla_flags": env.get("XLA_FLAGS", ""),
        "torch_cpu_capability": torch_cap,
        "torch_cpu_capability_native": torch_native,
        "torch_cpu_capability_source": torch_source,
        "aten_cpu_capability": override,
        "torch": torch_info,
        "jax": probe_jax() if probe_jax_too else None,
        "env": {k: env.get(k) for k in ENV_KEYS if env.get(k) is not None},
    }


def summary(fp: Mapping[str, Any]) -> str:
    """One line for a report header or an asv machine description."""
    isa = fp.get("xla_isa") or "n/a"
    if fp.get("xla_cpu_max_isa"):
        isa += f" (capped by --xla_cpu_max_isa; native {fp.get('xla_isa_native')})"
    torch_cap = fp.get("torch_cpu_capability") or "n/a"
    if fp.get("aten_cpu_capability"):
        torch_cap += f" (ATEN_CPU_CAPABILITY={fp['aten_cpu_capability']}; native {fp.get('torch_cpu_capability_native')})"
    threads = f"{fp.get('cpu_affinity')} of {fp.get('cpu_count')} CPUs"
    if fp.get("torch"):
        threads += f", torch {fp['torch']['num_threads']} threads"
    line = f"{fp.get('cpu_model')}; XLA ISA {isa}; torch CPU capability {torch_cap}; {threads}"
    if fp.get("xla_flags"):
        line += f"; XLA_FLAGS={fp['xla_flags']}"
    jax_info = fp.get("jax") or {}
    if jax_info.get("backend") not in (None, "cpu"):
        line += f"; {jax_info['backend']} {jax_info.get('device_kind')} x{jax_info.get('device_count')}"
        if jax_info.get("platform_version"):
            line += f" ({jax_info['platform_version']})"
    return line


def slug(fp: Mapping[str, Any]) -> str:
    """A short machine-name suffix for asv: the ISA XLA compiled for and torch's capability."""
    parts = [fp.get("xla_isa") or fp.get("machine") or "cpu", fp.get("torch_cpu_capability") or ""]
    return "-".join(p.lower().replace("_", "") for p in parts if p)


def jax_device() -> str:
    """The device class JAX runs on (``cpu``, ``cuda``, ``rocm``, ``tpu``): the tier table's device key."""
    import jax

    backend = jax.default_backend()
    return "cuda" if backend == "gpu" else backend
