"""Uploaded files: type by content, images re-encoded without EXIF/GPS, bomb guard, content-addressed store."""

from __future__ import annotations

import hashlib
import io
import struct
import zipfile
import zlib
from pathlib import Path

import pytest
from PIL import Image

from triage.store.files import FileRefused, FileStore, UploadPolicy, check_file, check_files, clean_filename, sniff

POLICY = UploadPolicy(max_files=3, max_file_bytes=200_000, max_total_bytes=300_000, max_pixels=1_000_000)
GPS_IFD = 0x8825


def jpeg_with_gps(size: tuple[int, int] = (64, 48)) -> bytes:
    image = Image.new("RGB", size, (200, 30, 30))
    exif = Image.Exif()
    exif[0x010F] = "Máy ảnh"  # Make
    exif[0x0110] = "PAKN-CAM-1"  # Model
    exif.get_ifd(GPS_IFD).update({1: "N", 2: (21.0, 1.0, 42.0), 3: "E", 4: (105.0, 51.0, 15.0)})
    out = io.BytesIO()
    image.save(out, "JPEG", exif=exif.tobytes())
    return out.getvalue()


def png(size: tuple[int, int]) -> bytes:
    out = io.BytesIO()
    Image.new("L", size, 0).save(out, "PNG", optimize=True)
    return out.getvalue()


def bomb_png(width: int, height: int) -> bytes:
    """A 1-bit PNG written row by row (never held decoded): tens of KB on disk, width x height pixels."""
    compress = zlib.compressobj(9)
    row = b"\x00" + b"\x00" * ((width + 7) // 8)
    idat = b"".join(compress.compress(row) for _ in range(height)) + compress.flush()

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def docx() -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
    return out.getvalue()


def test_a_jpeg_with_gps_exif_is_stored_without_any_exif() -> None:
    raw = jpeg_with_gps()
    with Image.open(io.BytesIO(raw)) as before:
        assert before.getexif().get_ifd(GPS_IFD), "the fixture must carry GPS data"
    checked = check_file("IMG_0001.JPG", raw, POLICY)
    assert checked.type == "jpeg" and checked.media_type == "image/jpeg"
    with Image.open(io.BytesIO(checked.data)) as after:
        assert after.size == (64, 48)
        assert not after.getexif() and "exif" not in after.info
    assert b"PAKN-CAM-1" not in checked.data and b"GPS" not in checked.data
    assert checked.sha256 == hashlib.sha256(checked.data).hexdigest()


@pytest.mark.parametrize(
    ("name", "data"),
    [
        ("bao-cao.pdf", b"MZ\x90\x00" + b"\x00" * 200),  # a Windows program named .pdf
        ("anh.jpg", b"<html><script>alert(1)</script></html>"),
        ("tai-lieu.docx", b"PK\x03\x04" + b"\x00" * 100),  # a zip header, not a document
    ],
)
def test_a_lying_extension_is_refused_by_content(name: str, data: bytes) -> None:
    with pytest.raises(FileRefused, match="nội dung không phải loại tệp được nhận"):
        check_file(name, data, POLICY)


def test_the_type_comes_from_the_content_not_the_name() -> None:
    checked = check_file("hoa-don.pdf", jpeg_with_gps(), POLICY)  # a photo named .pdf
    assert checked.type == "jpeg" and checked.filename == "hoa-don.jpg"
    assert sniff(docx()) == "docx" and sniff(b"%PDF-1.7\n") == "pdf"


def test_an_office_file_with_macros_is_refused() -> None:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("[Content_Types].xml", "<Types/>")
        z.writestr("word/document.xml", "<w:document/>")
        z.writestr("word/vbaProject.bin", b"\x00" * 10)
    assert sniff(out.getvalue()) is None


def test_an_oversize_file_is_refused_with_a_vietnamese_reason() -> None:
    with pytest.raises(FileRefused, match="vượt quá dung lượng"):
        check_file("lon.pdf", b"%PDF-1.4\n" + b"0" * 200_001, POLICY)


def test_a_decompression_bomb_is_refused_before_decoding() -> None:
    """A 30000 x 30000 PNG: ~100 KB on disk, 900 million pixels once decoded."""
    bomb = bomb_png(30_000, 30_000)
    assert len(bomb) < POLICY.max_file_bytes
    assert struct.unpack(">II", bomb[16:24]) == (30_000, 30_000)  # the header alone says how large it would be
    with pytest.raises(FileRefused, match="điểm ảnh quá lớn"):
        check_file("bom.png", bomb, POLICY)
    assert POLICY.max_pixels == Image.MAX_IMAGE_PIXELS  # Pillow's own guard is set for anything else too


def test_check_files_keeps_the_good_ones_and_names_the_refused() -> None:
    files = [("a.png", png((10, 10))), ("b.txt", b"plain text"), ("c.docx", docx()), ("d.png", png((5, 5)))]
    taken, refused = check_files(files, POLICY)
    assert [f.filename for f in taken] == ["a.png", "c.docx"]
    assert len(refused) == 2 and "b.txt" in refused[0] and "tối đa 3 tệp" in refused[1]


def test_filenames_are_cleaned() -> None:
    assert clean_filename("../../etc/passwd", "pdf") == "passwd.pdf"
    assert clean_filename('a"b<c>.exe', "png") == "abc.png"
    assert clean_filename("", "jpeg") == "tep.jpg"


def test_the_store_is_content_addressed_and_checks_digests(tmp_path: Path) -> None:
    store = FileStore(tmp_path)
    checked = check_file("a.pdf", b"%PDF-1.4\nhello", POLICY)
    digest = store.put(checked)
    assert store.put(checked) == digest  # the same bytes twice: one file
    assert store.path(digest).read_bytes() == checked.data and store.read(digest) == checked.data
    store.path(digest).write_bytes(b"%PDF-1.4\nchanged")
    with pytest.raises(Exception, match="does not match"):
        store.read(digest)


def test_a_scan_command_refuses_what_it_flags() -> None:
    flagged = UploadPolicy(scan_command="false")
    with pytest.raises(FileRefused, match="mã độc"):
        check_file("a.pdf", b"%PDF-1.4\nx", flagged)
    assert check_file("a.pdf", b"%PDF-1.4\nx", UploadPolicy(scan_command="true")).type == "pdf"
