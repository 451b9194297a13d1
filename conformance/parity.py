"""`compare` and `assert_parity`: measure an output against its reference and judge it by the tier table.

``assert_parity`` is what tests call. It compares leaf by leaf, classifies the result into a tier, looks up
the required tier for (case, backend, device, dtype), records the assertion for the report (when the
pytest plugin is active) and raises `ParityError` with an actionable message when the tier falls short.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
from collections.abc import Mapping
from typing import Any

import numpy as np

from conformance import backends, precision, recorder
from conformance.metrics import LeafMetrics, compare_leaf, flatten, is_float, severe_leaf, to_numpy
from conformance.tiers import TierTable, at_least, default_table, tier_rank


class ParityError(AssertionError):
    """The implementation fell below its required tier. ``.result`` holds the full `ParityResult`."""

    def __init__(self, result: ParityResult) -> None:
        super().__init__(result.message())
        self.result = result


@dataclasses.dataclass(frozen=True)
class ParityResult:
    case: str
    backend: str
    device: str
    dtype: str
    scale: str
    tier: str
    required: str | None
    leaves: tuple[LeafMetrics, ...]
    problems: tuple[str, ...] = ()
    reproduce: Mapping[str, Any] = dataclasses.field(default_factory=dict)
    bounds: Mapping[str, tuple[float, float]] = dataclasses.field(default_factory=dict)

    @property
    def subsystem(self) -> str:
        return self.case.split(".", 1)[0]

    @property
    def passed(self) -> bool:
        return self.required is None or at_least(self.tier, self.required)

    @property
    def worst(self) -> LeafMetrics | None:
        """The leaf that decides the tier (worst tier, then largest normalized MAE and max)."""
        if not self.leaves:
            return None
        return max(self.leaves, key=lambda m: (m.problem is not None, m.mae_norm, m.max_norm))

    @property
    def label(self) -> str:
        return f"{self.case}[{self.dtype}] on {self.backend}/{self.device}"

    def to_dict(self) -> dict[str, Any]:
        worst = self.worst
        return {
            "case": self.case,
            "subsystem": self.subsystem,
            "backend": self.backend,
            "device": self.device,
            "dtype": self.dtype,
            "scale": self.scale,
            "tier": self.tier,
            "required": self.required,
            "passed": self.passed,
            "problems": list(self.problems),
            "worst_leaf": worst.path if worst else None,
            "leaves": [leaf.to_dict() for leaf in self.leaves],
            "reproduce": dict(self.reproduce),
            "bounds": {k: list(v) for k, v in self.bounds.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> ParityResult:
        return cls(
            case=d["case"],
            backend=d["backend"],
            device=d["device"],
            dtype=d["dtype"],
            scale=d["scale"],
            tier=d["tier"],
            required=d["required"],
            leaves=tuple(LeafMetrics.from_dict(x) for x in d["leaves"]),
            problems=tuple(d.get("problems", ())),
            reproduce=dict(d.get("reproduce", {})),
            bounds={k: tuple(v) for k, v in d.get("bounds", {}).items()},
        )

    def message(self) -> str:
        """A report a person can act on: what was required, what was reached, where, how to reproduce."""
        verdict = "PASS" if self.passed else "FAIL"
        lines = [
            f"Parity {verdict}: {self.label}: reached {self.tier!r}, required {self.required!r}.",
        ]
        for p in self.problems:
            lines.append(f"  problem: {p}")
        if self.required and self.required in self.bounds:
            mae_b, max_b = self.bounds[self.required]
            lines.append(
                f"  {self.required!r} at {self.dtype} needs normalized MAE < {mae_b:.3g} and max < {max_b:.3g} "
                f"({self.scale} scale)."
            )
        for leaf in sorted(self.leaves, key=lambda m: (m.problem is None, -m.mae_norm)):
            lines.append(_leaf_line(leaf))
        rep = self.reproduce
        if rep.get("command"):
            lines.append(f"  reproduce: {rep['command']}")
        if rep.get("inputs"):
            lines.append(f"  replay the saved inputs: python -m conformance replay {rep['inputs']}")
        if rep.get("hypothesis_blob"):
            lines.append(
                f"  hypothesis: @reproduce_failure({rep['hypothesis_version']!r}, {rep['hypothesis_blob']})"
            )
        return "\n".join(lines)


def _leaf_line(m: LeafMetrics) -> str:
    head = f"  leaf {m.path} {m.shape} {m.actual_dtype} (reference {m.reference_dtype}):"
    if m.problem:
        return f"{head} {m.problem}"
    den = (
        ""
        if m.scale == "abs"
        else f" / {m.denominator:.6g} ({m.scale}{'; degenerate, fell back to max|reference|' if m.scale_fallback else ''})"
    )
    parts = [
        head,
        f"    MAE {m.mae:.3e} -> {m.mae_norm:.3e} normalized{den}; max abs {m.max_abs:.3e} -> {m.max_norm:.3e}",
        f"    MSE {m.mse:.3e}, rel L2 {m.rel_l2:.3e}, max rel {m.max_rel:.3e}, max ULP {m.max_ulp}, "
        f"differing {m.differing}/{m.size}, mismatched {m.mismatched}/{m.size} "
        f"({100.0 * m.mismatched / max(m.size, 1):.2f}%)",
    ]
    if m.worst is not None:
        parts.append(
            f"    worst element at index {m.worst.index}: reference {m.worst.reference!r}, actual {m.worst.actual!r}"
        )
    if m.nonfinite_mismatch:
        parts.append(
            f"    NaN/Inf positions disagree at {m.nonfinite_mismatch} element(s), first at {m.first_nonfinite_mismatch}"
        )
    return "\n".join(parts)


# -- comparing ----------------------------------------------------------------------------------------


def _infer_dtype(leaves: list[tuple[str, np.ndarray]]) -> str:
    floats = sorted({a.dtype.name for _, a in leaves if is_float(a)})
    if len(floats) == 1:
        return floats[0]
    if not floats:
        return "float32"  # integer outputs compare exactly; the dtype only scales float bounds
    raise ValueError(f"outputs mix float dtypes {floats}; pass dtype= to name the case dtype")


def _infer_device(leaves: list[tuple[str, Any]]) -> str:
    found: set[str] = set()
    for _, x in leaves:
        if hasattr(x, "devices") and callable(x.devices):  # jax.Array
            found |= {d.platform for d in x.devices()}
        elif type(x).__module__.startswith("torch"):
            found.add(x.device.type)
    found = {"cuda" if d == "gpu" else d for d in found} or {"cpu"}
    if len(found) > 1:
        raise ValueError(f"outputs live on several devices {sorted(found)}; pass device=")
    return found.pop()


def compare(
    reference: Any,
    actual: Any,
    *,
    case: str,
    backend: str,
    dtype: str | None = None,
    device: str | None = None,
    table: TierTable | None = None,
    check_dtype: bool = True,
) -> ParityResult:
    """Compare ``actual`` against ``reference`` (arrays or matching pytrees) without raising on a low tier.

    The case's scale and required tier come from the tier table. Float leaves of ``actual`` must have the
    case dtype (a silent promotion or demotion is itself a defect) unless ``check_dtype`` is False.
    """
    table = table or default_table()
    spec = table.case(case)
    backends.get(backend)  # unknown backends are errors, even when the table declares them
    ref_leaves, ref_def = flatten(reference)
    act_leaves, act_def = flatten(actual)
    dtype = dtype or _infer_dtype([(p, to_numpy(x)) for p, x in act_leaves])
    device = device or _infer_device(act_leaves)
    required = table.required(case, backend, device, dtype)
    req_bounds = table.bounds_for(required, dtype)
    element_bound = req_bounds[1] if required not in ("exact",) else 0.0

    problems: list[str] = []
    leaves: list[LeafMetrics] = []
    if ref_def != act_def:
        ref_paths = [p for p, _ in ref_leaves]
        act_paths = [p for p, _ in act_leaves]
        missing = [p for p in ref_paths if p not in act_paths]
        extra = [p for p in act_paths if p not in ref_paths]
        problems.append(
            f"output structure differs: reference {ref_def}, actual {act_def}"
            + (f"; missing leaves {missing}" if missing else "")
            + (f"; unexpected leaves {extra}" if extra else "")
        )
        act_map = dict(act_leaves)
        pairs = [(p, r, act_map[p]) for p, r in ref_leaves if p in act_map]
    else:
        pairs = [(p, r, a) for (p, r), (_, a) in zip(ref_leaves, act_leaves, strict=True)]

    for path, r, a in pairs:
        r_np, a_np = to_numpy(r), to_numpy(a)
        if check_dtype and is_float(a_np) and a_np.dtype.name != dtype:
            leaves.append(
                severe_leaf(
                    path,
                    r_np,
                    a_np,
                    spec.scale,
                    f"dtype mismatch: the {dtype} case returned {a_np.dtype.name}",
                )
            )
            continue
        leaves.append(compare_leaf(path, r_np, a_np, scale=spec.scale, element_bound=element_bound))

    tiers = [table.classify_leaf(leaf, dtype) for leaf in leaves]
    tier = max(tiers, key=tier_rank) if tiers else "exact"
    if problems:
        tier = "severe"
    bounds = {t: table.bounds_for(t, dtype) for t in ("perfect", "excellent", "good", "warning", "attention")}
    bounds["exact"] = (0.0, 0.0)
    return ParityResult(
        case=case,
        backend=backend,
        device=device,
        dtype=dtype,
        scale=spec.scale,
        tier=tier,
        required=required,
        leaves=tuple(leaves),
        problems=tuple(problems),
        bounds=bounds,
    )


def _reproduce(inputs_hint: str | None) -> dict[str, Any]:
    """How to get this example back: the pytest node under the same profile, and the Hypothesis blob."""
    out: dict[str, Any] = {}
    current = os.environ.get("PYTEST_CURRENT_TEST")
    if current:
        nodeid = current.rsplit(" (", 1)[0]
        out["nodeid"] = nodeid
        profile = recorder.profile_name()
        out["command"] = f"python -m pytest {shlex.quote(nodeid)} -p no:xdist --hypothesis-profile {profile}"
    try:
        from hypothesis import __version__ as hv
        from hypothesis.control import current_build_context
        from hypothesis.core import encode_failure

        ctx = current_build_context()
    except Exception:
        ctx = None
    if ctx is not None:
        try:
            out["hypothesis_blob"] = repr(encode_failure(ctx.data.choices))
            out["hypothesis_version"] = hv
        except Exception:
            out["hypothesis_blob"] = None
    if inputs_hint:
        out["inputs"] = inputs_hint
    return out


def assert_parity(
    case: str,
    reference: Any,
    actual: Any,
    *,
    backend: str,
    dtype: str | None = None,
    device: str | None = None,
    inputs: Mapping[str, Any] | None = None,
    table: TierTable | None = None,
    check_dtype: bool = True,
) -> ParityResult:
    """Compare, record for the report, and raise `ParityError` if the required tier is not reached.

    ``inputs`` (a flat mapping of arrays and scalars) is kept for the worst example of the case, so that
    ``python -m conformance replay`` can re-run it without Hypothesis.
    """
    result = compare(
        reference,
        actual,
        case=case,
        backend=backend,
        dtype=dtype,
        device=device,
        table=table,
        check_dtype=check_dtype,
    )
    precision.check(backends.get(backend).framework, result.dtype)
    rec = recorder.current()
    hint = rec.inputs_path_hint(result) if (rec is not None and inputs is not None) else None
    result = dataclasses.replace(result, reproduce=_reproduce(hint))
    if rec is not None:
        rec.record(result, inputs)
    if not result.passed:
        raise ParityError(result)
    return result
