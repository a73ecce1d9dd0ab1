"""What the case pages show, built from the API's own view (``service.views.case_detail``).

Using the API's view means the page masks exactly what the API masks (analysts: texts through
``mask_personal``, no tracking codes or contact details, no raw texts) and offers exactly the actions the API allows.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ValidationError

from service.schemas.cases import (
    AssignIn,
    CaseDetail,
    EventOut,
    NoteIn,
    ReasonIn,
    RespondIn,
    RouteIn,
    TargetIn,
    TransferIn,
)
from service.web.labels import KIND_LABELS, STATE_LABELS
from triage.cases.accounts import Principal, Role
from triage.cases.workflow import CaseState
from triage.nlp.agencies import Agency, default_registry


@dataclass(frozen=True)
class Field:
    name: str
    label: str
    widget: str  # agency | handler | kind | programme | text | textarea | number
    required: bool = False
    hint: str = ""


@dataclass(frozen=True)
class ActionSpec:
    action: str
    button: str
    fields: tuple[Field, ...] = ()
    danger: bool = False
    primary: bool = False  # the usual next step: shown open; the others sit under "Thao tác khác"


_REASON = Field("reason", "Lý do", "textarea", required=True)
_NOTE = Field("note", "Ghi chú (không bắt buộc)", "textarea")
_TARGET = Field("target", "Số hồ sơ kia", "number", required=True, hint="Ví dụ: 12")

ACTIONS: dict[str, ActionSpec] = {
    spec.action: spec
    for spec in (
        ActionSpec(
            "triage",
            "Xác nhận tuyến chuyển",
            (
                Field("agency", "Cơ quan chịu trách nhiệm", "agency", required=True),
                Field("field", "Lĩnh vực (không bắt buộc)", "text"),
                Field("programme_field", "Nhóm nhiệm vụ", "programme"),
                Field("kind", "Loại", "kind"),
                _NOTE,
            ),
            primary=True,
        ),
        ActionSpec("take", "Nhận xử lý hồ sơ này", primary=True),
        ActionSpec("assign", "Giao xử lý", (Field("assignee", "Cán bộ xử lý", "handler", required=True), _NOTE)),
        ActionSpec("start", "Bắt đầu xử lý", primary=True),
        ActionSpec(
            "respond",
            "Gửi trả lời",
            (Field("body", "Nội dung trả lời người gửi", "textarea", required=True),),
            primary=True,
        ),
        ActionSpec("close", "Kết thúc hồ sơ", (_NOTE,), primary=True),
        ActionSpec("accept_transfer", "Nhận hồ sơ được chuyển đến", primary=True),
        ActionSpec(
            "transfer",
            "Chuyển cơ quan khác",
            (Field("agency", "Cơ quan có thẩm quyền", "agency", required=True), Field("reason", "Lý do", "textarea")),
        ),
        ActionSpec("return_for_info", "Yêu cầu bổ sung", (Field("reason", "Thông tin cần bổ sung", "textarea", True),)),
        ActionSpec("resubmit", "Đã nhận bổ sung", (_NOTE,), primary=True),
        ActionSpec("reopen", "Mở lại", (_REASON,)),
        ActionSpec("mark_duplicate", "Đánh dấu trùng", (_TARGET,)),
        ActionSpec("merge", "Gộp vào hồ sơ kia", (_TARGET,), danger=True),
        ActionSpec("reject", "Từ chối xử lý", (_REASON,), danger=True),
        # Moderation decisions: not workflow steps, shown in their own panel (``moderation_actions``).
        ActionSpec("moderate_confirm", "Xác nhận cờ", (_NOTE,), danger=True),
        ActionSpec("moderate_dismiss", "Bỏ cờ", (_NOTE,)),
    )
}
MODERATION_REASONS = {"abuse": "Ngôn từ xúc phạm / thù ghét", "spam": "Nghi là tin rác (spam)"}
DECISION_LABELS = {"confirm": "Đã xác nhận cờ", "dismiss": "Đã bỏ cờ"}
REQUIRED_MESSAGES = {
    "agency": "Vui lòng chọn cơ quan.",
    "assignee": "Vui lòng chọn cán bộ xử lý.",
    "reason": "Vui lòng nhập lý do.",
    "body": "Vui lòng nhập nội dung trả lời.",
    "target": "Vui lòng nhập số hồ sơ (một số nguyên dương).",
}


# Each form is checked by the API's model for the same action, so a form accepts exactly what the JSON
# body would (lengths, NUL characters, the id range): one set of rules, and no input the API refuses
# can reach the workflow from a form.
FORM_MODELS: dict[str, type[BaseModel]] = {
    "triage": RouteIn,
    "assign": AssignIn,
    "transfer": TransferIn,
    "return_for_info": ReasonIn,
    "reopen": ReasonIn,
    "reject": ReasonIn,
    "resubmit": NoteIn,
    "close": NoteIn,
    "respond": RespondIn,
    "mark_duplicate": TargetIn,
    "merge": TargetIn,
    "moderate_confirm": NoteIn,
    "moderate_dismiss": NoteIn,
}


def _problem(f: Field, error: Any) -> str:
    kind = str(error.get("type", ""))
    if f.name in REQUIRED_MESSAGES and (kind == "missing" or f.widget == "number"):
        return REQUIRED_MESSAGES[f.name]
    if kind == "missing":
        return f"Vui lòng nhập {f.label.lower()}."
    if kind == "string_too_long":
        return f"{f.label}: quá dài (tối đa {error.get('ctx', {}).get('max_length')} ký tự)."
    return f"{f.label}: có ký tự hoặc giá trị không hợp lệ."


def check_form(spec: ActionSpec, values: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """The values as the API's model for this action reads them, or the Vietnamese messages of what is wrong.

    Empty fields are left out (the model's defaults apply), so a required one is reported as missing.
    """
    model = FORM_MODELS.get(spec.action)
    if model is None:
        return {}, []
    given = {k: v for k, v in values.items() if v}
    try:
        return model.model_validate(given).model_dump(exclude_none=True), []
    except ValidationError as exc:
        fields = {f.name: f for f in spec.fields}
        problems: list[str] = []
        for error in exc.errors():
            name = str(error["loc"][0]) if error.get("loc") else ""
            message = _problem(fields.get(name) or Field(name, name, "text"), error)
            if message not in problems:
                problems.append(message)
        return {}, problems


def offered_actions(detail: CaseDetail, who: Principal) -> list[ActionSpec]:
    """The forms to show: the API's allowed actions, plus 'take' (assign to me and start) for a handler."""
    allowed = set(detail.allowed_actions)
    specs = [ACTIONS[a] for a in ACTIONS if a in allowed]
    if who.role is Role.HANDLER and detail.state in (CaseState.TRIAGED, CaseState.ASSIGNED):
        mine = detail.assignee == who.username
        if not (detail.state == CaseState.ASSIGNED and mine) and who.may("assign") and who.may("start"):
            specs.insert(0, ACTIONS["take"])
    return specs


def moderation_actions(detail: CaseDetail, who: Principal) -> list[ActionSpec]:
    """ "Xác nhận cờ" / "Bỏ cờ" for clerks and admins on a screened case (dismiss only while flagged)."""
    if not who.may("moderate") or detail.suggestion is None:
        return []
    flagged = bool((detail.suggestion.get("moderation") or {}).get("flagged"))
    return [ACTIONS["moderate_confirm"], *([ACTIONS["moderate_dismiss"]] if flagged else [])]


def agency_choices() -> list[tuple[str, list[Agency]]]:
    reg = default_registry()
    central = sorted(reg.ministries(), key=lambda a: a.name)
    local = sorted(reg.provinces(), key=lambda a: a.name)
    return [("Bộ, ngành trung ương", central), ("Tỉnh, thành phố", local)]


def agency_name(code: str | None) -> str:
    return default_registry().name_of(code, code) if code else "—"


def countdown(days_left: int | None, status: str | None = None) -> str:
    """Working days to the answer deadline, in words.

    On a weekend or holiday right after the due day no working day has passed yet, but the case is
    overdue all the same (``status`` says so): it must not read "today is the last day".
    """
    if days_left is None:
        return ""
    if days_left > 0:
        return f"Còn {days_left} ngày làm việc"
    if days_left == 0:
        return "Quá hạn (hạn cuối đã qua)" if status == "overdue" else "Hôm nay là hạn cuối"
    return f"Quá hạn {-days_left} ngày làm việc"


@dataclass
class SuggestionView:
    agencies: list[dict[str, Any]] = field(default_factory=list)
    fields: list[dict[str, Any]] = field(default_factory=list)
    programme_fields: list[dict[str, Any]] = field(default_factory=list)  # Resolution-57 task groups, top-3
    provinces: list[dict[str, Any]] = field(default_factory=list)
    similar: list[dict[str, Any]] = field(default_factory=list)
    flags: list[dict[str, str]] = field(default_factory=list)
    moderation: dict[str, Any] | None = None  # the stored screening (scores, flag, the clerk's decision)
    kind: str | None = None
    model_version: str | None = None
    present: bool = False


def _flag(raw: Any) -> dict[str, str]:
    """One moderation flag from whatever form the stored suggestion holds (a word, or a dict)."""
    if isinstance(raw, dict):
        label = raw.get("label") or raw.get("name") or raw.get("kind") or raw.get("type") or "cờ kiểm duyệt"
        detail = raw.get("reason") or raw.get("detail") or ""
        score = raw.get("score")
        if isinstance(score, int | float):
            detail = f"{detail} ({score:.0%})".strip()
        return {"label": str(label), "detail": str(detail)}
    return {"label": str(raw), "detail": ""}


def suggestion_view(suggestion: dict[str, Any] | None) -> SuggestionView:
    """Read the stored suggestion dict: agency top-3, fields, provinces, similar cases or duplicates, flags."""
    if not suggestion:
        return SuggestionView()
    duplicates = suggestion.get("duplicates")
    similar_raw = duplicates if isinstance(duplicates, list) and duplicates else suggestion.get("similar") or []
    similar = []
    for item in similar_raw:
        if isinstance(item, dict) and "case_id" in item:  # None: another agency's case, shown without its number
            similar.append(
                {
                    "case_id": None if item["case_id"] is None else int(item["case_id"]),
                    "score": float(item.get("score") or 0.0),
                    # P(same matter) when the same-matter scorer judged the pair (None: cosine mode, older cases)
                    "probability": None if item.get("probability") is None else float(item["probability"]),
                    "duplicate": bool(duplicates) or bool(item.get("duplicate") or item.get("likely_duplicate")),
                }
            )
    flags_raw = suggestion.get("flags") or []
    flags = [_flag(f) for f in (flags_raw if isinstance(flags_raw, list) else [flags_raw])]
    moderation = suggestion.get("moderation") if isinstance(suggestion.get("moderation"), dict) else None
    flags += _moderation_flags(moderation)
    return SuggestionView(
        agencies=[a for a in suggestion.get("agencies", []) if isinstance(a, dict)][:3],
        fields=[f for f in suggestion.get("fields", []) if isinstance(f, dict)][:3],
        programme_fields=[f for f in suggestion.get("programme_fields") or [] if isinstance(f, dict)][:3],
        provinces=[p for p in suggestion.get("provinces", []) if isinstance(p, dict)][:3],
        similar=similar,
        flags=flags,
        kind=suggestion.get("kind"),
        model_version=suggestion.get("model_version"),
        present=True,
        moderation=moderation,
    )


def _moderation_flags(moderation: dict[str, Any] | None) -> list[dict[str, str]]:
    """Badges for a raised moderation flag (none once a clerk dismissed it)."""
    if not moderation or not moderation.get("flagged"):
        return []
    decision = DECISION_LABELS.get(str(moderation.get("decision")), "chờ cán bộ xem xét")
    reasons = [r for r in moderation.get("reasons") or [] if r in MODERATION_REASONS]
    if not reasons:  # raised by a clerk although the model did not
        return [{"label": "Cờ kiểm duyệt", "detail": decision}]
    out = []
    for r in reasons:
        score = moderation.get(r)
        pct = f"{score:.0%}, " if isinstance(score, int | float) else ""
        out.append({"label": MODERATION_REASONS[r], "detail": f"({pct}{decision})"})
    return out


_SHOWN_KEYS = {
    "agency_code": "cơ quan",
    "field": "lĩnh vực",
    "kind": "loại",
    "assignee": "cán bộ",
    "reason": "lý do",
    "note": "ghi chú",
    "tracking_code": "mã theo dõi",
    "answer_due": "hạn trả lời",
    "duplicate_of": "trùng với hồ sơ",
    "merged_into": "gộp vào hồ sơ",
    "from": "từ cơ quan",
    "absorbed_case": "nhận hồ sơ",
}
_DECISION_WORDS = {"confirm": "xác nhận cờ kiểm duyệt", "dismiss": "bỏ cờ kiểm duyệt"}


def event_lines(e: EventOut) -> list[str]:
    """What an audit event changed, in words (state first, then the fields that moved)."""
    before, after = e.before or {}, e.after or {}
    lines: list[str] = []
    if after.get("state") and after.get("state") != before.get("state"):
        old = STATE_LABELS.get(str(before.get("state")), "") if before.get("state") else ""
        new = STATE_LABELS.get(str(after["state"]), str(after["state"]))
        lines.append(f"{old} → {new}" if old else new)
    for key, word in _SHOWN_KEYS.items():
        value = after.get(key)
        if value in (None, "", []) or before.get(key) == value:
            continue
        if key in ("agency_code", "from"):
            value = agency_name(str(value))
        elif key == "kind":
            value = KIND_LABELS.get(str(value), value)
        elif key == "answer_due":
            value = "/".join(reversed(str(value).split("-")))
        lines.append(f"{word}: {value}")
    if after.get("suggested_agency"):  # without a suggestion there was nothing to confirm or correct
        if after.get("confirmed") is True:
            lines.append("xác nhận đúng gợi ý của hệ thống")
        elif after.get("confirmed") is False:
            lines.append(f"sửa gợi ý của hệ thống ({agency_name(str(after['suggested_agency']))})")
    if e.action == "moderate" and after.get("decision") in _DECISION_WORDS:
        lines.append(_DECISION_WORDS[str(after["decision"])])
    elif e.action in ("submit", "suggest") and (after.get("moderation") or {}).get("flagged"):
        reasons = ", ".join(MODERATION_REASONS.get(r, r) for r in after["moderation"].get("reasons") or [])
        lines.append(f"hệ thống gắn cờ kiểm duyệt: {reasons}")
    if after.get("response_chars"):
        lines.append(f"trả lời {after['response_chars']} ký tự")
    return lines
