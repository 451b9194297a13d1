"""Instructions per call of hot JAX kernels, counted by valgrind's callgrind: a speed measure that does not
move with the machine's noise, for comparing two commits on a shared machine.

    python -m benchmarks.instructions [--kernel NAME ...] [--json OUT]
        [--against REV | --baseline IN] [--factor 1.02]

Each kernel (`KERNELS`: a setup that defines ``call()``) runs in a fresh interpreter under callgrind: three
untimed calls, then its counted calls. On x86-64 Linux the interpreter switches callgrind's instrumentation on
just before the counted calls and off after them (a valgrind client request, `child_script`), so the start-up
(importing JAX, compiling) is neither counted nor slowed by instrumentation, and one run gives the count per
call. Elsewhere every instruction is counted, and two runs of ``low`` and ``high`` calls are differenced so
that the start-up cancels. Four settings at the edge of the measured process make the count nearly
deterministic:

- ``PJRT_NPROC=1``: XLA's CPU client starts one pool thread;
- synchronous dispatch (``jax_cpu_enable_async_dispatch`` off before the first computation);
- ``PYTHONHASHSEED=0``: the same dict orders in every run (without it, a pure-Python loop's count varied by
  20% between runs);
- ``GLIBC_TUNABLES=glibc.malloc.mxfast=0``: glibc's malloc keeps no fast bins, so it has none to
  consolidate. What consolidating and freeing cost depends on the heap's layout, which the start-up's
  threads leave different in each process: the anomaly detector's count per call spread over
  2,334,174-2,351,284 in 18 runs without the setting (0.73%; the difference is in ``_int_free``,
  ``malloc_consolidate``, ``_int_memalign`` and ``unlink_chunk``), over 2,369,156-2,376,888 in 10 runs with
  it (0.33%; the count is 1.3% higher there). What is left is the same functions' search of the
  bins; sending blocks over 4 KB to mmap as well did not narrow it (2,369,223-2,376,552 in four runs).

A fifth is the kernels' own: a kernel's calls hand JAX no host array (the child runs them with JAX's
host-to-device transfer guard set to "disallow") unless the kernel says that its call does (`Kernel`'s
``host_inputs``). XLA:CPU aliases a host array that lies on a 64-byte boundary and copies one that does not,
and where a NumPy array lies varies from process to process: the VAE block's 98 KB input, passed as a NumPy
array, cost 19,027,332 instructions per call aligned and 19,127,365 / 19,128,743 at 16 / 32 bytes past a
boundary (+0.53%, the gate's largest move of unchanged code until then, drawn in 2 of about 36 runs). A
kernel that hands over host arrays by design puts its own on a boundary with the child's ``aligned(a)``.

The count is of every thread while instrumentation is on, outside the thread pool's own functions
(`POOL_IDLE`): XLA's pool thread takes a varying share of a program's thunks (the CEM plan call: the main
thread's share was 78-112 M of 399-402 M instructions over five runs of 120 calls), and how long an idle
pool thread spins looking for work varies too (the same call over 60 calls: 199.3-202.5 M in three runs,
196.42-196.53 M without the pool's functions).

asv tracks the counts too (`TrackInstructions`): there the project is the benchmarked commit's wheel in asv's
environment, and `installed` points the measured interpreter at it.

``--against REV`` measures each kernel in a git worktree of REV as well as in this tree, and exits 1 when a
kernel's count per call grew by more than ``--factor``; a kernel that fails at REV (added since) has no base.
``--baseline`` compares with a JSON written earlier by ``--json`` (from an ``--against`` run, with the counts
of the tree that run measured). Exit 2 when valgrind is missing, 3 when a kernel fails in this tree or REV
is not a commit.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import importlib.util
import json
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PROJECT_PACKAGES = ("benchmarks", "contracts", "reference", "implementations", "conformance")


@dataclasses.dataclass(frozen=True)
class Kernel:
    """A kernel of the registry: ``setup`` (Python) defines ``call()``, one blocking call, after the set-up it
    needs. ``high`` calls are counted; where every instruction is counted (no `toggles`), a run of ``low``
    calls is subtracted. With ``--against``, the setup is this tree's, importing the base tree's project."""

    setup: str
    low: int = 20
    high: int = 420
    # whether ``call()`` hands JAX host (NumPy) arrays, as the CEM pipeline and the anomaly `Detector` do by
    # contract; otherwise a host-to-device transfer in a call fails the kernel
    host_inputs: bool = False


KERNELS: dict[str, Kernel] = {
    "one-fusion": Kernel(
        "import numpy as np, jax.numpy as jnp\n"
        "f = jax.jit(lambda a: jnp.sum(jnp.sin(a) * 2.0 + a))\n"
        "a = jnp.asarray(np.random.default_rng(0).standard_normal(1 << 16).astype(np.float32))\n"
        "def call():\n"
        "    f(a).block_until_ready()\n"
    ),
    "gcm.hyperdiffusion.121x240": Kernel(
        'jax.config.update("jax_enable_x64", True)\n'
        "from benchmarks import gcm as bg\n"
        'call = bg.hyperdiffusion_fn("jax", bg._Problem("121x240"))\n'
    ),
    # the model's whole float64 step (dynamics, physics, the stacked state donated and advanced each call)
    "gcm.step.121x240": Kernel(
        high=100,
        setup='jax.config.update("jax_enable_x64", True)\n'
        "from benchmarks import gcm as bg\n"
        'call = bg.step_fn("jax", bg._Problem("121x240"))\n',
    ),
    # the CEM pipeline's steady call (host validation, the planner program, the state carried back), jitted
    # from seeded policy weights, so no PyTorch and no artifact are needed
    "cem.plan.pendulum": Kernel(
        high=200,
        host_inputs=True,
        setup="import numpy as np\n"
        "from contracts.cem.config import DEFAULT_CONFIGS\n"
        "from contracts.cem.networks import POLICY_HIDDEN, policy_sizes\n"
        "from implementations.cem.export import jit_pipeline\n"
        "from implementations.cem.networks import expected_shapes\n"
        'cfg = DEFAULT_CONFIGS["pendulum"]\n'
        "rng = np.random.default_rng(0)\n"
        "policy = {k: (0.1 * rng.standard_normal(s)).astype(np.float32)\n"
        "          for k, s in expected_shapes(policy_sizes(cfg, POLICY_HIDDEN)).items()}\n"
        "pipeline = jit_pipeline(cfg, None, policy)\n"
        "pipeline.warmup()\n"
        "x = np.asarray(cfg.spec.x0, np.float32)\n"
        "def call():\n"
        "    pipeline.predict_controls(x, 0.02)\n",
    ),
    # one VAE resnet block at tiny2's first width (two causal 3x3x3 convolutions, two group norms), its
    # weights closed over as the decoder's are
    "vae.resnet_block.32ch": Kernel(
        low=5,
        high=20,
        setup="import numpy as np, jax.numpy as jnp\n"
        "from flax import nnx\n"
        "from implementations.vae.layers import CogVideoXResnetBlock3D\n"
        "block = CogVideoXResnetBlock3D(32, 32, temb_channels=0, groups=8, rngs=nnx.Rngs(0))\n"
        "f = jax.jit(lambda v: block(v)[0])\n"
        "v = jnp.asarray(np.random.default_rng(1).standard_normal((1, 3, 16, 16, 32)).astype(np.float32))\n"
        "def call():\n"
        "    f(v).block_until_ready()\n",
    ),
    # the anomaly detector at B=1, jitted with its weights as constants (as `Detector` runs it)
    "anomaly.detector.B1": Kernel(
        high=200,
        host_inputs=True,
        setup="import numpy as np\n"
        "from flax import nnx\n"
        "from contracts.anomaly.config import AnomalyConfig\n"
        "from implementations.anomaly.model import build, weights_bound\n"
        "graphdef, state = nnx.split(build(AnomalyConfig(), 0))\n"
        "f = weights_bound(graphdef, nnx.to_pure_dict(state))\n"
        "w = aligned(np.random.default_rng(0).standard_normal((1, 16, 8)).astype(np.float32))\n"
        "def call():\n"
        "    jax.block_until_ready(f(w))\n",
    ),
}

# argv: calls, where the project's packages must be imported from (JSON: package -> directory), "toggle" or
# "full". A setup that cannot import what it names (an older commit without the kernel's function) exits
# with UNAVAILABLE. The origin check runs before the counted calls; it is there because an editable install
# of another tree would otherwise be measured silently. With "toggle" (x86-64), callgrind starts with
# instrumentation off and the child turns it on around the calls only: the start-up (importing JAX,
# compiling) then runs at valgrind's uninstrumented speed, several times faster, and none of its
# instructions are counted.
UNAVAILABLE = 4
_CHILD = """import json, os, sys
import jax
import numpy as np
jax.config.update("jax_cpu_enable_async_dispatch", False)
def aligned(a):
    \"\"\"A copy of the array ``a`` that starts on a 64-byte boundary (XLA:CPU then aliases it, in every
    process, instead of copying it on each call).\"\"\"
    a = np.asarray(a)
    buf = np.empty(a.nbytes + 64, np.uint8)
    start = -buf.ctypes.data % 64
    out = buf[start : start + a.nbytes].view(a.dtype).reshape(a.shape)
    out[...] = a
    return out
try:
    exec(compile({setup!r}, "<kernel setup>", "exec"))
except (ImportError, AttributeError) as exc:
    sys.exit(print(f"kernel unavailable here: {{exc!r}}", file=sys.stderr) or {unavailable})
if not {host_inputs}:  # a host array handed to JAX in a call fails the kernel (see the module's docstring)
    jax.config.update("jax_transfer_guard_host_to_device", "disallow")
for name, where in json.loads(sys.argv[2]).items():
    module = sys.modules.get(name)
    found = os.path.realpath(getattr(module, "__file__", None) or "")
    if module is not None and where is None:
        sys.exit(f"{{name}} was imported from {{found or module}}, but the measured project has no {{name}}")
    if module is not None and not found.startswith(os.path.realpath(where) + os.sep):
        sys.exit(f"{{name}} was imported from {{found or module}}, not from {{os.path.realpath(where)}}")
calls = int(sys.argv[1])
for _ in range(3):  # compiled, caches and pools warm: the runs differ in their counted calls only
    call()
if sys.argv[3] == "toggle":
{client_request}
    callgrind_request(START_INSTRUMENTATION)
for _ in range(calls):
    call()
if sys.argv[3] == "toggle":
    callgrind_request(STOP_INSTRUMENTATION)
"""

# A valgrind client request issued from Python. valgrind.h does it with inline assembly, which Python cannot
# run, and no maintained package exposes it, so the same instructions are written to an executable page and
# called through ctypes: rax = the request's arguments, rdx = the value returned when not under valgrind,
# then valgrind.h's amd64 preamble (rol rdi by 3, 13, 61, 51: a no-op rotation that valgrind recognises),
# then ``xchg rbx, rbx``; rdx is the result. The request codes are callgrind.h's
# (VG_USERREQ_TOOL_BASE('C', 'T') + 4 and + 5).
_CLIENT_REQUEST = """import ctypes, mmap
page = mmap.mmap(-1, mmap.PAGESIZE, prot=mmap.PROT_READ | mmap.PROT_WRITE | mmap.PROT_EXEC)
page.write(bytes.fromhex(
    "4889f8" "4889f2"  # mov rax, rdi; mov rdx, rsi
    "48c1c703" "48c1c70d" "48c1c73d" "48c1c733"  # rol rdi, 3 / 13 / 61 / 51
    "4887db" "4889d0" "c3"  # xchg rbx, rbx; mov rax, rdx; ret
))
request = ctypes.CFUNCTYPE(ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong), ctypes.c_ulong)(
    ctypes.addressof(ctypes.c_char.from_buffer(page))
)
START_INSTRUMENTATION, STOP_INSTRUMENTATION = 0x43540004, 0x43540005
def callgrind_request(code):
    if request((ctypes.c_ulong * 6)(code, 0, 0, 0, 0, 0), 7) == 7:
        sys.exit("callgrind did not answer its client request: is this interpreter running under it?")
"""


def toggles() -> bool:
    """Whether the child can switch callgrind's instrumentation itself (x86-64 Linux: the machine code
    above); elsewhere every instruction from the start is counted (slower; the start-up still cancels)."""
    return sys.platform == "linux" and platform.machine() in ("x86_64", "AMD64")


def child_script(kernel: Kernel) -> str:
    """The measured interpreter's program for ``kernel`` (argv: calls, `Source.packages` as JSON,
    ``"toggle"`` or ``"full"``)."""
    request = "\n".join("    " + line for line in _CLIENT_REQUEST.splitlines())
    return _CHILD.format(
        setup=kernel.setup, host_inputs=kernel.host_inputs, unavailable=UNAVAILABLE, client_request=request
    )


@dataclasses.dataclass(frozen=True)
class Source:
    """Where the measured interpreter imports the project from: ``path`` is its ``PYTHONPATH`` and working
    directory, ``packages`` the directory each project package must be loaded from (checked in the child;
    None: the measured project has no such package, and the child must not import one)."""

    path: Path
    packages: dict[str, Path | None]

    def argv(self, script: Path, calls: int, toggle: bool) -> list[str]:
        """The child's command line after the interpreter (see `child_script`)."""
        where = json.dumps({name: d if d is None else str(d) for name, d in self.packages.items()})
        return [str(script), str(calls), where, "toggle" if toggle else "full"]


def tree(root: Path = ROOT) -> Source:
    """The project as the source tree ``root`` holds it (this checkout, or a worktree of another commit)."""
    return Source(root, {name: root / name for name in PROJECT_PACKAGES})


def installed(shim: Path) -> Source:
    """The project as this process imports it, with this checkout's ``benchmarks``: what asv measures, whose
    environment holds the benchmarked commit's wheel (which has no ``benchmarks``) while the benchmark
    modules come from the checkout. ``shim`` becomes a directory holding only a link to ``benchmarks``, so
    that the child's ``PYTHONPATH`` adds that package and nothing that would hide the installed ones. A
    package the commit does not have (an older layout) maps to None: a kernel that needs it cannot import
    it there, and is unavailable."""
    packages: dict[str, Path | None] = {"benchmarks": Path(__file__).resolve().parent}
    for name in PROJECT_PACKAGES:
        if name != "benchmarks":
            spec = importlib.util.find_spec(name)
            found = spec is not None and spec.submodule_search_locations
            packages[name] = Path(next(iter(spec.submodule_search_locations))).resolve() if found else None
    shim.mkdir(parents=True, exist_ok=True)
    link = shim / "benchmarks"
    if not link.exists():
        link.symlink_to(packages["benchmarks"], target_is_directory=True)
    return Source(shim, packages)


ENV = {
    "PJRT_NPROC": "1",
    "PYTHONHASHSEED": "0",
    "JAX_PLATFORMS": "cpu",
    "JAX_DEFAULT_MATMUL_PRECISION": "highest",
    "GLIBC_TUNABLES": "glibc.malloc.mxfast=0",
}


class ValgrindMissing(RuntimeError):
    """valgrind is not on PATH."""


class KernelFailed(RuntimeError):
    """A kernel's interpreter exited non-zero (its stderr's end is in the message)."""


class KernelUnavailable(KernelFailed):
    """A kernel's setup could not import what it names (a commit from before the kernel's code existed)."""


def thread_counts(out_prefix: Path) -> dict[int, int]:
    """Instructions of each thread from callgrind's ``--separate-threads`` files ``<prefix>-NN`` (thread NN,
    1 = the main thread): their ``totals:`` lines (the ``summary:`` line reads 0 when instrumentation was
    switched on during the run)."""
    counts = {}
    for path in out_prefix.parent.glob(out_prefix.name + "-*"):
        match = re.search(r"^totals: (\d+)$", path.read_text(), re.M)
        if match is None:
            raise ValueError(f"{path} has no 'totals:' line; is it a callgrind output file?")
        counts[int(path.name.rsplit("-", 1)[1])] = int(match.group(1))
    if 1 not in counts:
        raise ValueError(f"no callgrind output for the main thread at {out_prefix}-01")
    return counts


# The thread pool's own functions (finding, stealing and waiting for tasks), not counted: how many
# instructions they run depends on how long an idle thread spun, not on the program.
POOL_IDLE = re.compile(r"\bEigen::(ThreadPoolTempl|EventCount)\b")
_FN = re.compile(r"^c?fn=(?:\((\d+)\))? ?(.*)$")


def function_costs(path: Path) -> dict[str, int]:
    """Instructions of each function (self cost) in one callgrind output file.

    Read here rather than through callgrind_annotate, whose text output changed across valgrind versions:
    the file format is documented and small. ``fn=``/``cfn=`` name functions (``(id) name`` once, ``(id)``
    after); a cost line (position, Ir) adds to the current ``fn``, except the line after ``calls=``, which
    is the callee's inclusive cost. The sum must equal the file's ``totals:`` line, or the file is refused.
    """
    names: dict[str, str] = {}
    costs: dict[str, int] = {}
    fn, after_calls = "", False
    text = path.read_text()
    if not re.search(r"^events: Ir$", text, re.M):
        raise ValueError(f"{path}: expected callgrind's single event Ir ('events: Ir')")
    for line in text.splitlines():
        if line.startswith(("fn=", "cfn=")):
            ident, name = _FN.match(line).groups()
            if ident is not None:
                if name:
                    names[ident] = name
                elif ident in names:
                    name = names[ident]
                else:
                    raise ValueError(f"{path}: function ({ident}) is used before it is named")
            if line.startswith("fn="):
                fn = name
        elif line.startswith("calls="):
            after_calls = True
        elif line[:1] and line[0] in "0123456789+-*":
            if after_calls:
                after_calls = False
                continue
            fields = line.split()
            costs[fn] = costs.get(fn, 0) + (int(fields[1]) if len(fields) > 1 else 0)
    totals = re.search(r"^totals: (\d+)$", text, re.M)
    if totals is None or int(totals.group(1)) != sum(costs.values()):
        raise ValueError(f"{path}: the functions' costs do not add up to its 'totals:' line")
    return costs


def counted(out_prefix: Path) -> int:
    """The instructions of every thread (files ``<prefix>-NN``) outside the thread pool's own functions."""
    files = list(out_prefix.parent.glob(out_prefix.name + "-*"))
    if not files:
        raise ValueError(f"no callgrind output at {out_prefix}-NN")
    return sum(
        cost for path in files for name, cost in function_costs(path).items() if not POOL_IDLE.search(name)
    )


def _valgrind() -> str:
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise ValgrindMissing(
            "valgrind is not on PATH; install it (e.g. apt install valgrind) to count instructions"
        )
    return valgrind


def count(kernel: str, calls: int, workdir: Path, source: Source | None = None) -> int:
    """The instructions of one interpreter that runs ``kernel`` ``calls`` times under callgrind, importing the
    project from ``source`` (default: this tree): where the child switches instrumentation itself
    (`toggles`), those of the calls alone, on every thread, outside the thread pool's own functions; else
    the whole run's main thread."""
    source = tree() if source is None else source
    pythonpath = os.environ.get("PYTHONPATH", "")
    # valgrind itself, not a wrapper library: what is read is a few settings of the measured process and the
    # per-function costs of callgrind's output files, which a subprocess and `function_costs` give directly
    valgrind = _valgrind()
    toggle = toggles()
    script = workdir / f"{kernel}.py"
    script.write_text(child_script(KERNELS[kernel]))
    prefix = workdir / f"{kernel}.{calls}"
    proc = subprocess.run(
        [
            valgrind,
            "--tool=callgrind",
            "--separate-threads=yes",
            f"--instr-atstart={'no' if toggle else 'yes'}",
            f"--callgrind-out-file={prefix}",
            sys.executable,
            *source.argv(script, calls, toggle),
        ],
        cwd=source.path,
        # first on the path, before any the caller set (a test's stand-in for site-packages)
        env={
            **os.environ,
            **ENV,
            "PYTHONPATH": os.pathsep.join(filter(None, (str(source.path), pythonpath))),
        },
        check=False,  # a failure is reported with the child's stderr below
        capture_output=True,
        text=True,
    )
    if proc.returncode:
        tail = "\n".join(proc.stderr.strip().splitlines()[-8:])
        error = KernelUnavailable if proc.returncode == UNAVAILABLE else KernelFailed
        raise error(f"kernel {kernel!r} failed in {source.path} (exit {proc.returncode}):\n{tail}")
    # toggled: every thread, outside the pool's own functions (see the module's docstring); full: the main
    # thread alone, since the start-up's compiler and pool threads would add their spread (tens of M)
    return counted(prefix) if toggle else thread_counts(prefix)[1]


def per_call(
    kernel: str, low: int | None = None, high: int | None = None, source: Source | None = None
) -> dict[str, float]:
    """``kernel``'s instructions per call: the counts of a ``low``-call and a ``high``-call run (the kernel's
    own by default), differenced. Where the child switches instrumentation itself (`toggles`) only its calls
    are counted, so ``low`` defaults to 0 and a 0-call run is not made (it would count two client requests
    and nothing else)."""
    if kernel not in KERNELS:
        raise ValueError(f"unknown kernel {kernel!r}; one of {sorted(KERNELS)}")
    toggle = toggles()
    low = (0 if toggle else KERNELS[kernel].low) if low is None else low
    high = KERNELS[kernel].high if high is None else high
    if not 0 <= low < high:
        raise ValueError(f"need 0 <= low < high; got low={low}, high={high}")
    with tempfile.TemporaryDirectory() as tmp:
        at_low = 0 if toggle and low == 0 else count(kernel, low, Path(tmp), source)
        at_high = count(kernel, high, Path(tmp), source)
    return {
        "low": low,
        "high": high,
        "count_low": at_low,
        "count_high": at_high,
        "per_call": (at_high - at_low) / (high - low),
    }


@contextlib.contextmanager
def checkout(rev: str) -> Iterator[Path]:
    """A detached git worktree of commit ``rev`` of this repository, removed on exit."""
    resolved = subprocess.run(
        ["git", "rev-parse", "--verify", "--quiet", f"{rev}^{{commit}}"],
        cwd=ROOT,
        check=False,
        capture_output=True,
        text=True,
    )
    if resolved.returncode:
        raise ValueError(f"{rev!r} is not a commit of the repository at {ROOT}")
    with tempfile.TemporaryDirectory(prefix="instructions-base-") as tmp:
        tree = Path(tmp) / "tree"
        subprocess.run(
            ["git", "worktree", "add", "--detach", str(tree), resolved.stdout.strip()],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        try:
            yield tree
        finally:
            # not checked: the worktree's files go with the temporary directory anyway, and prune then drops
            # git's record of it
            for command in (["remove", "--force", str(tree)], ["prune"]):
                subprocess.run(["git", "worktree", *command], cwd=ROOT, check=False, capture_output=True)


def against(
    rev: str,
    kernels: list[str],
    low: int | None = None,
    high: int | None = None,
    current: Source | None = None,
) -> tuple[dict[str, dict], dict[str, dict], dict[str, str]]:
    """Each kernel's count per call at commit ``rev`` and in ``current`` (default: this tree): (base, current,
    kernels without a base and why). A kernel that fails at ``rev`` (added since, or broken there) has no
    base; one that fails in ``current`` raises `KernelFailed`."""
    _valgrind()
    base: dict[str, dict] = {}
    missing: dict[str, str] = {}
    with checkout(rev) as worktree:
        for name in kernels:
            try:
                base[name] = per_call(name, low, high, tree(worktree))
            except KernelFailed as exc:
                missing[name] = str(exc)
    return base, {name: per_call(name, low, high, current) for name in kernels}, missing


def load_baseline(path: Path) -> dict[str, dict]:
    """The counts of a JSON written by ``--json``: the kernels' results, or, from an ``--against`` run
    (``{"base": ..., "current": ...}``), those of the tree it measured."""
    data = json.loads(path.read_text())
    return data["current"] if data.keys() == {"base", "current"} else data


def regressions(baseline: dict[str, dict], current: dict[str, dict], factor: float) -> list[str]:
    """One line for each kernel of both whose instructions per call grew by more than ``factor``."""
    out = []
    for name in sorted(baseline.keys() & current.keys()):
        before, now = baseline[name]["per_call"], current[name]["per_call"]
        if now > factor * before:
            out.append(
                f"{name}: {before:,.0f} -> {now:,.0f} instructions per call ({now / before:.3f}x > {factor})"
            )
    return out


class TrackInstructions:
    """asv: each kernel's instructions per call at the benchmarked commit, for the dashboard (the gate on them
    is ``--against``). Counted once in ``setup``, through `installed`: asv's environment holds that commit's
    wheel, and this checkout's kernel setups import it. Skipped (asv's "n/a") without valgrind, and for a
    commit whose code lacks what the kernel's setup imports; a kernel that fails otherwise fails here."""

    params = sorted(KERNELS)
    param_names = ("kernel",)
    timeout = 600  # one run under callgrind: 20-110 s per kernel on the 2-core machine

    def setup(self, kernel: str) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            try:
                self.count = per_call(kernel, source=installed(Path(tmp) / "shim"))["per_call"]
            except (ValgrindMissing, KernelUnavailable) as exc:
                raise NotImplementedError(str(exc)) from exc

    def track_instructions_per_call(self, kernel: str) -> float:
        return self.count

    track_instructions_per_call.unit = "instructions"


def _report(results: dict[str, dict]) -> None:
    for name, r in results.items():
        print(f"{name:32s} {r['per_call']:>14,.0f} instructions per call ({r['low']} and {r['high']} calls)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.instructions", description=__doc__.split("\n\n")[0]
    )
    parser.add_argument("--kernel", action="append", choices=sorted(KERNELS), help="default: all")
    parser.add_argument("--low", type=int, help="calls of the shorter run (default: the kernel's own)")
    parser.add_argument("--high", type=int, help="calls of the longer run (default: the kernel's own)")
    parser.add_argument("--json", metavar="OUT", help="write the counts as JSON (a later --baseline)")
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--baseline", metavar="IN", help="compare with this JSON; exit 1 on growth")
    source.add_argument(
        "--against",
        metavar="REV",
        help="measure commit REV too (a git worktree) and compare; exit 1 on growth",
    )
    parser.add_argument("--factor", type=float, default=1.02)
    args = parser.parse_args(argv)
    if args.factor < 1.0:
        parser.error(f"--factor must be at least 1; got {args.factor}")
    kernels = args.kernel or sorted(KERNELS)
    try:
        if args.against:
            base, results, missing = against(args.against, kernels, args.low, args.high)
        else:
            results, missing = {k: per_call(k, args.low, args.high) for k in kernels}, {}
            base = load_baseline(Path(args.baseline)) if args.baseline else None
    except ValgrindMissing as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except (KernelFailed, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 3
    _report(results)
    if args.json:
        Path(args.json).write_text(
            json.dumps(results if base is None else {"base": base, "current": results}, indent=2)
        )
    if base is None:
        return 0
    for name in kernels:
        if name in base:
            ratio = results[name]["per_call"] / base[name]["per_call"]
            print(
                f"{name:32s} {base[name]['per_call']:>14,.0f} -> {results[name]['per_call']:,.0f} ({ratio:.4f}x)"
            )
        else:
            why = missing.get(name, "not in the baseline").splitlines()[0]
            print(f"{name:32s} no base ({why})")
    grown = regressions(base, results, args.factor)
    for line in grown:
        print(f"REGRESSION {line}")
    return 1 if grown else 0


if __name__ == "__main__":
    sys.exit(main())
