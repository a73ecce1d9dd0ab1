"""Reading a form with files, for any route registered with ``service.limits.register_upload_route``.

The multipart stream is parsed as it arrives (the body limit middleware has already raised the cap
for these routes to the upload limit and still counts every byte). Three rules hold while parsing:

* the CSRF check (``before_files``) runs when the first file part's headers arrive, on the fields
  seen so far (the token field comes first in the page), so no file byte is stored for a forged post;
* a file past the per-file size, or past the number of files, is not stored: its bytes are skipped
  while the stream goes on, and it is named in ``refused`` with a Vietnamese reason, so the page can
  show the form again with everything else the person typed;
* fields stay within the form limits of ``service.limits`` (count and size, in memory).

What is read here is only received: ``triage.store.files.check_files`` decides what the bytes are.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass, field
from urllib.parse import quote

from starlette.datastructures import FormData, Headers, UploadFile
from starlette.formparsers import MultiPartException, MultiPartParser
from starlette.requests import Request
from starlette.responses import Response

from service.limits import MAX_BODY, MAX_FORM_FIELDS, FormRefused, read_form
from triage.config import Settings
from triage.store.files import FileStore, UploadPolicy

HEADER_ALLOWANCE = 4096  # multipart headers and boundaries per file, on top of its bytes


def upload_policy(settings: Settings) -> UploadPolicy:
    """The upload rules from the settings (one policy for every upload form)."""
    return UploadPolicy(
        max_files=settings.upload_max_files,
        max_file_bytes=settings.upload_max_file_bytes,
        max_total_bytes=settings.upload_max_total_bytes,
        types=tuple(settings.upload_types),
        max_pixels=settings.upload_max_pixels,
        scan_command=settings.upload_scan_command,
        scan_timeout_s=settings.upload_scan_timeout_s,
    )


def upload_body_limit(settings: Settings) -> int:
    """The streamed body cap on upload routes: every file at its limit plus the form's own fields."""
    files = min(settings.upload_max_total_bytes, settings.upload_max_files * settings.upload_max_file_bytes)
    return files + MAX_BODY + HEADER_ALLOWANCE * max(1, settings.upload_max_files)


def file_store(settings: Settings) -> FileStore:
    """Uploaded files live under the data folder, outside the database."""
    return FileStore(settings.data_dir / "files")


@dataclass
class Received:
    """One file as received (unchecked)."""

    field: str
    filename: str
    data: bytes


@dataclass
class UploadForm:
    """The fields, the files received, and the Vietnamese reasons for files skipped while receiving."""

    form: FormData
    files: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)

    def files_of(self, name: str) -> list[tuple[str | None, bytes]]:
        return [(f.filename, f.data) for f in self.files if f.field == name]


def _mb(n: int) -> str:
    return f"{n / (1024 * 1024):.0f} MB" if n >= 1024 * 1024 else f"{n // 1024} KB"


class _GuardedParser(MultiPartParser):
    """Starlette's parser with a check before the first file and per-file skipping instead of failing."""

    def __init__(
        self,
        headers: Headers,
        stream: AsyncGenerator[bytes, None],
        *,
        policy: UploadPolicy,
        before_files: Callable[[FormData], None] | None,
    ) -> None:
        # Parts over the file count are skipped here, so the parser itself never refuses for it.
        super().__init__(headers, stream, max_files=10_000, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_BODY)
        self.policy = policy
        self.before_files = before_files
        self.checked = False
        self.taken = 0
        self.skip = False
        self.part_bytes = 0
        self.part_name = ""
        self.refused: list[str] = []

    def on_headers_finished(self) -> None:
        self.skip, self.part_bytes = False, 0
        super().on_headers_finished()
        upload = self._current_part.file
        if upload is None:
            return
        if not self.checked:
            self.checked = True
            if self.before_files is not None:
                self.before_files(FormData([(k, v) for k, v in self.items if isinstance(v, str)]))
        self.part_name = upload.filename or ""
        if not self.part_name:
            self.skip = True  # an empty <input type=file>: the browser sends a part without a name
        elif self.taken >= self.policy.max_files:
            self.skip = True
            self.refused.append(
                f"Chỉ nhận tối đa {self.policy.max_files} tệp; tệp “{self.part_name[:80]}” không được nhận."
            )
        else:
            self.taken += 1

    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        if self._current_part.file is not None:
            if self.skip:
                return
            self.part_bytes += end - start
            if self.part_bytes > self.policy.max_file_bytes:
                self.skip = True
                self.refused.append(
                    f"Tệp “{self.part_name[:80]}”: vượt quá dung lượng cho phép "
                    f"({_mb(self.policy.max_file_bytes)} mỗi tệp)."
                )
                return
        super().on_part_data(data, start, end)

    def on_part_end(self) -> None:
        if self._current_part.file is not None and self.skip:
            self._current_part.file.file.close()
            return
        super().on_part_end()


async def read_upload_form(
    request: Request, policy: UploadPolicy, *, before_files: Callable[[FormData], None] | None = None
) -> UploadForm:
    """The posted form with its files (multipart), or just the fields (urlencoded: no files).

    ``before_files`` (the CSRF check for a web page) runs before any file byte is stored; whatever it
    raises ends the parse. Reading stays on the event loop; checking the files belongs in a thread.
    """
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        return UploadForm(form=await read_form(request))
    parser = _GuardedParser(request.headers, request.stream(), policy=policy, before_files=before_files)
    try:
        form = await parser.parse()
    except MultiPartException as exc:
        if exc.message.startswith("Too many") or "exceeded maximum size" in exc.message:
            raise FormRefused(exc.message) from exc
        raise FormRefused(f"dữ liệu biểu mẫu không hợp lệ: {exc.message}") from exc
    fields: list[tuple[str, str | UploadFile]] = []
    files: list[Received] = []
    for key, value in form.multi_items():
        if isinstance(value, str):
            fields.append((key, value))
            continue
        data = await value.read()
        await value.close()
        if value.filename:
            files.append(Received(field=key, filename=value.filename, data=data))
    return UploadForm(form=FormData(fields), files=files, refused=parser.refused)


def attachment_response(data: bytes, filename: str, media_type: str) -> Response:
    """Safe headers for a stored file: download only, no sniffing, no script, not cached by proxies."""
    ascii_name = filename.encode("ascii", "ignore").decode() or "tep"
    return Response(
        content=data,
        media_type=media_type,
        headers={
            "Content-Disposition": f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename)}",
            "X-Content-Type-Options": "nosniff",
            "Content-Security-Policy": "default-src 'none'; sandbox",
            "Cache-Control": "private, no-store",
        },
    )
