"""Limits and small shared models."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

MAX_CONTENT = 20_000
MAX_TITLE = 500
MAX_NOTE = 2_000


class StrictIn(BaseModel):
    """Unknown fields are an error: a typo must not silently drop what the caller meant to send."""

    model_config = ConfigDict(extra="forbid", str_max_length=MAX_CONTENT)

    @field_validator("*", mode="after")
    @classmethod
    def _no_nul(cls, value: Any) -> Any:
        # PostgreSQL text cannot hold U+0000; refuse it on every backend rather than fail on one.
        if isinstance(value, str) and "\x00" in value:
            raise ValueError("NUL characters (U+0000) are not allowed")
        return value


class Problem(BaseModel):
    """Every error answer: a readable ``detail`` and, for invalid fields, one entry per field."""

    detail: str
    errors: list[dict[str, object]] | None = None
