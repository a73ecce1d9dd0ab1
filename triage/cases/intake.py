"""Receiving a submission: validate, keep it exactly as sent, suggest a route, open a case, answer.

Order matters for "never lose an acknowledged submission": the models run *before* the write
transaction (no lock held while encoding), then the submission, its case and the audit event are
written in one transaction that commits before the caller answers 201. If the models fail, the
submission is still stored (state NEW, no suggestion) and the periodic job triages it later.

Idempotency: a request carrying an ``Idempotency-Key`` is fingerprinted (SHA-256 of its canonical
JSON). A retry with the same key and body gets the stored receipt and creates nothing; the same key
with another body is refused. The unique index on the key settles races between concurrent retries.
"""

from __future__ import annotations

import hashlib
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.attachments import add_files, file_entry
from triage.cases.campaigns import group
from triage.cases.casework import snapshot
from triage.cases.followup_secret import follow_up_path, new_token, token_digest
from triage.cases.notifications import LINK_BASE, notify_receipt
from triage.cases.pipeline import CampaignPolicy, Pipeline, SubmissionText, Suggestion
from triage.cases.workflow import (
    Action,
    CaseState,
    DeadlinePolicy,
    apply,
    forward_deadline,
    response_deadline,
    validate_kind,
)
from triage.errors import IdempotencyKeyReused, InvalidInput, NotFound
from triage.nlp.agencies import default_registry
from triage.nlp.moderation import ModerationResult
from triage.nlp.places import Place, check_place
from triage.nlp.text import normalize
from triage.store.db import Database
from triage.store.files import CheckedFile, FileStore
from triage.store.repositories import Cases, Submissions, masked_search_key, search_key
from triage.store.tables import Case, Submission, utcnow
from triage.store.vectors import to_bytes

log = logging.getLogger(__name__)

SUBMITTER_TYPES: tuple[str, ...] = ("citizen", "organisation", "business", "expert")
_CODE_ALPHABET = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"  # Crockford base32: no I, L, O, U to misread


@dataclass(frozen=True)
class NewSubmission:
    """A submission as received (raw texts; nothing normalised yet)."""

    kind: str
    submitter_type: str
    title: str
    content: str
    province: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None
    contact_phone: str | None = None
    contact_address: str | None = None
    # Where the matter is (optional; checked by ``triage.nlp.places.check_place``).
    ward: str | None = None
    address: str | None = None
    latitude: float | str | None = None
    longitude: float | str | None = None
    publish_consent: bool = False  # the answer may be published, masked, on /hoi-dap

    def fingerprint(self, files: tuple[str, ...] = ()) -> str:
        """SHA-256 of the canonical JSON of the request (and its files' digests), to recognise a retry.

        Unset place fields and a consent not given are left out, so a request sent before they existed
        keeps its fingerprint.
        """
        fields = {
            k: v for k, v in asdict(self).items() if k not in _OPTIONAL_FIELDS or (v is not None and v is not False)
        }
        if files:
            fields["files"] = list(files)
        return hashlib.sha256(audit.canonical(fields).encode()).hexdigest()


_OPTIONAL_FIELDS = frozenset({"ward", "address", "latitude", "longitude", "publish_consent"})  # left out when unset


@dataclass(frozen=True)
class Receipt:
    """What the submitter gets back; the same for a retried request."""

    tracking_code: str
    case_id: int
    received_at: datetime
    forward_due: date
    answer_due: date
    replayed: bool = False
    # The secret follow-up token (shown once, stored only hashed); None on a replay (see ``followup``).
    followup_token: str | None = None
    attachments: tuple[int, ...] = ()


@dataclass(frozen=True)
class _Prepared:
    """A submission checked, normalised, dated and triaged: everything storing it needs, fixed before
    the first attempt so a retried insert stores the same thing."""

    new: NewSubmission
    kind: str
    title: str
    content: str
    province: str | None
    received: datetime
    forward_due: date
    answer_due: date
    suggestion: Suggestion | None
    idempotency_key: str | None
    fingerprint: str
    masked_search: str = ""  # search_key of the masked text, made before the write transaction
    place: Place = field(default_factory=Place)
    files: tuple[CheckedFile, ...] = ()
    followup_token: str = ""


def new_tracking_code() -> str:
    """PAKN-XXXX-XXXX-XXXX: 60 random bits, so codes cannot be guessed to read others' status."""
    chars = "".join(secrets.choice(_CODE_ALPHABET) for _ in range(12))
    return f"PAKN-{chars[:4]}-{chars[4:8]}-{chars[8:]}"


def _receipt(sub: Submission, replayed: bool, token: str | None = None, attachments: tuple[int, ...] = ()) -> Receipt:
    return Receipt(
        tracking_code=sub.tracking_code,
        case_id=sub.case_id,
        received_at=sub.created_at,
        forward_due=sub.forward_due,
        answer_due=sub.answer_due,
        replayed=replayed,
        followup_token=token,
        attachments=attachments,
    )


def _replay(db: Database, key: str, fingerprint: str) -> Receipt | None:
    with db.read() as s:
        sub = Submissions(s).by_idempotency_key(key)
        if sub is None:
            return None
        if sub.request_hash != fingerprint:
            raise IdempotencyKeyReused(
                "this Idempotency-Key was already used for a different submission; "
                "send a new key for new content, or resend exactly the same body to get the same answer"
            )
        return _receipt(sub, replayed=True)


def moderation_summary(moderation: ModerationResult | None) -> dict[str, Any] | None:
    """The part of a moderation result the audit trail keeps: the flag, why, the scores and the model."""
    if moderation is None:
        return None
    m = moderation
    return {"flagged": m.flagged, "reasons": list(m.reasons), "abuse": m.abuse, "spam": m.spam, "model": m.model}


def _province_code(name: str | None) -> str | None:
    if name is None or not name.strip():
        return None
    try:
        agency = default_registry().resolve(name)
    except NotFound as exc:
        raise InvalidInput(f"province: {exc}") from None
    if not agency.is_local:
        raise InvalidInput(f"province: {name!r} is {agency.name}, not a province or centrally-run city")
    return agency.code


def receive(
    db: Database,
    new: NewSubmission,
    *,
    pipeline: Pipeline | None = None,
    idempotency_key: str | None = None,
    policy: DeadlinePolicy | None = None,
    now: datetime | None = None,
    auto_route: bool = False,
    observe: Callable[[Suggestion, float], None] | None = None,
    files: list[CheckedFile] | None = None,
    file_store: FileStore | None = None,
) -> Receipt:
    """Store a submission and open its case; returns the receipt (tracking code, deadlines).

    ``auto_route``: when the suggestion's top agency clears the models' precision-targeted threshold,
    the case is routed to it at once (TRIAGE by the ``system`` actor, audited with score and
    threshold); it is not a reviewed label, since no person decided it. ``observe`` gets the suggestion
    and the seconds triage took (the service's metrics). ``files``: attachments already checked
    (``triage.store.files.check_files``), written to ``file_store`` before the transaction (content
    addressed, so a rolled-back write leaves at most an unreferenced file) and recorded with it.
    """
    kind = validate_kind(new.kind)
    if new.submitter_type not in SUBMITTER_TYPES:
        raise InvalidInput(f"submitter_type must be one of {', '.join(SUBMITTER_TYPES)}, got {new.submitter_type!r}")
    for name, value in asdict(new).items():
        if isinstance(value, str) and "\x00" in value:
            raise InvalidInput(f"{name}: NUL characters (U+0000) are not allowed")
    files = list(files or [])
    if files and file_store is None:
        raise InvalidInput("attachments need a file store")
    fingerprint = new.fingerprint(tuple(f.sha256 for f in files))
    if idempotency_key is not None:
        replay = _replay(db, idempotency_key, fingerprint)
        if replay is not None:
            return replay
    title, content = normalize(new.title), normalize(new.content)
    if not content:
        raise InvalidInput("content is empty after removing whitespace and control characters")
    if not title:
        raise InvalidInput("title is empty after removing whitespace and control characters")
    province = _province_code(new.province)
    place = check_place(
        None if province is None else default_registry().get(province).name,
        new.ward,
        new.address,
        new.latitude,
        new.longitude,
    )
    received = now or utcnow()
    policy = policy or (pipeline.policy if pipeline is not None else DeadlinePolicy())
    calendar = pipeline.calendar if pipeline is not None else None
    forward_due = forward_deadline(received, policy, calendar)
    answer_due = response_deadline(received, kind, policy, calendar)

    suggestion: Suggestion | None = None
    if pipeline is not None:
        started = time.perf_counter()
        try:
            suggestion = pipeline.triage(SubmissionText(title, content, kind, received, province))
        except Exception:  # the submission must be stored even when a model fails
            log.exception("automatic triage failed; the case stays NEW without a suggestion")
        if observe is not None and suggestion is not None:
            observe(suggestion, time.perf_counter() - started)

    prepared = _Prepared(
        new=new,
        kind=kind,
        title=title,
        content=content,
        province=province,
        received=received,
        forward_due=forward_due,
        answer_due=answer_due,
        suggestion=suggestion,
        idempotency_key=idempotency_key,
        fingerprint=fingerprint,
        masked_search=masked_search_key(title, content),
        place=place,
        files=tuple(files),
        followup_token=new_token(),
    )
    for f in files:
        assert file_store is not None
        file_store.put(f)
    campaigns = None if pipeline is None else pipeline.campaigns
    for attempt in range(3):
        try:
            # Deadlocks, serialization failures and SQLite busy are retried inside (the citizen never gets a 500).
            return db.transaction(lambda s: _store(s, prepared, auto_route=auto_route, campaigns=campaigns))
        except IntegrityError:
            if idempotency_key is not None:
                replay = _replay(db, idempotency_key, fingerprint)
                if replay is not None:
                    return replay
            if attempt == 2:
                raise
    raise AssertionError("unreachable")


def _store(
    s: Session, prepared: _Prepared, *, auto_route: bool = False, campaigns: CampaignPolicy | None = None
) -> Receipt:
    suggestion = prepared.suggestion
    case = Case(
        state=CaseState.NEW.value,
        kind=prepared.kind,
        received_at=prepared.received,
        forward_due=prepared.forward_due,
        answer_due=prepared.answer_due,
        suggestion=None if suggestion is None else suggestion.to_dict(),
        model_version=None if suggestion is None else suggestion.model_version,
        programme_field=None if suggestion is None else suggestion.top_programme_field,
        updated_at=prepared.received,
    )
    s.add(case)
    s.flush()
    sub = Submission(
        tracking_code=new_tracking_code(),
        idempotency_key=prepared.idempotency_key,
        request_hash=prepared.fingerprint,
        case_id=case.id,
        kind=prepared.kind,
        submitter_type=prepared.new.submitter_type,
        title_raw=prepared.new.title,
        content_raw=prepared.new.content,
        title=prepared.title,
        content=prepared.content,
        search_text=search_key(f"{prepared.title}\n{prepared.content}"),
        masked_search_text=prepared.masked_search,
        province_raw=prepared.new.province,
        province_code=prepared.province,
        contact_name=prepared.new.contact_name,
        contact_email=prepared.new.contact_email,
        contact_phone=prepared.new.contact_phone,
        contact_address=prepared.new.contact_address,
        ward=prepared.place.ward,
        address=prepared.place.address,
        latitude=prepared.place.latitude,
        longitude=prepared.place.longitude,
        followup_hash=token_digest(prepared.followup_token),
        publish_consent=bool(prepared.new.publish_consent),
        embedding=None if suggestion is None or suggestion.embedding is None else to_bytes(suggestion.embedding),
        forward_due=prepared.forward_due,
        answer_due=prepared.answer_due,
        created_at=prepared.received,
    )
    s.add(sub)
    s.flush()
    after: dict[str, Any] = {
        "state": case.state,
        "kind": prepared.kind,
        "submission_id": sub.id,
        "tracking_code": sub.tracking_code,
        "forward_due": prepared.forward_due.isoformat(),
        "answer_due": prepared.answer_due.isoformat(),
        "suggested_agencies": [] if suggestion is None else [a.code for a in suggestion.agencies],
        "suggested_scores": [] if suggestion is None else [a.score for a in suggestion.agencies],
        "moderation": None if suggestion is None else moderation_summary(suggestion.moderation),
        "text_sha256": audit.text_digest(title=prepared.new.title, content=prepared.new.content),
        "publish_consent": bool(prepared.new.publish_consent),
    }
    attached = add_files(s, list(prepared.files), owner="submission", owner_id=sub.id, case_id=case.id,
                         actor="public", at=prepared.received)  # fmt: skip
    if attached:
        after["attachments"] = [file_entry(a) for a in attached]
    if prepared.place.ward or prepared.place.address or prepared.place.latitude is not None:
        after["place"] = {"ward": prepared.place.ward, "ward_known": prepared.place.ward_known,
                          "has_address": prepared.place.address is not None,
                          "has_coordinates": prepared.place.latitude is not None}  # fmt: skip
    if suggestion is not None and suggestion.programme_fields:
        after["suggested_programme_field"] = suggestion.top_programme_field
    audit.record(
        s,
        actor="public",
        action="submit",
        case_id=case.id,
        after=after,
        model_version=case.model_version,
        at=prepared.received,
    )
    token = prepared.followup_token
    link = LINK_BASE + follow_up_path(sub.tracking_code, token) if token else None
    notify_receipt(s, case, sub, follow_up_url=link, now=prepared.received)  # commits (or not) with the submission
    if campaigns is not None and suggestion is not None and suggestion.near_identical:
        group(s, case, suggestion.near_identical, campaigns)
    if auto_route and suggestion is not None and suggestion.auto_routable:
        _auto_route(s, case, suggestion, prepared.received)
    return _receipt(sub, replayed=False, token=prepared.followup_token, attachments=tuple(a.id for a in attached))


def _auto_route(s: Any, case: Case, suggestion: Suggestion, at: datetime) -> None:
    """NEW -> TRIAGED to the top agency through the workflow table, audited as the system's decision."""
    before = snapshot(case)
    top = suggestion.agencies[0]
    case.state = apply(case.state, Action.TRIAGE).value
    case.agency_code = top.code
    case.field = suggestion.top_field
    audit.record(
        s,
        actor="system",
        action=Action.TRIAGE.value,
        case_id=case.id,
        before=before,
        after={**snapshot(case), "auto": True, "score": top.score, "threshold": suggestion.auto_threshold},
        model_version=case.model_version,
        at=at,
    )


# A case whose triage keeps failing (a text that crashes a model) is retried after doubling waits and
# given up after RETRY_ATTEMPTS failed retries; each failure is audited, so its page says why it waits
# for a clerk, and the least-tried cases go first so that failing ones cannot starve the rest.
RETRY_ATTEMPTS = 5
RETRY_WAIT = timedelta(minutes=2)


def retriage_missing(db: Database, pipeline: Pipeline, *, limit: int = 50, now: datetime | None = None) -> int:
    """Suggest routes for NEW cases whose triage failed at intake; returns how many were completed."""
    moment = (now or utcnow()).astimezone(UTC)
    with db.read() as s:
        todo = []
        for c, failures, last in Cases(s).without_suggestion(limit, max_failures=RETRY_ATTEMPTS):
            since = None if last is None else (last if last.tzinfo else last.replace(tzinfo=UTC))
            if since is None or moment >= since + RETRY_WAIT * 2 ** (failures - 1):
                todo.append((c.id, c.kind, c.received_at, failures))
        first = {cid: Submissions(s).of_case(cid)[0] for cid, _, _, _ in todo}
        texts = {cid: (sub.title, sub.content, sub.province_code) for cid, sub in first.items()}
    done = 0
    for cid, kind, received, failures in todo:
        title, content, province = texts[cid]
        try:
            sug = pipeline.triage(SubmissionText(title, content, kind, received, province), exclude_case=cid)
        except Exception as exc:
            log.exception("triage of case %s failed again (retry %d of %d)", cid, failures + 1, RETRY_ATTEMPTS)
            with db.session() as s:
                audit.record(
                    s,
                    actor="system",
                    action="triage_failed",
                    case_id=cid,
                    after={"error": type(exc).__name__, "retry": failures + 1, "of": RETRY_ATTEMPTS},
                    at=moment,
                )
            continue
        with db.session() as s:
            case = s.get(Case, cid)
            if case is None or case.suggestion is not None:
                continue
            case.suggestion, case.model_version = sug.to_dict(), sug.model_version
            case.programme_field = sug.top_programme_field
            sub = s.get(Submission, first[cid].id)
            if sub is not None and sug.embedding is not None:
                sub.embedding = to_bytes(sug.embedding)
            audit.record(
                s,
                actor="system",
                action="suggest",
                case_id=cid,
                after={
                    "suggested_agencies": [a.code for a in sug.agencies],
                    "suggested_scores": [a.score for a in sug.agencies],
                    "moderation": moderation_summary(sug.moderation),
                    **({"suggested_programme_field": sug.top_programme_field} if sug.programme_fields else {}),
                },
                model_version=sug.model_version,
            )
        done += 1
    return done
