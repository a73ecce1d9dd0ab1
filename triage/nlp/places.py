"""Where a matter is: the ward or commune of the 34 provinces (post-1 July 2025), offline.

underthesea (>= 9.5) ships ``underthesea.address`` with the official old-to-new mapping of
administrative units (source "vietnamadminunits", effective 2025-07-01: 63 old provinces, 34 new,
every new ward and commune). It is the maintained offline source the service uses: a ward typed by
a citizen is matched, accents and "P." / "X." abbreviations aside, to the new ward of the chosen
province; an old (pre-merger) ward name is converted to the new one it became part of. Anything not
recognised is kept as typed (free text): a place is never refused for an unknown name.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources

from triage.errors import InvalidInput
from triage.nlp.text import normalize

MAX_WARD = 200
MAX_ADDRESS = 500
_PREFIXES = ("phuong", "xa", "dackhu", "thitran")  # new units are phường, xã and đặc khu
_ABBREVIATED = re.compile(r"^\s*(?:p|x|tt|đk)\s*\.\s*", re.IGNORECASE)  # "P. Bến Nghé", "X. Đông Anh"


@dataclass(frozen=True)
class Place:
    """A checked place: ``ward`` canonical when ``ward_known``, else as typed."""

    ward: str | None = None
    ward_known: bool = False
    address: str | None = None
    latitude: float | None = None
    longitude: float | None = None


def _key(text: str) -> str:
    from underthesea.address.normalizer import normalize_key

    return str(normalize_key(text))


def _bare(key: str) -> str:
    for prefix in _PREFIXES:
        if key.startswith(prefix) and len(key) > len(prefix):
            return key[len(prefix) :]
    return key


@lru_cache(maxsize=1)
def _wards() -> tuple[dict[str, dict[str, str]], dict[str, dict[str, str]], dict[str, str]]:
    """(new province key -> {ward key: new ward}, old-name lookups -> new ward, province short name -> key)."""
    data = json.loads(resources.files("underthesea.address").joinpath("data/mapping.json").read_text("utf-8"))
    new: dict[str, dict[str, str]] = {}
    old: dict[str, dict[str, str]] = {}
    for r in data["ward_mapping"]:
        prov = r["new_province_key"]
        name = r["new_ward"]
        for k in (r["new_ward_key"], _bare(r["new_ward_key"])):
            new.setdefault(prov, {}).setdefault(k, name)
        for k in (r["old_ward_key"], _bare(r["old_ward_key"])):
            old.setdefault(prov, {}).setdefault(k, name)
    provinces = {}
    for key, info in data["province_names"].items():
        provinces[_key(info["short"])] = key
        provinces[_key(info["name"])] = key
    return new, old, provinces


def available() -> bool:
    """Whether the offline ward list is installed (underthesea with its address data)."""
    try:
        _wards()
    except (ImportError, FileNotFoundError, KeyError, ValueError):
        return False
    return True


def wards_of(province_name: str) -> list[str]:
    """The new wards and communes of a province (by its name, e.g. "Hà Nội"), sorted; [] when unknown."""
    if not available():
        return []
    new, _, provinces = _wards()
    prov = provinces.get(_key(province_name))
    return sorted(set(new.get(prov or "", {}).values()))


def match_ward(province_name: str | None, ward: str) -> str | None:
    """The canonical new ward for what was typed (a new name, or an old one it replaced); None if unknown."""
    if not province_name or not available():
        return None
    new, old, provinces = _wards()
    prov = provinces.get(_key(province_name))
    if prov is None:
        return None
    key = _key(_ABBREVIATED.sub("", ward))
    for table in (new, old):
        hit = table.get(prov, {}).get(key) or table.get(prov, {}).get(_bare(key))
        if hit:
            return hit
    return None


def _coordinate(value: float | str | None, low: float, high: float, what: str) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(str(value).strip().replace(",", "."))
    except ValueError:
        raise InvalidInput(f"{what}: không phải một số ({str(value)[:20]!r})") from None
    if not (low <= number <= high) or number != number:
        raise InvalidInput(f"{what}: phải nằm trong khoảng {low:g} đến {high:g}")
    return round(number, 6)


def check_place(
    province_name: str | None,
    ward: str | None,
    address: str | None,
    latitude: float | str | None,
    longitude: float | str | None,
) -> Place:
    """Validate the optional place fields; both coordinates or neither, in range; the ward matched if possible."""
    ward_text = normalize(ward or "")
    address_text = normalize(address or "")
    if len(ward_text) > MAX_WARD:
        raise InvalidInput(f"phường/xã: tối đa {MAX_WARD} ký tự")
    if len(address_text) > MAX_ADDRESS:
        raise InvalidInput(f"địa chỉ: tối đa {MAX_ADDRESS} ký tự")
    lat = _coordinate(latitude, -90.0, 90.0, "vĩ độ")
    lon = _coordinate(longitude, -180.0, 180.0, "kinh độ")
    if (lat is None) != (lon is None):
        raise InvalidInput("toạ độ: cần cả vĩ độ và kinh độ, hoặc để trống cả hai")
    canonical = match_ward(province_name, ward_text) if ward_text else None
    return Place(
        ward=canonical or ward_text or None,
        ward_known=canonical is not None,
        address=address_text or None,
        latitude=lat,
        longitude=lon,
    )
