"""Campaigns over HTTP: near-identical submissions grouped at intake, listed, read and answered together."""

from __future__ import annotations

import itertools
from datetime import timedelta

from tests.service.conftest import Service
from triage.cases.intake import NewSubmission, receive
from triage.store.tables import utcnow

# Each staged campaign gets its own matter (texts that differ only in a name or a number ARE one
# campaign) and its own week, so staged campaigns never run into each other.
MATTERS = [
    ("Đề nghị lắp đèn tín hiệu giao thông tại ngã tư", "thường xuyên xảy ra va chạm vào giờ cao điểm"),
    ("Nước sinh hoạt có mùi lạ và màu vàng đục", "cả khu phố phải mua nước đóng chai để nấu ăn"),
    ("Quán karaoke hát đến nửa đêm gây ồn", "người già và trẻ nhỏ không ngủ được"),
    ("Bãi rác tự phát bốc mùi hôi thối cạnh chợ", "ruồi muỗi nhiều, nguy cơ dịch bệnh"),
    ("Chậm cấp giấy chứng nhận quyền sử dụng đất", "hồ sơ nộp từ năm ngoái vẫn chưa có kết quả"),
    ("Học phí trường mầm non công lập tăng đột ngột", "nhiều gia đình lao động không kham nổi"),
    ("Xe tải chở vật liệu làm hỏng đường liên xã", "mặt đường sụt lún, ổ gà khắp nơi"),
    ("Cổng dịch vụ công trực tuyến thường xuyên bị lỗi", "không nộp được hồ sơ đăng ký kinh doanh"),
    ("Trạm y tế xã thiếu thuốc và bác sĩ", "người bệnh phải lên tuyến huyện rất xa"),
    ("Đề nghị hỗ trợ kinh phí cho đề tài nghiên cứu khoa học cấp cơ sở", "thủ tục thanh quyết toán quá phức tạp"),
    ("Cây xanh trên vỉa hè có nguy cơ đổ", "mùa mưa bão sắp đến rất nguy hiểm cho người đi đường"),
    ("Kênh thoát nước bị lấn chiếm gây ngập úng", "mỗi trận mưa nước tràn vào nhà dân"),
    ("Chậm chi trả trợ cấp cho người có công", "nhiều tháng liền chưa nhận được tiền"),
    ("Doanh nghiệp khởi nghiệp khó tiếp cận vốn vay ưu đãi", "điều kiện tài sản bảo đảm quá cao"),
    ("Sạt lở bờ sông đe dọa nhà dân", "đã có ba căn nhà bị cuốn trôi một phần"),
    ("Thủ tục đăng ký sáng chế kéo dài quá lâu", "đơn nộp hơn hai năm chưa được thẩm định"),
    ("Cháy rừng do đốt nương rẫy không kiểm soát", "khói bụi bao trùm cả thị trấn nhiều ngày"),
    ("Giá điện sinh hoạt tháng này tăng bất thường", "hóa đơn gấp ba lần tháng trước"),
    ("Thiếu giáo viên tiếng Anh ở các trường vùng cao", "học sinh lớp ba chưa được học ngoại ngữ"),
    ("Cơ sở giết mổ gia súc xả thải ra sông", "cá chết hàng loạt, nước bốc mùi"),
    ("Đề nghị mở tuyến xe buýt đến khu công nghiệp", "công nhân phải đi xe ôm rất tốn kém"),
    ("Dự án treo nhiều năm khiến dân không xây được nhà", "quy hoạch không triển khai mà cũng không hủy"),
    ("Hàng giả bán tràn lan trên mạng xã hội", "người tiêu dùng bị lừa mua mỹ phẩm kém chất lượng"),
    ("Đề nghị chuyển đổi số hồ sơ bệnh án điện tử", "bệnh nhân phải mang theo giấy tờ khi tái khám"),
    ("Trường học xuống cấp, mái tôn thủng dột", "học sinh phải nghỉ học mỗi khi trời mưa"),
    ("Khói bụi từ nhà máy xi măng bao phủ khu dân cư", "nhiều người mắc bệnh hô hấp"),
    ("Chậm giải ngân vốn hỗ trợ chuyển đổi cây trồng", "nông dân đã làm xong mà chưa nhận tiền"),
    ("Chó thả rông cắn người trong khu dân cư", "đã có trẻ em bị cắn phải tiêm phòng dại"),
    ("Đề nghị công khai danh sách hộ nghèo được hỗ trợ", "có trường hợp khá giả vẫn được nhận"),
    ("Nhân lực công nghệ thông tin ở cơ quan nhà nước bỏ việc", "lương thấp không giữ chân được kỹ sư"),
]
_staged = itertools.count()


SIGNERS = ["Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em", "Vũ Thị Hoa"]


def petition(matter: tuple[str, str], signer: str) -> NewSubmission:
    title, why = matter
    return NewSubmission(
        kind="kien_nghi",
        submitter_type="citizen",
        title=title,
        content=f"{title}: {why}. Kính đề nghị cơ quan có thẩm quyền xem xét, giải quyết sớm. Người gửi: {signer}.",
    )


def stage_campaign(
    service: Service, n: int = 3, agency: str | None = "BTC", start: bool = True
) -> tuple[int, list[int]]:
    """``n`` copies of one petition through the real intake (encoder, case index, grouping); routed and started."""
    k = next(_staged)
    matter = MATTERS[k % len(MATTERS)]
    now = utcnow() - timedelta(days=10 * k)  # one week of its own: outside every other staged campaign's window
    ids = [
        receive(
            service.svc.db,
            petition(matter, SIGNERS[i % len(SIGNERS)]),
            pipeline=service.svc.pipeline,
            policy=service.svc.policy,
            now=now + timedelta(seconds=i),
        ).case_id
        for i in range(n)
    ]
    if agency is not None:
        handler = service.handler_name(agency)
        with service.work() as w:
            for cid in ids:
                w.route(cid, agency=agency)
                w.assign(cid, assignee=handler)
                if start:
                    w.start(cid)
    detail = service.client.get(f"/api/v1/cases/{ids[-1]}", headers=service.headers("admin")).json()
    assert detail["campaign_id"] is not None, detail
    return int(detail["campaign_id"]), ids


def test_campaign_is_listed_read_and_answered_once_for_all(service: Service) -> None:
    campaign_id, ids = stage_campaign(service, n=4)
    h = service.headers("admin")
    listed = service.client.get("/api/v1/campaigns", params={"limit": 200}, headers=h).json()
    assert listed["min_size"] == 3
    item = next(i for i in listed["items"] if i["id"] == campaign_id)
    assert item["size"] == 4 and item["open_cases"] == 4 and item["title"] in [m[0] for m in MATTERS]
    detail = service.client.get(f"/api/v1/campaigns/{campaign_id}", headers=h).json()
    assert [c["id"] for c in detail["cases"]] == ids and all(c["campaign_id"] == campaign_id for c in detail["cases"])
    case = service.client.get(f"/api/v1/cases/{ids[-1]}", headers=h).json()
    assert case["suggestion"]["likely_duplicate"] is True
    assert {s["case_id"] for s in case["suggestion"]["similar"]} >= set(ids[:3])
    r = service.client.post(
        f"/api/v1/campaigns/{campaign_id}/respond",
        json={"body": "Sở GTVT sẽ lắp đèn trong quý tới.", "case_ids": ids},
        headers=h,
    )
    assert r.status_code == 200, r.text
    assert r.json() == {"campaign_id": campaign_id, "responded": ids, "skipped": []}
    for cid in ids:
        timeline = service.client.get(f"/api/v1/cases/{cid}", headers=h).json()
        assert timeline["state"] == "responded"
        assert any(e["action"] == "respond" for e in timeline["timeline"])
    again = service.client.post(
        f"/api/v1/campaigns/{campaign_id}/respond", json={"body": "Lần hai.", "case_ids": ids}, headers=h
    )
    assert again.status_code == 409 and "no case of campaign" in again.json()["detail"]


def test_campaign_bad_input_is_4xx(service: Service) -> None:
    h = service.headers("admin")
    assert service.client.get("/api/v1/campaigns/999999", headers=h).status_code == 404
    assert service.client.get("/api/v1/campaigns/0", headers=h).status_code == 422
    assert service.client.get("/api/v1/campaigns", params={"min_size": 1}, headers=h).status_code == 422
    r = service.client.post("/api/v1/campaigns/1/respond", json={"body": "", "case_ids": [1]}, headers=h)
    assert r.status_code == 422
    for ids in ([], [0], [2**31], None):  # the confirmed list is required, non-empty, of case ids
        r = service.client.post("/api/v1/campaigns/1/respond", json={"body": "x", "case_ids": ids}, headers=h)
        assert r.status_code == 422, ids
