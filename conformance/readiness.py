"""Accelerator readiness without an accelerator: the ``gpu`` and ``tpu`` tox environments resolve.

``python -m conformance resolve gpu tpu`` asks pip to resolve each environment exactly as tox would install it
(the project with its ``test``, ``torch`` and ``models`` extras, plus the environment's pinned ``deps`` read from
``tox.ini``) with ``pip install --dry-run --report``, which needs the package index but no GPU or TPU, and
checks the resolution: every pin resolved to its version, the JAX family (jax, jaxlib and the CUDA plugin or
libtpu) on one version, and PyTorch on its CPU build (the references run on the CPU, in float64, while JAX runs
on the accelerator; a CUDA build of torch would be several GB for nothing).
"""

from __future__ import annotations

import configparser
import json
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = "test,torch,models"
TORCH = "2.13.0"
_PIN = re.compile(r"^\s*([A-Za-z0-9_.\-]+)(\[[A-Za-z0-9_,\-]+\])?\s*==\s*([A-Za-z0-9_.+\-]+)\s*$")


def pins(env: str, tox_ini: Path = ROOT / "tox.ini") -> dict[str, str]:
    """The exact pins (``name==version``) of ``[testenv:<env>]``'s deps; anything else there is an error."""
    parser = configparser.ConfigParser(interpolation=None)
    parser.read(tox_ini, encoding="utf-8")
    section = f"testenv:{env}"
    if section not in parser:
        raise ValueError(f"{tox_ini} has no [{section}]")
    out = {}
    for line in parser[section].get("deps", "").splitlines():
        if not line.strip() or line.strip().startswith("#"):
            continue
        m = _PIN.match(line)
        if not m:
            raise ValueError(f"[{section}] deps must be exact pins (name==version); got {line.strip()!r}")
        out[m.group(1).lower() + (m.group(2) or "")] = m.group(3)
    if not out:
        raise ValueError(f"[{section}] pins nothing")
    return out


def resolve(requirements: list[str]) -> list[dict[str, Any]]:
    with tempfile.TemporaryDirectory() as tmp:
        report = Path(tmp) / "report.json"
        cmd = [sys.executable, "-m", "pip", "install", "--dry-run", "--ignore-installed", "--quiet"]
        cmd += ["--report", str(report), *requirements]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False, cwd=ROOT, timeout=1200)
        if proc.returncode != 0:
            tail = "\n".join(x for x in proc.stderr.splitlines() if not x.startswith("WARNING: Location"))[
                -3000:
            ]
            raise RuntimeError(f"pip could not resolve {' '.join(requirements)}:\n{tail}")
        return json.loads(report.read_text())["install"]


def check(env: str) -> tuple[dict[str, str], list[str]]:
    """(resolved versions of the packages that matter, problems) for the tox environment ``env``."""
    wanted = pins(env)
    installs = resolve([f".[{EXTRAS}]", *(f"{k}=={v}" for k, v in wanted.items())])
    got = {i["metadata"]["name"].lower().replace("_", "-"): i["metadata"]["version"] for i in installs}
    problems = []
    for req, version in wanted.items():
        name = req.split("[")[0]
        if got.get(name) != version:
            problems.append(f"{req}=={version} resolved to {got.get(name)}")
    jax_family = {n: v for n, v in got.items() if n in ("jax", "jaxlib") or n.startswith("jax-cuda")}
    if len(set(jax_family.values())) != 1:
        problems.append(f"the JAX family is on several versions: {jax_family}")
    if env == "gpu" and not any(n.startswith("jax-cuda") for n in got):
        problems.append("no CUDA plugin of JAX resolved (jax-cuda12-plugin)")
    if env == "tpu" and "libtpu" not in got:
        problems.append("libtpu did not resolve")
    torch = got.get("torch")
    if torch is None or not torch.startswith(TORCH) or "+cpu" not in torch:
        problems.append(f"torch resolved to {torch}; the references need the CPU build torch=={TORCH}+cpu")
    keep = ("jax", "jaxlib", "torch", "flax", "libtpu", "nvidia-cudnn-cu12", "nvidia-cuda-runtime-cu12")
    shown = {n: v for n, v in sorted(got.items()) if n in keep or n.startswith("jax-cuda")}
    return shown, problems


def main(envs: list[str]) -> int:
    status = 0
    for env in envs or ["gpu", "tpu"]:
        try:
            shown, problems = check(env)
        except (ValueError, RuntimeError) as exc:
            print(f"{env}: error: {exc}", file=sys.stderr)
            status = 1
            continue
        verdict = "resolves" if not problems else "DOES NOT RESOLVE as pinned"
        print(f"{env}: {verdict}: " + ", ".join(f"{k} {v}" for k, v in shown.items()))
        for p in problems:
            print(f"  problem: {p}", file=sys.stderr)
        status |= bool(problems)
    return status
