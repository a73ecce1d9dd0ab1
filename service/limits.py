"""Request body limits enforced on the stream, and the form reader every web page uses.

A Content-Length check alone lets a chunked body (no Content-Length) through: the server would read
and parse 30 MB before any handler could refuse it. ``BodyLimit`` counts the bytes as the app pulls
them and stops at the limit, so the rest of the body is never read. ``read_form`` parses a form in
memory under the same limit and takes no files: a file part is refused at its headers, before a byte
of it is stored, so nothing spills to disk before the CSRF check that follows the parse.

Files are taken only on the routes registered here (``register_upload_route``: the public submission
form, the API's submission with files, and any other feature's upload form); there the streamed limit
is the larger upload limit, and ``service.uploads.read_upload_form`` checks the CSRF token before the
first file part is stored.
"""

from __future__ import annotations

import re

from fastapi import HTTPException  # FastAPI re-raises its own subclass from a body read (not starlette's)
from starlette.datastructures import FormData, Headers
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.formparsers import MultiPartException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

MAX_BODY = 256 * 1024  # bytes: a 20,000-character text is at most ~80 KB of UTF-8 JSON
MAX_FORM_FIELDS = 64  # the largest web form (the public submission) has 11


# (method, compiled full-match path pattern) of the routes that may carry files.
UPLOAD_ROUTES: list[tuple[str, re.Pattern[str]]] = []


def register_upload_route(method: str, path_pattern: str) -> None:
    """Let ``method`` on paths fully matching ``path_pattern`` carry files (under the upload body limit)."""
    entry = (method.upper(), re.compile(path_pattern))
    if all(e[0] != entry[0] or e[1].pattern != entry[1].pattern for e in UPLOAD_ROUTES):
        UPLOAD_ROUTES.append(entry)


def is_upload_route(method: str, path: str) -> bool:
    return any(m == method.upper() and p.fullmatch(path) for m, p in UPLOAD_ROUTES)


class BodyTooLarge(HTTPException):
    """413: the body passed the limit; raised from ``receive``, so the handler never sees the rest."""

    def __init__(self, limit: int) -> None:
        # Connection: close makes the server drop the connection after the answer instead of draining
        # the rest of the body off the socket to keep it alive.
        super().__init__(
            status_code=413, detail=f"request body larger than {limit} bytes", headers={"Connection": "close"}
        )


class BodyLimit:
    """Pure ASGI middleware: 413 for a declared or streamed body over ``limit`` bytes.

    Raising from ``receive`` lets the app's exception handlers answer (a JSON error for the API, a page
    for the web forms); a body read outside them (a middleware) is answered here.
    """

    def __init__(self, app: ASGIApp, *, limit: int = MAX_BODY, upload_limit: int | None = None) -> None:
        self.app = app
        self.default_limit = limit
        self.upload_limit = upload_limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.default_limit
        if self.upload_limit is not None and is_upload_route(scope.get("method", ""), scope.get("path", "")):
            limit = max(limit, self.upload_limit)
        length = Headers(scope=scope).get("content-length")
        if length is not None and (not length.isdigit() or int(length) > limit):
            refused = BodyTooLarge(limit)
            await JSONResponse(status_code=413, content={"detail": refused.detail}, headers=refused.headers)(
                scope, receive, send
            )
            return
        seen = 0
        started = False

        async def limited() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        async def watched(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited, watched)
        except BodyTooLarge as exc:
            if started:
                raise
            answer = JSONResponse(status_code=413, content={"detail": exc.detail}, headers=exc.headers)
            await answer(scope, receive, send)


class FormRefused(HTTPException):
    """413: a form past the field limits or carrying a file where none is taken (see ``UPLOAD_ROUTES``)."""

    def __init__(self, reason: str) -> None:
        super().__init__(
            status_code=413,
            detail="Biểu mẫu vượt giới hạn: không nhận tệp đính kèm, tối đa "
            f"{MAX_FORM_FIELDS} trường, tổng dung lượng tối đa {MAX_BODY // 1024} KB ({reason}).",
            headers={"Connection": "close"},  # the rest of the body stays unread: drop it with the connection
        )


async def read_form(request: Request) -> FormData:
    """The posted form, parsed in memory: no files, at most ``MAX_FORM_FIELDS`` fields, within ``MAX_BODY``.

    Reading the form stays on the event loop (it awaits the body); everything after it belongs in a
    thread. ``max_files=0`` makes the multipart parser stop at the first file part's headers.
    """
    try:
        return await request.form(max_files=0, max_fields=MAX_FORM_FIELDS, max_part_size=MAX_BODY)
    except StarletteHTTPException as exc:
        cause = exc.__cause__ or exc.__context__
        if exc.status_code == 400 and isinstance(cause, MultiPartException) and _is_limit(cause.message):
            raise FormRefused(cause.message) from exc
        raise  # malformed: starlette's 400 with its reason


def _is_limit(message: str) -> bool:
    """Starlette's limit errors ("Too many files...", "Part exceeded maximum size...") vs malformed data."""
    return message.startswith("Too many") or "exceeded maximum size" in message
