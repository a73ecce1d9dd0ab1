"""Answer drafts: what similar cases were answered with, assembled for a handler to edit, never sent as is.

``AnswerIndex`` ranks answered cases for a question by a mix of encoder cosine between the questions
(when vectors are given) and word TF-IDF (question to question, and question to answer: the answer
names the procedure and its legal basis). On the portal's FAQ (benchmarks/answer_drafts.py) the mix
cites an answer of the same procedure in the top 3 more often than TF-IDF alone. ``build_draft``
turns the top sources into a draft that cites each one, plus the legal documents those answers
cite (``legal_references``). ``draft_for_case`` gathers the answered cases an account may see (a
handler: its agency's) from the database and drafts for one case; no HTTP here.
"""

from __future__ import annotations

import re
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from triage.cases.accounts import Principal
from triage.errors import NotFound
from triage.nlp.text import normalize
from triage.store.repositories import Cases, Submissions
from triage.store.tables import Case, Response
from triage.store.vectors import from_bytes

# "Luật số 45/2013/QH13", "Nghị định số 100/2019/NĐ-CP", "Thông tư 16/2018/TT-BCA", "Quyết định số 1234/QĐ-UBND",
# "Luật Đất đai năm 2013" / "Bộ luật Lao động 2019": the document kind, then its number or its name and year.
_KINDS = r"(?:Bộ luật|Luật|Nghị định|Thông tư liên tịch|Thông tư|Quyết định|Nghị quyết|Pháp lệnh|Chỉ thị)"
_NUMBER = r"\d{1,5}(?:/\d{4})?/[A-ZĐ0-9]+(?:-[A-ZĐ0-9]+)*"
_UPPER = "A-ZĐÀ-Ỹ"
LEGAL_REFERENCE = re.compile(
    rf"\b(?P<kind>{_KINDS})\s+(?:số\s+)?(?P<number>{_NUMBER})"
    rf"|\b(?P<law>(?:Bộ luật|Luật)\s+(?:[{_UPPER}][^\s,.;:()]*)"
    rf"(?:\s+[^\s,.;:()\d]+){{0,6}}?\s+(?:năm\s+)?(?:19|20)\d\d)\b"
)


def legal_references(text: str) -> list[str]:
    """The legal documents ``text`` cites, in order of first mention, each once ("Thông tư số 16/2018/TT-BCA")."""
    found: dict[str, str] = {}
    for m in LEGAL_REFERENCE.finditer(normalize(text)):
        if m.group("number"):
            ref = f"{m.group('kind')} số {m.group('number')}"
            key = m.group("number").upper()
        else:
            ref = re.sub(r"\s+", " ", m.group("law"))
            key = ref.lower()
        found.setdefault(key, ref)
    return list(found.values())


@dataclass(frozen=True)
class AnsweredCase:
    """A case with its question and the answer it got (the corpus drafts are made from)."""

    case_id: int
    title: str
    question: str
    answer: str
    agency_code: str | None = None


@dataclass(frozen=True)
class Source:
    case_id: int
    score: float
    title: str
    answer: str
    agency_code: str | None


@dataclass(frozen=True)
class Draft:
    """A draft answer: its text, the cases it came from (best first) and the legal documents they cite."""

    body: str
    sources: list[Source] = field(default_factory=list)
    legal_references: list[str] = field(default_factory=list)


class AnswerIndex:
    """Answered cases ranked for a question: encoder cosine + word TF-IDF (question and answer)."""

    def __init__(self, *, embedding_weight: float = 1.0, answer_weight: float = 0.5, lexical: bool = True) -> None:
        self.embedding_weight = embedding_weight
        self.answer_weight = answer_weight
        self.lexical = lexical

    def fit(self, items: Sequence[AnsweredCase], vectors: np.ndarray | None = None) -> AnswerIndex:
        """``vectors``: unit encoder vectors of the items' questions (row i for item i), or None for TF-IDF only."""
        self.items_ = list(items)
        questions = [normalize(f"{i.title}. {i.question}" if i.title else i.question) for i in self.items_]
        answers = [normalize(i.answer) for i in self.items_]
        self.vectorizer_ = TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True, min_df=1)
        self.vectorizer_.fit(questions + answers if self.items_ else ["trống"])
        self.questions_ = self.vectorizer_.transform(questions) if self.items_ else None
        self.answers_ = self.vectorizer_.transform(answers) if self.items_ else None
        self.vectors_ = None if vectors is None else np.asarray(vectors, dtype=np.float32)
        return self

    def scores(self, question: str, vector: np.ndarray | None = None) -> np.ndarray:
        """One score per item (higher = closer)."""
        n = len(self.items_)
        out = np.zeros(n, dtype=np.float64)
        if n == 0:
            return out
        if self.lexical:
            q = self.vectorizer_.transform([normalize(question)])
            out += (self.questions_ @ q.T).toarray().ravel()  # type: ignore[operator]
            if self.answer_weight:
                out += self.answer_weight * (self.answers_ @ q.T).toarray().ravel()  # type: ignore[operator]
        if vector is not None and self.vectors_ is not None and self.embedding_weight:
            out += self.embedding_weight * (self.vectors_ @ np.asarray(vector, dtype=np.float32))
        return out

    def rank(
        self, question: str, vector: np.ndarray | None = None, *, k: int = 3, exclude: Sequence[int] = ()
    ) -> list[tuple[AnsweredCase, float]]:
        """The ``k`` closest answered cases (never the ones whose case id is in ``exclude``)."""
        scores = self.scores(question, vector)
        skip = set(exclude)
        out: list[tuple[AnsweredCase, float]] = []
        for i in np.argsort(-scores, kind="stable"):
            item = self.items_[int(i)]
            if item.case_id in skip:
                continue
            out.append((item, float(scores[int(i)])))
            if len(out) == k:
                break
        return out


def build_draft(title: str, ranked: Sequence[tuple[AnsweredCase, float]]) -> Draft:
    """The draft: a salutation, the best source's answer as the starting text, every source cited by case number.

    The handler edits it; the service only pre-fills the answer form when asked and never sends it by itself.
    """
    sources = [Source(c.case_id, score, c.title, c.answer, c.agency_code) for c, score in ranked]
    refs: dict[str, None] = {}
    for s in sources:
        refs.update(dict.fromkeys(legal_references(s.answer)))
    if not sources:
        return Draft(body="", sources=[], legal_references=[])
    cited = ", ".join(f"#{s.case_id}" for s in sources)
    parts = [
        "Kính gửi Ông/Bà,",
        "",
        f"Về nội dung Ông/Bà phản ánh, kiến nghị: «{normalize(title)[:300]}», cơ quan trả lời như sau:",
        "",
        sources[0].answer.strip(),
    ]
    if refs:
        parts += ["", "Căn cứ pháp lý tham khảo: " + "; ".join(refs) + "."]
    parts += ["", f"[Bản nháp soạn từ câu trả lời của hồ sơ {cited}; cần kiểm tra, chỉnh sửa trước khi gửi.]"]
    return Draft(body="\n".join(parts), sources=sources, legal_references=list(refs))


MAX_CORPUS = 2000  # the most recently answered cases searched per draft (a fit takes ~0.2 s per 1,000)


def answered_cases(
    session: Session, who: Principal, *, exclude: int | None = None, limit: int = MAX_CORPUS
) -> tuple[list[AnsweredCase], np.ndarray | None]:
    """Answered cases ``who`` may see (latest answer each), and their first submissions' vectors (None if one lacks)."""
    latest = select(Response.case_id, func.max(Response.id).label("rid")).group_by(Response.case_id).subquery()
    stmt = (
        select(Case.id, Case.agency_code, Response.body)
        .join(latest, latest.c.case_id == Case.id)
        .join(Response, Response.id == latest.c.rid)
        .order_by(latest.c.rid.desc())
        .limit(limit)
    )
    if exclude is not None:
        stmt = stmt.where(Case.id != exclude)
    if who.scoped:
        stmt = stmt.where(Case.agency_code == who.agency_code)
    rows = session.execute(stmt).all()
    firsts = Submissions(session).first_of_cases([r[0] for r in rows])
    items: list[AnsweredCase] = []
    vectors: list[np.ndarray] = []
    for case_id, agency, body in rows:
        sub = firsts.get(case_id)
        if sub is None:
            continue
        items.append(AnsweredCase(case_id, sub.title, sub.content, body, agency))
        if sub.embedding is not None:
            vectors.append(from_bytes(sub.embedding))
    if not items or len(vectors) != len(items):
        return items, None
    return items, np.vstack(vectors)


class _IndexCache:
    """Fitted indexes, one per account scope and database, refitted only when the answered cases change.

    A fit costs ~0.2 s per 1,000 cases; every view of a case page asks for a draft. The key covers each
    case's id and latest answer, so a new or changed answer refits; a few scopes are kept (LRU).
    """

    def __init__(self, size: int = 8) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.entries: OrderedDict[tuple[Any, ...], AnswerIndex] = OrderedDict()

    def get(self, key: tuple[Any, ...], items: list[AnsweredCase], vectors: np.ndarray | None) -> AnswerIndex:
        with self.lock:
            if key in self.entries:
                self.entries.move_to_end(key)
                return self.entries[key]
        index = AnswerIndex().fit(items, vectors)
        with self.lock:
            self.entries[key] = index
            while len(self.entries) > self.size:
                self.entries.popitem(last=False)
        return index


_CACHE = _IndexCache()


def draft_for_case(session: Session, who: Principal, case_id: int, *, k: int = 3) -> Draft:
    """The draft for case ``case_id`` from the answered cases ``who`` may see (NotFound for a case it may not)."""
    case = Cases(session).get(case_id)
    if case is None or not who.sees(case.agency_code):
        raise NotFound(f"case {case_id} not found")
    subs = Submissions(session).of_case(case_id)
    if not subs:
        return Draft(body="")
    first = subs[0]
    items, vectors = answered_cases(session, who)
    if not any(i.case_id != case_id for i in items):
        return Draft(body="")
    scope = who.agency_code if who.scoped else None
    corpus = hash(tuple((i.case_id, i.answer) for i in items))
    index = _CACHE.get((str(session.get_bind().engine.url), scope, corpus, vectors is not None), items, vectors)
    vector = from_bytes(first.embedding) if first.embedding is not None and vectors is not None else None
    ranked = index.rank(f"{first.title}. {first.content}", vector, k=k, exclude=[case_id])
    return build_draft(first.title, ranked)
