"""The emerging-topic report of a period: one frozen :class:`ThemeReport`, built from stored submissions.

``report_for_period`` reads the period's submissions (their stored embeddings; missing ones are
encoded when an embedder is given), fits a :class:`triage.nlp.themes.ThemeModel` and returns a
:class:`ThemeReport`: per theme its keywords, size, weekly trend, agencies involved (``systemic``
when several), PII-masked examples and the emerging test. Theme ids and labels stay put from one
report to the next: :func:`known_themes` reads the themes kept by earlier reports (table
``themes``), the model starts from them and matches its themes to them, and :func:`keep_themes`
stores the new ones. The report is data only: the API serialises it (``service.schemas.themes``),
and the HTML report and the analyst page render it with one template
(``service/templates/reports/themes.html``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
from sqlalchemy import ColumnElement, func, select
from sqlalchemy.orm import Session

from triage.cases.calendar import local_tz, to_local_date
from triage.cases.theme_evidence import Member, ThemeEvidence, theme_evidence
from triage.errors import InvalidInput, NotFound
from triage.nlp.agencies import default_registry
from triage.nlp.embed import Embedder  # a Protocol: no model is loaded
from triage.nlp.text import mask_personal, mask_pii
from triage.nlp.themes import EmergingTheme, KnownTheme, Theme, ThemeModel, week_start
from triage.store.tables import Case, Submission, ThemeRecord
from triage.store.vectors import from_bytes, to_bytes

if TYPE_CHECKING:
    from triage.nlp.procedure_router import ProcedureRouter

EXAMPLE_CHARS = 280
MAX_PERIOD_DAYS = 731
EXCLUDED_STATES = ("rejected",)  # violating or out-of-scope content must not shape the themes


@dataclass(frozen=True)
class PeriodSubmission:
    """What the report needs of one submission: the masked text, when, which agency, its vector."""

    submission_id: int
    case_id: int
    received: date  # local date
    text: str  # title and content, personal data masked
    agency_code: str | None
    embedding: np.ndarray | None
    province_code: str | None = None  # as the citizen gave it
    field: str | None = None  # the case's routed field (lĩnh vực), None before routing


@dataclass(frozen=True)
class ThemeAgency:
    """An agency holding cases of a theme."""

    code: str
    name: str
    count: int  # submissions of the theme whose case this agency holds


@dataclass(frozen=True)
class ThemeExample:
    """A representative submission of a theme (nearest the centroid), personal data masked (names and streets too)."""

    case_id: int
    text: str


@dataclass(frozen=True)
class EmergingTest:
    """A theme's recent volume against its baseline (see :class:`triage.nlp.themes.EmergingTheme`)."""

    recent: int
    baseline: int
    expected: float
    growth: float  # recent share / baseline share
    growth_low: float  # one-sided 95 % lower bound of the growth: the ranking score
    p_value: float
    q_value: float  # Benjamini-Hochberg adjusted over the themes tested
    significant: bool
    score: float

    @classmethod
    def of(cls, e: EmergingTheme) -> EmergingTest:
        return cls(
            recent=int(e.recent),
            baseline=int(e.baseline),
            expected=float(e.expected),
            growth=float(e.growth),
            growth_low=float(e.growth_low),
            p_value=round(float(e.p_value), 6),
            q_value=round(float(e.q_value), 6),
            significant=bool(e.significant),
            score=float(e.score),
        )


@dataclass(frozen=True)
class ThemeSummary:
    """One theme as the report shows it."""

    id: int
    label: str
    keywords: tuple[str, ...]
    size: int
    share: float  # of the submissions clustered
    trend: tuple[int, ...]  # submissions per week, aligned with the report's ``weeks``
    agencies: tuple[ThemeAgency, ...]  # most submissions first
    systemic: bool  # spans two or more agencies, each with a minimum share: a policy problem
    examples: tuple[ThemeExample, ...]
    emerging: EmergingTest | None  # None when the theme was not tested (too small, too short a period)
    # The evidence panel when the theme spans several agencies or provinces (triage.cases.theme_evidence).
    evidence: ThemeEvidence | None = None


@dataclass(frozen=True)
class ThemeReport:
    """The themes of the submissions received in [since, until], and which of them are emerging."""

    since: date
    until: date
    generated_at: datetime  # to the second
    submissions: int
    without_embedding: int  # left out of the clustering (no stored vector, none encoded)
    weeks: tuple[date, ...]  # Monday of each week of the period
    totals_by_week: tuple[int, ...]
    window_weeks: int
    alpha: float
    min_size: int
    min_growth: float
    outliers: int
    outlier_share: float | None
    themes: tuple[ThemeSummary, ...]
    emerging: tuple[int, ...]  # ids of the significant emerging themes, best first
    systemic: tuple[int, ...]  # ids of the themes spanning several agencies
    note: str | None  # why there are no themes or no emerging test
    # The themes to keep for the next period's report (id, label, centroid): not shown, not compared.
    known: tuple[KnownTheme, ...] = field(default=(), compare=False, repr=False, kw_only=True)

    def theme(self, theme_id: int) -> ThemeSummary:
        return next(t for t in self.themes if t.id == theme_id)

    def ordered(self) -> tuple[ThemeSummary, ...]:
        """The emerging themes, best first, then the others, largest first: the order readers see them in."""
        rest = [t for t in self.themes if t.id not in self.emerging]
        return (*(self.theme(i) for i in self.emerging), *rest)


@dataclass(frozen=True)
class EmergingReport(ThemeReport):
    """A report cut to its significant emerging themes (``GET /api/v1/reports/emerging``)."""

    tested: int  # how many themes of the full report were tested


# The report's notes are read on the Vietnamese report page (and in the API's ``note``): Vietnamese only.
NOTE_TOO_FEW = "quá ít phản ánh có véc-tơ ngữ nghĩa ({n} < {min}) để tìm chủ đề"
NOTE_SHORT_PERIOD = (
    "kỳ báo cáo chỉ gồm {weeks} tuần: kiểm định chủ đề nổi lên cần nhiều hơn {window} tuần "
    "({window} tuần gần nhất được so với các tuần trước đó)"
)
NOTE_SHORT_DATA = (
    "chưa kiểm định chủ đề nổi lên: dữ liệu chỉ trải trên {weeks} tuần, cần nhiều hơn {window} tuần "
    "({window} tuần gần nhất được so với các tuần trước đó)"
)
NOTE_NO_BASELINE = (
    "chưa kiểm định chủ đề nổi lên: cần có phản ánh cả trong {window} tuần gần nhất và trong các tuần trước đó"
)


def no_emerging_test_note(received: Sequence[date], until: date, window: int) -> str:
    """Why the emerging test could not run, in Vietnamese (the theme model raises in English)."""
    if received:
        weeks = (week_start(until) - week_start(min(received))).days // 7 + 1
        if weeks <= window:
            return NOTE_SHORT_DATA.format(weeks=max(weeks, 0), window=window)
    return NOTE_NO_BASELINE.format(window=window)


def _bounds(since: date, until: date) -> tuple[datetime, datetime]:
    if until < since:
        raise InvalidInput(f"the period ends ({until}) before it starts ({since})")
    if (until - since).days + 1 > MAX_PERIOD_DAYS:
        raise InvalidInput(f"a theme report covers at most {MAX_PERIOD_DAYS} days, got {(until - since).days + 1}")
    start = datetime.combine(since, time(0), tzinfo=local_tz()).astimezone(UTC)
    end = datetime.combine(until + timedelta(days=1), time(0), tzinfo=local_tz()).astimezone(UTC)
    return start, end


def _period_filter(since: date, until: date) -> list[ColumnElement[bool]]:
    start, end = _bounds(since, until)
    return [Submission.created_at >= start, Submission.created_at < end, Case.state.not_in(EXCLUDED_STATES)]


def period_version(session: Session, since: date, until: date) -> tuple[int, int, str]:
    """A cheap fingerprint of the period's data (count, last id, last case change): a cache key part."""
    row = session.execute(
        select(func.count(Submission.id), func.max(Submission.id), func.max(Case.updated_at))
        .join(Case, Case.id == Submission.case_id)
        .where(*_period_filter(since, until))
    ).one()
    return int(row[0] or 0), int(row[1] or 0), str(row[2] or "")


def load_period(session: Session, since: date, until: date) -> list[PeriodSubmission]:
    """The submissions received in [since, until] (local dates, both included), oldest first."""
    rows = session.execute(
        select(
            Submission.id,
            Submission.case_id,
            Submission.created_at,
            Submission.title,
            Submission.content,
            Submission.embedding,
            Case.agency_code,
            Submission.province_code,
            Case.field,
        )
        .join(Case, Case.id == Submission.case_id)
        .where(*_period_filter(since, until))
        .order_by(Submission.created_at, Submission.id)
    ).all()
    out = []
    for r in rows:
        text = f"{r.title}. {r.content}" if r.title else r.content
        out.append(
            PeriodSubmission(
                submission_id=r.id,
                case_id=r.case_id,
                received=to_local_date(r.created_at),
                text=mask_pii(text),
                agency_code=r.agency_code,
                embedding=None if r.embedding is None else from_bytes(r.embedding),
                province_code=r.province_code,
                field=r.field,
            )
        )
    return out


def _agency_name(code: str) -> str:
    return default_registry().name_of(code, code)


def _short(text: str, limit: int = EXAMPLE_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _summary(
    theme: Theme, trend: np.ndarray, clustered: int, examples: Sequence[ThemeExample], test: EmergingTheme | None
) -> ThemeSummary:
    return ThemeSummary(
        id=theme.key,
        label=theme.label,
        keywords=tuple(theme.keywords),
        size=theme.size,
        share=round(theme.size / clustered, 4),
        trend=tuple(int(c) for c in trend),
        agencies=tuple(ThemeAgency(code=c, name=_agency_name(c), count=n) for c, n in theme.agencies.items()),
        systemic=theme.systemic,
        examples=tuple(examples),
        emerging=None if test is None else EmergingTest.of(test),
    )


def build_report(
    items: Sequence[PeriodSubmission],
    since: date,
    until: date,
    *,
    embedder: Embedder | None = None,
    window: int = 2,
    min_submissions: int = 30,
    min_size: int = 5,
    min_growth: float = 1.5,
    alpha: float = 0.05,
    random_state: int = 0,
    model: ThemeModel | None = None,
    generated_at: datetime | None = None,
    catalogue: ProcedureRouter | None = None,
    known: Sequence[KnownTheme] = (),
) -> ThemeReport:
    """The report of ``items`` (see the module docstring); no themes below ``min_submissions``.

    ``catalogue`` (the catalogue index, e.g. the agency router's) matches the texts of a systemic
    theme's unrouted cases to procedures, for the fields of its evidence panel.
    ``known``: themes of earlier reports (:func:`known_themes`); a theme found again keeps its id
    and label, and the clustering starts from them (:meth:`ThemeModel.fit`). The report's
    ``known`` holds what to keep for the next one (:func:`keep_themes`).
    """
    _bounds(since, until)
    missing = [i for i, it in enumerate(items) if it.embedding is None]
    vectors: list[np.ndarray | None] = [it.embedding for it in items]
    if missing and embedder is not None:
        encoded = embedder.encode([items[i].text for i in missing])
        for i, vec in zip(missing, encoded, strict=True):
            vectors[i] = np.asarray(vec, dtype=np.float32)
    keep = [i for i, v in enumerate(vectors) if v is not None]
    first_week, last_week = week_start(since), week_start(until)
    weeks = tuple(first_week + timedelta(weeks=k) for k in range((last_week - first_week).days // 7 + 1))
    totals = [0] * len(weeks)
    for it in items:
        col = (week_start(it.received) - first_week).days // 7
        if 0 <= col < len(weeks):
            totals[col] += 1
    empty = ThemeReport(
        since=since,
        until=until,
        generated_at=(generated_at or datetime.now(UTC)).replace(microsecond=0),
        submissions=len(items),
        without_embedding=len(items) - len(keep),
        weeks=weeks,
        totals_by_week=tuple(totals),
        window_weeks=window,
        alpha=alpha,
        min_size=min_size,
        min_growth=min_growth,
        outliers=0,
        outlier_share=None,
        themes=(),
        emerging=(),
        systemic=(),
        note=None,
    )
    if len(keep) < min_submissions:
        return replace(empty, note=NOTE_TOO_FEW.format(n=len(keep), min=min_submissions))
    texts = [items[i].text for i in keep]
    model = model or ThemeModel(random_state=random_state)
    model.fit(
        texts,
        timestamps=[items[i].received for i in keep],
        embeddings=np.stack([np.asarray(vectors[i], dtype=np.float32) for i in keep]),
        agencies=[items[i].agency_code for i in keep],
        known=list(known),
    )
    _, counts = model.themes_over_time(until=until, weeks=len(weeks))
    tests: dict[int, EmergingTheme] = {}
    note = None
    if len(weeks) > window:
        try:
            tests = {
                e.theme: e
                for e in model.emerging(
                    window=window, until=until, min_size=min_size, min_growth=min_growth, alpha=alpha
                )
            }
        except InvalidInput:  # e.g. nothing in the baseline weeks; the model's message is English
            note = no_emerging_test_note([items[i].received for i in keep], until, window)
    else:
        note = NOTE_SHORT_PERIOD.format(weeks=len(weeks), window=window)
    themes = tuple(
        _summary(
            theme,
            counts[theme.id],
            len(keep),
            [
                ThemeExample(case_id=items[keep[r]].case_id, text=_short(mask_personal(texts[r])))
                for r in theme.representatives
            ],
            tests.get(theme.id),
        )
        for theme in model.themes_
    )
    themes = with_evidence(themes, model, items, keep, catalogue, vectors=vectors)
    emerging = sorted((e.theme for e in tests.values() if e.significant), key=lambda t: -tests[t].score)
    return replace(
        empty,
        themes=themes,
        emerging=tuple(model.themes_[t].key for t in emerging),
        systemic=tuple(t.id for t in themes if t.systemic),
        outliers=int(np.sum(model.labels_ < 0)),
        outlier_share=round(float(model.outlier_share_), 4),
        note=note,
        known=tuple(model.known_themes()),
    )


def with_evidence(
    themes: tuple[ThemeSummary, ...],
    model: ThemeModel,
    items: Sequence[PeriodSubmission],
    keep: Sequence[int],
    catalogue: ProcedureRouter | None = None,
    vectors: Sequence[np.ndarray | None] | None = None,
) -> tuple[ThemeSummary, ...]:
    """The themes, each spanning several agencies or provinces with its evidence panel.

    ``keep`` are the indices of ``items`` the model was fitted on, in order; ``vectors`` their
    embeddings by item index when some were encoded for the report (else the items' own).
    """
    labels = np.asarray(model.labels_)
    centroids = getattr(model, "centroids_", None)
    out = []
    # themes[k] was made from model.themes_[k], whose members carry label k
    for k, (summary, theme) in enumerate(zip(themes, model.themes_, strict=True)):
        rows = [int(r) for r in np.flatnonzero(labels == k)]
        if not rows:
            out.append(summary)
            continue
        members = [
            Member(
                case_id=items[keep[r]].case_id,
                text=items[keep[r]].text,
                agency_code=items[keep[r]].agency_code,
                province_code=items[keep[r]].province_code,
                field=items[keep[r]].field,
                embedding=items[keep[r]].embedding if vectors is None else vectors[keep[r]],
            )
            for r in rows
        ]
        member_vectors = [m.embedding for m in members]
        if centroids is not None and all(v is not None and len(v) == centroids.shape[1] for v in member_vectors):
            x = np.stack([np.asarray(v, dtype=np.float32) for v in member_vectors])
            x /= np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-9)
            centrality = x @ np.asarray(centroids[k], dtype=np.float32)
        else:  # the representatives first, then the rest in order
            rank = {int(r): j for j, r in enumerate(theme.representatives)}
            centrality = np.asarray([-rank.get(int(r), len(rank)) for r in rows], dtype=float)
        evidence = theme_evidence(
            members,
            centrality,
            systemic=summary.systemic,
            min_count=int(getattr(model, "systemic_min_count", 2)),
            min_share=float(getattr(model, "systemic_min_share", 0.15)),
            catalogue=catalogue,
            agency_name=_agency_name,
        )
        out.append(summary if evidence is None else replace(summary, evidence=evidence))
    return tuple(out)


def known_themes(session: Session, since: date, until: date) -> list[KnownTheme]:
    """Themes kept by earlier reports that were seen near [since, until] (within one period's length of it)."""
    span = until - since + timedelta(days=1)
    rows = session.scalars(
        select(ThemeRecord)
        .where(ThemeRecord.last_seen >= since - span, ThemeRecord.first_seen <= until + span)
        .order_by(ThemeRecord.id)
    ).all()
    return [KnownTheme(key=r.id, label=r.label, centroid=from_bytes(r.centroid)) for r in rows]


def keep_themes(session: Session, report: ThemeReport) -> int:
    """Store the report's themes (id, label, centroid, period seen) for the next report; how many were written."""
    for theme in report.known:
        row = session.get(ThemeRecord, theme.key)
        if row is None:
            row = ThemeRecord(id=theme.key, first_seen=report.since, last_seen=report.until)
            session.add(row)
        row.label = theme.label
        row.centroid = to_bytes(np.asarray(theme.centroid, dtype=np.float32))
        row.first_seen = min(row.first_seen, report.since)
        row.last_seen = max(row.last_seen, report.until)
    return len(report.known)


def report_for_period(
    session: Session, since: date, until: date, *, embedder: Embedder | None = None, **options: Any
) -> ThemeReport:
    """Themes and emerging topics of the submissions received in [since, until] (see :func:`build_report`).

    Starts from the themes kept by earlier reports; stores nothing (see :func:`keep_themes`).
    """
    items = load_period(session, since, until)
    return build_report(items, since, until, embedder=embedder, known=known_themes(session, since, until), **options)


def emerging_only(report: ThemeReport) -> EmergingReport:
    """The report cut to its significant emerging themes, best first (``GET /api/v1/reports/emerging``)."""
    fields = {k: getattr(report, k) for k in ThemeReport.__dataclass_fields__}
    fields["themes"] = tuple(report.theme(i) for i in report.emerging)
    return EmergingReport(**fields, tested=sum(1 for t in report.themes if t.emerging is not None))


# ---- the evidence panel of one theme, for the API and the page's download links ----------------------

EVIDENCE_FORMATS: dict[str, str] = {
    "csv": "text/csv; charset=utf-8",
    "md": "text/markdown; charset=utf-8",
}


def evidence_panel(report: ThemeReport, theme_id: int) -> tuple[ThemeSummary, ThemeEvidence]:
    """The theme and its evidence panel; ``NotFound`` when the report has no such theme or it spans nothing."""
    theme = next((t for t in report.themes if t.id == theme_id), None)
    if theme is None:
        raise NotFound(f"không có chủ đề {theme_id} trong báo cáo {report.since} – {report.until}")
    if theme.evidence is None:
        raise NotFound(f"chủ đề {theme_id} chỉ thuộc một cơ quan và một tỉnh, thành phố: không có bảng bằng chứng")
    return theme, theme.evidence


def export_evidence(report: ThemeReport, theme_id: int, fmt: str) -> tuple[str, str, str]:
    """(content, media type, file name) of a theme's evidence panel as CSV (UTF-8 BOM) or Markdown."""
    from triage.cases.theme_evidence import to_csv, to_markdown

    if fmt not in EVIDENCE_FORMATS:
        raise InvalidInput(f"định dạng phải là một trong {', '.join(EVIDENCE_FORMATS)}, không phải {fmt!r}")
    theme, evidence = evidence_panel(report, theme_id)
    write = to_csv if fmt == "csv" else to_markdown
    content = write(theme.label, theme.keywords[:8], report.since, report.until, evidence)
    name = f"bang-chung-chu-de-{theme_id}-{report.since:%Y%m%d}-{report.until:%Y%m%d}.{fmt}"
    return content, EVIDENCE_FORMATS[fmt], name
