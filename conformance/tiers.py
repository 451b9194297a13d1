"""The tier table: named parity levels, their bounds, and every case's required tier.

The table and the requirements live in one data file (`tiers.toml` beside this module). This module loads
it, validates it (unknown tiers, scales, dtypes, devices or backends are errors that name the offending
entry), scales bounds by dtype precision, and classifies a measured error into a tier.

Semantics (DESIGN.md):

- A tier is reached when the MAE of the normalized error is below the tier's bound **and** the maximum
  normalized error is below ``max_multiple`` times that bound, so one wrong row cannot hide in a mean.
- Bounds are written for float32 and scale with the dtype's machine epsilon, so "perfect" means the same
  number of units of precision for float64 (tighter) and bfloat16 (looser).
- ``exact`` means bitwise equal; ``severe`` is everything else, including NaN/Inf positions that disagree.
"""

from __future__ import annotations

import dataclasses
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np

TIERS: tuple[str, ...] = ("exact", "perfect", "excellent", "good", "warning", "attention", "severe")
GRADED_TIERS: tuple[str, ...] = TIERS[1:-1]  # the tiers defined by a bound
# The ratchet calls a row slack only when its result is this far inside a tighter tier's bounds: machines and
# ISAs move the last bits (tens of percent of an error), never 3x, so a result near a boundary cannot flip
# the verdict from one machine to the next.
SLACK_MARGIN = 3.0
SCALES: tuple[str, ...] = ("abs", "rel", "range")
DTYPES: tuple[str, ...] = ("float64", "float32", "float16", "bfloat16")
# Device classes: JAX's platform names (`jax.default_backend()`), so a row for "cuda" never applies on a TPU.
DEVICES: tuple[str, ...] = ("cpu", "cuda", "rocm", "tpu")
# Why an `exact` row may require bitwise equality (see `conformance.exactness`): the only situations in
# which two results are bitwise equal on every machine.
EXACT_REASONS: tuple[str, ...] = ("same-program", "order-independent", "reference-self")
SCHEMA = 1
DEFAULT_PATH = Path(__file__).with_name("tiers.toml")

_CASE_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_@\-]+)+$")


class TierTableError(ValueError):
    """The tier table or a lookup into it is invalid (unknown name, missing requirement, bad value)."""


def tier_rank(tier: str) -> int:
    """0 for ``exact`` (best) up to 6 for ``severe`` (worst)."""
    try:
        return TIERS.index(tier)
    except ValueError:
        raise TierTableError(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}") from None


def at_least(reached: str, required: str) -> bool:
    """Whether ``reached`` is the ``required`` tier or a better one."""
    return tier_rank(reached) <= tier_rank(required)


def worst_tier(tiers: Iterable[str]) -> str:
    return max(tiers, key=tier_rank, default="exact")


def eps(dtype: str) -> float:
    if dtype == "bfloat16":
        return float(ml_dtypes.finfo(ml_dtypes.bfloat16).eps)
    return float(np.finfo(np.dtype(dtype)).eps)


def justification_error(reason: str | None) -> str | None:
    """Why ``reason`` does not justify bitwise equality (``None`` when it does).

    A justification reads ``"<category>: <why>"`` with a category from `EXACT_REASONS`.
    """
    if not reason or not reason.strip():
        return (
            f"bitwise equality needs a justification '<category>: <why>' with a category in {EXACT_REASONS}"
        )
    category, sep, why = reason.partition(":")
    if category.strip() not in EXACT_REASONS or not sep or not why.strip():
        return (
            f"justification {reason!r} must read '<category>: <why>' with a category in {EXACT_REASONS} "
            "(two different programs are compared with a tier, not bitwise)"
        )
    return None


@dataclasses.dataclass(frozen=True)
class Requirement:
    backend: str
    device: str  # a device name or "*"
    dtype: str
    tier: str
    reason: str = ""  # required for `exact` rows and for device rows that differ from the "*" row


@dataclasses.dataclass(frozen=True)
class CaseSpec:
    name: str
    scale: str
    doc: str
    required: tuple[Requirement, ...]

    @property
    def subsystem(self) -> str:
        return self.name.split(".", 1)[0]


@dataclasses.dataclass(frozen=True)
class TierTable:
    """The validated contents of the data file."""

    bounds: Mapping[str, float]  # graded tier -> float32 MAE bound of the normalized error
    max_multiple: float
    dtype_scale: Mapping[str, float]  # dtype -> factor applied to the float32 bounds
    backends: Mapping[str, str]  # backend name -> description
    cases: Mapping[str, CaseSpec]
    source: str

    # -- bounds and classification ---------------------------------------------------------------

    def bounds_for(self, tier: str, dtype: str) -> tuple[float, float]:
        """``(mae_bound, max_bound)`` of the normalized error for ``tier`` at ``dtype`` (exclusive)."""
        if tier == "exact":
            return 0.0, 0.0
        if tier == "severe":
            return math.inf, math.inf
        if tier not in self.bounds:
            raise TierTableError(f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
        bound = self.bounds[tier] * self.scale_factor(dtype)
        return bound, bound * self.max_multiple

    def scale_factor(self, dtype: str) -> float:
        try:
            return self.dtype_scale[dtype]
        except KeyError:
            raise TierTableError(f"unknown dtype {dtype!r}; known dtypes are {', '.join(DTYPES)}") from None

    def classify(
        self,
        mae_norm: float,
        max_norm: float,
        dtype: str,
        *,
        bitwise_equal: bool,
        nonfinite_agree: bool = True,
    ) -> str:
        """The best tier whose mean and max bounds both hold."""
        if not nonfinite_agree:
            return "severe"
        if bitwise_equal:
            return "exact"
        if not (math.isfinite(mae_norm) and math.isfinite(max_norm)):
            return "severe"
        for tier in GRADED_TIERS:
            mae_bound, max_bound = self.bounds_for(tier, dtype)
            if mae_norm < mae_bound and max_norm < max_bound:
                return tier
        return "severe"

    def classify_leaf(self, leaf: Any, dtype: str) -> str:
        """The tier of one compared leaf (`conformance.metrics.LeafMetrics`): severe on a structural problem."""
        if leaf.problem:
            return "severe"
        return self.classify(
            leaf.mae_norm,
            leaf.max_norm,
            dtype,
            bitwise_equal=leaf.bitwise_equal,
            nonfinite_agree=not leaf.nonfinite_mismatch,
        )

    # -- requirements ----------------------------------------------------------------------------

    def case(self, name: str) -> CaseSpec:
        try:
            return self.cases[name]
        except KeyError:
            near = [c for c in self.cases if c.split(".")[0] == name.split(".", maxsplit=1)[0]]
            hint = f" Cases of that subsystem: {', '.join(sorted(near))}." if near else ""
            raise TierTableError(
                f"unknown case {name!r}: declare it, with its scale and required tiers, in {self.source}.{hint}"
            ) from None

    def required(self, case: str, backend: str, device: str, dtype: str) -> str:
        """The required tier; a requirement for the exact device beats a ``*`` one."""
        return self.requirement(case, backend, device, dtype).tier

    def slack(self, mae_norm: float, max_norm: float, dtype: str, required: str) -> str | None:
        """The tightest graded tier a result reaches with `SLACK_MARGIN` to spare when that is better than
        ``required`` (``None`` otherwise).

        A row that requires less than its cells reach can be loosened further without anyone noticing: the
        ratchet asks for the tighter tier, or for the row's reason why not (a small margin on this machine, a
        harder input distribution in other profiles)."""
        if required in ("exact", "perfect") or not (math.isfinite(mae_norm) and math.isfinite(max_norm)):
            return None
        for tier in GRADED_TIERS[: GRADED_TIERS.index(required)]:
            mae_bound, max_bound = self.bounds_for(tier, dtype)
            if mae_norm * SLACK_MARGIN < mae_bound and max_norm * SLACK_MARGIN < max_bound:
                return tier
        return None

    def requirement(self, case: str, backend: str, device: str, dtype: str) -> Requirement:
        """The requirement row that applies; a row for the exact device beats a ``*`` one."""
        spec = self.case(case)
        if backend not in self.backends:
            raise TierTableError(
                f"unknown backend {backend!r}; known backends: {', '.join(sorted(self.backends))}"
            )
        exact = [r for r in spec.required if (r.backend, r.device, r.dtype) == (backend, device, dtype)]
        wild = [r for r in spec.required if (r.backend, r.device, r.dtype) == (backend, "*", dtype)]
        for found in (exact, wild):
            if found:
                return found[0]
        have = ", ".join(f"{r.backend}/{r.device}/{r.dtype}" for r in spec.required) or "none"
        raise TierTableError(
            f"no required tier for {case} on backend {backend!r}, device {device!r}, dtype {dtype!r} "
            f'in {self.source} (declared: {have}). Add a row ["{backend}", "{device}", "{dtype}", <tier>].'
        )

    def expected(self, subsystems: Iterable[str], device: str) -> list[tuple[str, str, str, str]]:
        """Every (case, backend, dtype, tier) that a run on ``device`` must produce for ``subsystems``."""
        wanted = set(subsystems)
        out: dict[tuple[str, str, str], str] = {}
        for spec in self.cases.values():
            if spec.subsystem not in wanted:
                continue
            for r in spec.required:
                if r.device in ("*", device):
                    key = (spec.name, r.backend, r.dtype)
                    if r.device == device or key not in out:
                        out[key] = r.tier
        return sorted((c, b, d, t) for (c, b, d), t in out.items())

    def requirements(self) -> dict[str, Any]:
        """Every case's scale and rows, as plain data (what a report keeps to name a table difference)."""
        return {
            name: {
                "scale": spec.scale,
                "required": [[r.backend, r.device, r.dtype, r.tier] for r in spec.required],
            }
            for name, spec in sorted(self.cases.items())
        }

    def digest(self) -> str:
        """SHA-256 of everything that decides a verdict: bounds, guard, dtype scales, backends and requirements
        (not the docs or reasons, which do not change a verdict)."""
        import hashlib
        import json

        body = {
            "bounds": dict(self.bounds),
            "max_multiple": self.max_multiple,
            "dtype_scale": dict(self.dtype_scale),
            "backends": sorted(self.backends),
            "cases": self.requirements(),
        }
        return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "digest": self.digest(),
            "bounds_float32": dict(self.bounds),
            "max_multiple": self.max_multiple,
            "dtype_scale": dict(self.dtype_scale),
            "requirements": self.requirements(),
        }


# -- loading and validation -----------------------------------------------------------------------


def _expect(cond: bool, where: str, msg: str) -> None:
    if not cond:
        raise TierTableError(f"{where}: {msg}")


def _known_subsystems() -> list[str]:
    from conformance import subsystems

    return [*subsystems.names(), subsystems.SELFTEST]


def parse_table(
    data: Mapping[str, Any],
    source: str,
    known_backends: Iterable[str] | None = None,
    known_subsystems: Iterable[str] | None = None,
) -> TierTable:
    """Validate the parsed TOML document and build the table.

    ``known_backends``, when given, is the backend registry: every backend the file names must be in it.
    ``known_subsystems`` (default: the installed subsystems and ``selftest``) are the allowed case prefixes.
    """
    subsystem_names = list(known_subsystems) if known_subsystems is not None else _known_subsystems()
    _expect(data.get("schema") == SCHEMA, source, f"'schema' must be {SCHEMA}; got {data.get('schema')!r}")
    unknown_top = set(data) - {"schema", "tiers", "guard", "dtype_scale", "backends", "cases"}
    _expect(not unknown_top, source, f"unknown top-level keys {sorted(unknown_top)}")

    tiers = data.get("tiers", {})
    _expect(isinstance(tiers, dict), source, "[tiers] must be a table")
    _expect(
        list(tiers) == list(GRADED_TIERS),
        f"{source} [tiers]",
        f"must list exactly {', '.join(GRADED_TIERS)} in this order (exact and severe are implicit); "
        f"got {', '.join(tiers) or 'nothing'}",
    )
    previous = 0.0
    for name, bound in tiers.items():
        _expect(
            isinstance(bound, int | float) and math.isfinite(bound) and bound > previous,
            f"{source} [tiers].{name}",
            f"bound must be a finite number larger than the previous tier's ({previous}); got {bound!r}",
        )
        previous = float(bound)

    guard = data.get("guard", {})
    multiple = guard.get("max_multiple")
    _expect(
        isinstance(multiple, int | float) and math.isfinite(multiple) and multiple >= 1,
        f"{source} [guard].max_multiple",
        f"must be a finite number >= 1; got {multiple!r}",
    )

    dtype_scale = {d: eps(d) / eps("float32") for d in DTYPES}
    for name, factor in data.get("dtype_scale", {}).items():
        _expect(
            name in DTYPES, f"{source} [dtype_scale]", f"unknown dtype {name!r}; known: {', '.join(DTYPES)}"
        )
        _expect(
            isinstance(factor, int | float) and math.isfinite(factor) and factor > 0,
            f"{source} [dtype_scale].{name}",
            f"must be a positive number; got {factor!r}",
        )
        dtype_scale[name] = float(factor)

    backends = data.get("backends", {})
    _expect(isinstance(backends, dict) and backends, source, "[backends] must declare at least one backend")
    if known_backends is not None:
        registered = set(known_backends)
        for name in backends:
            _expect(
                name in registered,
                f"{source} [backends]",
                f"backend {name!r} is not registered in code (registered: {', '.join(sorted(registered))})",
            )

    cases: dict[str, CaseSpec] = {}
    for name, body in data.get("cases", {}).items():
        where = f'{source} [cases."{name}"]'
        _expect(bool(_CASE_NAME.match(name)), where, "case names look like 'subsystem.function[.variant]'")
        _expect(
            name.split(".")[0] in subsystem_names,
            where,
            f"unknown subsystem {name.split('.')[0]!r}; subsystems are {', '.join(subsystem_names)}",
        )
        _expect(isinstance(body, dict), where, "must be a table")
        extra = set(body) - {"scale", "doc", "required"}
        _expect(not extra, where, f"unknown keys {sorted(extra)}")
        scale = body.get("scale")
        _expect(scale in SCALES, where, f"scale must be one of {', '.join(SCALES)}; got {scale!r}")
        rows = body.get("required", [])
        _expect(isinstance(rows, list) and rows, where, "needs a non-empty 'required' list")
        reqs: list[Requirement] = []
        seen: set[tuple[str, str, str]] = set()
        for i, row in enumerate(rows):
            rwhere = f"{where} required[{i}]"
            _expect(
                isinstance(row, list) and len(row) in (4, 5) and all(isinstance(x, str) for x in row),
                rwhere,
                f"must be [backend, device, dtype, tier] or [backend, device, dtype, tier, reason]; got {row!r}",
            )
            backend, device, dtype, tier = row[:4]
            reason = row[4].strip() if len(row) == 5 else ""
            _expect(backend in backends, rwhere, f"unknown backend {backend!r}; declare it in [backends]")
            _expect(
                device == "*" or device in DEVICES, rwhere, f"unknown device {device!r}; use * or {DEVICES}"
            )
            _expect(dtype in DTYPES, rwhere, f"unknown dtype {dtype!r}; known: {', '.join(DTYPES)}")
            _expect(tier in TIERS, rwhere, f"unknown tier {tier!r}; tiers are {', '.join(TIERS)}")
            _expect(tier != "severe", rwhere, "requiring 'severe' requires nothing; remove the row instead")
            _expect(
                (backend, device, dtype) not in seen,
                rwhere,
                f"duplicate requirement for {backend}/{device}/{dtype}",
            )
            if tier == "exact":
                problem = justification_error(reason)
                _expect(problem is None, rwhere, f"an 'exact' row {problem}")
            seen.add((backend, device, dtype))
            reqs.append(Requirement(backend, device, dtype, tier, reason))
        for r in reqs:
            wild = next(
                (w for w in reqs if (w.backend, w.device, w.dtype) == (r.backend, "*", r.dtype)), None
            )
            _expect(
                r.device == "*" or wild is None or wild.tier == r.tier or bool(r.reason),
                where,
                f"the {r.device} row of {r.backend}/{r.dtype} requires {r.tier!r} where every other device "
                f"requires {wild.tier if wild else ''!r}: give the reason as a fifth element of the row",
            )
        cases[name] = CaseSpec(name=name, scale=scale, doc=str(body.get("doc", "")), required=tuple(reqs))

    return TierTable(
        bounds={k: float(v) for k, v in tiers.items()},
        max_multiple=float(multiple),
        dtype_scale=dtype_scale,
        backends=dict(backends),
        cases=cases,
        source=source,
    )


def _read_toml(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise TierTableError(f"tier table {path} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise TierTableError(f"{path} is not valid TOML: {exc}") from None


def load_table(path: str | Path = DEFAULT_PATH, known_backends: Iterable[str] | None = None) -> TierTable:
    """A complete table from one file (bounds, guard, backends and cases)."""
    return parse_table(_read_toml(path), str(path), known_backends)


def compose(base: Mapping[str, Any], parts: Iterable[tuple[str, Mapping[str, Any], str]]) -> dict[str, Any]:
    """The base document (bounds, guard, dtype scales, built-in backends) with each subsystem's part merged in.

    ``parts`` are ``(subsystem, document, source)``: a part declares ``[backends]`` it adds and
    ``[cases."<subsystem>.*"]``; it may not redefine the bounds, nor declare another subsystem's cases.
    """
    data: dict[str, Any] = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    data.setdefault("backends", {})
    data.setdefault("cases", {})
    for subsystem, part, source in parts:
        extra = set(part) - {"schema", "backends", "cases"}
        _expect(
            not extra,
            source,
            f"a subsystem's tier file holds only [backends] and [cases]; got {sorted(extra)}",
        )
        _expect(
            part.get("schema", SCHEMA) == SCHEMA,
            source,
            f"'schema' must be {SCHEMA}; got {part.get('schema')!r}",
        )
        for name, doc in part.get("backends", {}).items():
            _expect(
                data["backends"].get(name, doc) == doc,
                f"{source} [backends]",
                f"backend {name!r} is already declared as {data['backends'].get(name)!r}",
            )
            data["backends"][name] = doc
        for name, body in part.get("cases", {}).items():
            _expect(
                name.split(".")[0] == subsystem,
                f'{source} [cases."{name}"]',
                f"the {subsystem} tier file may declare only {subsystem}.* cases",
            )
            _expect(name not in data["cases"], f'{source} [cases."{name}"]', "declared twice")
            data["cases"][name] = body
    return data


def project_sources() -> list[tuple[str, Path]]:
    """The files the project table is made of: the base, then each installed subsystem's tier file."""
    from conformance import subsystems

    return [("", DEFAULT_PATH), *((s.name, Path(s.tiers)) for s in subsystems.discovered().values())]


_ACTIVE: TierTable | None = None


@cache
def _project_table() -> TierTable:
    from conformance import backends

    sources = project_sources()
    base = _read_toml(sources[0][1])
    parts = [(name, _read_toml(path), str(path)) for name, path in sources[1:]]
    source = " + ".join(str(p) for _, p in sources)
    return parse_table(compose(base, parts), source, known_backends=backends.names())


def use_table(path: str | Path | None) -> TierTable:
    """Make the table at ``path`` the active one for this process (``None``: back to the project's)."""
    global _ACTIVE
    if path is None:
        _ACTIVE = None
        return _project_table()
    from conformance import backends

    _ACTIVE = load_table(path, known_backends=backends.names())
    return _ACTIVE


def default_table() -> TierTable:
    """The active table: the project's (the base ``tiers.toml`` and every installed subsystem's tier file,
    validated against the backend registry, loaded once per process) unless the pytest plugin was given
    ``--conformance-tiers``."""
    return _ACTIVE if _ACTIVE is not None else _project_table()
