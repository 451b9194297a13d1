"""Deterministic shards of a suite, balanced by the measured cost of each test.

``python -m conformance run --shard K/N`` (pytest ``--conformance-shard K/N``) keeps the K-th of N parts of
the collected tests. The partition depends only on the collected node ids and the cost table, so every job
of a CI matrix (and every xdist worker inside a job) computes the same one: the union of the N shards is the
whole suite and no test runs twice. Costs are seconds measured in an earlier run (`write_costs` reads them
from reports); a test the table does not know costs the median of the known ones.

The partition is the longest-processing-time rule: tests by decreasing cost (node id to break ties), each
into the shard with the least total so far (lowest index to break ties).
"""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

DEFAULT_COSTS = Path(__file__).with_name("shard_costs.json")
_SPEC = re.compile(r"^\s*(\d+)\s*/\s*(\d+)\s*$")


class ShardError(ValueError):
    """A shard specification or cost table that cannot be used."""


def parse(spec: str) -> tuple[int, int]:
    """``"K/N"`` -> ``(K, N)`` with ``1 <= K <= N``."""
    m = _SPEC.match(str(spec))
    if not m:
        raise ShardError(f"shard {spec!r} must read K/N, e.g. 1/4 (the first of four shards)")
    k, n = int(m.group(1)), int(m.group(2))
    if n < 1:
        raise ShardError(f"shard {spec!r}: N must be at least 1")
    if not 1 <= k <= n:
        raise ShardError(f"shard {spec!r}: K must be between 1 and N={n} (shards are numbered from 1)")
    return k, n


def load_costs(path: str | Path | None = None) -> dict[str, float]:
    p = Path(path) if path is not None else DEFAULT_COSTS
    if not p.exists():
        if path is not None:
            raise ShardError(f"cost table {p} does not exist")
        return {}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ShardError(f"cost table {p} is not valid JSON: {exc}") from None
    costs = data.get("costs") if isinstance(data, dict) else None
    if not isinstance(costs, dict) or not all(isinstance(v, int | float) and v >= 0 for v in costs.values()):
        raise ShardError(f"cost table {p} must hold {{'costs': {{node id: seconds >= 0}}}}")
    return {str(k): float(v) for k, v in costs.items()}


def partition(nodeids: Sequence[str], n: int, costs: Mapping[str, float]) -> list[list[str]]:
    """The N shards of ``nodeids`` (each in collection order), balanced by cost."""
    if n < 1:
        raise ShardError(f"cannot split into {n} shards")
    known = [costs[i] for i in nodeids if i in costs]
    default = statistics.median(known) if known else 1.0
    cost = {i: costs.get(i, default) for i in nodeids}
    loads = [0.0] * n
    members: list[set[str]] = [set() for _ in range(n)]
    for nodeid in sorted(set(nodeids), key=lambda i: (-cost[i], i)):
        k = min(range(n), key=lambda j: (loads[j], j))
        members[k].add(nodeid)
        loads[k] += cost[nodeid]
    return [[i for i in nodeids if i in m] for m in members]


def select(nodeids: Sequence[str], k: int, n: int, costs: Mapping[str, float]) -> list[str]:
    """The node ids of shard ``k`` of ``n`` (1-based)."""
    return partition(nodeids, n, costs)[k - 1]


def costs_from_reports(docs: Iterable[Mapping[str, object]]) -> dict[str, float]:
    """Per-test seconds (setup + call + teardown) from parity reports; the largest measurement wins."""
    out: dict[str, float] = {}
    for doc in docs:
        for t in doc.get("tests", []):  # type: ignore[union-attr]
            nodeid, duration = t["nodeid"], float(t.get("duration", 0.0))
            out[nodeid] = round(max(out.get(nodeid, 0.0), duration), 3)
    return dict(sorted(out.items()))


def write_costs(costs: Mapping[str, float], path: str | Path, *, source: str) -> None:
    from contracts import common as atomic

    doc = {"source": source, "unit": "seconds", "costs": dict(sorted(costs.items()))}
    atomic.write_text(Path(path), json.dumps(doc, indent=0) + "\n")
