"""Importing the archive: past cases with their own dates, agencies and answers, so day one is not empty.

Three passes, so that nothing is ever half-imported:

1. **Validate** every row (dates, kind, agency, state, text, duplicate ids in the file). Any error
   stops the import before anything is written; the report names line, column and reason for all of
   them at once (:class:`ImportRejected`).
2. **Embed** the new rows' masked texts in batches with the encoder (no per-row pipeline run: an
   archived case needs its vector for the similar-case index and the themes, not a suggestion).
3. **Write** everything in one transaction with multi-row inserts: cases (``external_id`` kept, the
   original received/answered dates), submissions dated when received, answers, a reviewed label for
   each routed case (the archive's route was a person's decision: training data for the router),
   and one ``import`` audit event per case carrying the original timestamps and the text digests
   (``triage audit verify`` checks them like a submission's). The events are chained last, in one go,
   so the audit head is held for the shortest time.

Idempotent by external id: a row whose id is already in the database is skipped (counted), so running
the same file twice imports it once, and a file that grew imports only the new rows. The case index
follows the ``import`` events like any other; themes read submissions by their (original) dates, and
:func:`build_theme_history` runs the theme reports over the imported span so themes keep ids from
the first period on.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from datetime import time as dtime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import func, insert, select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.calendar import WorkingCalendar, local_tz, to_local_date
from triage.cases.escalation import escalation_key, watched_deadline
from triage.cases.import_files import FIELDS, Mapping, RawRow, cell_text, fold, read_rows
from triage.cases.intake import SUBMITTER_TYPES, new_tracking_code
from triage.cases.workflow import KINDS, CaseState, DeadlinePolicy, forward_deadline, response_deadline
from triage.errors import InvalidInput, NotFound
from triage.nlp.agencies import AgencyRegistry, default_registry
from triage.nlp.text import mask_pii, normalize
from triage.store.db import Database
from triage.store.repositories import OPEN_STATES, search_key
from triage.store.tables import Case, Response, ReviewedLabel, Submission, ThemeRecord, User, utcnow
from triage.store.vectors import to_bytes

ACTION = "import"
CHUNK = 2000  # rows per multi-row INSERT
Progress = Callable[[str, int, int], None]  # (stage, done, total)

_KIND_NAMES = {"phan anh": "phan_anh", "kien nghi": "kien_nghi", "sang kien": "sang_kien", "giai phap": "giai_phap"}
_STATE_NAMES = {
    "moi": "new",
    "moi tiep nhan": "new",
    "da phan loai": "triaged",
    "da chuyen": "assigned",
    "da giao": "assigned",
    "dang xu ly": "in_progress",
    "tra lai": "returned",
    "da chuyen co quan khac": "transferred",
    "da tra loi": "responded",
    "da dong": "closed",
    "hoan thanh": "closed",
    "da giai quyet": "closed",
    "da xu ly": "closed",
    "trung": "duplicate",
    "tu choi": "rejected",
}
_SUBMITTERS = {"cong dan": "citizen", "ca nhan": "citizen", "to chuc": "organisation", "doanh nghiep": "business"}
_SUBMITTERS |= {"chuyen gia": "expert", "nha khoa hoc": "expert"}
_UNROUTED = {CaseState.NEW.value, CaseState.DUPLICATE.value, CaseState.REJECTED.value}
_ENDED = {CaseState.CLOSED.value, CaseState.DUPLICATE.value, CaseState.REJECTED.value}
_DATE_FORMATS: tuple[str, ...] = (
    "%Y-%m-%d",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y",
)
_DATE_FORMATS += ("%d/%m/%Y %H:%M", "%d/%m/%Y %H:%M:%S", "%d.%m.%Y")


@dataclass(frozen=True)
class RowError:
    """One problem: the line in the file, the column (as headed in the file) and why."""

    line: int
    column: str
    reason: str

    def __str__(self) -> str:
        return f"line {self.line}, {self.column}: {self.reason}"


class ImportRejected(InvalidInput):
    """The file has errors; nothing was written. ``errors`` lists every one (line, column, reason)."""

    def __init__(self, errors: Sequence[RowError], rows: int) -> None:
        self.errors = list(errors)
        self.rows = rows
        first = "; ".join(str(e) for e in self.errors[:3])
        more = f" (and {len(self.errors) - 3} more)" if len(self.errors) > 3 else ""
        super().__init__(f"{len(self.errors)} errors in {rows} rows, nothing imported: {first}{more}")


@dataclass(frozen=True)
class ImportRow:
    """A validated row: every field checked and converted."""

    line: int
    external_id: str
    received_at: datetime
    answered_at: datetime | None
    kind: str
    title: str
    content: str
    title_raw: str
    content_raw: str
    agency_code: str | None
    state: str
    answer: str | None
    field: str | None
    province_code: str | None
    submitter_type: str

    @property
    def masked(self) -> str:
        """What the models read (as the intake pipeline does): title and content, personal data masked."""
        return mask_pii(f"{self.title}. {self.content}" if self.title else self.content)


@dataclass
class ImportResult:
    """What an import did, with the seconds each stage took."""

    rows: int = 0
    imported: int = 0
    skipped: int = 0  # already imported (same external id)
    labels: int = 0
    answers: int = 0
    events: int = 0
    first_received: date | None = None
    last_received: date | None = None
    seconds: dict[str, float] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {k: (v.isoformat() if isinstance(v, date) else v) for k, v in self.__dict__.items()}


def _parse_date(value: Any, formats: Sequence[str]) -> datetime:
    """An aware UTC moment; naive values are local (Vietnam) time, a bare date is local midnight."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, date):
        moment = datetime.combine(value, dtime(0))
    else:
        text = str(value).strip()
        for fmt in (*formats, *_DATE_FORMATS):
            try:
                moment = datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
        else:
            try:
                moment = datetime.fromisoformat(text)
            except ValueError:
                raise ValueError(f"not a date: {text!r} (expected e.g. 2024-03-15 or 15/03/2024)") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=local_tz())
    return moment.astimezone(UTC)


class _Validator:
    def __init__(self, mapping: Mapping, registry: AgencyRegistry, now: datetime) -> None:
        self.mapping, self.registry, self.now = mapping, registry, now
        self._agencies: dict[str, str | None] = {}

    def _agency(self, value: str) -> str:
        key = fold(value)
        if key not in self._agencies:
            name = self.mapping.agencies.get(key, value)
            try:
                self._agencies[key] = self.registry.resolve(name).code
            except NotFound:
                self._agencies[key] = None
        code = self._agencies[key]
        if code is None:
            raise ValueError(f"unknown agency {value!r} (add it under `agencies:` in the mapping file)")
        return code

    def _choice(self, value: str, table: dict[str, str], known: dict[str, str], allowed: Iterable[str]) -> str:
        allowed = tuple(allowed)
        if value in allowed:
            return value
        key = fold(value)
        code = key.replace(" ", "_")
        found = table.get(key) or known.get(key) or (code if code in allowed else None)
        if found not in allowed:
            raise ValueError(f"unknown value {value!r}: expected one of {', '.join(allowed)}")
        return str(found)

    def row(self, raw: RawRow, errors: list[RowError]) -> ImportRow | None:
        if "__error__" in raw.cells:
            errors.append(RowError(raw.line, "-", str(raw.cells["__error__"])))
            return None
        values: dict[str, Any] = {}
        for name in FIELDS:
            value = raw.cells.get(name)
            if isinstance(value, str):
                value = value.strip() or None
            if value is None and name in self.mapping.defaults:
                value = self.mapping.defaults[name]
            values[name] = value
        out: dict[str, Any] = {}
        before = len(errors)

        def check(name: str, convert: Callable[[Any], Any], required: bool = False) -> None:
            column = raw.headers.get(name, name)
            if values[name] is None:
                if required:
                    errors.append(RowError(raw.line, column, "required, but empty or missing"))
                out[name] = None
                return
            try:
                out[name] = convert(values[name])
            except (ValueError, InvalidInput) as exc:
                errors.append(RowError(raw.line, column, str(exc)))

        formats = self.mapping.date_formats
        check("external_id", lambda v: _external_id(cell_text(v) or ""), required=True)
        check("received_at", lambda v: _parse_date(v, formats), required=True)
        check("answered_at", lambda v: _parse_date(v, formats))
        check("kind", lambda v: self._choice(str(v), self.mapping.kinds, _KIND_NAMES, KINDS), required=True)
        check("text", lambda v: _text(cell_text(v) or ""), required=True)
        check("title", lambda v: normalize(cell_text(v) or ""))
        check("agency", lambda v: self._agency(str(cell_text(v))))
        states = [s.value for s in CaseState]
        check("state", lambda v: self._choice(str(v), self.mapping.states, _STATE_NAMES, states))
        check("answer", lambda v: _text(cell_text(v) or ""))
        check("field", lambda v: cell_text(v))
        check("province", lambda v: self._province(str(cell_text(v))))
        check("submitter_type", lambda v: self._choice(str(v), {}, _SUBMITTERS, SUBMITTER_TYPES))
        if len(errors) > before:
            return None
        received, answered = out["received_at"], out["answered_at"]
        state = out["state"] or _default_state(out)
        column = raw.headers.get
        if received > self.now:
            errors.append(RowError(raw.line, column("received_at", "received_at"), "received in the future"))
        if answered is not None and answered < received:
            errors.append(RowError(raw.line, column("answered_at", "answered_at"), "answered before it was received"))
        if out["answer"] is not None and answered is None:
            errors.append(RowError(raw.line, column("answered_at", "answered_at"), "an answer needs its date"))
        if state not in _UNROUTED and out["agency"] is None:
            errors.append(RowError(raw.line, column("agency", "agency"), f"a case in state {state!r} needs an agency"))
        if len(errors) > before:
            return None
        title_raw = cell_text(values["title"]) or ""
        return ImportRow(
            line=raw.line,
            external_id=out["external_id"],
            received_at=received,
            answered_at=answered,
            kind=out["kind"],
            title=out["title"] or "",
            content=out["text"],
            title_raw=title_raw,
            content_raw=cell_text(values["text"]) or "",
            agency_code=out["agency"],
            state=state,
            answer=out["answer"],
            field=out["field"],
            province_code=out["province"],
            submitter_type=out["submitter_type"] or "citizen",
        )

    def _province(self, value: str) -> str:
        code = self._agency(value)
        if not self.registry.get(code).is_local:
            raise ValueError(f"{value!r} is not a province or centrally-run city")
        return code


def _external_id(value: str) -> str:
    if len(value) > 200:
        raise ValueError("longer than 200 characters")
    return value


def _text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("NUL characters (U+0000) are not allowed")
    text = normalize(value)
    if not text:
        raise ValueError("empty after removing whitespace and control characters")
    return text


def _default_state(out: dict[str, Any]) -> str:
    if out["answer"] is not None or out["answered_at"] is not None:
        return CaseState.CLOSED.value
    return CaseState.TRIAGED.value if out["agency"] is not None else CaseState.NEW.value


def validate(
    rows: Iterable[RawRow], mapping: Mapping, *, now: datetime | None = None, registry: AgencyRegistry | None = None
) -> tuple[list[ImportRow], list[RowError], int]:
    """Every row checked; returns (valid rows, errors, rows read). Duplicate ids within the file are errors."""
    check = _Validator(mapping, registry or default_registry(), now or utcnow())
    good: list[ImportRow] = []
    errors: list[RowError] = []
    seen: dict[str, int] = {}
    count = 0
    for raw in rows:
        count += 1
        row = check.row(raw, errors)
        if row is None:
            continue
        if row.external_id in seen:
            column = raw.headers.get("external_id", "external_id")
            errors.append(RowError(raw.line, column, f"id {row.external_id!r} already on line {seen[row.external_id]}"))
            continue
        seen[row.external_id] = row.line
        good.append(row)
    return good, errors, count


def _taken(s: Session, ids: Sequence[str]) -> set[str]:
    found: set[str] = set()
    for start in range(0, len(ids), 1000):
        part = list(ids[start : start + 1000])
        found.update(str(x) for x in s.scalars(select(Case.external_id).where(Case.external_id.in_(part))))
    return found


def existing_ids(db: Database, ids: Sequence[str]) -> set[str]:
    """The external ids among ``ids`` that are already imported."""
    with db.read() as s:
        return _taken(s, ids)


def _chunks(items: Sequence[Any], size: int = CHUNK) -> Iterable[Sequence[Any]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _inserted_ids(s: Session, table: Any, values: list[dict[str, Any]]) -> list[int]:
    """Multi-row INSERT ... RETURNING id, in the order of ``values``."""
    stmt = insert(table).returning(table.id, sort_by_parameter_order=True)
    return [int(x) for x in s.scalars(stmt, values)]


class _Writer:
    """The write pass: one transaction, multi-row inserts, events chained at the end."""

    def __init__(
        self, rows: list[ImportRow], masked: list[str], vectors: np.ndarray, reviewer: User, policy: DeadlinePolicy
    ) -> None:
        self.rows, self.masked, self.vectors, self.reviewer, self.policy = rows, masked, vectors, reviewer, policy
        self.calendar: WorkingCalendar | None = None
        self.today: date  # the import's local day, set by each write pass

    def __call__(self, s: Session, progress: Progress | None, now: datetime) -> ImportResult:
        result = ImportResult()
        self.today = to_local_date(now)
        taken = _taken(s, [r.external_id for r in self.rows])  # imported meanwhile by another run
        todo = [(i, r) for i, r in enumerate(self.rows) if r.external_id not in taken]
        result.skipped = len(self.rows) - len(todo)
        events: list[tuple[ImportRow, int, int, int | None]] = []
        for part in _chunks(todo):
            events.extend(self._chunk(s, part, result))
            if progress is not None:
                progress("write", len(events), len(todo))
        pending = [
            audit.new_event(
                actor=self.reviewer.username,
                action=ACTION,
                case_id=case_id,
                after=_event_payload(row, sub_id, answer_id),
                at=now,
            )
            for row, case_id, sub_id, answer_id in events
        ]
        audit.append_many(s, pending)
        result.imported, result.events = len(events), len(pending)
        return result

    def _missed(self, state: str, forward: date, answer_due: date) -> str | None:
        """An open archived case already past its deadline counts as escalated for it: the archive knew it
        was late, and the first maintenance pass must not send one overdue notice per old case at once."""
        if state not in OPEN_STATES:
            return None
        deadline, due, status = watched_deadline(
            state, forward, answer_due, self.today, calendar=self.calendar, policy=self.policy
        )
        return escalation_key(deadline, due) if status == "overdue" else None

    def _chunk(
        self, s: Session, part: Sequence[tuple[int, ImportRow]], result: ImportResult
    ) -> list[tuple[ImportRow, int, int, int | None]]:
        cases, subs = [], []
        for _, r in part:
            forward = forward_deadline(r.received_at, self.policy, self.calendar)
            answer_due = response_deadline(r.received_at, r.kind, self.policy, self.calendar)
            cases.append(
                {
                    "state": r.state,
                    "kind": r.kind,
                    "agency_code": r.agency_code,
                    "field": r.field,
                    "received_at": r.received_at,
                    "forward_due": forward,
                    "answer_due": answer_due,
                    "answered_at": r.answered_at,
                    "ended_at": (r.answered_at or r.received_at) if r.state in _ENDED else None,
                    "external_id": r.external_id,
                    "updated_at": r.answered_at or r.received_at,
                    "escalated_for": self._missed(r.state, forward, answer_due),
                }
            )
            subs.append((forward, answer_due))
        case_ids = _inserted_ids(s, Case, cases)
        sub_values = []
        for (i, r), case_id, (forward, answer_due) in zip(part, case_ids, subs, strict=True):
            sub_values.append(
                {
                    "tracking_code": new_tracking_code(),
                    "request_hash": hashlib.sha256(f"import\n{r.external_id}".encode()).hexdigest(),
                    "case_id": case_id,
                    "kind": r.kind,
                    "submitter_type": r.submitter_type,
                    "title_raw": r.title_raw,
                    "content_raw": r.content_raw,
                    "title": r.title,
                    "content": r.content,
                    "search_text": search_key(f"{r.title}\n{r.content}"),
                    "masked_search_text": None,  # filled by the periodic job (person-name tagging is slow)
                    "province_code": r.province_code,
                    "embedding": to_bytes(self.vectors[i]),
                    "forward_due": forward,
                    "answer_due": answer_due,
                    "created_at": r.received_at,
                }
            )
        sub_ids = _inserted_ids(s, Submission, sub_values)
        answered = [(k, r) for k, (_, r) in enumerate(part) if r.answer is not None]
        answer_ids: dict[int, int] = {}
        if answered:
            values = [
                {
                    "case_id": case_ids[k],
                    "author_id": self.reviewer.id,
                    "agency_code": r.agency_code,
                    "body": r.answer,
                    "at": r.answered_at,
                }
                for k, r in answered
            ]
            answer_ids = dict(zip((k for k, _ in answered), _inserted_ids(s, Response, values), strict=True))
        labels = [
            {
                "case_id": case_ids[k],
                "text": self.masked[i],
                "agency_code": r.agency_code,
                "field": r.field,
                "kind": r.kind,
                "suggested_agency_code": None,
                "confirmed": True,
                "model_version": None,
                "reviewer_id": self.reviewer.id,
                "at": r.answered_at or r.received_at,
            }
            for k, (i, r) in enumerate(part)
            if r.agency_code is not None and r.state not in _UNROUTED
        ]
        if labels:
            s.execute(insert(ReviewedLabel), labels)
        result.labels += len(labels)
        result.answers += len(answer_ids)
        return [(r, case_ids[k], sub_ids[k], answer_ids.get(k)) for k, (_, r) in enumerate(part)]


def _event_payload(row: ImportRow, submission_id: int, response_id: int | None) -> dict[str, Any]:
    """The import event: where the case came from, its original dates, and digests of its texts."""
    after: dict[str, Any] = {
        "external_id": row.external_id,
        "line": row.line,
        "state": row.state,
        "kind": row.kind,
        "agency_code": row.agency_code,
        "received_at": row.received_at.isoformat(),
        "answered_at": None if row.answered_at is None else row.answered_at.isoformat(),
        "submission_id": submission_id,
        "text_sha256": audit.text_digest(title=row.title_raw, content=row.content_raw),
    }
    if response_id is not None and row.answer is not None:
        after["response_id"] = response_id
        after["body_sha256"] = audit.text_digest(body=row.answer)
    return after


def import_rows(
    db: Database,
    rows: list[ImportRow],
    *,
    embedder: Any,
    reviewer: str,
    policy: DeadlinePolicy | None = None,
    progress: Progress | None = None,
    batch_size: int = 1024,
    now: datetime | None = None,
) -> ImportResult:
    """Embed the rows not yet imported, then write them all in one transaction (see the module docstring)."""
    started = time.perf_counter()
    with db.read() as s:
        user = s.scalar(select(User).where(User.username == reviewer))
        if user is None or not user.active:
            raise InvalidInput(f"reviewer: no active staff account {reviewer!r} (it labels the archive's routes)")
        s.expunge(user)
    done = existing_ids(db, [r.external_id for r in rows])
    new = [r for r in rows if r.external_id not in done]
    masked = [r.masked for r in new]
    vectors = np.zeros((len(new), int(getattr(embedder, "dimension", 0) or 384)), dtype=np.float32)
    # Shortest texts first over the whole file: each model batch holds texts of one length (little padding).
    order = np.argsort([len(t) for t in masked], kind="stable")
    for start in range(0, len(new), batch_size):
        idx = order[start : start + batch_size]
        vectors[idx] = np.asarray(embedder.encode([masked[i] for i in idx], batch_size=64), dtype=np.float32)
        if progress is not None:
            progress("embed", min(start + batch_size, len(new)), len(new))
    embedded = time.perf_counter()
    writer = _Writer(new, masked, vectors, user, policy or DeadlinePolicy())
    moment = now or utcnow()
    result = db.transaction(lambda s: writer(s, progress, moment))
    result.rows = len(rows)
    result.skipped += len(rows) - len(new)
    if rows:
        result.first_received = min(to_local_date(r.received_at) for r in rows)
        result.last_received = max(to_local_date(r.received_at) for r in rows)
    result.seconds = {"embed": round(embedded - started, 3), "write": round(time.perf_counter() - embedded, 3)}
    return result


def import_file(
    db: Database,
    path: Path,
    *,
    mapping: Mapping | None = None,
    fmt: str | None = None,
    embedder: Any,
    reviewer: str,
    policy: DeadlinePolicy | None = None,
    progress: Progress | None = None,
    now: datetime | None = None,
) -> ImportResult:
    """Read, validate (all or nothing: :class:`ImportRejected`), embed and write one archive file."""
    started = time.perf_counter()
    rows, errors, count = validate(read_rows(path, mapping or Mapping(), fmt), mapping or Mapping(), now=now)
    if errors:
        raise ImportRejected(errors, count)
    validated = time.perf_counter() - started
    result = import_rows(db, rows, embedder=embedder, reviewer=reviewer, policy=policy, progress=progress, now=now)
    result.seconds = {"validate": round(validated, 3), **result.seconds}
    return result


def theme_periods(first: date, last: date, days: int = 91) -> list[tuple[date, date]]:
    """Consecutive periods of ``days`` covering [first, last] (the last one ends on ``last``)."""
    out, start = [], first
    while start <= last:
        end = min(start + timedelta(days=days - 1), last)
        out.append((start, end))
        start = end + timedelta(days=1)
    return out


def build_theme_history(
    db: Database, first: date, last: date, *, days: int = 91, progress: Progress | None = None, **options: Any
) -> int:
    """Run the theme report over each period of the imported span, oldest first, keeping its themes.

    So the themes table holds the archive's themes with the periods they were seen in, and the next
    live report continues their ids and labels. Returns how many themes are kept in all.
    """
    from triage.cases.theme_report import keep_themes, report_for_period  # deferred: the theme model's stack

    periods = theme_periods(first, last, days)
    for n, (since, until) in enumerate(periods, start=1):
        with db.read() as s:
            report = report_for_period(s, since, until, **options)
        if report.known:
            db.transaction(lambda s, r=report: keep_themes(s, r))  # type: ignore[misc]
        if progress is not None:
            progress("themes", n, len(periods))
    with db.read() as s:
        return int(s.scalar(select(func.count()).select_from(ThemeRecord)) or 0)
