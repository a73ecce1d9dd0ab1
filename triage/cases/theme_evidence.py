"""The evidence panel of a systemic theme: who holds its cases, where they come from, what they ask.

A theme whose cases are spread over several agencies or several provinces points at a policy
problem rather than one office's backlog (issue 21, part 4). For such a theme the report carries a
:class:`ThemeEvidence`: the agencies and how many cases each holds, the provinces, the catalogue
fields involved, the nearest catalogue procedures, and a few representative texts, personal data
masked as analysts see it (:func:`triage.nlp.text.mask_personal` over the PII-masked text).
``to_csv`` (UTF-8 with a BOM, so Excel reads Vietnamese) and ``to_markdown`` turn a panel into a
file for an analyst's memo. Data only, no HTTP: the API and the report page render it.

Fields: the case's routed field (``Case.field``) when it has one, else the field of the catalogue
procedure nearest its text (:class:`triage.nlp.procedure_router.ProcedureRouter`; at most
``CATALOGUE_SAMPLE`` cases of a theme, the most central first, are matched that way).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING

import numpy as np

from triage.cases import exports
from triage.cases.exports import Cell, Table
from triage.nlp.agencies import default_registry
from triage.nlp.text import mask_personal

if TYPE_CHECKING:
    from triage.nlp.procedure_router import ProcedureRouter

SPANS_AGENCIES = "agencies"
SPANS_PROVINCES = "provinces"
MAX_TEXTS = 6
TEXT_CHARS = 400
CATALOGUE_SAMPLE = 400  # cases per theme matched to the catalogue when they have no routed field
PROVINCE_TEXT_SAMPLE = 500  # cases per theme whose text is searched for a province when none was given
# The nearest procedure counts as evidence of a field only when the text shares this much vocabulary
# with its name (TF-IDF cosine over segmented words): e5 vectors of any two administrative texts are
# close, so the vector part alone would give every text some procedure.
MIN_WORD_SIMILARITY = 0.15
UTF8_BOM = "\ufeff"

FIELD_ROUTED = "routed"
FIELD_CATALOGUE = "catalogue"


@dataclass(frozen=True)
class EvidenceCount:
    """An agency, province, field or procedure and how many of the theme's cases involve it."""

    code: str  # agency or province code, procedure code; "" for a field
    name: str
    count: int


@dataclass(frozen=True)
class EvidenceText:
    """A representative case of the theme, its text masked (names, streets, numbers)."""

    case_id: int
    agency: str | None  # name of the agency holding the case
    province: str | None
    field: str | None
    text: str


@dataclass(frozen=True)
class ThemeEvidence:
    """The evidence panel of one theme spanning several agencies and/or provinces."""

    spans: tuple[str, ...]  # SPANS_AGENCIES and/or SPANS_PROVINCES
    cases: int  # distinct cases among the theme's submissions
    agencies: tuple[EvidenceCount, ...]  # cases per agency, most first
    unassigned: int  # cases no agency holds yet
    provinces: tuple[EvidenceCount, ...]  # cases per province (given by the citizen or named in the text)
    without_province: int
    fields: tuple[EvidenceCount, ...]  # cases per field (routed, else the nearest catalogue procedure's)
    fields_routed: int  # cases whose field is the routed one
    fields_from_catalogue: int  # cases whose field comes from the nearest catalogue procedure
    procedures: tuple[EvidenceCount, ...]  # the nearest catalogue procedures, most cases first
    texts: tuple[EvidenceText, ...]


@dataclass(frozen=True)
class Member:
    """What the panel needs of one submission of the theme (the report's ``PeriodSubmission`` fields)."""

    case_id: int
    text: str  # PII-masked
    agency_code: str | None
    province_code: str | None
    field: str | None
    embedding: np.ndarray | None


def spans(counts: dict[str, int], size: int, *, min_count: int, min_share: float) -> bool:
    """Two or more keys each holding at least ``min_count`` and ``min_share`` of ``size`` (the themes' rule)."""
    return sum(1 for c in counts.values() if c >= min_count and c >= min_share * size) >= 2


def _short(text: str, limit: int = TEXT_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _provinces(members: Sequence[Member], cases: Sequence[int]) -> list[str | None]:
    """Each case's province: the one the citizen gave, else the first the text names (most central cases only)."""
    registry = default_registry()
    out: list[str | None] = []
    searched = 0
    for i in cases:
        code = members[i].province_code
        if not code and searched < PROVINCE_TEXT_SAMPLE:
            searched += 1
            found = registry.find_provinces(members[i].text)
            code = found[0].code if found else None
        out.append(code)
    return out


def _counts(values: Sequence[str | None]) -> list[tuple[str, int]]:
    return Counter(v for v in values if v).most_common()


def _nearest_procedures(
    members: Sequence[Member], catalogue: ProcedureRouter | None
) -> dict[int, tuple[str, str, str | None]]:
    """Member index -> (procedure code, name, first field) of the nearest catalogue procedure, when near enough."""
    if catalogue is None or not members:
        return {}
    texts = [m.text for m in members]
    vectors = [m.embedding for m in members]
    with_vectors = catalogue.doc_embeddings_ is not None
    if with_vectors and any(
        v is None or len(v) != catalogue.doc_embeddings_.shape[1]  # type: ignore[union-attr]
        for v in vectors
    ):
        return {}  # no vector for some member: the index needs one per text
    out: dict[int, tuple[str, str, str | None]] = {}
    for start in range(0, len(members), 256):
        part = slice(start, start + 256)
        emb = np.stack([np.asarray(v, dtype=np.float32) for v in vectors[part]]) if with_vectors else None
        sims = catalogue.similarity(texts[part], emb)
        words = catalogue.words_.transform(texts[part]) @ catalogue.doc_words_
        for k, j in enumerate(sims.argmax(axis=1)):
            if float(words[k, int(j)]) >= MIN_WORD_SIMILARITY:
                p = catalogue.procedures_[int(j)]
                out[start + k] = (p.code, p.name, p.fields[0] if p.fields else None)
    return out


def theme_evidence(
    members: Sequence[Member],
    centrality: Sequence[float] | np.ndarray,
    *,
    systemic: bool,
    min_count: int = 2,
    min_share: float = 0.15,
    catalogue: ProcedureRouter | None = None,
    agency_name: Callable[[str], str] | None = None,
    max_texts: int = MAX_TEXTS,
) -> ThemeEvidence | None:
    """The panel of one theme from its submissions, or None when it spans one agency and one province.

    ``centrality`` is each submission's similarity to the theme's centre; ``systemic`` the theme
    model's verdict on agencies; provinces are judged by the same rule (``spans``: at least two
    provinces with ``min_count`` cases and ``min_share`` of the theme each).
    """
    registry = default_registry()
    name_of = agency_name or (lambda code: registry.name_of(code, code))
    order = [int(i) for i in np.argsort(-np.asarray(centrality, dtype=float), kind="stable")]
    # one entry per case: its most central submission speaks for it
    first: dict[int, int] = {}
    for i in order:
        first.setdefault(members[i].case_id, i)
    cases = list(first.values())  # member indices, most central case first
    agency = [members[i].agency_code for i in cases]
    province = _provinces(members, cases)
    found = tuple(
        kind
        for kind, yes in (
            (SPANS_AGENCIES, systemic),
            (SPANS_PROVINCES, spans(dict(_counts(province)), len(cases), min_count=min_count, min_share=min_share)),
        )
        if yes
    )
    if not found:
        return None
    unrouted = [i for i in cases if not members[i].field][:CATALOGUE_SAMPLE]
    nearest = _nearest_procedures([members[i] for i in unrouted], catalogue)
    procedure_of = {unrouted[k]: v for k, v in nearest.items()}
    field: list[str | None] = []
    routed = from_catalogue = 0
    for i in cases:
        if members[i].field:
            field.append(members[i].field)
            routed += 1
        elif i in procedure_of and procedure_of[i][2]:
            field.append(procedure_of[i][2])
            from_catalogue += 1
        else:
            field.append(None)
    agencies = tuple(EvidenceCount(code=c, name=name_of(c), count=n) for c, n in _counts(agency))
    provinces = tuple(EvidenceCount(code=c, name=name_of(c), count=n) for c, n in _counts(province))
    procedure_names = {code: name for code, name, _ in procedure_of.values()}
    procedures = tuple(
        EvidenceCount(code=c, name=procedure_names[c], count=n)
        for c, n in _counts([v[0] for v in procedure_of.values()])[:5]
    )
    # representative texts: the most central case of each agency (most cases first), then the most central others
    picked: list[int] = []
    for code, _ in _counts(agency):
        k = agency.index(code)
        if len(picked) < max_texts:
            picked.append(k)
    for k in range(len(cases)):
        if len(picked) >= max_texts:
            break
        if k not in picked:
            picked.append(k)
    texts = tuple(
        EvidenceText(
            case_id=members[cases[k]].case_id,
            agency=None if agency[k] is None else name_of(agency[k] or ""),
            province=None if province[k] is None else name_of(province[k] or ""),
            field=field[k],
            text=_short(mask_personal(members[cases[k]].text[: TEXT_CHARS + 100])),  # NER only what is shown
        )
        for k in sorted(picked)
    )
    return ThemeEvidence(
        spans=found,
        cases=len(cases),
        agencies=agencies,
        unassigned=sum(1 for a in agency if not a),
        provinces=provinces,
        without_province=sum(1 for p in province if not p),
        fields=tuple(EvidenceCount(code="", name=f, count=n) for f, n in _counts(field)),
        fields_routed=routed,
        fields_from_catalogue=from_catalogue,
        procedures=procedures,
        texts=texts,
    )


# ---- export for an analyst's memo -----------------------------------------------------------------

SPAN_WORDS = {SPANS_AGENCIES: "nhiều cơ quan", SPANS_PROVINCES: "nhiều tỉnh, thành phố"}
CSV_HEADER = ("Mục", "Mã", "Tên", "Số hồ sơ", "Mã hồ sơ", "Cơ quan", "Tỉnh, thành phố", "Lĩnh vực", "Nội dung")


def _period(since: date, until: date) -> str:
    return f"{since:%d/%m/%Y} – {until:%d/%m/%Y}"


def to_csv(label: str, keywords: Sequence[str], since: date, until: date, evidence: ThemeEvidence) -> str:
    """One table (UTF-8 BOM first, so Excel shows the Vietnamese; citizens' texts never start a formula,
    ``triage.cases.exports``): a row per agency, province, field, procedure and representative text;
    the section is the first column."""
    rows: list[tuple[Cell, ...]] = [
        ("Chủ đề", "", label, evidence.cases, "", "", "", "", ", ".join(keywords)),
        ("Kỳ", "", _period(since, until), "", "", "", "", "", ""),
    ]
    rows += [("Cơ quan", c.code, c.name, c.count, "", "", "", "", "") for c in evidence.agencies]
    if evidence.unassigned:
        rows.append(("Cơ quan", "", "Chưa chuyển cơ quan", evidence.unassigned, "", "", "", "", ""))
    rows += [("Tỉnh, thành phố", c.code, c.name, c.count, "", "", "", "", "") for c in evidence.provinces]
    if evidence.without_province:
        rows.append(("Tỉnh, thành phố", "", "Không rõ", evidence.without_province, "", "", "", "", ""))
    rows += [("Lĩnh vực", "", c.name, c.count, "", "", "", "", "") for c in evidence.fields]
    rows += [("Thủ tục gần nhất", c.code, c.name, c.count, "", "", "", "", "") for c in evidence.procedures]
    rows += [
        ("Phản ánh tiêu biểu", "", "", "", t.case_id, t.agency or "", t.province or "", t.field or "", t.text)
        for t in evidence.texts
    ]
    return exports.to_csv(Table("Bằng chứng", CSV_HEADER, rows)).decode("utf-8")


def _md(text: str) -> str:
    """Text safe inside a Markdown table cell or list item (no table breaks, no markup from citizens)."""
    out = " ".join(text.split())
    for ch in "\\|*_`[]<>#":
        out = out.replace(ch, "\\" + ch)
    return out


def to_markdown(label: str, keywords: Sequence[str], since: date, until: date, evidence: ThemeEvidence) -> str:
    """A short Markdown section for a memo: what spans where, the counts, and the masked texts."""
    spread = " và ".join(SPAN_WORDS[s] for s in evidence.spans) or "một cơ quan"
    lines = [
        f"## Chủ đề liên ngành: {_md(label)}",
        "",
        f"Kỳ {_period(since, until)} · {evidence.cases} hồ sơ · trải trên {spread}.",
        f"Từ khoá: {_md(', '.join(keywords))}.",
        "",
        "| Cơ quan | Số hồ sơ |",
        "|---|---:|",
        *(f"| {_md(c.name)} | {c.count} |" for c in evidence.agencies),
    ]
    if evidence.unassigned:
        lines.append(f"| Chưa chuyển cơ quan | {evidence.unassigned} |")
    lines += ["", "| Tỉnh, thành phố | Số hồ sơ |", "|---|---:|"]
    lines += [f"| {_md(c.name)} | {c.count} |" for c in evidence.provinces]
    if evidence.without_province:
        lines.append(f"| Không rõ | {evidence.without_province} |")
    lines += ["", "| Lĩnh vực | Số hồ sơ |", "|---|---:|"]
    lines += [f"| {_md(c.name)} | {c.count} |" for c in evidence.fields]
    lines += [
        "",
        f"Lĩnh vực: {evidence.fields_routed} hồ sơ theo lĩnh vực đã phân loại, "
        f"{evidence.fields_from_catalogue} theo thủ tục gần nhất trong danh mục thủ tục hành chính.",
    ]
    if evidence.procedures:
        lines += ["", "Thủ tục gần nhất trong danh mục:", ""]
        lines += [f"- {_md(c.name)} ({_md(c.code)}): {c.count} hồ sơ" for c in evidence.procedures]
    lines += ["", "Phản ánh tiêu biểu (đã che thông tin cá nhân):", ""]
    for t in evidence.texts:
        where = ", ".join(x for x in (t.agency, t.province, t.field) if x)
        lines.append(f"- Hồ sơ #{t.case_id}" + (f" ({_md(where)})" if where else "") + f": {_md(t.text)}")
    return "\n".join(lines) + "\n"
