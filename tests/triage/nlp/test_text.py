"""Tests for triage.nlp.text: normalisation, segmentation and PII masking, on examples and real data."""

from __future__ import annotations

import gzip
import itertools
import json
import re
import subprocess
import sys
import unicodedata
from functools import cache
from pathlib import Path

import pytest

from triage.errors import InvalidInput
from triage.nlp.text import (
    PiiSpan,
    expand_abbreviations,
    find_pii,
    mask_pii,
    normalize,
    segment,
    segment_joined,
)

REPO_ROOT = Path(__file__).resolve().parents[3]
DATA = REPO_ROOT.parent / "shared" / "data"
REAL_SETS = [
    "uit_vsfc/train.jsonl",
    "zalo_legal/agency_train.jsonl",
    "vihsd/train.jsonl",
    "vntc/train.jsonl.gz",
]
TONE_MARKS = "\u0300\u0301\u0303\u0309\u0323"


@cache
def _real_texts(rel: str, limit: int = 2000) -> tuple[str, ...]:
    path = DATA / rel
    if not path.exists():
        pytest.skip(f"shared data file {path} is absent (the public data sets live in ../shared/data)")
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rt", encoding="utf-8") as lines:
        return tuple(json.loads(line)["text"] for line in itertools.islice(lines, limit))


def _skeleton(text: str) -> str:
    """Letters without tone marks, whitespace or invisible characters, Ð read as Đ."""
    decomposed = unicodedata.normalize("NFD", text.replace("Ð", "Đ").replace("ð", "đ"))
    return "".join(
        ch
        for ch in decomposed
        if ch not in TONE_MARKS and not ch.isspace() and unicodedata.category(ch) not in ("Cc", "Cf", "Zs")
    )


def _tone_counts(text: str) -> list[int]:
    decomposed = unicodedata.normalize("NFD", text)
    return [decomposed.count(mark) for mark in TONE_MARKS]


# --------------------------------------------------------------------------------------------
# normalize
# --------------------------------------------------------------------------------------------


def test_nfd_input_becomes_nfc_with_traditional_marks() -> None:
    raw = unicodedata.normalize("NFD", "Bộ Văn hoá, Thể thao và Du lịch; Uỷ ban nhân dân")
    assert raw != unicodedata.normalize("NFC", raw)
    out = normalize(raw)
    assert out == "Bộ Văn hóa, Thể thao và Du lịch; Ủy ban nhân dân"
    assert unicodedata.is_normalized("NFC", out)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("Ho\u0300a", "Hòa"),  # combining grave after o: composes in place
        ("Hoa\u0300", "Hòa"),  # combining grave after a: composes, then moves to o
        ("\u01a1\u0301", "ớ"),  # precomposed ơ + combining acute
        ("thuy\u0309", "thủy"),
        ("a\u0341", "á"),  # deprecated combining acute tone mark
        ("Ð\u00c0 N\u1eb4NG", "ĐÀ NẴNG"),  # Icelandic eth from legacy encodings
    ],
)
def test_mixed_composed_and_combining_forms(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    ("new_style", "traditional"),
    [
        ("hoà", "hòa"),
        ("hoá", "hóa"),
        ("hoạ", "họa"),
        ("thuỷ", "thủy"),
        ("khoẻ", "khỏe"),
        ("toà", "tòa"),
        ("uỷ", "ủy"),
        ("huỷ", "hủy"),
        ("tuỳ", "tùy"),
        ("xoã", "xõa"),
        ("Uỷ ban", "Ủy ban"),
        ("Hoà", "Hòa"),
        ("HOÀ", "HÒA"),
        ("THUỶ LỢI", "THỦY LỢI"),
        ("KhoẺ", "KhỏE"),  # the mark moves; each letter keeps its own case
        ("Toà án nhân dân", "Tòa án nhân dân"),
        ("Bộ Văn hoá", "Bộ Văn hóa"),
    ],
)
def test_tone_marks_move_to_traditional_place(new_style: str, traditional: str) -> None:
    assert normalize(new_style) == traditional
    assert normalize(traditional) == traditional  # and the other direction stays put


@pytest.mark.parametrize(
    "word",
    [
        "quý", "quả", "quốc", "quỳ", "quỹ", "quyền", "quyết",
        "giá", "giữ", "già", "gìn", "giường",
        "hoàn", "toán", "thuyết", "khoảng", "hoạch", "khuyến", "chuyển", "ngoặt",
        "người", "của", "mùa", "kìa", "ngoài", "xoáy", "khuỷu", "thuở", "thuế", "rượu",
        "hòa", "hóa", "thủy", "khỏe", "hủy", "tòa",
    ],
)  # fmt: skip
def test_canonical_words_are_unchanged(word: str) -> None:
    assert normalize(word) == word
    assert normalize(word.upper()) == word.upper()
    assert normalize(word.capitalize()) == word.capitalize()


@pytest.mark.parametrize(
    ("typo", "fixed"),
    [("qúy", "quý"), ("qũy", "quỹ"), ("qủa", "quả"), ("gìa", "già"), ("hòan", "hoàn"), ("tóan", "toán")],
)
def test_mark_on_glide_or_wrong_vowel_is_fixed(typo: str, fixed: str) -> None:
    assert normalize(typo) == fixed


@pytest.mark.parametrize("word", ["café", "José", "Pokémon", "naïve", "đấú", "ĐT0912"])
def test_non_vietnamese_or_malformed_words_are_unchanged(word: str) -> None:
    assert normalize(word) == word


def test_never_lowercases() -> None:
    text = "ỦY BAN NHÂN DÂN TỈNH Thanh Hóa gửi Sở KH&CN"
    assert normalize(text) == text


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("\ufeffXin chào", "Xin chào"),
        ("thủ\u200b tục\u200d", "thủ tục"),
        ("a\x00b\x07c\x1bd\x7fe\x9ff", "abcdef"),
        ("dòng 1\r\ndòng 2\rdòng 3", "dòng 1\ndòng 2\ndòng 3"),
        ("a\u00a0b\u2009c\u202fd\u3000e", "a b c d e"),
        ("a \t\t  b\tc", "a b c"),
        ("  đầu  \n  giữa  \n  cuối  ", "đầu\ngiữa\ncuối"),
        ("đoạn 1\n\n\n\n\nđoạn 2", "đoạn 1\n\nđoạn 2"),
        ("đoạn 1\n \n\t\n \nđoạn 2", "đoạn 1\n\nđoạn 2"),
        ("a\x0bb\x0cc", "a b c"),
        ("a\u2028b\x85c", "a\nb\nc"),
        ("xin\u00adchào\u200e", "xinchào"),
        ("   \n\t  ", ""),
        ("", ""),
    ],
)
def test_whitespace_and_control_characters(raw: str, expected: str) -> None:
    assert normalize(raw) == expected


@pytest.mark.parametrize(
    "raw",
    [
        "  Uỷ ban \u00a0nhân dân\r\n\r\n\r\n\tHOÀ  BÌNH\u200b ",
        unicodedata.normalize("NFD", "Tòa án hoà giải \n \n \n khoẻ mạnh"),
        "qúy khách\x00 gìa\t\t hòan thành",
    ],
)
def test_idempotent_on_tricky_inputs(raw: str) -> None:
    once = normalize(raw)
    assert normalize(once) == once


@pytest.mark.parametrize("func", [normalize, segment, segment_joined, find_pii, mask_pii, expand_abbreviations])
@pytest.mark.parametrize("bad", [None, b"bytes", 123, ["list"]])
def test_non_str_raises_invalid_input(func: object, bad: object) -> None:
    with pytest.raises(InvalidInput):
        func(bad)  # type: ignore[operator]


def test_import_does_no_heavy_work() -> None:
    code = "import sys, triage.nlp.text; assert 'underthesea' not in sys.modules, 'underthesea imported eagerly'"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


# --------------------------------------------------------------------------------------------
# expand_abbreviations
# --------------------------------------------------------------------------------------------


def test_abbreviations_are_spelled_out_beside_the_text() -> None:
    text = "Giấy xác nhận kiến thức về ATTP và chứng chỉ PCCC, ATTP cấp ở đâu?"
    assert expand_abbreviations(text) == f"{text} (an toàn thực phẩm; phòng cháy, chữa cháy)"
    assert expand_abbreviations("Đổi GPLX quá hạn") == "Đổi GPLX quá hạn (giấy phép lái xe)"
    assert expand_abbreviations("Cấp GCNQSDĐ lần đầu").endswith("(giấy chứng nhận quyền sử dụng đất)")


@pytest.mark.parametrize("text", ["", "Không viết tắt gì cả", "ATTPX, attp, PCCCs", "mã số ABHYT"])
def test_text_without_a_whole_abbreviation_is_unchanged(text: str) -> None:
    assert expand_abbreviations(text) == text


# --------------------------------------------------------------------------------------------
# segment
# --------------------------------------------------------------------------------------------


def test_segment_keeps_multi_syllable_words() -> None:
    tokens = segment("Thủ tục hành chính về cấp giấy phép xây dựng tại Hà Nội như thế nào?")
    assert tokens[:2] == ["Thủ tục", "hành chính"]
    assert "giấy phép" in tokens
    assert "Hà Nội" in tokens
    assert tokens[-1] == "?"


def test_segment_joined_uses_underscores() -> None:
    assert segment_joined("Thủ tục hành chính") == "Thủ_tục hành_chính"


@pytest.mark.parametrize("blank", ["", "   ", "\n\n"])
def test_segment_of_blank_text_is_empty(blank: str) -> None:
    assert segment(blank) == []
    assert segment_joined(blank) == ""


def test_segment_real_legal_questions() -> None:
    questions = [normalize(t) for t in _real_texts("zalo_legal/agency_train.jsonl", 600)]
    with_procedure = [q for q in questions if "thủ tục hành chính" in q]
    assert with_procedure, "expected a real Zalo question about 'thủ tục hành chính'"
    tokens = segment(with_procedure[0])
    assert "thủ tục" in tokens and "hành chính" in tokens
    words = {tok.lower() for q in questions[:200] for tok in segment(q) if " " in tok}
    assert {"quy định", "như thế nào"} <= words
    for q in questions[:200]:  # tokens partition the text: segmentation never rewrites it
        assert "".join(segment(q)).replace(" ", "") == re.sub(r"\s", "", q)


# --------------------------------------------------------------------------------------------
# PII
# --------------------------------------------------------------------------------------------

PII_POSITIVES = [
    ("Gọi tôi 0912345678 nhé", "phone", "0912345678"),
    ("SĐT 0912 345 678", "phone", "0912 345 678"),
    ("liên hệ 0912.345.678", "phone", "0912.345.678"),
    ("số 0912-345-678 của tôi", "phone", "0912-345-678"),
    ("gọi +84 912 345 678", "phone", "+84 912 345 678"),
    ("gọi +84912345678", "phone", "+84912345678"),
    ("số 84912345678 ạ", "phone", "84912345678"),
    ("ĐT (024) 3825 1234", "phone", "(024) 3825 1234"),
    ("văn phòng 024 3825 1234", "phone", "024 3825 1234"),
    ("văn phòng 02438251234", "phone", "02438251234"),
    ("(0236) 3822 123", "phone", "(0236) 3822 123"),
    ("Tổng đài 1900 1234", "phone", "1900 1234"),
    ("đường dây nóng 1800 1091 miễn phí", "phone", "1800 1091"),
    ("hotline 1900 54 55 66", "phone", "1900 54 55 66"),
    ("số cũ 0168 234 5678", "phone", "0168 234 5678"),
    ("ĐT0912345678", "phone", "0912345678"),
    ("CCCD: 001098012345", "identity", "001098012345"),
    ("tôi có CCCD số 001098012345 cấp năm 2021", "identity", "001098012345"),
    ("CMND 123456789", "identity", "123456789"),
    ("số chứng minh nhân dân 111324185", "identity", "111324185"),
    ("căn cước công dân số 079 203 012 345", "identity", "079 203 012 345"),
    ("số định danh cá nhân 036085001234", "identity", "036085001234"),
    ("mã 001098012345 của tôi", "identity", "001098012345"),
    ("email nguyen.van.a@gmail.com ạ", "email", "nguyen.van.a@gmail.com"),
    ("gửi về pakn-bo@most.gov.vn", "email", "pakn-bo@most.gov.vn"),
    ("STK 0011004123456 Vietcombank", "account", "0011004123456"),
    ("số tài khoản: 19035678901234 Techcombank", "account", "19035678901234"),
    ("tài khoản 123456789 tại Agribank", "account", "123456789"),
    ("TK 8888 6666 BIDV", "account", "8888 6666"),
    ("VietinBank 101234567890", "account", "101234567890"),
    ("MB: 0123456789", "account", "0123456789"),
    ("Ngân hàng ACB số 12345678", "account", "12345678"),
    ("chuyển vào 12345678 Vietcombank", "account", "12345678"),
    ("thẻ 4111 1111 1111 1111", "account", "4111 1111 1111 1111"),
    ("thẻ 4111-1111-1111-1111", "account", "4111-1111-1111-1111"),
    ("mã 1234567890123456", "account", "1234567890123456"),
]


@pytest.mark.parametrize(("text", "kind", "value"), PII_POSITIVES)
def test_pii_positive_forms(text: str, kind: str, value: str) -> None:
    spans = find_pii(text)
    assert [(s.kind, s.value) for s in spans] == [(kind, value)]
    span = spans[0]
    assert text[span.start : span.end] == value
    tag = {"phone": "[SĐT]", "identity": "[CCCD]", "email": "[EMAIL]", "account": "[STK]"}[kind]
    assert mask_pii(text) == text.replace(value, tag)


PII_NEGATIVES = [
    "Hạn nộp hồ sơ là ngày 12/05/2024.",
    "ngày 2024-05-12 và 12-05-2024 và 12.05.2024",
    "năm 2024, từ năm 1990 đến nay",
    "giai đoạn 2016-2020 và năm học 2005 - 2006",
    "trợ cấp 1.500.000 đồng mỗi tháng",
    "hỗ trợ 2,5 triệu đồng",
    "tổng vốn 1.500.000.000.000 đồng",
    "khoản 120000000 đồng",
    "tài khoản được cộng 1.500.000",
    "theo Nghị định 20/2008/NĐ-CP của Chính phủ",
    "Thông tư 38/2018/TT-BCT quy định",
    "Quyết định số 1234/QĐ-UBND ngày 12/05/2024",
    "Luật số 59/2020/QH14",
    "tỷ lệ 3.14159 và 0.912345678",
    "nhà số 12 ngõ 34 phố Huế",
    "tăng 12,5% so với cùng kỳ",
    "có 15 người và 250 hộ gia đình",
    "dân số 96208984 người",
    "năm 1900 1234 người",
    "tháng 11-2006 tại Agribank Cup",
    "mã NĐ-123456789",
    "biển số YX110-200028040",
    "",
]


@pytest.mark.parametrize("text", PII_NEGATIVES)
def test_pii_negatives_are_left_alone(text: str) -> None:
    assert find_pii(text) == []
    assert mask_pii(text) == text


def test_pii_spans_sorted_non_overlapping_with_precedence() -> None:
    text = (
        "Tôi là Nguyễn Văn A, SĐT 0912345678, CMND 123456789, email a.nguyen0987654321@gmail.com, "
        "STK 0011004123456 Vietcombank, theo Nghị định 20/2008/NĐ-CP ngày 12/05/2024."
    )
    spans = find_pii(text)
    assert [s.kind for s in spans] == ["phone", "identity", "email", "account"]
    assert all(isinstance(s, PiiSpan) and text[s.start : s.end] == s.value for s in spans)
    assert all(a.end <= b.start for a, b in itertools.pairwise(spans))
    assert mask_pii(text) == (
        "Tôi là Nguyễn Văn A, SĐT [SĐT], CMND [CCCD], email [EMAIL], "
        "STK [STK] Vietcombank, theo Nghị định 20/2008/NĐ-CP ngày 12/05/2024."
    )


def test_email_beats_phone_inside_it() -> None:
    spans = find_pii("viết cho 0912345678@gmail.com")
    assert [(s.kind, s.value) for s in spans] == [("email", "0912345678@gmail.com")]


def test_phone_beats_account_keyword() -> None:
    assert [s.kind for s in find_pii("STK 0912345678 MB Bank")] == ["phone"]


def test_several_numbers_in_one_run_are_split() -> None:
    text = "0912345678 001098012345 và 0908125616-0913698994"
    assert mask_pii(text) == "[SĐT] [CCCD] và [SĐT]-[SĐT]"


def test_pii_span_is_frozen() -> None:
    span = find_pii("gọi 0912345678")[0]
    with pytest.raises(AttributeError):
        span.start = 0  # type: ignore[misc]


# --------------------------------------------------------------------------------------------
# real data
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("rel", REAL_SETS)
def test_real_texts_idempotent_nfc_and_letters_kept(rel: str) -> None:
    texts = _real_texts(rel)
    assert len(texts) >= 500
    for raw in texts:
        once = normalize(raw)
        assert normalize(once) == once
        assert unicodedata.is_normalized("NFC", once)
        assert _skeleton(once) == _skeleton(raw), raw  # only marks moved, space or invisibles changed
        assert _tone_counts(once) == _tone_counts(raw), raw  # no tone mark added or lost
        assert "\r" not in once and "\n\n\n" not in once and "  " not in once
        assert once == once.strip()


# An open syllable ending in oa/oe/uy with the mark on the last vowel ("hoà", "thuỷ"), not after qu.
_NEW_STYLE_RE = re.compile(r"(?i)(?<!\w)(?!q)[^\W\d_]*(?:o[àáảãạèéẻẽẹ]|u[ỳýỷỹỵ])(?![^\W\d_])")


def test_real_new_style_tone_marks_are_unified() -> None:
    texts = [t for rel in REAL_SETS for t in _real_texts(rel)]
    variants = [t for t in texts if _NEW_STYLE_RE.search(unicodedata.normalize("NFC", t))]
    assert len(variants) >= 20, "expected real texts written with 'hoà', 'thuỷ', 'khoẻ'..."
    for raw in variants:
        assert not _NEW_STYLE_RE.search(normalize(raw)), raw


def test_real_sentences_with_tone_variants() -> None:
    zalo = _real_texts("zalo_legal/agency_train.jsonl", 600)
    both = [t for t in zalo if "thủy" in t and "thuỷ" in t]
    assert both, "expected the Zalo question that writes both 'thủy' and 'thuỷ'"
    out = normalize(both[0])
    assert "thuỷ" not in out and out.count("thủy") == both[0].count("thủy") + both[0].count("thuỷ")
    uit = [t for t in _real_texts("uit_vsfc/train.jsonl") if "hoà đồng" in t]
    assert uit and all("hòa đồng" in normalize(t) and "hoà" not in normalize(t) for t in uit)
    vihsd = [t for t in _real_texts("vihsd/train.jsonl", 5000) if "văn hoá" in t or "khoẻ" in t]
    assert vihsd
    for t in vihsd:
        out = normalize(t)
        assert "văn hoá" not in out and "khoẻ" not in out


def test_real_legal_questions_with_numbers_are_not_masked() -> None:
    questions = [normalize(t) for t in _real_texts("zalo_legal/agency_train.jsonl", 600)]
    with_digits = [q for q in questions if re.search(r"\d", q)]
    assert len(with_digits) >= 10  # years, counts, "2016-2020", "5 phút/lần"...
    for q in with_digits:
        assert mask_pii(q) == q


_DOC_RE = re.compile(r"\b\d{1,6}/(?:\d{4}/)?[A-ZĐ]{1,6}(?:-[A-ZĐ0-9]{1,8})+")
_DATE_RE = re.compile(r"\b\d{1,2}/\d{1,2}/\d{4}\b|\b\d{1,2}-\d{1,2}-\d{4}\b")
_MONEY_RE = re.compile(r"\b\d{1,3}(?:\.\d{3})+ (?:đồng|USD|tỷ|triệu)")


def test_real_news_keeps_documents_dates_and_money() -> None:
    texts = [normalize(t) for t in _real_texts("vntc/train.jsonl.gz")]
    counts = {"doc": 0, "date": 0, "money": 0}
    for text in texts:
        masked = mask_pii(text)
        for name, pattern in (("doc", _DOC_RE), ("date", _DATE_RE), ("money", _MONEY_RE)):
            found = pattern.findall(text)
            counts[name] += len(found)
            assert pattern.findall(masked) == found, (name, found)
    assert counts["doc"] >= 20 and counts["date"] >= 100 and counts["money"] >= 100, counts


_MOBILE_RE = re.compile(r"(?<!\d)0[35789]\d{8}(?!\d)")


def test_real_phone_numbers_are_masked() -> None:
    texts = [normalize(t) for t in _real_texts("vihsd/train.jsonl", 30000)]
    with_phone = [t for t in texts if _MOBILE_RE.search(t)]
    assert len(with_phone) >= 20
    for text in with_phone:
        masked = mask_pii(text)
        assert not _MOBILE_RE.search(masked), masked
        assert "[SĐT]" in masked or "[EMAIL]" in masked
