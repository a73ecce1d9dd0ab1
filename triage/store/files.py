"""Uploaded files: checked by their content, images re-encoded without metadata, stored by SHA-256.

Any feature that takes files (a citizen's attachments, a KPI report's evidence) goes through
``check_file`` and ``FileStore``: the type is read from the bytes (magic numbers, the zip structure of
office documents), never from the name or the declared type; an image is decoded under a pixel limit
(checked from its header before decoding: a decompression bomb never expands) and re-encoded, so EXIF
(GPS position, camera serial) and any payload hidden after the image are dropped; the optional scan
command (an antivirus) runs on the cleaned bytes. Files live outside the database, under the data
folder, named by the SHA-256 of what is stored, so the same file twice is stored once and the audit
trail's digest names the exact bytes.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import shlex
import subprocess
import tempfile
import unicodedata
import warnings
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from triage.errors import InvalidInput

# name -> (media type, extension, Vietnamese label)
FILE_TYPES: dict[str, tuple[str, str, str]] = {
    "pdf": ("application/pdf", "pdf", "PDF"),
    "jpeg": ("image/jpeg", "jpg", "ảnh JPEG"),
    "png": ("image/png", "png", "ảnh PNG"),
    "webp": ("image/webp", "webp", "ảnh WebP"),
    "docx": ("application/vnd.openxmlformats-officedocument.wordprocessingml.document", "docx", "Word (.docx)"),
    "xlsx": ("application/vnd.openxmlformats-officedocument.spreadsheetml.sheet", "xlsx", "Excel (.xlsx)"),
    "odt": ("application/vnd.oasis.opendocument.text", "odt", "OpenDocument (.odt)"),
}
IMAGE_TYPES = frozenset({"jpeg", "png", "webp"})
_PIL_FORMAT = {"jpeg": "JPEG", "png": "PNG", "webp": "WEBP"}
_SHA = re.compile(r"^[0-9a-f]{64}$")
MAX_ZIP_ENTRIES = 5_000  # an office document has tens; more is an archive pretending to be one


class FileRefused(InvalidInput):
    """One uploaded file was not taken; the message (Vietnamese) names the file and why."""


@dataclass(frozen=True)
class UploadPolicy:
    """What a feature accepts: how many files, how large, which types, the pixel limit and the scanner."""

    max_files: int = 5
    max_file_bytes: int = 10 * 1024 * 1024
    max_total_bytes: int = 25 * 1024 * 1024
    types: tuple[str, ...] = tuple(FILE_TYPES)
    max_pixels: int = 40_000_000
    scan_command: str | None = None
    scan_timeout_s: float = 60.0

    def describe(self) -> str:
        """The rule in one Vietnamese sentence, for forms and refusals."""
        kinds = ", ".join(FILE_TYPES[t][2] for t in self.types if t in FILE_TYPES)
        return (
            f"tối đa {self.max_files} tệp, mỗi tệp tối đa {_mb(self.max_file_bytes)}, "
            f"tổng cộng tối đa {_mb(self.max_total_bytes)}; nhận {kinds}"
        )


@dataclass(frozen=True)
class CheckedFile:
    """A file that passed the checks: the bytes to store (re-encoded for images) and what they are."""

    filename: str
    type: str  # a FILE_TYPES key
    data: bytes = field(repr=False)
    original_size: int
    sha256: str

    @property
    def media_type(self) -> str:
        return FILE_TYPES[self.type][0]

    @property
    def size(self) -> int:
        return len(self.data)


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


def sniff(data: bytes) -> str | None:
    """The FILE_TYPES key the bytes really are, or None: magic numbers, then the zip's parts for office files."""
    if data.startswith(b"%PDF-"):
        return "pdf"
    if data.startswith(b"\xff\xd8\xff"):
        return "jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "png"
    if len(data) >= 12 and data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "webp"
    if data.startswith(b"PK\x03\x04"):
        return _office(data)
    return None


def _office(data: bytes) -> str | None:
    """docx / xlsx / odt by their required parts; macro-carrying documents are not office files we take."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as z:
            infos = z.infolist()
            if len(infos) > MAX_ZIP_ENTRIES:
                return None
            names = {i.filename for i in infos}
            if any(n.lower().endswith("vbaproject.bin") for n in names):
                return None
            if "mimetype" in names:
                info = z.getinfo("mimetype")
                if info.file_size <= 100 and z.read(info).strip() == FILE_TYPES["odt"][0].encode():
                    return "odt"
                return None
            if "[Content_Types].xml" in names:
                if "word/document.xml" in names:
                    return "docx"
                if "xl/workbook.xml" in names:
                    return "xlsx"
    except (zipfile.BadZipFile, OSError, ValueError, NotImplementedError, RuntimeError):
        return None
    return None


def clean_filename(name: str | None, kind: str) -> str:
    """The name to show and serve: the original's last path part, printable, with the real type's extension."""
    base = (name or "").replace("\\", "/").rsplit("/", 1)[-1]
    base = unicodedata.normalize("NFC", base)
    base = "".join(c for c in base if c.isprintable() and c not in '"<>:|?*;').strip(" .")
    stem = base.rsplit(".", 1)[0] if "." in base else base
    stem = stem[:120] or "tep"
    return f"{stem}.{FILE_TYPES[kind][1]}"


def _reencode(data: bytes, kind: str, policy: UploadPolicy, shown: str) -> bytes:
    """Decode (after a size check on the header alone) and save again: no EXIF, no text chunks, no trailer."""
    from PIL import Image, ImageOps

    Image.MAX_IMAGE_PIXELS = policy.max_pixels  # Pillow's own guard, for anything decoded in this process
    bomb = FileRefused(
        f"Tệp “{shown}”: ảnh có kích thước điểm ảnh quá lớn (tối đa {policy.max_pixels:,} điểm ảnh); "
        "vui lòng gửi ảnh nhỏ hơn."
    )
    broken = FileRefused(f"Tệp “{shown}”: không đọc được ảnh (tệp hỏng hoặc không đúng định dạng).")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(data)) as im:  # lazy: reads the header only
                if _PIL_FORMAT[kind] != im.format:
                    raise broken
                width, height = im.size
                if width <= 0 or height <= 0 or width * height > policy.max_pixels:
                    raise bomb
                if getattr(im, "n_frames", 1) > 1:
                    im.seek(0)  # an animation keeps its first frame only
                im.load()
                upright = ImageOps.exif_transpose(im)  # keep the orientation the EXIF said, then drop the EXIF
        if kind == "jpeg" and upright.mode not in ("RGB", "L"):
            upright = upright.convert("RGB")
        elif kind in ("png", "webp") and upright.mode not in ("RGB", "RGBA", "L", "LA"):
            upright = upright.convert("RGBA")
        upright.info = {}
        out = io.BytesIO()
        options: dict[str, object] = {"quality": 90} if kind in ("jpeg", "webp") else {"optimize": True}
        upright.save(out, _PIL_FORMAT[kind], **options)
        return out.getvalue()
    except FileRefused:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise bomb from None
    except (OSError, ValueError, SyntaxError, Image.UnidentifiedImageError, MemoryError):
        raise broken from None


def _scan(data: bytes, policy: UploadPolicy, shown: str) -> None:
    """Run the configured scanner on the file; exit status 0 means clean, anything else refuses it."""
    if not policy.scan_command:
        return
    with tempfile.NamedTemporaryFile(prefix="upload-", delete=False) as fh:
        fh.write(data)
        path = fh.name
    try:
        done = subprocess.run(
            [*shlex.split(policy.scan_command), path],
            capture_output=True,
            timeout=policy.scan_timeout_s,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        raise FileRefused(f"Tệp “{shown}”: chưa kiểm tra được mã độc; vui lòng thử lại sau.") from None
    finally:
        os.unlink(path)
    if done.returncode != 0:
        raise FileRefused(f"Tệp “{shown}”: bị từ chối khi kiểm tra mã độc.")


def check_file(name: str | None, data: bytes, policy: UploadPolicy) -> CheckedFile:
    """The file as it will be stored, or FileRefused saying (in Vietnamese) why not."""
    shown = (name or "tệp").replace("\\", "/").rsplit("/", 1)[-1][:80] or "tệp"
    if not data:
        raise FileRefused(f"Tệp “{shown}”: tệp rỗng.")
    if len(data) > policy.max_file_bytes:
        raise FileRefused(f"Tệp “{shown}”: vượt quá dung lượng cho phép ({_mb(policy.max_file_bytes)} mỗi tệp).")
    kind = sniff(data)
    if kind is None or kind not in policy.types:
        allowed = ", ".join(FILE_TYPES[t][2] for t in policy.types if t in FILE_TYPES)
        raise FileRefused(
            f"Tệp “{shown}”: nội dung không phải loại tệp được nhận ({allowed}); "
            "loại tệp được xác định theo nội dung, không theo tên tệp."
        )
    stored = _reencode(data, kind, policy, shown) if kind in IMAGE_TYPES else data
    _scan(stored, policy, shown)
    return CheckedFile(
        filename=clean_filename(name, kind),
        type=kind,
        data=stored,
        original_size=len(data),
        sha256=hashlib.sha256(stored).hexdigest(),
    )


def check_files(files: list[tuple[str | None, bytes]], policy: UploadPolicy) -> tuple[list[CheckedFile], list[str]]:
    """Every file checked: those taken and the Vietnamese reasons for those refused (count and total too)."""
    taken: list[CheckedFile] = []
    refused: list[str] = []
    total = 0
    for i, (name, data) in enumerate(files):
        if i >= policy.max_files:
            refused.append(f"Chỉ nhận tối đa {policy.max_files} tệp; tệp “{name or 'tệp'}” không được nhận.")
            continue
        try:
            checked = check_file(name, data, policy)
        except FileRefused as exc:
            refused.append(str(exc))
            continue
        if total + checked.size > policy.max_total_bytes:
            refused.append(f"Tệp “{name or 'tệp'}”: tổng dung lượng các tệp vượt quá {_mb(policy.max_total_bytes)}.")
            continue
        total += checked.size
        taken.append(checked)
    return taken, refused


class FileStore:
    """Content-addressed files under ``root`` (``ab/abcdef...``); written atomically, never overwritten."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def path(self, sha256: str) -> Path:
        if not _SHA.match(sha256):
            raise InvalidInput("not a SHA-256 digest")
        return self.root / sha256[:2] / sha256

    def put(self, file: CheckedFile) -> str:
        target = self.path(file.sha256)
        if target.exists():
            return file.sha256
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=target.parent, prefix=".part-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(file.data)
                fh.flush()
                os.fsync(fh.fileno())
            os.chmod(tmp, 0o640)
            os.replace(tmp, target)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return file.sha256

    def read(self, sha256: str) -> bytes:
        """The stored bytes, checked against their name (a file changed on disk is not served)."""
        data = self.path(sha256).read_bytes()
        if hashlib.sha256(data).hexdigest() != sha256:
            raise InvalidInput(f"stored file {sha256[:12]} does not match its digest")
        return data
