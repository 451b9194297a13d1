"""Name the asv machine after the hardware that produced its results, then run asv on it.

    python -m benchmarks.machine run --skip-existing-successful HEAD^!
    python -m benchmarks.machine continuous --factor 1.2 main HEAD

registers the machine with ``asv machine --yes`` under the name ``cpu-<host>-<XLA ISA>-<torch capability>``
(``ASV_MACHINE`` overrides the name) and a ``cpu`` description that holds the hardware fingerprint (CPU model,
the ISA XLA compiles for, ``XLA_FLAGS``, PyTorch's CPU capability, thread counts), which asv stores in every
result; then runs ``asv <command> --machine <name> ...``. So a result says which machine and instruction set it
came from, and results of an emulated ISA (``XLA_FLAGS=--xla_cpu_max_isa=SSE4_2``) never mix with native ones.

The fingerprint code is `conformance/hardware.py`, loaded from its file: asv's tox environment has neither
the project nor JAX installed (PyTorch's capability is derived from the CPU flags there).
"""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
from pathlib import Path
from types import ModuleType

ROOT = Path(__file__).resolve().parents[1]


def _hardware() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "_conformance_hardware", ROOT / "conformance" / "hardware.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def describe() -> tuple[str, str]:
    """(machine name, one-line description) of this machine as it is configured now."""
    hw = _hardware()
    fp = hw.fingerprint(probe_torch_too=False, probe_jax_too=False)
    platform = (os.environ.get("JAX_PLATFORMS") or "cpu").split(",")[0]
    host = os.environ.get("HOSTNAME") or socket.gethostname() or "local"
    name = os.environ.get("ASV_MACHINE") or f"{platform}-{host}-{hw.slug(fp)}"
    return name, hw.summary(fp)


def main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if argv else 2
    name, cpu = describe()
    subprocess.run(["asv", "machine", "--yes", "--machine", name, "--cpu", cpu], check=True)
    print(f"asv machine {name}: {cpu}", flush=True)
    return subprocess.run(["asv", argv[0], "--machine", name, *argv[1:]], check=False).returncode


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
