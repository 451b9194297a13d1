"""Records every parity assertion of a test session, for the report.

The pytest plugin installs one `Recorder` per process (the controller, or each xdist worker) and feeds it
JAX compilation events; `assert_parity` records into it. Per (case, backend, device, dtype) it keeps the
number of examples, a histogram of tiers, the worst example (its metrics, how to reproduce it and, when
given, its inputs), and the compilations and traces attributed to the case. Workers export their entries
as JSON; the controller merges them with `merge`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from conformance.compiles import COMPILE_EVENT, TRACE_EVENT
from conformance.tiers import tier_rank
from contracts import common as atomic

if TYPE_CHECKING:
    from conformance.parity import ParityResult

_CURRENT: Recorder | None = None
_PROFILE = "default"

META_KEYS = ("__case__", "__dtype__", "__backend__", "__device__")


def install(rec: Recorder | None, profile: str | None = None) -> None:
    """Make ``rec`` the process's recorder (``None`` uninstalls); remember the Hypothesis profile name."""
    global _CURRENT, _PROFILE
    _CURRENT = rec
    if profile is not None:
        _PROFILE = profile


def current() -> Recorder | None:
    return _CURRENT


def profile_name() -> str:
    return _PROFILE


def slug(case: str, dtype: str, backend: str, device: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.@-]+", "_", f"{case}@{dtype}@{backend}@{device}")


def worst_key(d: Mapping[str, Any]) -> tuple[int, float, float]:
    worst = next((leaf for leaf in d["leaves"] if leaf["path"] == d["worst_leaf"]), None)
    mae = worst["mae_norm"] if worst else float("inf")
    mx = worst["max_norm"] if worst else float("inf")
    return tier_rank(d["tier"]), mae, mx


def flat_inputs(inputs: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """Arrays, numbers and strings only: what a safe ``.npz`` holds (no pickled objects)."""
    from conformance.metrics import to_numpy

    out: dict[str, np.ndarray] = {}
    for key, value in inputs.items():
        if key in META_KEYS:
            raise ValueError(f"input name {key!r} is reserved")
        arr = to_numpy(value) if not isinstance(value, str) else np.asarray(value)
        if arr.dtype.name == "bfloat16":  # no safe .npz form: widened to float32, which is exact
            arr = arr.astype(np.float32)
        if arr.dtype.kind not in "biufcU":
            raise ValueError(
                f"inputs must be a flat mapping of arrays, numbers and strings; {key!r} is {type(value).__name__}"
            )
        out[key] = np.array(arr, copy=True)
    return out


class Recorder:
    def __init__(self, out_dir: Path | None = None, worker: str = "main") -> None:
        self.out_dir = out_dir
        self.worker = worker
        self.entries: dict[str, dict[str, Any]] = {}
        self._inputs: dict[str, dict[str, np.ndarray]] = {}
        self.series: list[dict[str, Any]] = []
        self.compiles = 0
        self.traces = 0
        self._mark = (0, 0)

    # -- events ---------------------------------------------------------------------------------

    def on_jax_event(self, name: str, *_: Any, **__: Any) -> None:
        if name == COMPILE_EVENT:
            self.compiles += 1
        elif name == TRACE_EVENT:
            self.traces += 1

    def start_test(self) -> None:
        self._mark = (self.compiles, self.traces)

    # -- recording ------------------------------------------------------------------------------

    def inputs_path_hint(self, result: ParityResult) -> str | None:
        if self.out_dir is None:
            return None
        return str(
            self.out_dir
            / "examples"
            / f"{slug(result.case, result.dtype, result.backend, result.device)}.npz"
        )

    def record(self, result: ParityResult, inputs: Mapping[str, Any] | None = None) -> None:
        key = slug(result.case, result.dtype, result.backend, result.device)
        compiles, traces = self.compiles - self._mark[0], self.traces - self._mark[1]
        self._mark = (self.compiles, self.traces)
        d = result.to_dict()
        entry = self.entries.get(key)
        if entry is None:
            entry = self.entries[key] = {
                "key": key,
                "case": result.case,
                "subsystem": result.subsystem,
                "backend": result.backend,
                "device": result.device,
                "dtype": result.dtype,
                "scale": result.scale,
                "required": result.required,
                "examples": 0,
                "failed_examples": 0,
                "tier_counts": {},
                "worst": d,
                "compiles": 0,
                "traces": 0,
                "nodeids": [],
                "inputs_file": None,
            }
            is_worst = True
        else:
            is_worst = worst_key(d) > worst_key(entry["worst"])
        entry["examples"] += 1
        entry["failed_examples"] += 0 if result.passed else 1
        entry["tier_counts"][result.tier] = entry["tier_counts"].get(result.tier, 0) + 1
        entry["compiles"] += compiles
        entry["traces"] += traces
        nodeid = result.reproduce.get("nodeid")
        if nodeid and nodeid not in entry["nodeids"]:
            entry["nodeids"].append(nodeid)
        if is_worst:
            entry["worst"] = d
            if inputs is not None and self.out_dir is not None:
                meta = {
                    "__case__": result.case,
                    "__dtype__": result.dtype,
                    "__backend__": result.backend,
                    "__device__": result.device,
                }
                self._inputs[key] = {**flat_inputs(inputs), **{k: np.asarray(v) for k, v in meta.items()}}
            else:
                self._inputs.pop(key, None)

    def record_series(
        self,
        name: str,
        x: Sequence[float],
        y: Sequence[float],
        *,
        case: str | None = None,
        label: str | None = None,
        xlabel: str = "",
        ylabel: str = "",
        logy: bool = True,
    ) -> None:
        if len(x) != len(y):
            raise ValueError(f"series {name!r}: x has {len(x)} points, y has {len(y)}")
        self.series.append(
            {
                "name": name,
                "case": case,
                "label": label or name,
                "x": [float(v) for v in x],
                "y": [float(v) for v in y],
                "xlabel": xlabel,
                "ylabel": ylabel,
                "logy": logy,
            }
        )

    # -- export and merge -----------------------------------------------------------------------

    def export(self) -> dict[str, Any]:
        """A JSON-able snapshot; the worst examples' inputs are written beside the report now."""
        entries = []
        for key, recorded in sorted(self.entries.items()):
            entry = dict(recorded)
            if key in self._inputs and self.out_dir is not None:
                path = self.out_dir / "examples" / f"{key}.{self.worker}.npz"
                atomic.save_npz(path, self._inputs[key])
                entry["inputs_file"] = str(path)
            entries.append(entry)
        return {"worker": self.worker, "entries": entries, "series": list(self.series)}


def merge(exports: Sequence[Mapping[str, Any]], out_dir: Path | None = None) -> dict[str, Any]:
    """Combine worker snapshots: sum counts, keep the worst example, keep only its inputs file."""
    merged: dict[str, dict[str, Any]] = {}
    series: list[dict[str, Any]] = []
    losers: list[str] = []
    for exp in exports:
        series.extend(exp.get("series", []))
        for e in exp.get("entries", []):
            key = e["key"]
            cur = merged.get(key)
            if cur is None:
                merged[key] = {**e, "tier_counts": dict(e["tier_counts"]), "nodeids": list(e["nodeids"])}
                continue
            cur["examples"] += e["examples"]
            cur["failed_examples"] += e["failed_examples"]
            cur["compiles"] += e["compiles"]
            cur["traces"] += e["traces"]
            for t, n in e["tier_counts"].items():
                cur["tier_counts"][t] = cur["tier_counts"].get(t, 0) + n
            cur["nodeids"] = sorted(set(cur["nodeids"]) | set(e["nodeids"]))
            if worst_key(e["worst"]) > worst_key(cur["worst"]):
                if cur.get("inputs_file"):
                    losers.append(cur["inputs_file"])
                cur["worst"], cur["inputs_file"] = e["worst"], e.get("inputs_file")
            elif e.get("inputs_file"):
                losers.append(e["inputs_file"])
    for path in losers:
        Path(path).unlink(missing_ok=True)
    # Give the surviving inputs file its final name (the one quoted in the failure message).
    for key, e in merged.items():
        src = e.get("inputs_file")
        if src and out_dir is not None:
            final = out_dir / "examples" / f"{key}.npz"
            Path(src).replace(final)
            e["inputs_file"] = str(final.relative_to(out_dir))
            e["worst"].setdefault("reproduce", {})["inputs"] = e["inputs_file"]
    return {"entries": [merged[k] for k in sorted(merged)], "series": series}
