"""GET /api/v1/themes and /api/v1/reports/emerging on both backends: report, masking, cache, bad periods.

Cases are staged through the real intake in a 2025 period no other test uses. Their vectors are set
around three fixed directions (one per theme) so the test checks the endpoints, not the encoder:
clustering of real text is tested in tests/triage/test_themes.py. Two cases are left without a
vector: the service encodes those with the real encoder.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import UTC, date, datetime, timedelta
from typing import Any

import numpy as np
import pytest
from sqlalchemy import update

from tests.service.conftest import Service
from triage.store.tables import Submission
from triage.store.vectors import to_bytes

START = date(2025, 1, 6)  # a Monday
WEEKS = 10
UNTIL = START + timedelta(weeks=WEEKS) - timedelta(days=1)
PERIOD = {"since": START.isoformat(), "until": UNTIL.isoformat()}
THEMES = {
    "flood": ("Ngập úng sau mưa", "Đường phố ngập sâu sau mưa lớn, cống thoát nước quá tải. Liên hệ 0912 345 678"),
    "permit": ("Cấp phép xây dựng chậm", "Thủ tục cấp giấy phép xây dựng nhà ở kéo dài quá hạn quy định"),
    "tax": ("Hoàn thuế chậm", "Hồ sơ hoàn thuế thu nhập cá nhân nộp đã lâu nhưng chưa được giải quyết"),
}
_staged: dict[str, bool] = {}


def _stage(service: Service) -> None:
    """Per week 6 cases of each theme; flood x3 in the last two weeks and routed to two ministries."""
    if _staged.get(service.backend):
        return
    rng = np.random.default_rng(0)
    directions = {k: rng.normal(size=service.svc.pipeline.embedder.dimension) for k in THEMES}
    n = 0
    for week in range(WEEKS):
        for key, (title, content) in THEMES.items():
            for _ in range(18 if key == "flood" and week >= WEEKS - 2 else 6):
                n += 1
                at = datetime.combine(START + timedelta(days=7 * week + n % 7), datetime.min.time(), UTC)
                cid = service.submit(title=title, content=f"{content} (lần {n})", contact=None, now=at)
                if n in (5, 11):
                    continue  # left without a vector: the report encodes it
                vec = directions[key] + 0.3 * rng.normal(size=len(directions[key]))
                with service.svc.db.session() as s:
                    s.execute(
                        update(Submission)
                        .where(Submission.case_id == cid)
                        .values(embedding=to_bytes(vec / np.linalg.norm(vec)))
                    )
                if key == "flood":
                    with service.work(now=at + timedelta(hours=1)) as w:
                        w.route(cid, agency="BXD" if n % 2 else "BNNMT")
    _staged[service.backend] = True


def _get(service: Service, path: str, params: dict[str, Any], role: str = "analyst") -> Any:
    r = service.client.get(path, params=params, headers=service.headers(role))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.slow
def test_themes_of_a_period(service: Service) -> None:
    _stage(service)
    report = _get(service, "/api/v1/themes", PERIOD)
    assert report["since"] == PERIOD["since"] and report["until"] == PERIOD["until"]
    assert report["submissions"] == 6 * 3 * WEEKS + 12 * 2 and report["without_embedding"] == 0
    assert len(report["weeks"]) == WEEKS and sum(report["totals_by_week"]) == report["submissions"]
    assert len(report["themes"]) >= 3
    flood = [t for t in report["themes"] if any("ngập" in k for k in t["keywords"])]
    assert flood and flood[0]["id"] in report["emerging"]
    assert flood[0]["systemic"] and {a["code"] for a in flood[0]["agencies"]} == {"BXD", "BNNMT"}
    texts = [e["text"] for t in report["themes"] for e in t["examples"]]
    assert texts and all("0912" not in x for x in texts) and any("[SĐT]" in x for x in texts)
    assert all(len(t["trend"]) == WEEKS for t in report["themes"])


@pytest.mark.slow
def test_emerging_report_and_the_cache(service: Service) -> None:
    _stage(service)
    full = _get(service, "/api/v1/themes", PERIOD)
    builds = service.svc.themes.builds
    emerging = _get(service, "/api/v1/reports/emerging", PERIOD, role="admin")
    assert service.svc.themes.builds == builds  # same period, same data: no new clustering
    assert [t["id"] for t in emerging["themes"]] == full["emerging"] and emerging["themes"]
    assert all(t["emerging"]["significant"] for t in emerging["themes"])
    assert emerging["tested"] == len(full["themes"])
    assert any("ngập" in k for k in emerging["themes"][0]["keywords"])
    # a new submission in the period changes the data: the next view is computed again, and includes it
    service.submit(title="Ngập úng sau mưa", content="Ngập nặng", now=datetime(2025, 3, 14, 3, tzinfo=UTC))
    again = _get(service, "/api/v1/themes", PERIOD)
    assert service.svc.themes.builds == builds + 1 and again["submissions"] == full["submissions"] + 1


@pytest.mark.slow
def test_the_json_is_the_core_report_field_for_field(service: Service) -> None:
    """The API answer is the frozen ThemeReport the cache holds, serialised (nothing renamed, dropped or added)."""
    from service.theme_cache import period_report
    from triage.cases.theme_report import ThemeReport, emerging_only

    _stage(service)
    api = _get(service, "/api/v1/themes", PERIOD)
    report = period_report(service.svc, START, UNTIL)  # the cached one the endpoint answered from
    assert isinstance(report, ThemeReport)
    assert api == {**_as_json(report), "tested": None}
    cut = _get(service, "/api/v1/reports/emerging", PERIOD)
    assert cut == _as_json(emerging_only(report))


def _as_json(report: Any) -> dict[str, Any]:
    """A dataclass's fields as JSON (dates as ISO text, tuples as lists), without the API's schema."""
    fields = {k: v for k, v in asdict(report).items() if k != "known"}  # kept for the next report, never shown
    data = json.dumps(fields, default=lambda v: v.isoformat() if isinstance(v, date) else str(v))
    return dict(json.loads(data))


@pytest.mark.parametrize(
    ("params", "reason"),
    [
        ({"since": "2025-03-01", "until": "2025-01-01"}, "after"),
        ({"since": "2020-01-01", "until": "2025-01-01"}, "at most"),
        ({"since": "1999-12-31", "until": "2000-01-05"}, "between"),
        ({"until": "0001-01-05"}, "between"),  # no date arithmetic before the check
        ({"since": "2025-13-01"}, ""),
    ],
)
def test_bad_periods_are_refused_with_a_reason(service: Service, params: dict[str, str], reason: str) -> None:
    for path in ("/api/v1/themes", "/api/v1/reports/emerging"):
        r = service.client.get(path, params=params, headers=service.headers("analyst"))
        assert r.status_code == 422, r.text
        assert reason in r.json()["detail"]


def test_an_empty_period_says_why_it_has_no_themes(service: Service) -> None:
    report = _get(service, "/api/v1/themes", {"since": "2023-02-06", "until": "2023-02-19"})
    assert report["themes"] == [] and report["submissions"] == 0 and "quá ít phản ánh" in report["note"]


@pytest.mark.slow
def test_the_analyst_page_shows_the_same_themes(service: Service) -> None:
    from tests.service.web.test_pages import browser

    _stage(service)
    api = _get(service, "/api/v1/themes", PERIOD)
    page = browser(service, "analyst").get("/staff/reports", params={"start": "2025-03-01", "end": UNTIL.isoformat()})
    assert page.status_code == 200
    section = page.text[page.text.index('id="themes"') :]
    top = next(t for t in api["themes"] if t["id"] == api["emerging"][0])
    assert top["label"] in section and "đang nổi lên" in section and "liên ngành" in section
    assert 'id="chart-themes"' in section and '<svg class="spark"' in section
    assert "0912" not in section and "Chưa có báo cáo" not in section
