"""Vietnamese words for the stored codes: kinds, submitter types, states, actions, deadline status."""

from __future__ import annotations

from service.labels import STATUS_LABELS

KIND_LABELS: dict[str, str] = {
    "phan_anh": "Phản ánh",
    "kien_nghi": "Kiến nghị",
    "sang_kien": "Sáng kiến",
    "giai_phap": "Giải pháp",
}
SUBMITTER_LABELS: dict[str, str] = {
    "citizen": "Người dân",
    "organisation": "Tổ chức",
    "business": "Doanh nghiệp",
    "expert": "Chuyên gia, nhà khoa học",
}
STATE_LABELS: dict[str, str] = {
    "new": "Mới tiếp nhận",
    "triaged": "Đã phân loại",
    "assigned": "Đã giao xử lý",
    "in_progress": "Đang xử lý",
    "returned": "Chờ bổ sung thông tin",
    "transferred": "Đang chuyển cơ quan",
    "responded": "Đã trả lời",
    "closed": "Đã kết thúc",
    "duplicate": "Trùng lặp",
    "rejected": "Từ chối xử lý",
}
PUBLIC_STATUS_LABELS: dict[str, str] = {str(k): v for k, v in STATUS_LABELS.items()}
# Workflow actions (and the audit trail's own entries: submit, suggest, escalate, absorb).
ACTION_LABELS: dict[str, str] = {
    "submit": "Tiếp nhận phản ánh",
    "publish": "Công khai câu trả lời trên trang Hỏi đáp",
    "unpublish": "Gỡ câu trả lời khỏi trang Hỏi đáp",
    "suggest": "Hệ thống gợi ý tuyến chuyển",
    "triage_failed": "Hệ thống chưa gợi ý được tuyến chuyển (sẽ thử lại)",
    "triage": "Xác nhận / sửa tuyến chuyển",
    "assign": "Giao cán bộ xử lý",
    "take": "Nhận xử lý",
    "start": "Bắt đầu xử lý",
    "transfer": "Chuyển cơ quan có thẩm quyền",
    "accept_transfer": "Nhận hồ sơ được chuyển đến",
    "return_for_info": "Yêu cầu bổ sung thông tin",
    "resubmit": "Đã nhận thông tin bổ sung",
    "respond": "Trả lời người gửi",
    "close": "Kết thúc hồ sơ",
    "reopen": "Mở lại hồ sơ",
    "reject": "Từ chối xử lý",
    "mark_duplicate": "Đánh dấu trùng lặp",
    "merge": "Gộp vào hồ sơ khác",
    "escalate": "Cảnh báo quá hạn",
    "absorb": "Nhận hồ sơ gộp vào",
    "moderate": "Xem xét cờ kiểm duyệt",
    "moderate_confirm": "Xác nhận cờ",
    "moderate_dismiss": "Bỏ cờ",
    "withdraw": "Người gửi rút phản ánh",
    "rate": "Người gửi đánh giá câu trả lời",
    "attach": "Nhận tệp đính kèm",
    "followup_secret": "Cấp lại liên kết theo dõi",
}
DEADLINE_LABELS: dict[str, str] = {
    "on_track": "Trong hạn",
    "due_soon": "Sắp đến hạn",
    "overdue": "Quá hạn",
}
ROLE_LABELS: dict[str, str] = {
    "clerk": "Cán bộ tiếp nhận",
    "handler": "Cán bộ xử lý",
    "analyst": "Chuyên viên phân tích",
    "admin": "Quản trị",
    "reporter": "Cán bộ báo cáo (NQ57)",
    "coordinator": "Cán bộ điều phối (NQ57)",
    "leader": "Lãnh đạo",
}
WEEKDAYS = ("Thứ Hai", "Thứ Ba", "Thứ Tư", "Thứ Năm", "Thứ Sáu", "Thứ Bảy", "Chủ nhật")
