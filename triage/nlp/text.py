"""Vietnamese text entry point: normalisation, word segmentation, abbreviations and PII masking.

Every submission passes through :func:`normalize` exactly once, so that the same words written
with different Unicode forms or tone-mark habits look identical to every later stage (embeddings,
TF-IDF, duplicate search, agency aliases). :func:`mask_pii` runs next so that no phone, identity,
e-mail or bank-account number reaches a model, a log or an analyst report.

This is the only module that imports ``underthesea``; it does so inside :func:`segment` because
the import alone takes seconds.
"""

from __future__ import annotations

import json
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from typing import Literal

from triage.errors import InvalidInput

__all__ = [
    "PERSONAL_TAGS",
    "PII_TAGS",
    "PiiKind",
    "PiiSpan",
    "expand_abbreviations",
    "find_personal",
    "find_pii",
    "mask_personal",
    "mask_pii",
    "normalize",
    "segment",
    "segment_joined",
]

# --------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------

_SPACE_CHARS = "\u00a0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000"
# Invisible format characters: zero-width (space, joiners, marks), bidi controls, soft hyphen, BOM.
_INVISIBLE_CHARS = (
    "\u00ad\u180e\u200b\u200c\u200d\u200e\u200f\u202a\u202b\u202c\u202d\u202e"
    "\u2060\u2061\u2062\u2063\u2064\u2066\u2067\u2068\u2069\ufeff"
)


def _build_char_table() -> dict[int, str | None]:
    """Every single-character fix in one table: removals map to None."""
    table: dict[int, str | None] = {}
    for code in [*range(0x00, 0x20), 0x7F, *range(0x80, 0xA0)]:  # C0 and C1 controls
        table[code] = None
    table[ord("\n")] = "\n"
    table[ord("\t")] = "\t"
    table[ord("\r")] = "\n"
    for ch in "\x0b\x0c":  # vertical tab / form feed separate words: keep a space, not nothing
        table[ord(ch)] = " "
    for ch in "\x85\u2028\u2029":  # NEL, line and paragraph separators are line breaks
        table[ord(ch)] = "\n"
    for ch in _SPACE_CHARS:
        table[ord(ch)] = " "
    for ch in _INVISIBLE_CHARS:
        table[ord(ch)] = None
    # Legacy Vietnamese encodings put Icelandic eth (Ð/ð) where Đ/đ was meant ("ÐÀ NẴNG").
    table[0x00D0] = "\u0110"
    table[0x00F0] = "\u0111"
    return table


_CHAR_TABLE = _build_char_table()
# Matching the few characters to change and looking each up is far faster than str.translate.
_CHAR_FIX_RE = re.compile(
    "[" + "".join(re.escape(chr(code)) for code, new in _CHAR_TABLE.items() if new != chr(code)) + "]"
)
_WORD_RE = re.compile(r"[^\W\d_]+")
_SPACES_RE = re.compile(r"\t[ \t]*| [ \t]+")  # only runs that change: tabs, two or more spaces
_LINE_EDGES_RE = re.compile(r" \n ?|\n ")
_MANY_NEWLINES_RE = re.compile(r"\n{3,}")

# Combining marks after NFD: the five tone marks, and the vowel modifiers (circumflex, breve, horn).
_TONE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323")
_VOWEL_MODIFIERS = frozenset("\u0302\u0306\u031b")
_VOWELS = frozenset("aeiouy")
_VIETNAMESE_LETTERS = frozenset("abcdđeghiklmnopqrstuvxy")
_INITIALS = frozenset("b c ch d đ g gh gi h k kh l m n ng ngh nh p ph q qu r s t th tr v x".split()) | {""}
_FINALS = frozenset("c ch m n ng nh p t".split()) | {""}
# Vowel nuclei (after a qu/gi glide is set aside), written without tone marks.
_NUCLEI = frozenset(
    "a ă â e ê i o ô ơ u ư y "
    "ai ao au ay âu ây eo êu ia iê iu oa oă oe oi oo ôi ơi ua uâ uê ui uô uơ uy ưa ưi ươ ưu ya yê yu "
    "oai oay oeo uây uôi ươi ươu iêu yêu uya uyê uyu".split()
)


@lru_cache(maxsize=65536)
def _canonical_syllable(word: str) -> str:
    """Move a misplaced tone mark to the traditional position ("hoà" -> "hòa", "qúy" -> "quý").

    Traditional (old-style) placement, the one in official names ("Bộ Văn hóa", "Ủy ban",
    "Tòa án"): a modified vowel (â ă ê ô ơ ư; ơ in ươ) takes the mark; otherwise the last vowel
    of a closed syllable ("hoàn"), the middle of three ("ngoái"), the first of two in an open
    syllable ("hòa", "thủy", "mùa"). The "u" of "qu" and the "i" of "gi" are part of the initial.
    Anything that is not a well-formed Vietnamese syllable (foreign words, teencode, two tone
    marks) is returned unchanged, as is every syllable already in canonical form.
    """
    decomposed = unicodedata.normalize("NFD", word)
    if not any(ch in _TONE_MARKS for ch in decomposed):
        return word
    bases: list[str] = []
    modifiers: list[str] = []
    tone = ""
    tone_at = -1
    for ch in decomposed:
        if ch in _TONE_MARKS:
            if tone or not bases:
                return word
            tone, tone_at = ch, len(bases) - 1
        elif ch in _VOWEL_MODIFIERS:
            if not bases:
                return word
            modifiers[-1] += ch
        elif unicodedata.combining(ch):
            return word
        else:
            bases.append(ch)
            modifiers.append("")
    lower = [b.lower() for b in bases]
    if any(b not in _VIETNAMESE_LETTERS for b in lower):
        return word
    n = len(lower)
    start = 0
    while start < n and lower[start] not in _VOWELS:
        start += 1
    end = start
    while end < n and lower[end] in _VOWELS:
        end += 1
    initial, final = "".join(lower[:start]), "".join(lower[end:])
    if final not in _FINALS or any(modifiers[k] for k in range(n) if k < start or k >= end):
        return word
    nucleus_start = start
    if (
        end - start >= 2
        and not modifiers[start]
        and ((initial == "q" and lower[start] == "u") or (initial == "g" and lower[start] == "i"))
    ):
        initial += lower[start]
        nucleus_start += 1
    if initial not in _INITIALS or initial == "q" or not start <= tone_at < end:
        return word
    nucleus = unicodedata.normalize("NFC", "".join(lower[k] + modifiers[k] for k in range(nucleus_start, end)))
    if nucleus not in _NUCLEI:
        return word
    modified = [k for k in range(nucleus_start, end) if modifiers[k]]
    if modified:
        target = modified[-1]
    elif final:
        target = end - 1
    elif end - nucleus_start == 3:
        target = nucleus_start + 1
    else:
        target = nucleus_start
    if target == tone_at:
        return word
    rebuilt = "".join(bases[k] + modifiers[k] + (tone if k == target else "") for k in range(n))
    return unicodedata.normalize("NFC", rebuilt)


def _fix_char(match: re.Match[str]) -> str:
    return _CHAR_TABLE[ord(match.group())] or ""


def _fix_tone_marks(text: str) -> str:
    """Apply :func:`_canonical_syllable` to every word; most texts need no change, so check first."""
    changes: dict[str, str] = {}
    for word in set(_WORD_RE.findall(text)):
        fixed = _canonical_syllable(word)
        if fixed != word:
            changes[word] = fixed
    if not changes:
        return text
    return _WORD_RE.sub(lambda m: changes.get(m.group(), m.group()), text)


def normalize(text: str) -> str:
    """Return ``text`` in the one form every later stage expects; never lowercases.

    Unicode NFC; traditional tone-mark placement ("hoà" -> "hòa", "Uỷ ban" -> "Ủy ban", "HOÀ" ->
    "HÒA"); control, zero-width and BOM characters removed; Ð/ð (a legacy-encoding stand-in)
    read as Đ/đ; every line break becomes "\\n"; Unicode spaces and tabs collapse to one space;
    lines are trimmed, at most one blank line is kept, and the whole text is trimmed.
    Idempotent: ``normalize(normalize(x)) == normalize(x)``.

    Raises:
        InvalidInput: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"normalize() expects str, got {type(text).__name__}")
    text = _CHAR_FIX_RE.sub(_fix_char, text.replace("\r\n", "\n"))
    text = _fix_tone_marks(unicodedata.normalize("NFC", text))
    text = _SPACES_RE.sub(" ", text)
    text = _LINE_EDGES_RE.sub("\n", text)
    text = _MANY_NEWLINES_RE.sub("\n\n", text)
    return text.strip()


# --------------------------------------------------------------------------------------------
# expand_abbreviations
# --------------------------------------------------------------------------------------------


@lru_cache(maxsize=1)
def _abbreviations() -> tuple[re.Pattern[str], dict[str, str]]:
    raw = json.loads(resources.files("triage").joinpath("data").joinpath("abbreviations.json").read_text("utf-8"))
    table = {str(k): str(v) for k, v in raw["abbreviations"].items()}
    alternatives = "|".join(re.escape(k) for k in sorted(table, key=len, reverse=True))
    return re.compile(rf"(?<![\w&])(?:{alternatives})(?![\w&])"), table


def expand_abbreviations(text: str) -> str:
    """``text`` with the spelled-out form of each administrative abbreviation it uses appended.

    Citizens write "ATTP", "PCCC", "GPLX"; the procedure catalogue spells them out, so a lexical
    match needs both. The text itself is kept, each expansion is added once, in order of use.

    Raises:
        InvalidInput: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"expand_abbreviations() expects str, got {type(text).__name__}")
    pattern, table = _abbreviations()
    found = list(dict.fromkeys(table[m.group()] for m in pattern.finditer(text)))
    return f"{text} ({'; '.join(found)})" if found else text


# --------------------------------------------------------------------------------------------
# segment
# --------------------------------------------------------------------------------------------


def segment(text: str) -> list[str]:
    """Split (already normalised) text into words; a multi-syllable word keeps its spaces.

    ``segment("Thủ tục hành chính")`` -> ``["Thủ tục", "hành chính"]``. underthesea's own token
    normalisation is switched off: text is normalised once, by :func:`normalize`, so the
    tokens are exactly the syllables of ``text``.

    Raises:
        InvalidInput: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"segment() expects str, got {type(text).__name__}")
    if not text.strip():
        return []
    from underthesea import word_tokenize  # lazy: importing underthesea takes seconds

    return [str(token) for token in word_tokenize(text, use_token_normalize=False)]


def segment_joined(text: str) -> str:
    """Segmented text with syllables joined by "_" and words by spaces ("thủ_tục hành_chính").

    This is the form the TF-IDF analyzers split on whitespace.
    """
    return " ".join(token.replace(" ", "_") for token in segment(text))


# --------------------------------------------------------------------------------------------
# PII
# --------------------------------------------------------------------------------------------

PiiKind = Literal["email", "phone", "identity", "account"]

PII_TAGS: dict[PiiKind, str] = {
    "email": "[EMAIL]",
    "phone": "[SĐT]",
    "identity": "[CCCD]",
    "account": "[STK]",
}
_PRIORITY: dict[PiiKind, int] = {"email": 0, "phone": 1, "identity": 2, "account": 3}


@dataclass(frozen=True, slots=True)
class PiiSpan:
    """One piece of personal data found in a text: ``text[start:end] == value``."""

    kind: PiiKind
    start: int
    end: int
    value: str


_EMAIL_RE = re.compile(r"(?<![\w.%+-])[\w.%+-]+@(?:[A-Za-z0-9-]+\.)+[A-Za-z]{2,24}(?![\w-])")
# A run of number pieces joined by single spaces or dashes; a piece may carry a (024) / +84
# prefix and dots ("0912.345.678", "(024)3825-1234", "0908125616-0913698994").
_PIECE = r"(?:\(\+?\d{1,4}\)(?:[.-]?\d+(?:\.\d+)*)?|\+?\d+(?:\.\d+)*)"
_RUN_RE = re.compile(rf"{_PIECE}(?:[ -]{_PIECE})*")
_PIECE_RE = re.compile(_PIECE)
_MAX_PIECES = 6
_CONTEXT = 36

_NON_DIGIT_RE = re.compile(r"\D")
_MOBILE_RE = re.compile(r"0[35789]\d{8}|01[2-9]\d{8}")  # 10-digit mobile, or pre-2018 11-digit
_LANDLINE_RE = re.compile(r"0[2-9]\d{8,9}")  # 02x(x) since 2017; older 0x / 0xx(x) codes
_HOTLINE_RE = re.compile(r"1[89]00(?:\d{4}|\d{6})")
_DATE_RE = re.compile(
    r"\d{1,2}[.-]\d{1,2}[.-](?:\d{2}|\d{4})|\d{4}[.-]\d{1,2}[.-]\d{1,2}|"
    r"\d{1,2}[.-](?:19|20)\d{2}|(?:19|20)\d{2}[.-]\d{1,2}|(?:19|20)\d{2}-(?:19|20)\d{2}"
)
_MONEY_RE = re.compile(r"\d{1,3}(?:\.\d{3})+")  # thousands separators: 1.500.000
_DECIMAL_RE = re.compile(r"\d{1,2}\.\d+")  # 0.5, 12.75, 10.8175314
_CARD_RE = re.compile(r"\d{4}(?:[ -]\d{4}){2,3}(?:[ -]\d{1,4})?")
_UNIT_RE = re.compile(
    r"\s?(?:đồng|đ|vnđ|vnd|usd|eur|euro|đô|triệu|tr|tỷ|tỉ|nghìn|ngàn|trăm|người|lượt|km|m2|m²|m3|"
    r"ha|tấn|kg|lít|%)(?!\w)",
    re.IGNORECASE,
)
_YEAR_BEFORE_RE = re.compile(r"(?i:năm)\s*$")
# The keyword nearest before a number says what it is ("SĐT ..., CMND 123456789" -> identity).
# Keyword edges are letter boundaries, not \b, so that "Q.3ĐT: 08 832 8416" still counts.
_CONTEXT_RE = re.compile(
    r"(?<![^\W\d_])(?:"
    r"(?P<identity>(?i:cccd|cmnd|căn cước|chứng minh (?:nhân dân|thư)|định danh|hộ chiếu)|CMT)|"
    r"(?P<phone>(?i:sđt|sdt|điện thoại|đt|đtdđ|di động|hotline|gọi|liên hệ|lh|zalo|call|tel|phone|"
    r"số máy|nhắn tin|fax))|"
    r"(?P<account>(?i:stk|tk|tài khoản|account|acc|vietcombank|vcb|techcombank|tcb|agribank|bidv|"
    r"vietinbank|mbbank|mb bank|acb|sacombank|vpbank|tpbank|shb|hdbank|ocb|seabank|vib|eximbank|msb|"
    r"lienvietpostbank|lpbank|nam a bank|bac a bank|pvcombank|shinhan)|(?<!\d )MB)"
    r")(?![^\W\d_])"
)
_NEAR = 14  # a keyword this near may vouch for a short (7-8 digit) phone number
_ADJACENT = 3  # "ĐT: 08.9915396": only a keyword this close makes an amount-like number a phone
_BANK_AFTER_RE = re.compile(
    r"\s?[(\-–,]?\s?(?i:vietcombank|\bvcb\b|techcombank|agribank|\bbidv\b|vietinbank|mbbank|mb bank|"
    r"\bacb\b|sacombank|vpbank|tpbank|\bshb\b|hdbank|seabank|eximbank|ngân hàng)"
)


def _national_number(window: str, digits: str) -> str:
    """Phone digits in national form: "+84 912 345 678" / "84912345678" -> "0912345678"."""
    international = window.startswith(("+84", "(+84)", "(84)")) or (
        len(digits) == 11 and digits.startswith("84") and digits[2] in "35789"
    )
    if not international:
        return digits
    rest = digits[2:]
    return rest if rest.startswith("0") else "0" + rest


def _context(before: str) -> tuple[str | None, int]:
    """The kind named by the keyword nearest before a number, and how many characters away."""
    matches = list(_CONTEXT_RE.finditer(before))
    if not matches:
        return None, len(before)
    return matches[-1].lastgroup, len(before) - matches[-1].end()


def _classify(text: str, start: int, end: int) -> PiiKind | None:
    """Decide what the number ``text[start:end]`` is, from its shape and the words around it."""
    window = text[start:end]
    digits = _NON_DIGIT_RE.sub("", window)
    n = len(digits)
    if n < 6:
        return None  # years, counts, house numbers: nothing personal is this short
    before = text[max(0, start - _CONTEXT) : start]
    after = text[end : end + 16]
    prev_char = text[start - 1] if start else " "
    next_char = after[:1] or " "
    before_prev = text[start - 2] if start >= 2 else " "
    if next_char == "%" or (next_char == "," and after[1:2].isdigit()):
        return None  # a percentage, or a decimal "123456,5"
    if (prev_char == "," and before_prev.isdigit()) or (prev_char == "-" and before_prev.isalpha()):
        return None  # "1,234567", "NĐ-123456": the tail of something else
    if _DATE_RE.fullmatch(window):
        return None
    context, distance = _context(before)
    # "1.500.000" and "10.8175314" look like amounts and decimals unless "ĐT:" stands right before.
    loose = bool(_MONEY_RE.fullmatch(window) or _DECIMAL_RE.fullmatch(window))
    vouched = context == "phone" and (distance <= _ADJACENT or not loose)
    national = _national_number(window, digits)
    if (_MOBILE_RE.fullmatch(national) or _LANDLINE_RE.fullmatch(national)) and (not loose or vouched):
        return "phone"
    is_amount = bool(_UNIT_RE.match(after))  # "150000000 đồng", "123456789 người"
    if vouched and not is_amount and (9 <= n <= 11 or (7 <= n <= 8 and distance <= _NEAR)):
        return "phone"  # old or partly written numbers after "ĐT:", "gọi", "Zalo"...
    # Glued to a letter, slash, # or * ("4366Số", "38/2018/TT-BCT", "*101#"): not personal data.
    if prev_char.isalpha() or next_char.isalpha() or {prev_char, next_char} & {"/", "#", "*"}:
        return None
    if _HOTLINE_RE.fullmatch(digits) and not _YEAR_BEFORE_RE.search(before):
        return "phone"
    if is_amount:
        return None
    if context == "identity" and n in (9, 12):
        return "identity"
    if loose:
        return None
    if 6 <= n <= 19 and (context == "account" or _BANK_AFTER_RE.match(after)):
        return "account"
    if window.isdigit() and n == 9 and digits[0] in "5789":
        return "phone"  # a mobile number whose leading 0 was lost (CMND numbers start 0-3)
    if window.isdigit() and (n == 9 or (n == 12 and digits[0] == "0")):
        return "identity"
    if 13 <= n <= 19 and (window.isdigit() or _CARD_RE.fullmatch(window)):
        return "account"
    return None


def _number_spans(text: str) -> list[PiiSpan]:
    """Classify each run of numbers whole, else its longest classifiable sub-runs, left to right."""
    spans: list[PiiSpan] = []
    for run in _RUN_RE.finditer(text):
        glued = (run.start() > 0 and text[run.start() - 1].isalpha()) or text[run.end() : run.end() + 1].isalpha()
        if glued and "-" in run.group():  # a code such as "YX110-200028040": judge it only whole
            pieces = [run.span()]
        else:
            pieces = [(m.start() + run.start(), m.end() + run.start()) for m in _PIECE_RE.finditer(run.group())]
        i = 0
        while i < len(pieces):
            for j in range(min(len(pieces), i + _MAX_PIECES), i, -1):
                start, end = pieces[i][0], pieces[j - 1][1]
                kind = _classify(text, start, end)
                if kind is not None:
                    spans.append(PiiSpan(kind, start, end, text[start:end]))
                    i = j
                    break
            else:
                i += 1
    return spans


def find_pii(text: str) -> list[PiiSpan]:
    """Personal data in ``text``: phones, identity numbers, e-mails and bank-account numbers.

    Spans are sorted and never overlap; where candidates overlap, e-mail beats phone beats
    identity beats account. Dates, years, money ("1.500.000 đồng"), decimals, percentages and
    legal document numbers ("Nghị định 20/2008/NĐ-CP") are not personal data and are left alone.

    Raises:
        InvalidInput: ``text`` is not a ``str``.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"find_pii() expects str, got {type(text).__name__}")
    candidates = _number_spans(text)
    if "@" in text:
        candidates += [PiiSpan("email", m.start(), m.end(), m.group()) for m in _EMAIL_RE.finditer(text)]
    chosen: list[PiiSpan] = []
    for span in sorted(candidates, key=lambda s: (_PRIORITY[s.kind], s.start)):
        if all(span.end <= other.start or span.start >= other.end for other in chosen):
            chosen.append(span)
    return sorted(chosen, key=lambda s: s.start)


def mask_pii(text: str) -> str:
    """Replace each personal-data span with its tag: [SĐT], [CCCD], [EMAIL] or [STK].

    "Gọi 0912 345 678" -> "Gọi [SĐT]". The caller keeps the raw text; only the masked copy may
    reach models, logs and reports.
    """
    return _tagged(text, [(span.start, span.end, PII_TAGS[span.kind]) for span in find_pii(text)])


def _tagged(text: str, spans: list[tuple[int, int, str]]) -> str:
    """``text`` with each (start, end) span, sorted and disjoint, replaced by its tag."""
    if not spans:
        return text
    parts: list[str] = []
    cursor = 0
    for start, end, tag in spans:
        parts.append(text[cursor:start])
        parts.append(tag)
        cursor = end
    parts.append(text[cursor:])
    return "".join(parts)


# --------------------------------------------------------------------------------------------
# names and street addresses (what roles that see masked text must not read either)
# --------------------------------------------------------------------------------------------

PERSONAL_TAGS = {"name": "[HỌ TÊN]", "address": "[ĐỊA CHỈ]"}
_UPPERS = "".join(re.escape(c) for c in map(chr, range(0x41, 0x1EFA)) if c.isalpha() and c.isupper())
_UPPER_WORD = rf"[{_UPPERS}][^\W\d_]*"
_NAME_RUN = rf"{_UPPER_WORD}(?:\s+{_UPPER_WORD}){{0,3}}"
# A courtesy title or "tên là" before a capitalised run: "anh Lê Văn Tám", "chị Hoa", "tên là Mai".
_TITLED_NAME_RE = re.compile(
    rf"(?<![^\W\d_])(?:[ÔôBbAaCcEe]\w{{0,2}}|[Cc]hú|[Bb]ác|[Cc]háu|[Cc]ụ|tên là|tên|họ tên)\s+({_NAME_RUN})"
)
# The commonest family names (they cover most of the population): a capitalised run starting with
# one is a person's name unless a street or administrative word stands before it ("đường Lê Lợi").
_SURNAMES = (
    "Nguyễn Trần Lê Phạm Hoàng Huỳnh Phan Vũ Võ Đặng Bùi Đỗ Hồ Ngô Dương Lý Đào Đinh Lâm Trương Tạ Cao "
    "Lương Đoàn Trịnh Tô Châu Vương Quách Kiều Lưu Chu Mạc Khổng Văn Tăng Thân Triệu Từ Doãn Hứa Mai"
).split()
_SURNAME_NAME_RE = re.compile(rf"(?<![^\W\d_])(?:{'|'.join(_SURNAMES)})(?:\s+{_UPPER_WORD}){{1,3}}")
_TITLES = {"ông", "bà", "anh", "chị", "em", "cô", "chú", "bác", "cháu", "cụ", "tên", "tên là", "họ tên"}
_HOUSE_NO = r"\d+[A-Za-z]?(?:[/-]\d+[A-Za-z]?)*(?![/\w])"
_STREET = ("đường", "phố", "ngõ", "ngách", "hẻm", "kiệt", "thôn", "xóm", "ấp", "bản", "tổ dân phố", "tổ", "khu phố")
_STREET_WORDS = "|".join(w for word in _STREET for w in (word, word[0].upper() + word[1:]))
_WORD_START = r"(?<![^\W\d_])"
# One part of a street address: "số nhà 45/7", "ngõ 15", "đường Nguyễn Trãi", "thôn Đông", "45/7 đường X".
_ADDRESS_PART = (
    rf"(?:{_WORD_START}(?:[Ss]ố nhà|[Nn]hà số)\s+{_HOUSE_NO}"
    rf"|(?:{_WORD_START}(?:[Ss]ố\s+)?{_HOUSE_NO}\s*,?\s*)?"
    rf"{_WORD_START}(?<![Nn]ông )(?:{_STREET_WORDS})\s+(?:{_HOUSE_NO}|{_NAME_RUN}))"  # not "nông thôn"
)
_ADDRESS_RE = re.compile(rf"{_ADDRESS_PART}(?:\s*,?\s*{_ADDRESS_PART})*")
_CITY_WORDS = {"tp", "tp.", "thành phố", "tỉnh", "quận", "huyện", "phường", "xã", "thị xã", "thị trấn"}
_NER_TRIGGER_RE = re.compile(rf"\S\s+{_UPPER_WORD}")  # a capital inside a sentence: maybe a name


def _ner_spans(text: str) -> list[tuple[str, int, int]]:
    """PER and LOC spans from underthesea's offline CRF tagger, as character offsets in ``text``.

    Run only on sentences with a capitalised word after their first (names are capitalised), which
    spares most of the tagger's time (~0.3 ms per character) on long texts.
    """
    from underthesea import ner  # deferred: the import takes seconds

    spans: list[tuple[str, int, int]] = []
    for sentence in re.finditer(r"[^.!?\n]+[.!?]?", text):
        if not _NER_TRIGGER_RE.search(sentence.group()):
            continue
        base, cursor = sentence.start(), 0
        current: tuple[str, int, int] | None = None
        previous = ""
        for word, _pos, _chunk, tag in ner(sentence.group()):
            at = sentence.group().find(word, cursor)
            if at < 0:
                continue
            start, end = base + at, base + at + len(word)
            cursor = at + len(word)
            kind = tag[2:] if tag[:2] in ("B-", "I-") else None
            if kind in ("PER", "LOC") and tag.startswith("I-") and current and current[0] == kind:
                current = (kind, current[1], end)
            else:
                if current:
                    spans.append(current)
                current = (kind, start, end) if kind in ("PER", "LOC") else None
                if kind == "PER" and previous.casefold() in _CITY_WORDS:
                    current = ("LOC", start, end)  # "TP Hồ Chí Minh": a city named after a person
            previous = word
        if current:
            spans.append(current)
    return spans


def find_personal(text: str) -> list[PiiSpan]:
    """Person names and street addresses in ``text`` (``kind`` "name" or "address"), sorted, not overlapping.

    Names: underthesea's NER (PER), plus a capitalised run after a courtesy title ("chị Hoa").
    Addresses: street-level parts ("số nhà 45/7", "ngõ 15", "đường Nguyễn Trãi", "thôn Đông"), by rule:
    the NER's LOC does not separate a street from a province; wards, districts and provinces stay, as the
    analyst's statistics need them.
    """
    if not isinstance(text, str):
        raise InvalidInput(f"find_personal() expects str, got {type(text).__name__}")
    candidates: list[PiiSpan] = []
    for m in _ADDRESS_RE.finditer(text):
        candidates.append(PiiSpan("address", m.start(), m.end(), m.group()))  # type: ignore[arg-type]
    for m in _TITLED_NAME_RE.finditer(text):
        title = text[m.start() : m.start(1)].strip().casefold()
        before = text[: m.start()].rstrip().rsplit(maxsplit=1)
        inside_a_name = bool(before) and before[-1][:1].isupper()  # "quận Hai Bà Trưng": no title
        if title in _TITLES and not inside_a_name:
            candidates.append(PiiSpan("name", m.start(1), m.end(1), m.group(1)))  # type: ignore[arg-type]
    for m in _SURNAME_NAME_RE.finditer(text):
        before = text[: m.start()].rstrip().rsplit(maxsplit=2)
        words = {w.casefold().strip(",.;:(") for w in before[-2:]} | {" ".join(before[-2:]).casefold()}
        if not words & (_CITY_WORDS | set(_STREET) | {"số", "nhà", "trường", "bệnh viện", "cầu", "chợ", "ủy", "ban"}):
            candidates.append(PiiSpan("name", m.start(), m.end(), m.group()))  # type: ignore[arg-type]
    for kind, start, end in _ner_spans(text):
        if kind == "PER":
            candidates.append(PiiSpan("name", start, end, text[start:end]))  # type: ignore[arg-type]
    merged: list[PiiSpan] = []
    for span in sorted(candidates, key=lambda s: (s.start, -s.end)):
        if merged and span.start <= merged[-1].end:
            last = merged[-1]
            kind = "address" if "address" in (last.kind, span.kind) else last.kind
            end = max(last.end, span.end)
            merged[-1] = PiiSpan(kind, last.start, end, text[last.start : end])  # type: ignore[arg-type]
        else:
            merged.append(span)
    return merged


@lru_cache(maxsize=1024)  # the same titles come back on every list page; texts run to 20,000 characters
def mask_personal(text: str) -> str:
    """``mask_pii`` plus person names and street addresses: the text roles that see masked data read.

    "Chị Phạm Thị Mai, số nhà 45/7 đường Nguyễn Trãi, gọi 0912 345 678" ->
    "Chị [HỌ TÊN], [ĐỊA CHỈ], gọi [SĐT]". Numbers are masked first, so a tag never splits a name.
    """
    masked = mask_pii(text)
    spans = [(span.start, span.end, PERSONAL_TAGS[span.kind]) for span in find_personal(masked)]  # type: ignore[index]
    return _tagged(masked, spans)
