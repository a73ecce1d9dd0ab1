"""Evidence for a reported figure: a file (kept by content hash) or a link, each with its SHA-256.

``store_evidence`` is the one place evidence files are written: a thin adapter over the service's
general upload store (``triage.store.files``: type by content, images re-encoded without metadata,
optional virus scan, content-addressed and atomic), so evidence and citizens' attachments follow
the same rules and live in the same place.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from triage.errors import InvalidInput
from triage.store.files import FileStore, UploadPolicy, check_file

# Documents and images agencies send as evidence (by content, never by name).
EVIDENCE_TYPES: tuple[str, ...] = ("pdf", "jpeg", "png", "docx", "xlsx", "odt")


@dataclass(frozen=True)
class StoredFile:
    sha256: str
    path: Path
    size: int
    media_type: str


def store_evidence(data: bytes, *, name: str, root: Path, policy: UploadPolicy) -> StoredFile:
    """Check ``data`` under ``policy`` and keep it under ``root`` by its SHA-256 (stored once however often sent)."""
    checked = check_file(name, data, policy)  # FileRefused (an InvalidInput) says why, in Vietnamese
    store = FileStore(root)
    digest = store.put(checked)
    return StoredFile(
        sha256=digest, path=store.path(digest).resolve(), size=checked.size, media_type=checked.media_type
    )


def link_digest(url: str) -> str:
    """SHA-256 of a checked http(s) link, as recorded for link evidence."""
    text = url.strip()
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc or len(text) > 2000:
        raise InvalidInput(f"liên kết minh chứng không hợp lệ: {url[:80]!r} (cần http:// hoặc https://)")
    return hashlib.sha256(text.encode()).hexdigest()
