"""The public submission form: server-side checks with Vietnamese messages, one per field.

The limits are the API's (``service.schemas``); the messages say what to fix, and the page keeps
everything the person typed so nothing has to be written twice.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from service.schemas.common import MAX_CONTENT, MAX_TITLE
from service.web.labels import KIND_LABELS, SUBMITTER_LABELS
from triage.cases.intake import NewSubmission
from triage.nlp.agencies import default_registry

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PHONE = re.compile(r"^\+?[0-9 .()-]{6,40}$")
FIELDS = (
    "kind",
    "submitter_type",
    "title",
    "content",
    "province",
    "contact_name",
    "contact_phone",
    "contact_email",
    "contact_address",
    "ward",
    "address",
    "latitude",
    "longitude",
    "publish_consent",
)
LIMITS = {"contact_name": 200, "contact_email": 320, "contact_phone": 40, "contact_address": 500, "ward": 200,
          "address": 500, "latitude": 40, "longitude": 40}  # fmt: skip


@dataclass
class SubmissionForm:
    values: dict[str, str]
    errors: dict[str, str] = field(default_factory=dict)

    @classmethod
    def empty(cls) -> SubmissionForm:
        return cls(values=dict.fromkeys(FIELDS, ""))

    @classmethod
    def from_form(cls, form: Any) -> SubmissionForm:
        return cls(values={name: str(form.get(name) or "") for name in FIELDS})

    def validate(self) -> bool:
        """Fill ``errors``; True when the form can be sent to intake."""
        v, e = self.values, self.errors
        for name, value in v.items():
            if "\x00" in value:
                e[name] = "Có ký tự không hợp lệ (NUL), vui lòng xoá và nhập lại."
        if v["kind"] not in KIND_LABELS:
            e.setdefault("kind", "Vui lòng chọn loại: phản ánh, kiến nghị, sáng kiến hoặc giải pháp.")
        if v["submitter_type"] not in SUBMITTER_LABELS:
            e.setdefault("submitter_type", "Vui lòng chọn người gửi là ai.")
        title, content = v["title"].strip(), v["content"].strip()
        if not title:
            e.setdefault("title", "Vui lòng nhập tiêu đề.")
        elif len(v["title"]) > MAX_TITLE:
            e.setdefault("title", f"Tiêu đề dài tối đa {MAX_TITLE} ký tự (hiện có {len(v['title'])}).")
        if not content:
            e.setdefault("content", "Vui lòng nhập nội dung phản ánh, kiến nghị.")
        elif len(v["content"]) > MAX_CONTENT:
            e.setdefault(
                "content",
                f"Nội dung dài tối đa {MAX_CONTENT:,} ký tự (hiện có {len(v['content']):,}).".replace(",", "."),
            )
        if v["province"] and v["province"] not in {p.code for p in default_registry().provinces()}:
            e.setdefault("province", "Tỉnh, thành phố không có trong danh mục; vui lòng chọn trong danh sách.")
        for name, limit in LIMITS.items():
            if len(v[name]) > limit:
                e.setdefault(name, f"Tối đa {limit} ký tự.")
        email, phone = v["contact_email"].strip(), v["contact_phone"].strip()
        if email and not EMAIL.match(email):
            e.setdefault("contact_email", "Địa chỉ email không hợp lệ (ví dụ: ten@example.vn).")
        if phone and not PHONE.match(phone):
            e.setdefault(
                "contact_phone", "Số điện thoại không hợp lệ: chỉ gồm chữ số (ít nhất 6), có thể có +, dấu cách, chấm."
            )
        for name, low, high, label in (("latitude", -90, 90, "Vĩ độ"), ("longitude", -180, 180, "Kinh độ")):
            text = v[name].strip().replace(",", ".")
            if not text or name in e:
                continue
            try:
                number = float(text)
            except ValueError:
                e[name] = f"{label} phải là một số (ví dụ 21.0285)."
                continue
            if not low <= number <= high:
                e[name] = f"{label} phải nằm trong khoảng {low} đến {high}."
        if bool(v["latitude"].strip()) != bool(v["longitude"].strip()):
            e.setdefault("latitude", "Cần nhập cả vĩ độ và kinh độ, hoặc để trống cả hai.")
        return not e

    def to_submission(self) -> NewSubmission:
        v = self.values

        def opt(name: str) -> str | None:
            return v[name].strip() or None

        return NewSubmission(
            kind=v["kind"],
            submitter_type=v["submitter_type"],
            title=v["title"],
            content=v["content"],
            province=opt("province"),
            contact_name=opt("contact_name"),
            contact_email=opt("contact_email"),
            contact_phone=opt("contact_phone"),
            contact_address=opt("contact_address"),
            ward=opt("ward"),
            address=opt("address"),
            latitude=opt("latitude"),
            longitude=opt("longitude"),
            publish_consent=v["publish_consent"] == "1",
        )
