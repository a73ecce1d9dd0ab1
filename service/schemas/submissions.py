"""Public intake: what a citizen sends, the receipt it gets, and the tracking view."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

from service.schemas.common import MAX_CONTENT, MAX_TITLE, StrictIn

Kind = Literal["phan_anh", "kien_nghi", "sang_kien", "giai_phap"]
SubmitterType = Literal["citizen", "organisation", "business", "expert"]


class ContactIn(StrictIn):
    """How the agency can reach the submitter; never shown on the public tracking page."""

    name: str | None = Field(default=None, max_length=200, examples=["Nguyễn Văn An"])
    email: str | None = Field(default=None, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
    phone: str | None = Field(default=None, max_length=40, pattern=r"^\+?[0-9 .()-]{6,40}$")
    address: str | None = Field(default=None, max_length=500)


class PlaceIn(StrictIn):
    """Where the matter is (all optional): a ward or commune, an address, a phone's coordinates (WGS 84)."""

    ward: str | None = Field(default=None, max_length=200, examples=["Phường Hoàn Kiếm"])
    address: str | None = Field(default=None, max_length=500, examples=["12 Tràng Tiền"])
    lat: float | None = Field(default=None, ge=-90, le=90, description="Latitude; with lon, or neither.")
    lon: float | None = Field(default=None, ge=-180, le=180, description="Longitude; with lat, or neither.")


class SubmissionIn(StrictIn):
    """A phản ánh, kiến nghị, sáng kiến or giải pháp. Texts are stored exactly as sent (HTML stays text)."""

    kind: Kind = Field(description="phan_anh (report), kien_nghi (petition), sang_kien (initiative), giai_phap.")
    submitter_type: SubmitterType = Field(description="Who sends it: citizen, organisation, business or expert.")
    title: str = Field(min_length=1, max_length=MAX_TITLE, description=f"Short title, at most {MAX_TITLE} characters.")
    content: str = Field(
        min_length=1,
        max_length=MAX_CONTENT,
        description=f"The full text, at most {MAX_CONTENT:,} characters (longer texts are refused with 422).",
    )
    province: str | None = Field(
        default=None, max_length=200, description="Province or centrally-run city concerned (name or code), if any."
    )
    contact: ContactIn | None = None
    place: PlaceIn | None = None
    publish_consent: bool = Field(
        default=False,
        description="The sender agrees that the answer may be published on /hoi-dap with personal data masked.",
    )


class ReceiptOut(BaseModel):
    """The acknowledgement: keep the tracking code to follow the case."""

    tracking_code: str
    received_at: datetime
    response_deadline: date = Field(
        description="Last day for the answer (Vietnamese working days, receipt day excluded)."
    )
    forward_deadline: date = Field(description="Last day to forward the matter if it belongs to another agency.")
    status_url: str
    follow_up_secret: str | None = Field(
        default=None,
        description="Secret for the follow-up endpoints (header X-Follow-Up-Secret), shown once; "
        "null on an idempotent replay when it could not be shown again.",
    )
    follow_up_url: str | None = Field(default=None, description="The web follow-up page (a secret link).")
    attachments: list[int] = Field(default_factory=list, description="Ids of the files stored with it.")


class TrackOut(BaseModel):
    """Status and dates only: no personal data, no texts, no internal notes."""

    tracking_code: str
    status: str
    status_label: str
    received_at: datetime
    response_deadline: date | None
    answered_at: datetime | None
    closed_at: datetime | None
    last_update: datetime


class FollowUpInfoIn(StrictIn):
    """The information the agency asked for (the case must be returned for information)."""

    text: str = Field(min_length=1, max_length=10_000)


class WithdrawIn(StrictIn):
    reason: str | None = Field(default=None, max_length=10_000)


class RatingIn(StrictIn):
    rating: Literal["solved", "partly", "not_solved"]
    comment: str | None = Field(default=None, max_length=10_000)


class FollowUpAnswerOut(BaseModel):
    body: str
    at: datetime


class FollowUpOut(BaseModel):
    """What the holder of the secret sees: status, the answers, and what they may do now."""

    tracking_code: str
    status: str
    status_label: str
    response_deadline: date | None
    answers: list[FollowUpAnswerOut]
    can_add_information: bool
    can_withdraw: bool
    can_rate: bool
    rating: str | None = Field(default=None, description="The rating given to the latest answer, if any.")
