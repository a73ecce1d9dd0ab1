"""Published answers: an agency publishes an answered case (with the submitter's consent), masked, on /hoi-dap.

Only a handler of the case's agency or an admin may publish (a handler's view stops at its agency:
another agency's case is NotFound), only an answered case, and only when the first submission's
sender consented (``Submission.publish_consent``, asked on the form, default no). The question and
the answer are copied through ``mask_personal`` at publication; publishing and withdrawing are
audited. Search is server-side: word TF-IDF over question and answer (``AnswerIndex``), the fitted
index cached until the set of published answers changes.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.cases import audit
from triage.cases.accounts import Principal
from triage.cases.answer_drafts import AnsweredCase, AnswerIndex
from triage.cases.workflow import CaseState
from triage.errors import Conflict, NotFound
from triage.nlp.text import mask_personal, normalize
from triage.store.outbox_tables import PublishedAnswer
from triage.store.repositories import Cases, Submissions, Timeline, search_key
from triage.store.tables import utcnow

ANSWERED = frozenset({CaseState.RESPONDED.value, CaseState.CLOSED.value})
MAX_QUERY = 2000
MAX_SEARCHED = 20_000  # published answers searched, newest first


@dataclass(frozen=True)
class PublicAnswer:
    """A published answer as the public sees it (masked texts only)."""

    id: int
    case_id: int
    agency_code: str | None
    kind: str
    title: str
    question: str
    answer: str
    published_at: datetime
    score: float | None = None

    @classmethod
    def of(cls, row: PublishedAnswer, score: float | None = None) -> PublicAnswer:
        return cls(
            row.id,
            row.case_id,
            row.agency_code,
            row.kind,
            row.title,
            row.question,
            row.answer,
            row.published_at,
            score,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "agency_code": self.agency_code,
            "kind": self.kind,
            "title": self.title,
            "question": self.question,
            "answer": self.answer,
            "published_at": self.published_at,
            **({"score": round(self.score, 4)} if self.score is not None else {}),
        }


def publish(session: Session, who: Principal, case_id: int, *, now: datetime | None = None) -> PublicAnswer:
    """Publish the answered case ``case_id`` (masked); Conflict without consent, before an answer, or if published."""
    moment = now or utcnow()
    case = Cases(session).get(case_id, for_update=True)
    if case is None or not who.sees(case.agency_code):
        raise NotFound(f"case {case_id} not found")
    who.require("publish")
    if case.state not in ANSWERED or case.answered_at is None:
        raise Conflict(f"case {case_id} has not been answered; only an answered case can be published")
    subs = Submissions(session).of_case(case_id)
    if not subs or not subs[0].publish_consent:
        raise Conflict(f"the sender of case {case_id} did not consent to publication; it cannot be published")
    responses = Timeline(session).responses(case_id)
    if not responses:
        raise Conflict(f"case {case_id} has no answer to publish")
    first, answer = subs[0], responses[-1].body
    row = session.scalar(select(PublishedAnswer).where(PublishedAnswer.case_id == case_id))
    if row is not None and row.unpublished_at is None:
        raise Conflict(f"case {case_id} is already published")
    title, question, masked_answer = mask_personal(first.title), mask_personal(first.content), mask_personal(answer)
    texts = {
        "title": title,
        "question": question,
        "answer": masked_answer,
        "search_text": search_key(normalize(f"{title}\n{question}\n{masked_answer}")),
    }
    if row is None:
        row = PublishedAnswer(
            case_id=case_id,
            agency_code=case.agency_code,
            kind=case.kind,
            field=case.field,
            answered_at=case.answered_at,
            published_by=who.username,
            published_at=moment,
            **texts,
        )
        session.add(row)
    else:  # published again after a withdrawal: today's masked texts
        for key, value in texts.items():
            setattr(row, key, value)
        row.published_by, row.published_at, row.unpublished_at = who.username, moment, None
    session.flush()
    audit.record(
        session,
        actor=who.username,
        action="publish",
        case_id=case_id,
        after={
            "published_answer": row.id,
            "response_id": responses[-1].id,
            "masked_sha256": audit.text_digest(title=title, question=question, answer=masked_answer),
        },
        at=moment,
    )
    session.flush()
    return PublicAnswer.of(row)


def unpublish(session: Session, who: Principal, case_id: int, *, now: datetime | None = None) -> None:
    """Withdraw a published answer from /hoi-dap (audited); NotFound when it is not published."""
    moment = now or utcnow()
    case = Cases(session).get(case_id, for_update=True)
    if case is None or not who.sees(case.agency_code):
        raise NotFound(f"case {case_id} not found")
    who.require("publish")
    row = session.scalar(select(PublishedAnswer).where(PublishedAnswer.case_id == case_id))
    if row is None or row.unpublished_at is not None:
        raise NotFound(f"case {case_id} has no published answer")
    row.unpublished_at = moment
    audit.record(
        session, actor=who.username, action="unpublish", case_id=case_id, after={"published_answer": row.id}, at=moment
    )
    session.flush()


def published_of(session: Session, case_id: int) -> PublicAnswer | None:
    """The case's answer as published now, or None."""
    row = session.scalar(
        select(PublishedAnswer).where(PublishedAnswer.case_id == case_id, PublishedAnswer.unpublished_at.is_(None))
    )
    return None if row is None else PublicAnswer.of(row)


def get_public(session: Session, answer_id: int) -> PublicAnswer:
    row = session.get(PublishedAnswer, answer_id)
    if row is None or row.unpublished_at is not None:
        raise NotFound(f"no published answer {answer_id}")
    return PublicAnswer.of(row)


class _IndexCache:
    """One fitted index of the published answers per process, refitted when their set changes."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.key: tuple[Any, ...] | None = None
        self.index: AnswerIndex | None = None
        self.ids: list[int] = []

    def get(self, session: Session) -> tuple[AnswerIndex | None, list[int]]:
        live = PublishedAnswer.unpublished_at.is_(None)
        counts = session.execute(
            select(func.count(), func.max(PublishedAnswer.id), func.max(PublishedAnswer.published_at)).where(live)
        ).one()
        withdrawn = session.scalar(select(func.max(PublishedAnswer.unpublished_at)))
        key = (*counts, withdrawn, str(session.get_bind().engine.url))
        with self.lock:
            if key == self.key:
                return self.index, self.ids
        rows = session.execute(
            select(PublishedAnswer.id, PublishedAnswer.title, PublishedAnswer.question, PublishedAnswer.answer)
            .where(live)
            .order_by(PublishedAnswer.id.desc())
            .limit(MAX_SEARCHED)
        ).all()
        items = [AnsweredCase(case_id=r[0], title=r[1], question=r[2], answer=r[3]) for r in rows]
        index = AnswerIndex(embedding_weight=0.0, answer_weight=0.5).fit(items) if items else None
        with self.lock:
            self.key, self.index, self.ids = key, index, [r[0] for r in rows]
        return index, self.ids


_CACHE = _IndexCache()


def search(
    session: Session, query: str | None, *, limit: int = 10, offset: int = 0, min_score: float = 0.05
) -> tuple[list[PublicAnswer], int]:
    """Published answers for ``query`` (best first, above ``min_score``), or the newest without one; and the total."""
    text = normalize((query or "")[:MAX_QUERY])
    live = PublishedAnswer.unpublished_at.is_(None)
    if not text:
        total = int(session.scalar(select(func.count()).select_from(PublishedAnswer).where(live)) or 0)
        rows = session.scalars(
            select(PublishedAnswer).where(live).order_by(PublishedAnswer.published_at.desc(), PublishedAnswer.id.desc())
            .offset(offset).limit(limit)
        )  # fmt: skip
        return [PublicAnswer.of(r) for r in rows], total
    index, ids = _CACHE.get(session)
    if index is None:
        return [], 0
    scores = index.scores(text)
    ranked = [(ids[i], float(scores[i])) for i in scores.argsort()[::-1] if scores[i] > min_score]
    page = ranked[offset : offset + limit]
    found = {
        r.id: r for r in session.scalars(select(PublishedAnswer).where(PublishedAnswer.id.in_([i for i, _ in page])))
    }
    return [PublicAnswer.of(found[i], score) for i, score in page if i in found], len(ranked)


def similar_answered(session: Session, text: str, *, k: int = 5, min_score: float = 0.15) -> list[PublicAnswer]:
    """Answered questions like ``text`` (what a citizen is typing): at most ``k``, only fairly close ones."""
    found, _ = search(session, text, limit=k, min_score=min_score)
    return found
