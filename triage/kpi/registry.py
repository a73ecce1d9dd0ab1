"""The indicator registry (Bộ chỉ số): a data file loaded and checked once, replaceable for another programme.

The file (YAML or JSON; ``TRIAGE_KPI_REGISTRY_PATH``, default the packaged ``triage/data/kpi_r57.yaml``)
holds task groups, strategic indicators with a target and a deadline, the operational indicators
agencies report on, and DHIS2-style validation rules. Everything a later step relies on is checked
here: agency codes exist, parents and measures resolve, a weighted mean names its weight, a rule's
sides name known indicators of the same frequency. A bad file fails at load with every reason.
"""

from __future__ import annotations

import json
from datetime import date
from functools import lru_cache
from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from triage.errors import InvalidInput, NotFound
from triage.kpi.periods import Frequency, Period
from triage.nlp.agencies import default_registry

DEFAULT_PATH = Path(__file__).resolve().parents[1] / "data" / "kpi_r57.yaml"
Direction = Literal["higher", "lower"]
Aggregation = Literal["sum", "weighted_mean", "latest", "all_done"]
Operator = Literal["<=", "<", ">=", ">", "==", "!="]
Importance = Literal["high", "medium", "low"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Programme(_Strict):
    code: str
    name: str
    issued: date
    report_days: int = Field(default=10, ge=1, le=60, description="Working days after a period to report it.")


class Group(_Strict):
    code: str
    name: str


class Baseline(_Strict):
    value: float
    period: str
    illustrative: bool = False
    source: str | None = None


class Strategic(_Strict):
    """A goal of the programme: a target value by a deadline, measured by one operational indicator's series."""

    code: str
    group: str
    name: str
    unit: str
    direction: Direction
    baseline: Baseline
    target: float
    deadline: date
    source: str
    illustrative: bool = False
    measure: str


class Operational(_Strict):
    """What agencies report each period; ``aggregation`` says how their values make the national one."""

    code: str
    parent: str
    name: str
    unit: str
    direction: Direction
    period: Frequency
    lead: str
    contributors: tuple[str, ...] = ()
    aggregation: Aggregation
    weight_by: str | None = None
    cumulative: bool = False

    @property
    def agencies(self) -> tuple[str, ...]:
        """The lead first, then the contributors: every agency a report is due from."""
        return (self.lead, *[c for c in self.contributors if c != self.lead])


class Side(_Strict):
    """One side of a rule: an indicator's value (same agency, period shifted by ``period_offset``) or a constant."""

    indicator: str | None = None
    period_offset: int = Field(default=0, ge=-12, le=0)
    constant: float | None = None
    factor: float = 1.0

    @model_validator(mode="after")
    def _one_of(self) -> Side:
        if (self.indicator is None) == (self.constant is None):
            raise ValueError("a side is either an indicator or a constant")
        return self


class Rule(_Strict):
    code: str
    name: str
    left: Side
    operator: Operator
    right: Side
    importance: Importance = "medium"


class Registry(_Strict):
    programme: Programme
    sources: dict[str, str]
    groups: tuple[Group, ...]
    strategic: tuple[Strategic, ...]
    operational: tuple[Operational, ...]
    validation_rules: tuple[Rule, ...] = ()

    @model_validator(mode="after")
    def _consistent(self) -> Registry:
        problems: list[str] = []
        groups = {g.code for g in self.groups}
        ops = {o.code: o for o in self.operational}
        agencies = {a.code for a in default_registry()}
        codes = [g.code for g in self.groups] + [s.code for s in self.strategic] + list(ops)
        dupes = sorted({c for c in codes if codes.count(c) > 1})
        if dupes:
            problems.append(f"codes used twice: {dupes}")
        for s in self.strategic:
            if s.group not in groups:
                problems.append(f"{s.code}: unknown group {s.group!r}")
            if s.source not in self.sources:
                problems.append(f"{s.code}: source {s.source!r} is not in sources")
            if s.measure not in ops or ops[s.measure].parent != s.code:
                problems.append(f"{s.code}: measure {s.measure!r} must be one of its own operational indicators")
            try:
                Period.parse(s.baseline.period)
            except InvalidInput as exc:
                problems.append(f"{s.code}: baseline {exc}")
        strategic = {s.code for s in self.strategic}
        for o in self.operational:
            if o.parent not in strategic:
                problems.append(f"{o.code}: unknown parent {o.parent!r}")
            for code in o.agencies:
                if code not in agencies:
                    problems.append(f"{o.code}: unknown agency {code!r}")
            if o.aggregation == "weighted_mean":
                w = ops.get(o.weight_by or "")
                if w is None or w.period != o.period or set(w.agencies) < set(o.agencies):
                    problems.append(
                        f"{o.code}: weighted_mean needs weight_by, an indicator reported by the same agencies"
                    )
        for r in self.validation_rules:
            freqs = set()
            for side in (r.left, r.right):
                if side.indicator is not None:
                    if side.indicator not in ops:
                        problems.append(f"{r.code}: unknown indicator {side.indicator!r}")
                    else:
                        freqs.add(ops[side.indicator].period)
            if r.left.indicator is None:
                problems.append(f"{r.code}: the left side must be an indicator (the value being checked)")
            if len(freqs) > 1:
                problems.append(f"{r.code}: both sides must have the same reporting period")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    # --- look-ups ---------------------------------------------------------------------------------

    def operational_by_code(self, code: str) -> Operational:
        for o in self.operational:
            if o.code == code:
                return o
        raise NotFound(f"no operational indicator {code!r} in the registry")

    def strategic_by_code(self, code: str) -> Strategic:
        for s in self.strategic:
            if s.code == code:
                return s
        raise NotFound(f"no strategic indicator {code!r} in the registry")

    def children(self, strategic_code: str) -> list[Operational]:
        return [o for o in self.operational if o.parent == strategic_code]

    def group_name(self, code: str) -> str:
        return next((g.name for g in self.groups if g.code == code), code)

    def rules_for(self, indicator: str) -> list[Rule]:
        """Rules whose either side reads ``indicator`` (a new value may break any of them)."""
        return [r for r in self.validation_rules if indicator in (r.left.indicator, r.right.indicator)]


def load_registry(path: str | Path | None = None) -> Registry:
    """Read and check a registry file (YAML or JSON); InvalidInput naming every problem."""
    where = Path(path) if path is not None else DEFAULT_PATH
    try:
        text = where.read_text(encoding="utf-8")
    except OSError as exc:
        raise InvalidInput(f"KPI registry {where}: {exc.strerror or exc}") from None
    try:
        raw = json.loads(text) if where.suffix == ".json" else yaml.safe_load(text)
    except (yaml.YAMLError, json.JSONDecodeError) as exc:
        raise InvalidInput(f"KPI registry {where}: not valid YAML/JSON: {exc}") from None
    try:
        return Registry.model_validate(raw)
    except ValidationError as exc:
        reasons = "; ".join(f"{'.'.join(str(p) for p in e['loc']) or 'file'}: {e['msg']}" for e in exc.errors())
        raise InvalidInput(f"KPI registry {where} is invalid: {reasons}") from None


@lru_cache(maxsize=4)
def _cached(path: str) -> Registry:
    return load_registry(path)


def default_kpi_registry(path: Path | None = None) -> Registry:
    """The configured registry (``TRIAGE_KPI_REGISTRY_PATH`` or the packaged one), loaded once per path."""
    if path is None:
        from triage.config import get_settings

        path = get_settings().kpi_registry_path or DEFAULT_PATH
    return _cached(str(path))
