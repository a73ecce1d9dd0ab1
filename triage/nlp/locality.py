"""Local matter or policy question: does a submission need a province's authorities or a ministry?

A named province alone does not make a matter local. "Bà Lê Kim Tuyền (TPHCM) có một mảnh đất..."
asks about land law: the province is where the person lives. A matter is local when it is about a
concrete place or a local office: a road, a canal, a school, a ward's officials, a project's
clearance, with the place named. Then the province's People's Committee (and its department by
field) handles it; a question of law or policy goes to the ministry whatever province is named.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from triage.nlp.agencies import Agency, AgencyRegistry, fold

__all__ = ["LocalityDecision", "decide_locality", "residence_spans"]

# A province in brackets, or after who a person is and where they live, says where the writer lives.
_BRACKETS = re.compile(r"\([^()]{0,60}\)")
_RESIDENCE = re.compile(
    r"(?:(?:\b(?:ông|bà|anh|chị|em|cô|chú|bạn|bạn đọc|độc giả|cử tri|công dân|người dân"
    r"|tôi|chúng tôi|bố tôi|mẹ tôi)\b[^.,;:?!]{0,40}?"
    r"(?:,\s*)?)\b(?:ở|tại|trú tại|trú ở|sống ở|sống tại|ngụ tại|ngụ ở|quê ở|quê|đến từ|cư trú tại)\s+"
    r"|\b(?:hộ khẩu|thường trú|tạm trú|quê quán|địa chỉ|nguyên quán|cư trú)\s*(?:ở|tại|:)?\s+)"
    r"[^.,;:?!()]{0,40}",
    re.IGNORECASE,
)
# What a local matter is about: places, infrastructure and local offices (folded, no diacritics).
_LOCAL_CUES = (
    "tuyen duong",
    "con duong",
    "duong lien xa",
    "duong lang",
    "ngo ",
    "hem ",
    "cau ",
    "cong ",
    "kenh",
    "muong",
    "ngap",
    "ung ngap",
    "rac thai",
    "bai rac",
    "o nhiem",
    "mui hoi",
    "tieng on",
    "xa ",
    "phuong ",
    "thon ",
    "ap ",
    "khu pho",
    "to dan pho",
    "khu dan cu",
    "cum cong nghiep",
    "ubnd xa",
    "ubnd phuong",
    "ubnd huyen",
    "ubnd quan",
    "uy ban nhan dan xa",
    "uy ban nhan dan phuong",
    "chinh quyen dia phuong",
    "can bo xa",
    "can bo phuong",
    "cong an xa",
    "cong an phuong",
    "truong tieu hoc",
    "truong mam non",
    "truong thcs",
    "benh vien",
    "tram y te",
    "cho ",
    "du an",
    "giai phong mat bang",
    "den bu",
    "boi thuong",
    "lan chiem",
    "xay dung trai phep",
    "sat lo",
    "den duong",
    "cay xanh",
    "nuoc sinh hoat",
    "mat dien",
    "cat dien",
    "xuong ca",
    "cap nuoc",
)
# What a question of law or policy asks.
_POLICY_CUES = (
    "quy dinh",
    "phap luat",
    "theo luat",
    "luat ",
    "nghi dinh",
    "thong tu",
    "co duoc khong",
    "co duoc",
    "co phai",
    "dieu kien",
    "thu tuc",
    "ho so",
    "nhu the nao",
    "the nao",
    "bao nhieu",
    "xin hoi",
    "hoi ",
    "huong dan",
    "chinh sach",
    "che do",
    "muc huong",
    "co bi",
    "phai lam gi",
    "can lam gi",
    "cho toi hoi",
    "toi co the",
    "duoc khong",
    "co can",
    "giay phep",
    "giay chung nhan",
    "dang ky",
    "ho tich",
    "khai sinh",
    "nhap khau",
    "xuat khau",
)


@dataclass(frozen=True)
class LocalityDecision:
    """Whether a matter is local; the provinces it is about (not where the writer lives) and why."""

    local: bool
    provinces: list[Agency] = field(default_factory=list)
    residence: list[Agency] = field(default_factory=list)
    local_cues: int = 0
    policy_cues: int = 0

    @property
    def reason(self) -> str:
        if self.local:
            names = ", ".join(p.name for p in self.provinces) or "một địa phương"
            return f"Vụ việc tại {names}: thuộc thẩm quyền địa phương"
        if self.residence and not self.provinces:
            return "Tỉnh được nêu là nơi cư trú của người gửi, không phải nơi xảy ra vụ việc"
        return "Câu hỏi về chính sách, pháp luật: thuộc thẩm quyền bộ, ngành"


def _fold(text: str) -> str:
    """The registry's folding, padded so that every cue can be matched as " cue"."""
    return f" {fold(text)} "


def residence_spans(text: str) -> list[tuple[int, int]]:
    """Character spans that say where the writer lives: brackets, "ông X ở ...", "hộ khẩu tại ..."."""
    spans = [m.span() for m in _BRACKETS.finditer(text)]
    spans += [m.span() for m in _RESIDENCE.finditer(text)]
    return sorted(spans)


def _count(folded: str, cues: tuple[str, ...]) -> int:
    return sum(1 for cue in cues if f" {cue}" in folded)


def decide_locality(text: str, registry: AgencyRegistry) -> LocalityDecision:
    """Local when the text names a province outside any residence mention and speaks of a concrete
    local matter more than it asks a question of law (or asks at all); policy otherwise."""
    spans = residence_spans(text)
    kept, last = [], 0
    for start, end in spans:
        if start >= last:
            kept.append(text[last:start])
            last = end
    kept.append(text[last:])
    outside = " ".join(kept)
    places = registry.find_provinces(outside)
    everywhere = registry.find_provinces(text)
    residence = [p for p in everywhere if p not in places]
    local_cues = _count(_fold(outside), _LOCAL_CUES)
    # A question mark asks something; a complaint about a place usually states it.
    policy_cues = _count(_fold(text), _POLICY_CUES) + min(text.count("?"), 1)
    local = bool(places) and local_cues >= 1 and local_cues > policy_cues
    return LocalityDecision(
        local=local,
        provinces=places if local else [],
        residence=residence,
        local_cues=local_cues,
        policy_cues=policy_cues,
    )
