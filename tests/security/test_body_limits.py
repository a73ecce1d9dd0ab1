"""Body limits hold on the stream: a chunked body (no Content-Length) is cut off at the limit, unread
beyond it; a form is parsed in memory with no files, so nothing spills to disk before the CSRF check.
Files are taken only on the registered upload routes (the public submission form among them): there the
cut-off is the upload limit, and the CSRF token is checked before the first file byte is read.

The bodies are async generators sent through httpx's ASGI transport, which pulls one chunk each time
the app asks for more: the number of chunks pulled is how much of the body the server read.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.limits import MAX_BODY, MAX_FORM_FIELDS, is_upload_route
from service.uploads import upload_body_limit
from triage.config import Settings

CHUNK = 64 * 1024
THIRTY_MB = 30 * 1024 * 1024 // CHUNK  # chunks
TOKEN = re.compile(r'name="csrf_token" value="([^"]+)"')
BOUNDARY = "pakn-boundary-7d3a"


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory, encoder_path: Path) -> Iterator[TestClient]:
    settings = Settings(
        data_dir=tmp_path_factory.mktemp("limits"),
        encoder_path=encoder_path,
        escalate_interval_s=0,
        model_poll_s=0,
        intake_rate_per_minute=100_000,
        intake_burst=100_000,
        upload_max_files=2,
        upload_max_file_bytes=128 * 1024,
        upload_max_total_bytes=256 * 1024,
    )
    with TestClient(create_app(settings)) as c:
        yield c


UPLOAD_LIMIT = upload_body_limit(
    Settings(upload_max_files=2, upload_max_file_bytes=128 * 1024, upload_max_total_bytes=256 * 1024)
)


class Body:
    """A streamed request body that counts the chunks the server pulled."""

    def __init__(self, chunks: list[bytes]) -> None:
        self.chunks = chunks
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for chunk in self.chunks:
            self.pulled += 1
            yield chunk


def send(client: TestClient, path: str, body: Body, headers: dict[str, str]) -> httpx.Response:
    """POST ``body`` chunked (no Content-Length) to the running app, on its own event loop."""

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as ac:
            return await ac.post(path, content=body, headers=headers)

    response: httpx.Response = client.portal.call(go)  # type: ignore[union-attr]
    return response


def _part(name: str, value: str) -> bytes:
    return f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n{value}\r\n'.encode()


def _file_header(name: str = "evidence", filename: str = "bang-chung.bin") -> bytes:
    return (
        f'--{BOUNDARY}\r\nContent-Disposition: form-data; name="{name}"; filename="{filename}"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()


MULTIPART = {"content-type": f"multipart/form-data; boundary={BOUNDARY}"}
LIMIT_CHUNKS = MAX_BODY // CHUNK + 1  # the chunk that crosses the limit


def test_a_chunked_30_mb_json_body_is_cut_off_at_the_limit(client: TestClient) -> None:
    head = b'{"kind":"phan_anh","submitter_type":"citizen","title":"Ngap","content":"'
    body = Body([head] + [b"a" * CHUNK] * THIRTY_MB + [b'"}'])
    r = send(client, "/api/v1/submissions", body, {"content-type": "application/json"})
    assert r.status_code == 413, r.text
    assert r.json()["detail"] == f"request body larger than {MAX_BODY} bytes"
    assert r.headers["connection"] == "close"  # a real server then drops the rest instead of draining it
    assert body.pulled <= LIMIT_CHUNKS + 1, f"read {body.pulled} of {len(body.chunks)} chunks"


def test_a_chunked_multipart_body_over_the_limit_is_cut_off(client: TestClient) -> None:
    assert not is_upload_route("POST", "/login")
    body = Body([_part("username", "lan"), _part("password", "")] + [b"a" * CHUNK] * THIRTY_MB)
    r = send(client, "/login", body, MULTIPART)
    assert r.status_code == 413, r.text[:300]
    assert r.headers["connection"] == "close"
    assert body.pulled <= LIMIT_CHUNKS + 2, f"read {body.pulled} of {len(body.chunks)} chunks"


def _csrf(client: TestClient) -> tuple[str, str]:
    token = TOKEN.search(client.get("/").text)
    assert token is not None
    return token.group(1), "; ".join(f"{k}={v}" for k, v in client.cookies.items())


def test_an_upload_route_cuts_a_chunked_body_off_at_the_upload_limit(client: TestClient) -> None:
    """A 30 MB file on the submission form (valid CSRF): refused at the upload limit, the rest unread."""
    assert is_upload_route("POST", "/") and MAX_BODY < UPLOAD_LIMIT < 2 * 1024 * 1024
    token, cookie = _csrf(client)
    fields = [_part("csrf_token", token), _part("title", "Ngập")]
    body = Body([*fields, _file_header(filename="anh.jpg")] + [b"\xff" * CHUNK] * THIRTY_MB)
    r = send(client, "/", body, {**MULTIPART, "cookie": cookie})
    assert r.status_code == 413, r.text[:300]
    assert r.headers["connection"] == "close"
    limit_chunks = UPLOAD_LIMIT // CHUNK + 1
    assert body.pulled <= limit_chunks + len(fields) + 2, f"read {body.pulled} of {len(body.chunks)} chunks"


def test_a_form_without_csrf_is_refused_before_its_file_is_read(client: TestClient) -> None:
    """192 KB of 'file' after the fields, on the upload route: the parse stops at the file's headers,
    and the page comes back with the text typed before the file (nothing stored)."""
    fields = [_part("kind", "phan_anh"), _part("title", "Ngập sâu"), _part("content", "Đường ngập sâu")]
    body = Body([*fields, _file_header()] + [b"\x00" * 16384] * 12 + [f"\r\n--{BOUNDARY}--\r\n".encode()])
    r = send(client, "/", body, MULTIPART)
    assert r.status_code == 403, r.text[:300]
    assert "CSRF" in r.text and 'value="Ngập sâu"' in r.text
    assert body.pulled <= len(fields) + 1, f"read {body.pulled} of {len(body.chunks)} chunks"


def test_a_file_over_the_per_file_limit_is_skipped_and_the_form_kept(client: TestClient) -> None:
    """Within the body limit but over the per-file limit: not stored, named in a Vietnamese message."""
    token, cookie = _csrf(client)
    fields = [_part("csrf_token", token), _part("kind", "phan_anh"), _part("submitter_type", "citizen"),
              _part("title", "Ổ gà trên đường"), _part("content", "Ổ gà lớn giữa đường, rất nguy hiểm.")]  # fmt: skip
    big = b"%PDF-1.4\n" + b"0" * (160 * 1024)
    end = f"\r\n--{BOUNDARY}--\r\n".encode()
    body = Body([*fields, _file_header("files", "bao-cao.pdf"), big, end])
    r = send(client, "/", body, {**MULTIPART, "cookie": cookie})
    assert r.status_code == 422, r.text[:300]
    assert "bao-cao.pdf" in r.text and "vượt quá dung lượng" in r.text
    assert 'value="Ổ gà trên đường"' in r.text


def test_no_form_takes_a_file_even_with_a_valid_csrf_token(client: TestClient) -> None:
    page = client.get("/")
    token = TOKEN.search(page.text)
    assert token is not None
    cookie = "; ".join(f"{k}={v}" for k, v in client.cookies.items())
    body = Body([_part("csrf_token", token.group(1)), _file_header()] + [b"x" * 16384] * 4)
    r = send(client, "/login", body, {**MULTIPART, "cookie": cookie})
    assert r.status_code == 413, r.text[:300]
    assert body.pulled <= 2


def test_too_many_fields_are_refused(client: TestClient) -> None:
    fields = "&".join(f"f{i}=x" for i in range(MAX_FORM_FIELDS + 1))
    r = client.post("/", content=fields, headers={"content-type": "application/x-www-form-urlencoded"})
    assert r.status_code == 413, r.text[:300]


def test_the_public_form_still_works_within_the_limits(client: TestClient) -> None:
    token = TOKEN.search(client.get("/").text)
    assert token is not None
    form = {
        "csrf_token": token.group(1),
        "kind": "phan_anh",
        "submitter_type": "citizen",
        "title": "Đường ngập sau mưa",
        "content": "Đoạn đường trước chợ ngập sâu mỗi khi mưa lớn, xe máy chết máy giữa đường.",
    }
    r = client.post("/", data=form, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/receipt/"), r.text[:300]
