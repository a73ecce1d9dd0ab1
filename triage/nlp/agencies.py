"""Agency registry: who can receive a citizen's submission, by code, name, old name or place.

The data (``triage/data/agencies.json``) follows the 2025 reorganisation: 14 ministries and 3
ministry-level bodies from 1 March 2025 (Nghị quyết 176/2025/QH15), the two central judicial bodies,
Bảo hiểm xã hội Việt Nam, and the 34 provinces and cities from 1 July 2025 (Nghị quyết 202/2025/QH15).
Pre-2025 names ("Bộ Giao thông vận tải", "tỉnh Bình Dương") are aliases of the body that took them
over, because citizens, old documents and training labels keep using them.

Matching works on a folded key (Unicode NFC, casefold, Vietnamese diacritics and đ removed,
punctuation collapsed), so "Bộ GD&ĐT", "bộ giáo dục và đào tạo" and "Bo Giao duc va Dao tao" meet.
"""

from __future__ import annotations

import difflib
import json
import re
import unicodedata
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from types import MappingProxyType
from typing import Any, Literal, cast, get_args, overload

from triage.errors import NotFound

__all__ = [
    "Agency",
    "AgencyKind",
    "AgencyRegistry",
    "default_registry",
    "to_document",
]

AgencyKind = Literal["ministry", "ministry_level", "judicial", "agency_under_ministry", "province"]
_KINDS: frozenset[str] = frozenset(get_args(AgencyKind))

_NON_ALNUM = re.compile(r"[\W_]+")
_WORD = re.compile(r"[^\W_]+")
# Combining tone marks: grave, acute, tilde, hook above, dot below. Vowel-quality marks (circumflex,
# breve, horn) are not tones and stay with the base letter.
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
# Administrative words that may precede a name in lower case ("thành phố Vinh").
_PREFIX_WORDS = frozenset({"tinh", "thanh", "pho", "tp"})
# Name prefixes dropped by resolve() when the exact key is unknown ("UBND tỉnh Bình Dương").
_RESOLVE_PREFIXES = (
    "uy ban nhan dan thanh pho ",
    "uy ban nhan dan tinh ",
    "uy ban nhan dan ",
    "ubnd thanh pho ",
    "ubnd tinh ",
    "ubnd tp ",
    "ubnd ",
    "thanh pho ",
    "tinh ",
    "tp ",
)
# Names that are also ordinary words or phrases ("hòa bình" = peace, "hai phòng" = two rooms,
# "cửa lò" = oven door); in free text they count only when written as a proper name (capitalised).
_NEEDS_CAPITALS = frozenset(
    {
        "hoa binh",
        "thai binh",
        "cao bang",
        "hai phong",
        "hai duong",
        "hue",
        "binh dinh",
        "lam dong",
        "long an",
        "phu tho",
        "cua lo",
        "do son",
        "hoi an",
        "tp vinh",
        "thanh pho vinh",
        "ba vi",
        "ba be",
        "co to",
        "ben cat",
        "phu quy",
        "cai rang",
        "a luoi",
    }
)
# Phrases that contain a place name but do not refer to the place; matched like names so that the
# longest match wins and swallows the place name inside them.
_BLOCKERS = (
    "Thái Bình Dương",
    "Chủ tịch Hồ Chí Minh",
    "Bác Hồ Chí Minh",
    "tư tưởng Hồ Chí Minh",
    "đường Hồ Chí Minh",
    "đường mòn Hồ Chí Minh",
    "Bảo tàng Hồ Chí Minh",
    "Huân chương Hồ Chí Minh",
    "Giải thưởng Hồ Chí Minh",
    "Cộng sản Hồ Chí Minh",
    "Tiền phong Hồ Chí Minh",
    "Chính trị quốc gia Hồ Chí Minh",
    "Nguyễn Huệ",
    "đường Điện Biên Phủ",
    "phố Điện Biên Phủ",
)


def _strip_marks(s: str) -> str:
    decomposed = unicodedata.normalize("NFD", s)
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def fold(s: str) -> str:
    """Fold text for matching: NFC, casefold, no diacritics (đ -> d), runs of non-alnum -> one space."""
    folded = unicodedata.normalize("NFC", s).casefold().replace("đ", "d")
    return _NON_ALNUM.sub(" ", _strip_marks(folded)).strip()


@lru_cache(maxsize=65536)
def _key(s: str) -> str:
    """``fold`` for names and single words, cached.

    Every intake folds each word of the text twice (provinces, agencies) and the vocabulary of
    Vietnamese syllables is small, so this turns ~1 ms of Unicode work per submission into lookups.
    Whole texts go through ``fold`` uncached: they would only fill the cache.
    """
    return fold(s)


def _has_marks(word: str) -> bool:
    return any(unicodedata.combining(c) for c in unicodedata.normalize("NFD", word))


def _tone_key(word: str) -> str:
    """Spelling with the tone mark moved to the end, so "Hoà" and "Hòa" agree but "Huệ" and "Huế" do not."""
    decomposed = unicodedata.normalize("NFD", word.casefold().replace("đ", "d"))
    base = "".join(c for c in decomposed if c not in _TONE_MARKS)
    tones = "".join(sorted(c for c in decomposed if c in _TONE_MARKS))
    return unicodedata.normalize("NFC", base) + tones


@dataclass(frozen=True)
class Agency:
    """One body that can receive a submission: a central agency or a province-level authority.

    ``aliases`` hold old names (pre-2025 ministries, merged provinces), abbreviations and English names;
    ``merged_from`` names the former bodies or provinces this one absorbed; ``places`` are well-known
    towns of a province, used only to spot the province in free text. ``oversees`` are catalogue fields
    (lĩnh vực, by keyword) this body manages state-wide while other bodies issue the procedures.
    """

    code: str
    name: str
    kind: AgencyKind
    aliases: tuple[str, ...]
    parent: str | None
    description: str
    fields: tuple[str, ...]
    notes: str | None = None
    merged_from: tuple[str, ...] = ()
    places: tuple[str, ...] = ()
    city: bool = False
    oversees: tuple[str, ...] = ()

    @property
    def is_local(self) -> bool:
        """True for a province or centrally-run city (handled by its People's Committee)."""
        return self.kind == "province"

    @property
    def full_name(self) -> str:
        """Name with its unit, as in "Ủy ban nhân dân " + full_name: "Tỉnh Khánh Hòa", "Thành phố Huế"."""
        if not self.is_local:
            return self.name
        base = self.name.removeprefix("TP. ")
        return f"Thành phố {base}" if self.city else f"Tỉnh {base}"

    @classmethod
    def from_dict(cls, raw: Mapping[str, Any]) -> Agency:
        """Build from one JSON record; raises ValueError on a malformed record."""
        try:
            code = str(raw["code"])
            name = str(raw["name"])
            kind = str(raw["kind"])
            description = str(raw["description"])
        except KeyError as exc:
            raise ValueError(f"agency record {raw.get('code', '?')!r} lacks {exc.args[0]!r}") from None
        if kind not in _KINDS:
            raise ValueError(f"agency {code!r}: unknown kind {kind!r}")
        parent = raw.get("parent")
        notes = raw.get("notes")
        return cls(
            code=code,
            name=name,
            kind=cast(AgencyKind, kind),
            aliases=tuple(str(a) for a in raw.get("aliases", ())),
            parent=None if parent is None else str(parent),
            description=description,
            fields=tuple(str(f) for f in raw.get("fields", ())),
            notes=None if notes is None else str(notes),
            merged_from=tuple(str(m) for m in raw.get("merged_from", ())),
            places=tuple(str(p) for p in raw.get("places", ())),
            city=bool(raw.get("city", False)),
            oversees=tuple(str(o) for o in raw.get("oversees", ())),
        )


@dataclass(frozen=True)
class _Pattern:
    """A name as word keys for free-text search; ``agency`` None marks a blocker phrase."""

    keys: tuple[str, ...]
    words: tuple[str, ...]
    agency: Agency | None
    needs_capitals: bool


def _words(text: str) -> list[str]:
    return _WORD.findall(unicodedata.normalize("NFC", text))


def _pattern(surface: str, agency: Agency | None) -> _Pattern:
    words = tuple(_words(surface))
    keys = tuple(_key(w) for w in words)
    return _Pattern(keys, words, agency, " ".join(keys) in _NEEDS_CAPITALS)


def _accepts(pattern: _Pattern, span: list[str]) -> bool:
    """Check the words of a key match against the text as written (tones and capitals)."""
    if pattern.agency is None:
        return True
    if len(pattern.words) == 1 and pattern.words[0].isupper():
        return span[0] == pattern.words[0]  # abbreviations only as written: "BHXH", not "bhxh"
    for seen, expected in zip(span, pattern.words, strict=True):
        # A word typed without any diacritics matches; one typed with them must carry the same tones.
        if _has_marks(seen) and _has_marks(expected) and _tone_key(seen) != _tone_key(expected):
            return False
    if pattern.needs_capitals:
        return all(w[0].isupper() for w in span if _key(w) not in _PREFIX_WORDS)
    return True


class AgencyRegistry:
    """All agencies, looked up by code, by any name, or spotted as provinces in a citizen's text."""

    def __init__(self, agencies: list[Agency] | tuple[Agency, ...]) -> None:
        self._agencies: tuple[Agency, ...] = tuple(agencies)
        self._by_code: dict[str, Agency] = {}
        self._by_key: dict[str, Agency] = {}
        for agency in self._agencies:
            if agency.code in self._by_code:
                raise ValueError(f"duplicate agency code {agency.code!r}")
            self._by_code[agency.code] = agency
        for agency in self._agencies:
            if agency.parent is not None and agency.parent not in self._by_code:
                raise ValueError(f"agency {agency.code!r}: unknown parent {agency.parent!r}")
            for name in (agency.code, agency.name, *agency.aliases, *agency.merged_from):
                self._claim(self._by_key, _key(name), agency, name)
        self._patterns = self._build_patterns()
        self._central_patterns = self._build_central_patterns()
        self._by_name: Mapping[str, Agency] = MappingProxyType({a.name: a for a in self._agencies})

    @staticmethod
    def _claim(table: dict[str, Agency], key: str, agency: Agency, shown: str) -> None:
        if not key:
            raise ValueError(f"agency {agency.code!r}: empty name {shown!r}")
        other = table.setdefault(key, agency)
        if other is not agency:
            raise ValueError(f"name {shown!r} points to both {other.code!r} and {agency.code!r}")

    def _build_patterns(self) -> dict[str, list[_Pattern]]:
        """Index province names, aliases and places by first word key; longest pattern first."""
        owner: dict[str, Agency] = {}
        patterns: dict[str, list[_Pattern]] = {}
        for agency in self.provinces():
            for surface in (agency.name, *agency.aliases, *agency.merged_from, *agency.places):
                key = _key(surface)
                if len(key) < 2 or owner.get(key) is agency:
                    continue
                self._claim(owner, key, agency, surface)
                pattern = _pattern(surface, agency)
                patterns.setdefault(pattern.keys[0], []).append(pattern)
        for phrase in _BLOCKERS:
            pattern = _pattern(phrase, None)
            patterns.setdefault(pattern.keys[0], []).append(pattern)
        for bucket in patterns.values():
            bucket.sort(key=lambda p: len(p.keys), reverse=True)
        return patterns

    def _build_central_patterns(self) -> dict[str, list[_Pattern]]:
        """Names of central bodies worth spotting in free text: multi-word Vietnamese names and
        upper-case abbreviations of 4+ letters ("BHXH", "Bộ GTVT"); bare short codes ("BTC") and
        English names are left out because they collide with ordinary words and other acronyms."""
        patterns: dict[str, list[_Pattern]] = {}
        for agency in self.ministries():
            for surface in (agency.name, *agency.aliases):
                words = _words(surface)
                if not words or (surface.isascii() and " " in surface):
                    continue
                if len(words) == 1 and not (surface.isupper() and len(surface) >= 4):
                    continue
                pattern = _pattern(surface, agency)
                patterns.setdefault(pattern.keys[0], []).append(pattern)
        for bucket in patterns.values():
            bucket.sort(key=lambda p: len(p.keys), reverse=True)
        return patterns

    @classmethod
    def load(cls, path: Path | None = None) -> AgencyRegistry:
        """Read a registry JSON file; without a path, the one shipped in the package."""
        if path is None:
            packaged = resources.files("triage").joinpath("data").joinpath("agencies.json")
            text = packaged.read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        raw = json.loads(text)
        records = raw["agencies"] if isinstance(raw, dict) else raw
        return cls([Agency.from_dict(r) for r in records])

    def __iter__(self) -> Iterator[Agency]:
        return iter(self._agencies)

    def __len__(self) -> int:
        return len(self._agencies)

    def __contains__(self, code: object) -> bool:
        return code in self._by_code

    @property
    def by_name(self) -> Mapping[str, Agency]:
        """Official name -> agency (read-only)."""
        return self._by_name

    def get(self, code: str) -> Agency:
        """The agency with this code, e.g. "BTC" or "P-HCM"."""
        try:
            return self._by_code[code]
        except KeyError:
            raise NotFound(f"no agency with code {code!r}") from None

    @overload
    def name_of(self, code: str | None) -> str | None: ...
    @overload
    def name_of(self, code: str | None, default: str) -> str: ...
    def name_of(self, code: str | None, default: str | None = None) -> str | None:
        """Official name of the agency with this code, or ``default`` for no code or an unknown one.

        Stored codes may outlive the registry (a merged province): pages show them, never fail.
        """
        agency = self._by_code.get(code) if code else None
        return agency.name if agency is not None else default

    def resolve(self, name_or_alias: str) -> Agency:
        """The agency a name, old name, abbreviation or code refers to.

        Tolerates case, spacing, punctuation, Unicode form and missing diacritics, a leading
        "tỉnh"/"thành phố"/"UBND", and a missing "Bộ" ("Tài chính").
        """
        key = _key(name_or_alias)
        candidates = [key, f"bo {key}"]
        candidates += [key.removeprefix(p) for p in _RESOLVE_PREFIXES if key.startswith(p)]
        for candidate in candidates:
            agency = self._by_key.get(candidate)
            if agency is not None:
                return agency
        close = difflib.get_close_matches(key, list(self._by_key), n=3, cutoff=0.75)
        hint = ", ".join(dict.fromkeys(self._by_key[c].name for c in close))
        message = f"no agency named {name_or_alias!r}"
        raise NotFound(f"{message}; closest: {hint}" if hint else message)

    def root(self, code: str) -> Agency:
        """The top-level body an agency belongs to: Cục Thuế and BHXH give Bộ Tài chính; a ministry itself.

        Evaluation at ministry level counts a unit as its ministry, and routing ranks ministries.
        """
        agency = self.get(code)
        seen = {agency.code}
        while agency.parent is not None:
            agency = self.get(agency.parent)
            if agency.code in seen:
                raise ValueError(f"agency {code!r}: parent cycle through {agency.code!r}")
            seen.add(agency.code)
        return agency

    def children(self, code: str) -> list[Agency]:
        """The units registered under an agency (its Cục, Tổng cục, BHXH...)."""
        return [a for a in self._agencies if a.parent == code]

    def top_level(self) -> list[Agency]:
        """Agencies without a parent: ministries, ministry-level and judicial bodies, provinces."""
        return [a for a in self._agencies if a.parent is None]

    def ministries(self) -> list[Agency]:
        """Central bodies: ministries, ministry-level bodies, judicial bodies, agencies under ministries."""
        return [a for a in self._agencies if not a.is_local]

    def provinces(self) -> list[Agency]:
        """The 34 provinces and centrally-run cities."""
        return [a for a in self._agencies if a.is_local]

    def overseer(self, fields: Sequence[str]) -> str | None:
        """The body managing these catalogue fields state-wide although others issue the procedures
        (complaints and denunciations: Thanh tra Chính phủ), by its ``oversees`` keywords; or None."""
        folded = [f" {fold(f)} " for f in fields]
        for agency in self._agencies:
            if any(f" {fold(word)} " in f for word in agency.oversees for f in folded):
                return agency.code
        return None

    def find_provinces(self, text: str) -> list[Agency]:
        """Provinces a text names (by current or former name, alias or well-known town).

        Whole words only, longest name first, in order of first mention, each once.
        "Bình Dương" and "Vũng Tàu" give TP. Hồ Chí Minh; "Hà Nam" gives Ninh Bình, never Hà Nội.
        Words typed with diacritics must carry the right tones ("hoa huệ" is not Huế), and names
        that are also common words count only when capitalised ("hòa bình" is not Hòa Bình).
        """
        return self._scan(text, self._patterns)

    def find_agencies(self, text: str) -> list[Agency]:
        """Central bodies a text names outright ("Bộ GTVT", "BHXH", "Ngân hàng Nhà nước").

        Old names give today's agency (Bộ GTVT -> Bộ Xây dựng); abbreviations must be upper case.
        """
        return self._scan(text, self._central_patterns)

    @staticmethod
    def _scan(text: str, table: Mapping[str, list[_Pattern]]) -> list[Agency]:
        """Longest-match scan of ``text``'s words against a pattern table, first mention first."""
        words = _words(text)
        keys = [_key(w) for w in words]
        found: dict[str, Agency] = {}
        i = 0
        while i < len(words):
            step = 1
            for pattern in table.get(keys[i], ()):
                end = i + len(pattern.keys)
                if tuple(keys[i:end]) == pattern.keys and _accepts(pattern, words[i:end]):
                    if pattern.agency is not None:
                        found.setdefault(pattern.agency.code, pattern.agency)
                    step = len(pattern.keys)
                    break
            i += step
        return list(found.values())


def to_document(agency: Agency) -> str:
    """Text that stands for an agency in cold-start routing (embedding and TF-IDF similarity)."""
    parts = [agency.name, ", ".join(agency.aliases), ", ".join(agency.fields), agency.description]
    if agency.places:
        parts.append(", ".join(agency.places))
    return ". ".join(p for p in parts if p)


@lru_cache(maxsize=1)
def default_registry() -> AgencyRegistry:
    """The packaged registry, loaded once per process."""
    return AgencyRegistry.load()
