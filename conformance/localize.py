"""The divergence localizer: where, layer by layer, does an implementation leave its reference's tier?

Generic over any pair of models: give it the named intermediates of both runs on the same input (e.g.
from torch forward hooks and from the port's own capture) and a name mapping; it compares every pair with
the suite's metrics, classifies each into a tier, and names the first layer (in execution order) that
drops below its required tier. `write` produces ``localize.md`` and ``localize.csv`` (the per-layer error
table), ``localize.json`` and ``localize.png`` (error propagation through the network, tier bands drawn).
Subsystems provide the capture and a ``main(argv)``; see `conformance/vae/localize.py`.
"""

from __future__ import annotations

import dataclasses
import io
import json
import math
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from conformance.metrics import compare_leaf
from conformance.tiers import GRADED_TIERS, TierTable, at_least, default_table
from contracts import common as atomic


@dataclasses.dataclass(frozen=True)
class LayerError:
    index: int
    name: str
    shape: tuple[int, ...]
    mae: float
    max_abs: float
    mae_norm: float
    max_norm: float
    tier: str
    required: str
    problem: str | None = None

    @property
    def passed(self) -> bool:
        return at_least(self.tier, self.required)


@dataclasses.dataclass(frozen=True)
class Localization:
    rows: tuple[LayerError, ...]
    dtype: str
    scale: str
    unmatched_reference: tuple[str, ...] = ()
    unmatched_actual: tuple[str, ...] = ()

    @property
    def first_below(self) -> LayerError | None:
        """The first layer, in execution order, below its required tier (``None``: every layer holds)."""
        return next((r for r in self.rows if not r.passed), None)

    def summary(self) -> str:
        fb = self.first_below
        if fb is None:
            return f"all {len(self.rows)} layers reach their required tiers"
        return (
            f"first layer below its tier: #{fb.index} {fb.name} reached {fb.tier!r}, required {fb.required!r} "
            f"(MAE {fb.mae_norm:.3e}, max {fb.max_norm:.3e})"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "dtype": self.dtype,
            "scale": self.scale,
            "first_below": self.first_below.name if self.first_below else None,
            "summary": self.summary(),
            "rows": [{**dataclasses.asdict(r), "passed": r.passed} for r in self.rows],
            "unmatched_reference": list(self.unmatched_reference),
            "unmatched_actual": list(self.unmatched_actual),
        }


def localize(
    reference: Mapping[str, Any],
    actual: Mapping[str, Any],
    *,
    dtype: str,
    required: str | Callable[[str], str] = "excellent",
    scale: str = "abs",
    mapping: Mapping[str, str] | Callable[[str], str | None] | None = None,
    convert: Callable[[str, np.ndarray], np.ndarray] | None = None,
    table: TierTable | None = None,
) -> Localization:
    """Compare named intermediates. ``reference`` is in execution order; ``mapping`` takes a reference name to
    the actual name (identity by default; ``None`` skips a layer); ``convert(name, actual)`` brings an actual
    array to the reference layout (e.g. channel-last to channel-first); ``required`` is a tier or a
    function of the reference name."""
    table = table or default_table()
    rows = []
    matched = set()
    missing = []
    for name, ref in reference.items():
        other = mapping(name) if callable(mapping) else (mapping or {}).get(name, name)
        if other is None:
            continue
        if other not in actual:
            missing.append(name)
            continue
        matched.add(other)
        act = np.asarray(actual[other])
        if convert is not None:
            act = convert(name, act)
        m = compare_leaf(name, np.asarray(ref), act, scale=scale)
        tier = table.classify_leaf(m, dtype)
        req = required(name) if callable(required) else required
        rows.append(
            LayerError(
                len(rows),
                name,
                tuple(np.shape(ref)),
                m.mae,
                m.max_abs,
                m.mae_norm,
                m.max_norm,
                tier,
                req,
                m.problem,
            )
        )
    extra = tuple(sorted(k for k in actual if k not in matched))
    return Localization(tuple(rows), dtype, scale, tuple(missing), extra)


def render_markdown(loc: Localization) -> str:
    lines = [
        f"# Divergence localization ({loc.dtype}, {loc.scale} scale)",
        "",
        f"**{loc.summary()}**",
        "",
        "| # | layer | shape | MAE | max | tier | required | |",
        "|---|---|---|---|---|---|---|---|",
    ]
    fb = loc.first_below
    for r in loc.rows:
        mark = "**first below**" if fb is not None and r.index == fb.index else ("" if r.passed else "below")
        lines.append(
            f"| {r.index} | `{r.name}` | {'x'.join(map(str, r.shape))} | {r.mae_norm:.3e} | {r.max_norm:.3e} "
            f"| {r.tier} | {r.required} | {mark} |"
        )
    if loc.unmatched_reference:
        lines += ["", f"Reference layers without a counterpart: {', '.join(loc.unmatched_reference)}"]
    if loc.unmatched_actual:
        lines += ["", f"Implementation layers without a counterpart: {', '.join(loc.unmatched_actual)}"]
    return "\n".join(lines) + "\n"


def render_csv(loc: Localization) -> str:
    out = ["index,layer,shape,mae,max_abs,mae_norm,max_norm,tier,required,passed"]
    for r in loc.rows:
        out.append(
            f"{r.index},{r.name},{'x'.join(map(str, r.shape))},{r.mae:.6e},{r.max_abs:.6e},{r.mae_norm:.6e},"
            f"{r.max_norm:.6e},{r.tier},{r.required},{r.passed}"
        )
    return "\n".join(out) + "\n"


def render_plot(loc: Localization, table: TierTable | None = None, title: str = "") -> bytes:
    """PNG: normalized MAE and max per layer in execution order (log scale) over the tier bands."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    table = table or default_table()
    n = len(loc.rows)
    fig, ax = plt.subplots(figsize=(max(8, 0.22 * n + 3), 5))
    floor = 1e-12

    def clip(v: float) -> float:
        return max(v, floor) if math.isfinite(v) else 1e2

    x = np.arange(n)
    ax.semilogy(x, [clip(r.mae_norm) for r in loc.rows], "o-", ms=3, label="normalized MAE")
    ax.semilogy(x, [clip(r.max_norm) for r in loc.rows], "x:", ms=3, alpha=0.6, label="normalized max")
    for tier in GRADED_TIERS:
        b = table.bounds_for(tier, loc.dtype)[0]
        ax.axhline(b, color="grey", lw=0.6, ls="--")
        ax.text(n - 0.5, b, f" {tier}", va="bottom", ha="right", fontsize=7, color="grey")
    fb = loc.first_below
    if fb is not None:
        ax.axvline(fb.index, color="red", lw=1)
        ax.annotate(
            f"first below {fb.required}: {fb.name}",
            (fb.index, clip(fb.mae_norm)),
            color="red",
            fontsize=8,
            xytext=(5, 10),
            textcoords="offset points",
        )
    ax.set_xticks(x)
    ax.set_xticklabels([r.name for r in loc.rows], rotation=90, fontsize=5)
    ax.set_ylabel(f"error ({loc.scale} scale, {loc.dtype})")
    ax.set_title(title or "error propagation through the network")
    ax.legend(loc="upper left", fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    return buf.getvalue()


def write(loc: Localization, out_dir: str | Path, *, title: str = "") -> dict[str, Path]:
    """Write the table (md, csv), the json and the plot (png) atomically into ``out_dir``."""
    out = Path(out_dir)
    return {
        "md": atomic.write_text(out / "localize.md", render_markdown(loc)),
        "csv": atomic.write_text(out / "localize.csv", render_csv(loc)),
        "json": atomic.write_text(out / "localize.json", json.dumps(loc.to_dict(), indent=2)),
        "png": atomic.write_bytes(out / "localize.png", render_plot(loc, title=title)),
    }


def main_for(subsystems: Mapping[str, str], argv: Sequence[str] | None = None) -> int:
    """``python -m conformance localize <subsystem> ...``: dispatch to ``conformance.<subsystem>.localize``."""
    import importlib
    import sys

    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] not in subsystems:
        print(f"usage: python -m conformance localize {{{','.join(subsystems)}}} [options]", file=sys.stderr)
        return 2
    return importlib.import_module(subsystems[args[0]]).main(args[1:])


def main(argv: Sequence[str] | None = None) -> int:
    from conformance import subsystems

    return main_for({s.name: s.localize for s in subsystems.discovered().values() if s.localize}, argv)
