"""Agency registry: the packaged 2025 data, name resolution and province spotting."""

from __future__ import annotations

import json
import unicodedata
from collections import Counter
from importlib import resources
from pathlib import Path
from typing import Any

import pytest

from triage.errors import NotFound
from triage.nlp.agencies import Agency, AgencyRegistry, _key, default_registry, to_document

REPO_ROOT = Path(__file__).resolve().parents[3]
SHARED_DATA = REPO_ROOT.parent / "shared" / "data"

# Agency labels used by the Zalo legal-QA routing set (official names after 1 March 2025).
LABEL_NAMES = [
    "Bộ Tài chính",
    "Bộ Nông nghiệp và Môi trường",
    "Bộ Xây dựng",
    "Bộ Y tế",
    "Bộ Giáo dục và Đào tạo",
    "Bộ Công an",
    "Bộ Quốc phòng",
    "Ngân hàng Nhà nước Việt Nam",
    "Bộ Công Thương",
    "Bộ Tư pháp",
    "Bộ Khoa học và Công nghệ",
    "Bộ Văn hóa, Thể thao và Du lịch",
    "Tòa án nhân dân tối cao",
    "Bộ Nội vụ",
    "Bộ Ngoại giao",
    "Thanh tra Chính phủ",
    "Bộ Dân tộc và Tôn giáo",
    "Viện kiểm sát nhân dân tối cao",
]


@pytest.fixture(scope="module")
def registry() -> AgencyRegistry:
    return AgencyRegistry.load()


@pytest.fixture(scope="module")
def raw_records() -> list[dict[str, Any]]:
    text = resources.files("triage").joinpath("data").joinpath("agencies.json").read_text(encoding="utf-8")
    records: list[dict[str, Any]] = json.loads(text)["agencies"]
    return records


def names(agencies: list[Agency]) -> list[str]:
    return [a.name for a in agencies]


# --- the data -------------------------------------------------------------------------------------


def test_counts_follow_the_2025_reorganisation(registry: AgencyRegistry) -> None:
    kinds = Counter(a.kind for a in registry)
    assert kinds == {
        "ministry": 14,
        "ministry_level": 3,
        "judicial": 2,
        "agency_under_ministry": 18,
        "province": 34,
    }
    assert len(registry) == 71
    assert len(registry.provinces()) == 34
    assert len(registry.ministries()) == 37
    cities = {a.name for a in registry.provinces() if a.city}
    assert cities == {"Hà Nội", "Hải Phòng", "Huế", "Đà Nẵng", "TP. Hồ Chí Minh", "Cần Thơ"}


def test_63_former_provinces_map_onto_34(registry: AgencyRegistry) -> None:
    absorbed = [m for p in registry.provinces() for m in p.merged_from]
    assert len(registry.provinces()) + len(absorbed) == 63
    assert len(set(absorbed)) == len(absorbed)
    unchanged = {p.name for p in registry.provinces() if not p.merged_from}
    assert unchanged == {
        "Hà Nội", "Huế", "Lai Châu", "Điện Biên", "Sơn La", "Lạng Sơn", "Quảng Ninh",
        "Thanh Hóa", "Nghệ An", "Hà Tĩnh", "Cao Bằng",
    }  # fmt: skip


@pytest.mark.parametrize(
    ("former", "current"),
    [
        ("Hà Giang", "Tuyên Quang"),
        ("Yên Bái", "Lào Cai"),
        ("Bắc Kạn", "Thái Nguyên"),
        ("Vĩnh Phúc", "Phú Thọ"),
        ("Hòa Bình", "Phú Thọ"),
        ("Bắc Giang", "Bắc Ninh"),
        ("Thái Bình", "Hưng Yên"),
        ("Hải Dương", "Hải Phòng"),
        ("Hà Nam", "Ninh Bình"),
        ("Nam Định", "Ninh Bình"),
        ("Quảng Bình", "Quảng Trị"),
        ("Quảng Nam", "Đà Nẵng"),
        ("Kon Tum", "Quảng Ngãi"),
        ("Bình Định", "Gia Lai"),
        ("Ninh Thuận", "Khánh Hòa"),
        ("Đắk Nông", "Lâm Đồng"),
        ("Bình Thuận", "Lâm Đồng"),
        ("Phú Yên", "Đắk Lắk"),
        ("Bình Dương", "TP. Hồ Chí Minh"),
        ("Bà Rịa - Vũng Tàu", "TP. Hồ Chí Minh"),
        ("Bình Phước", "Đồng Nai"),
        ("Long An", "Tây Ninh"),
        ("Sóc Trăng", "Cần Thơ"),
        ("Hậu Giang", "Cần Thơ"),
        ("Bến Tre", "Vĩnh Long"),
        ("Trà Vinh", "Vĩnh Long"),
        ("Tiền Giang", "Đồng Tháp"),
        ("Bạc Liêu", "Cà Mau"),
        ("Kiên Giang", "An Giang"),
    ],
)
def test_former_province_resolves_to_merged_one(registry: AgencyRegistry, former: str, current: str) -> None:
    agency = registry.resolve(former)
    assert agency.name == current
    assert former in agency.merged_from


def test_codes_are_unique(raw_records: list[dict[str, Any]]) -> None:
    codes = Counter(r["code"] for r in raw_records)
    assert [c for c, n in codes.items() if n > 1] == []
    assert all(c.isascii() and c == c.upper() for c in codes)


def test_no_name_points_to_two_agencies(raw_records: list[dict[str, Any]]) -> None:
    owners: dict[str, set[str]] = {}
    for record in raw_records:
        for name in [record["code"], record["name"], *record["aliases"], *record.get("merged_from", [])]:
            owners.setdefault(_key(name), set()).add(record["code"])
    clashes = {k: v for k, v in owners.items() if len(v) > 1}
    assert clashes == {}


def test_no_place_points_to_two_provinces(raw_records: list[dict[str, Any]]) -> None:
    owners: dict[str, set[str]] = {}
    for record in raw_records:
        if record["kind"] == "province":
            for name in [record["name"], *record["aliases"], *record["places"]]:
                owners.setdefault(_key(name), set()).add(record["code"])
    assert {k: v for k, v in owners.items() if len(v) > 1} == {}


def test_load_rejects_an_alias_shared_by_two_agencies(raw_records: list[dict[str, Any]], tmp_path: Path) -> None:
    records = [dict(r) for r in raw_records]
    btc = next(r for r in records if r["code"] == "BTC")
    btc["aliases"] = [*btc["aliases"], "Bộ GTVT"]  # already an alias of Bộ Xây dựng
    path = tmp_path / "agencies.json"
    path.write_text(json.dumps({"agencies": records}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="Bộ GTVT"):
        AgencyRegistry.load(path)


def test_load_rejects_duplicate_code_and_unknown_parent(raw_records: list[dict[str, Any]], tmp_path: Path) -> None:
    path = tmp_path / "agencies.json"
    dup = [*raw_records, {**raw_records[0], "name": "Bộ khác", "aliases": [], "merged_from": []}]
    path.write_text(json.dumps({"agencies": dup}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="duplicate agency code"):
        AgencyRegistry.load(path)
    orphan = [{**r, "parent": "NOPE"} if r["code"] == "BHXH" else r for r in raw_records]
    path.write_text(json.dumps({"agencies": orphan}, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ValueError, match="unknown parent"):
        AgencyRegistry.load(path)


def test_descriptions_are_substantial(registry: AgencyRegistry) -> None:
    for agency in registry:
        words = agency.description.split()
        if agency.parent is None:
            assert 40 <= len(words) <= 160, (agency.code, len(words))
            assert 4 <= len(agency.fields) <= 12, agency.code
        else:  # a unit covers a narrower field than its ministry
            assert 20 <= len(words) <= 160, (agency.code, len(words))
            assert 1 <= len(agency.fields) <= 12, agency.code
        assert unicodedata.is_normalized("NFC", agency.description), agency.code


def test_descriptions_are_distinct(registry: AgencyRegistry) -> None:
    descriptions = [a.description for a in registry]
    assert len(set(descriptions)) == len(descriptions)


def test_province_description_names_the_province_and_its_former_parts(registry: AgencyRegistry) -> None:
    for province in registry.provinces():
        text = province.description
        assert province.full_name.casefold() in text.casefold(), province.code
        for former in province.merged_from:
            assert former in text, (province.code, former)


def test_every_text_is_nfc(raw_records: list[dict[str, Any]]) -> None:
    for record in raw_records:
        for text in [record["name"], *record["aliases"], *record["fields"], *record.get("places", [])]:
            assert unicodedata.is_normalized("NFC", text), text


# --- resolve --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", LABEL_NAMES)
def test_every_label_name_resolves_to_that_official_name(registry: AgencyRegistry, name: str) -> None:
    assert registry.resolve(name).name == name
    assert registry.by_name[name].name == name


def test_sbv_short_name(registry: AgencyRegistry) -> None:
    assert registry.resolve("Ngân hàng Nhà nước").code == "NHNN"
    assert registry.resolve("NHNN").name == "Ngân hàng Nhà nước Việt Nam"


@pytest.mark.parametrize(
    ("alias", "official"),
    [
        ("Bộ Kế hoạch và Đầu tư", "Bộ Tài chính"),
        ("Bộ KH&ĐT", "Bộ Tài chính"),
        ("Bộ Giao thông vận tải", "Bộ Xây dựng"),
        ("Bộ GTVT", "Bộ Xây dựng"),
        ("Bộ Thông tin và Truyền thông", "Bộ Khoa học và Công nghệ"),
        ("Bộ TT&TT", "Bộ Khoa học và Công nghệ"),
        ("Bộ KH&CN", "Bộ Khoa học và Công nghệ"),
        ("Bộ Tài nguyên và Môi trường", "Bộ Nông nghiệp và Môi trường"),
        ("Bộ TN&MT", "Bộ Nông nghiệp và Môi trường"),
        ("Bộ Nông nghiệp và Phát triển nông thôn", "Bộ Nông nghiệp và Môi trường"),
        ("Bộ NN&PTNT", "Bộ Nông nghiệp và Môi trường"),
        ("Bộ Lao động - Thương binh và Xã hội", "Bộ Nội vụ"),
        ("Bộ LĐTBXH", "Bộ Nội vụ"),
        ("Ủy ban Dân tộc", "Bộ Dân tộc và Tôn giáo"),
        ("Bộ Thương mại", "Bộ Công Thương"),
        ("Bộ GDĐT", "Bộ Giáo dục và Đào tạo"),
        ("Bộ VHTTDL", "Bộ Văn hóa, Thể thao và Du lịch"),
        ("Bộ CA", "Bộ Công an"),
        ("TAND tối cao", "Tòa án nhân dân tối cao"),
        ("VKSND tối cao", "Viện kiểm sát nhân dân tối cao"),
        ("BHXH", "Bảo hiểm xã hội Việt Nam"),
        ("TP.HCM", "TP. Hồ Chí Minh"),
        ("Sài Gòn", "TP. Hồ Chí Minh"),
        ("HN", "Hà Nội"),
        ("Thừa Thiên Huế", "Huế"),
    ],
)
def test_alias_resolves_to_current_agency(registry: AgencyRegistry, alias: str, official: str) -> None:
    assert registry.resolve(alias).name == official


@pytest.mark.parametrize(
    "spelling",
    [
        "Bộ GD&ĐT",
        "bộ giáo dục và đào tạo",
        "Bo Giao duc va Dao tao",
        "  BỘ   GIÁO DỤC VÀ ĐÀO TẠO. ",
        unicodedata.normalize("NFD", "Bộ Giáo dục và Đào tạo"),
        "Giáo dục và Đào tạo",
        "BGDDT",
    ],
)
def test_resolve_is_insensitive_to_form(registry: AgencyRegistry, spelling: str) -> None:
    assert registry.resolve(spelling).code == "BGDDT"


@pytest.mark.parametrize(
    ("text", "code"),
    [
        ("tỉnh Bình Dương", "P-HCM"),
        ("UBND tỉnh Hà Giang", "P-TQ"),
        ("Thành phố Đà Nẵng", "P-DN"),
        ("tp Cần Thơ", "P-CT"),
        ("Khánh Hoà", "P-KH"),
    ],
)
def test_resolve_province_with_unit_prefix(registry: AgencyRegistry, text: str, code: str) -> None:
    assert registry.resolve(text).code == code


def test_resolve_garbage_raises_not_found(registry: AgencyRegistry) -> None:
    with pytest.raises(NotFound, match="xyz qwerty"):
        registry.resolve("xyz qwerty")
    with pytest.raises(NotFound, match="closest: Bộ Tài chính"):
        registry.resolve("Bộ Tài chínhh")
    with pytest.raises(NotFound):
        registry.resolve("   ")
    with pytest.raises(NotFound):
        registry.get("NOPE")


def test_name_of_falls_back_instead_of_raising(registry: AgencyRegistry) -> None:
    assert registry.name_of("BTC") == "Bộ Tài chính" == registry.name_of("BTC", "BTC")
    assert registry.name_of("NOPE") is None and registry.name_of(None) is None and registry.name_of("") is None
    assert registry.name_of("NOPE", "NOPE") == "NOPE"  # a stored code the registry no longer has
    assert registry.name_of(None, "—") == "—"


def test_bhxh_sits_under_the_ministry_of_finance(registry: AgencyRegistry) -> None:
    bhxh = registry.resolve("Bảo hiểm xã hội Việt Nam")
    assert bhxh.kind == "agency_under_ministry"
    assert bhxh.parent is not None
    assert registry.get(bhxh.parent).name == "Bộ Tài chính"


def test_agency_flags(registry: AgencyRegistry) -> None:
    hcm = registry.get("P-HCM")
    assert hcm.is_local and hcm.full_name == "Thành phố Hồ Chí Minh"
    assert registry.get("P-KH").full_name == "Tỉnh Khánh Hòa"
    assert not registry.get("BTC").is_local
    assert isinstance(hcm.aliases, tuple) and isinstance(hcm.places, tuple)
    assert "P-HCM" in registry and "NOPE" not in registry


# --- find_provinces --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Đường ở huyện Dầu Tiếng tỉnh Bình Dương bị ngập sâu sau mỗi trận mưa", ["TP. Hồ Chí Minh"]),
        ("tôi ở Nha Trang, muốn hỏi về thủ tục cấp sổ đỏ", ["Khánh Hòa"]),
        ("toi o nha trang", ["Khánh Hòa"]),
        ("Hà Nội và Hà Nam", ["Hà Nội", "Ninh Bình"]),
        ("Hà Nam rồi Hà Nội", ["Ninh Bình", "Hà Nội"]),
        ("Nhà tôi ở Hà Nam, không phải Hà Nội", ["Ninh Bình", "Hà Nội"]),
        ("Xin hỏi thủ tục đổi giấy phép lái xe cần những giấy tờ gì?", []),
        ("Đà Lạt, Hội An và Lâm Đồng", ["Lâm Đồng", "Đà Nẵng"]),
        ("Tôi làm việc ở Vũng Tàu, quê ở Thủ Dầu Một", ["TP. Hồ Chí Minh"]),
        ("Cầu ở Phan Thiết xuống cấp", ["Lâm Đồng"]),
        ("Khu công nghiệp ở Biên Hòa xả thải", ["Đồng Nai"]),
        ("Khánh Hoà và Thanh Hoá", ["Khánh Hòa", "Thanh Hóa"]),
        ("Tôi ở TP.HCM", ["TP. Hồ Chí Minh"]),
        ("đi từ Sơn La về Hà Nội", ["Sơn La", "Hà Nội"]),
        ("người dân Hòa Bình cũ phản ánh", ["Phú Thọ"]),
    ],
)
def test_find_provinces(registry: AgencyRegistry, text: str, expected: list[str]) -> None:
    assert names(registry.find_provinces(text)) == expected


@pytest.mark.parametrize(
    "text",
    [
        "Căn hộ hai phòng ngủ bị thấm nước",  # "hai phòng" is not Hải Phòng
        "Tôi mua một bó hoa huệ",  # "huệ" is not Huế
        "Mong muốn hòa bình thế giới",  # "hòa bình" is not Hòa Bình
        "Biển Thái Bình Dương",  # neither Thái Bình nor Bình Dương
        "Học tập tư tưởng Hồ Chí Minh",  # the person, not the city
        "Bệnh nhân nằm hành lang, khu vực phía Nam quá tải",
        "Hanamura và Hanoian",  # no partial words
        "Bác sĩ nhổ cái răng bị sâu",  # "cái răng" is not Cái Răng
        "Bến cát trái phép gây sạt lở bờ sông",  # "bến cát" is not Bến Cát
    ],
)
def test_find_provinces_ignores_lookalikes(registry: AgencyRegistry, text: str) -> None:
    assert registry.find_provinces(text) == []


# --- documents and the default registry ------------------------------------------------------------


def test_to_document_joins_names_fields_and_description(registry: AgencyRegistry) -> None:
    doc = to_document(registry.get("BXD"))
    assert doc.startswith("Bộ Xây dựng")
    assert "Bộ Giao thông vận tải" in doc and "Đăng kiểm" in doc and "cao tốc" in doc
    province_doc = to_document(registry.get("P-LD"))
    assert "Đà Lạt" in province_doc and "Bình Thuận" in province_doc


def test_default_registry_is_cached() -> None:
    assert default_registry() is default_registry()
    assert len(default_registry()) == 71


# --- the shared labelled data ----------------------------------------------------------------------


def test_every_zalo_agency_label_resolves() -> None:
    path = SHARED_DATA / "zalo_legal" / "agency_train.jsonl"
    if not path.exists():
        pytest.skip(f"shared data not available at {path} (../shared/data is absent)")
    registry = default_registry()
    pairs: set[tuple[str, str]] = set()
    with path.open(encoding="utf-8") as handle:
        for line in handle:
            if line.strip():
                row = json.loads(line)
                pairs.add((row["agency"], row.get("issuer_at_issuance") or row["agency"]))
    labels = {label for label, _ in pairs}
    assert labels, "no labels read"
    for label in labels:
        assert registry.resolve(label).name in (label, "Ngân hàng Nhà nước Việt Nam"), label
    # The issuer at issuance is often a pre-2025 ministry; it must map to the row's current agency.
    for label, issuer in pairs:
        assert registry.resolve(issuer) is registry.resolve(label), (issuer, label)


def test_units_roll_up_to_their_ministry(registry: AgencyRegistry) -> None:
    assert registry.root("BTC-THUE").code == "BTC"
    assert registry.root("BHXH").code == "BTC"
    assert registry.root("BKHCN-SHTT").code == "BKHCN"
    assert registry.root("BTC").code == "BTC"
    assert registry.resolve("Tổng cục Thuế").code == "BTC-THUE"
    assert {a.code for a in registry.children("BTC")} >= {"BHXH", "BTC-THUE", "BTC-HQ"}
    assert all(a.parent is None for a in registry.top_level())
    assert len(registry.top_level()) == 53


def test_a_unit_named_in_text_is_found(registry: AgencyRegistry) -> None:
    found = [a.code for a in registry.find_agencies("Cục Sở hữu trí tuệ chậm thẩm định đơn sáng chế của tôi")]
    assert found == ["BKHCN-SHTT"]
