"""A real local SMTP server (aiosmtpd) for the notification tests: records every message it accepts.

``refuse`` (a callable given the parsed message) may answer an SMTP error instead of accepting, or do
something drastic first (the crash test kills the service from it, before the 250 reply).
"""

from __future__ import annotations

import email
import threading
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.message import Message
from typing import Any

import pytest
from aiosmtpd.controller import Controller

from benchmarks.load.server import free_port


@dataclass
class Mailbox:
    messages: list[Message] = field(default_factory=list)
    refuse: Callable[[Message], str | None] | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.original_content or envelope.content)
        if self.refuse is not None:
            answer = self.refuse(msg)
            if answer is not None:
                return answer
        with self.lock:
            self.messages.append(msg)
        return "250 Message accepted for delivery"

    def message_ids(self) -> Counter[str]:
        with self.lock:
            return Counter(str(m["Message-ID"]) for m in self.messages)

    def to(self, address: str) -> list[Message]:
        with self.lock:
            return [m for m in self.messages if m["To"] == address]


@dataclass
class LocalSmtp:
    mailbox: Mailbox
    host: str
    port: int


@pytest.fixture
def smtp_server() -> Iterator[LocalSmtp]:
    """A fresh SMTP server on 127.0.0.1 for one test."""
    box = Mailbox()
    port = free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield LocalSmtp(box, "127.0.0.1", port)
    finally:
        controller.stop()
