"""Words the API and the pages share: the public status of a case, as a citizen tracking it reads it."""

from __future__ import annotations

from triage.cases.workflow import CaseState

STATUS_LABELS: dict[str, str] = {
    CaseState.NEW: "Đã tiếp nhận",
    CaseState.TRIAGED: "Đã phân loại, chờ giao xử lý",
    CaseState.ASSIGNED: "Đã giao xử lý",
    CaseState.IN_PROGRESS: "Đang xử lý",
    CaseState.RETURNED: "Cần bổ sung thông tin",
    CaseState.TRANSFERRED: "Đã chuyển cơ quan có thẩm quyền",
    CaseState.RESPONDED: "Đã trả lời",
    CaseState.CLOSED: "Đã kết thúc",
    CaseState.DUPLICATE: "Đã gộp với phản ánh cùng nội dung",
    CaseState.REJECTED: "Không tiếp nhận xử lý",
}
