"""The national catalogue of administrative procedures, as routing knowledge.

Each procedure says which ministry (or which province's People's Committee) issues it, in which
fields (lĩnh vực), and which unit executes it. That is what a clerk knows and a description of a
ministry does not: "đăng ký thường trú" is Bộ Công an's, "cấp lại sổ đỏ" the land registry's.
The facts ship in ``triage/data/catalogue.json.gz``, built by ``scripts/build_catalogue.py``.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

from triage.errors import ModelIncompatible
from triage.nlp.agencies import AgencyRegistry, _key

__all__ = ["CATALOGUE_FORMAT", "Catalogue", "Procedure", "default_catalogue", "unit_of"]

CATALOGUE_FORMAT = 1


@dataclass(frozen=True)
class Procedure:
    """One administrative procedure: who issues it, in which fields, executed by which registered unit."""

    code: str
    name: str
    fields: tuple[str, ...]
    agency: str
    level: str
    units: tuple[str, ...]

    @property
    def handler(self) -> str:
        """The registered agency that handles it: the executing unit under a ministry when there is one."""
        return self.units[0] if self.units else self.agency

    @property
    def reason(self) -> str:
        """What a clerk reads: "Thủ tục: Đăng ký thường trú - lĩnh vực Cư trú"."""
        field = f" - lĩnh vực {self.fields[0]}" if self.fields else ""
        return f"Thủ tục: {self.name}{field}"

    def document(self) -> str:
        """The text retrieval compares a submission with: the name and its fields."""
        return f"{self.name}. {', '.join(self.fields)}" if self.fields else self.name


class Catalogue:
    """All procedures, in catalogue order."""

    def __init__(self, procedures: list[Procedure], *, about: str = "") -> None:
        self.procedures: tuple[Procedure, ...] = tuple(procedures)
        self.about = about

    def __len__(self) -> int:
        return len(self.procedures)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> Catalogue:
        if raw.get("format") != CATALOGUE_FORMAT:
            raise ModelIncompatible(
                f"catalogue format {raw.get('format')!r}, this version reads {CATALOGUE_FORMAT}: "
                "rebuild it with scripts/build_catalogue.py"
            )
        fields = [str(f) for f in raw["fields"]]
        procedures = [
            Procedure(
                code=str(code),
                name=str(name),
                fields=tuple(fields[i] for i in field_ids),
                agency=str(agency),
                level=str(level),
                units=tuple(str(u) for u in units),
            )
            for code, name, field_ids, agency, level, units in raw["procedures"]
        ]
        return cls(procedures, about=str(raw.get("about", "")))

    @classmethod
    def load(cls, path: Path | None = None) -> Catalogue:
        """Read a catalogue file; without a path, the one shipped in the package."""
        if path is None:
            blob = resources.files("triage").joinpath("data").joinpath("catalogue.json.gz").read_bytes()
        else:
            blob = Path(path).read_bytes()
        return cls.from_dict(json.loads(gzip.decompress(blob)))

    def fingerprint(self) -> str:
        """Changes whenever a procedure does: cached encodings of the catalogue key on it."""
        import hashlib

        h = hashlib.sha256()
        for p in self.procedures:
            h.update(f"{p.code}\x1f{p.document()}\x1f{p.handler}\x1e".encode())
        return h.hexdigest()[:16]


def unit_of(executing_agency: str, registry: AgencyRegistry) -> str | None:
    """The registered unit under a ministry that an executing agency's name refers to, if any.

    Catalogue names add a suffix ("Cục Thuế - Bộ tài chính") or a level ("Thuế tỉnh, thành phố",
    "Bảo hiểm xã hội tỉnh"): the longest registered name the folded name starts with wins.
    """
    key = _key(executing_agency.split(" - ")[0].split("/")[0])
    best: tuple[int, str] | None = None
    for agency in registry.ministries():
        if agency.parent is None:
            continue
        for name in (agency.name, *agency.aliases):
            k = _key(name)
            if k and (key == k or key.startswith(k + " ")) and (best is None or len(k) > best[0]):
                best = (len(k), agency.code)
    return None if best is None else best[1]


@lru_cache(maxsize=1)
def default_catalogue() -> Catalogue:
    """The packaged catalogue, loaded once per process."""
    return Catalogue.load()
