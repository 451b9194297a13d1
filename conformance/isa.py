"""The ISA matrix: the same suites under emulated older instruction sets, one verdict expected.

``python -m conformance isa`` runs ``python -m conformance run`` once per configuration of XLA's
``--xla_cpu_max_isa`` (default: SSE4_2, AVX2 and the CPU's own) and PyTorch's ``ATEN_CPU_CAPABILITY``
(default: ``default`` and the CPU's own), each into its own report directory, and fails unless every run
reaches the same gate verdict, and that verdict is a pass. An assertion that holds only for one
vectorization width (bitwise equality between two programs, a tier calibrated on one machine) shows up here
on a single CPU, instead of on a newcomer's machine.

``--ci`` runs only the one configuration that differs most from the current process's (the oldest XLA ISA and
PyTorch's portable kernels, or the CPU's own when the current run is already capped): CI runs the suite
natively first, so together they cover two instruction sets on any machine. Cells whose tier moves between
configurations are listed (a moved tier within the requirement is not a failure).
"""

from __future__ import annotations

import dataclasses
import os
import re
import subprocess
import sys
from collections.abc import Mapping, Sequence
from pathlib import Path

from conformance import hardware

NATIVE = "native"


@dataclasses.dataclass(frozen=True)
class Config:
    xla: str  # an XLA ISA name or "native"
    torch: str  # an ATEN_CPU_CAPABILITY value or "native"

    @property
    def label(self) -> str:
        return f"xla-{self.xla.lower()}_torch-{self.torch.lower()}"

    def env(self, base: Mapping[str, str]) -> dict[str, str]:
        env = dict(base)
        flags = re.sub(r"--xla_cpu_max_isa[= ][A-Za-z0-9_]+", "", env.get("XLA_FLAGS", "")).strip()
        if self.xla != NATIVE:
            flags = f"{flags} --xla_cpu_max_isa={self.xla}".strip()
        env["XLA_FLAGS"] = flags
        env.pop("ATEN_CPU_CAPABILITY", None)
        if self.torch != NATIVE:
            env["ATEN_CPU_CAPABILITY"] = self.torch
        return env


def matrix(
    xla: Sequence[str], torch: Sequence[str], native_isa: str | None
) -> tuple[list[Config], list[str]]:
    """The configurations to run, and the ones skipped (an ISA the CPU does not have cannot be emulated)."""
    configs, skipped = [], []
    for x in xla:
        if x != NATIVE:
            hardware.isa_rank(x)  # unknown names are errors
            if native_isa is None or hardware.isa_rank(x) > hardware.isa_rank(native_isa):
                skipped.append(f"{x}: not available on this CPU (native {native_isa})")
                continue
        for t in torch:
            if t != NATIVE and t not in hardware.TORCH_CAPABILITIES:
                raise ValueError(
                    f"unknown ATEN_CPU_CAPABILITY {t!r}; PyTorch knows {hardware.TORCH_CAPABILITIES}"
                )
            configs.append(Config(x, t))
    return configs, skipped


def ci_config(env: Mapping[str, str]) -> Config | None:
    """The one configuration that differs from the current process's: the oldest XLA ISA and PyTorch's portable
    kernels, or the CPU's own where the current process is already capped. ``None`` if nothing differs."""
    fp = hardware.fingerprint(probe_torch_too=False, probe_jax_too=False, env=env)
    native, current = fp["xla_isa_native"], fp["xla_isa"]
    if current is None:
        return None  # not x86: no ISA to emulate
    oldest = hardware.XLA_ISAS[0]
    xla = oldest if current != oldest else (NATIVE if native != oldest else None)
    torch_current = fp["torch_cpu_capability"]
    torch = (
        "default"
        if torch_current != "default"
        else (NATIVE if fp["torch_cpu_capability_native"] != "default" else None)
    )
    if xla is None and torch is None:
        return None
    return Config(xla or NATIVE, torch or NATIVE)


def run_config(config: Config, out: Path, run_args: Sequence[str]) -> int:
    cmd = [sys.executable, "-m", "conformance", "run", "--out", str(out), *run_args]
    env = config.env(os.environ)
    print(
        f"+ XLA_FLAGS={env['XLA_FLAGS']!r} ATEN_CPU_CAPABILITY={env.get('ATEN_CPU_CAPABILITY', '')!r} "
        + " ".join(cmd),
        flush=True,
    )
    return subprocess.run(cmd, env=env, check=False).returncode


def compare(results: Mapping[str, Path]) -> tuple[dict[str, bool | None], list[str]]:
    """Each configuration's gate verdict (None: no report) and the cells whose tier differs between them."""
    from conformance import report

    verdicts: dict[str, bool | None] = {}
    tiers: dict[tuple[str, str, str, str], dict[str, str]] = {}
    for label, out in results.items():
        try:
            doc = report.load(out)
        except report.ReportError:
            verdicts[label] = None
            continue
        verdicts[label] = bool(doc["summary"]["gate_passed"])
        for c in doc["cases"]:
            tiers.setdefault((c["case"], c["backend"], c["dtype"], c["device"]), {})[label] = c["tier"]
    moved = [
        f"{case}[{dtype}] on {backend}/{device}: " + ", ".join(f"{k} {v}" for k, v in sorted(by.items()))
        for (case, backend, dtype, device), by in sorted(tiers.items())
        if len(set(by.values())) > 1
    ]
    return verdicts, moved


def main(args) -> int:  # args: the argparse namespace of `python -m conformance isa`
    out = Path(args.out)
    run_args = list(args.run_args or [])
    if args.ci:
        cfg = ci_config(os.environ)
        if cfg is None:
            print(
                "isa: nothing to emulate on this CPU (not x86, or only the oldest ISA): the native run stands"
            )
            return 0
        configs, skipped = [cfg], []
    else:
        native = hardware.native_isa()
        try:
            configs, skipped = matrix(args.xla.split(","), args.torch.split(","), native)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
    for s in skipped:
        print(f"isa: skipped {s}")
    results = {}
    for cfg in configs:
        run_config(cfg, out / cfg.label, run_args)
        results[cfg.label] = out / cfg.label
    verdicts, moved = compare(results)
    print("\nISA matrix verdicts:")
    for label, v in verdicts.items():
        print(f"  {label:40s} {'PASSED' if v else 'FAILED' if v is False else 'NO REPORT'}")
    if moved:
        print(f"cells whose tier moves with the ISA ({len(moved)}):")
        for line in moved:
            print(f"  {line}")
    values = set(verdicts.values())
    if len(values) > 1:
        print("isa: FAILED: the verdict depends on the instruction set", file=sys.stderr)
        return 1
    if values != {True}:
        print("isa: FAILED: the gate fails under every configuration", file=sys.stderr)
        return 1
    print(f"isa: PASSED: the same verdict under {len(verdicts)} configuration(s)")
    return 0
