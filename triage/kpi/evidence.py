"""Evidence for a reported figure: a file (kept by content hash) or a link, each with its SHA-256.

``store_evidence`` is the one place files are written; it is a thin function so the general
attachment store can take its place without the callers changing. Only document and image types
agencies actually send are taken, recognised by their first bytes (the name is not trusted).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from triage.errors import InvalidInput

# Signature -> (media type, extension). ZIP covers .docx/.xlsx (Office Open XML).
_MAGIC: tuple[tuple[bytes, str, str], ...] = (
    (b"%PDF-", "application/pdf", "pdf"),
    (b"\x89PNG\r\n\x1a\n", "image/png", "png"),
    (b"\xff\xd8\xff", "image/jpeg", "jpg"),
    (b"PK\x03\x04", "application/zip", "zip"),
)


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    path: Path
    size: int
    media_type: str


def sniff(data: bytes) -> tuple[str, str]:
    """(media type, extension) from the content; InvalidInput for types not taken as evidence."""
    for magic, media, ext in _MAGIC:
        if data.startswith(magic):
            return media, ext
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(
            "tệp minh chứng phải là PDF, ảnh PNG/JPEG, tệp Office (docx, xlsx) hoặc văn bản/CSV UTF-8"
        ) from None
    return "text/plain", "txt"


def store_evidence(data: bytes, *, root: Path, max_bytes: int) -> StoredFile:
    """Write ``data`` under ``root`` by its SHA-256 (the same file twice is stored once); atomic."""
    if not data:
        raise InvalidInput("tệp minh chứng rỗng")
    if len(data) > max_bytes:
        raise InvalidInput(f"tệp minh chứng vượt quá {max_bytes // 1024} KB")
    media, ext = sniff(data)
    digest = hashlib.sha256(data).hexdigest()
    folder = root / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    path = (folder / f"{digest}.{ext}").resolve()
    if not path.exists():
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".part-")
        with os.fdopen(fd, "wb") as fh:
            fh.write(data)
        os.replace(tmp, path)
    return StoredFile(sha256=digest, path=path, size=len(data), media_type=media)


def link_digest(url: str) -> str:
    """SHA-256 of a checked http(s) link, as recorded for link evidence."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 2000:
        raise InvalidInput(f"liên kết minh chứng không hợp lệ: {url[:80]!r} (cần http:// hoặc https://)")
    return hashlib.sha256(text.encode()).hexdigest()


def file_digest(path: Path) -> str | None:
    """SHA-256 of a stored file, or None when it is gone."""
    try:
        with path.open("rb") as fh:
            return hashlib.file_digest(fh, "sha256").hexdigest()
    except OSError:
        return None
