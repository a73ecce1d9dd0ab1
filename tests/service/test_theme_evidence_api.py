"""The evidence panel of a systemic theme through the API and the report page (both backends), and the
report page in Vietnamese only.

The cases are those of tests/service/test_themes_api.py (same staging, same 2025 period): the flood
theme is routed to two ministries, so it gets a panel; the others are held by no agency.
"""

from __future__ import annotations

import csv
import html
import io
import re
from datetime import date
from typing import Any

import pytest

from service.web.theme_page import render_report
from tests.service.conftest import Service
from tests.service.test_themes_api import PERIOD, _stage
from tests.service.web.test_pages import browser

BOM = "\ufeff"
# Messages the report page used to show in English (from the theme model and the report), and words
# of them: none may appear on the page or in the HTML file again.
ENGLISH_MESSAGES = (
    "no emerging test",
    "week(s)",
    "the data spans",
    "need more than",
    "too few submissions",
    "to find themes",
    "the period spans",
    "the emerging test needs",
)
ENGLISH_WORDS = {
    "the", "data", "spans", "week", "weeks", "need", "needs", "more", "than", "window", "emerging", "test", "too",
    "few", "submissions", "with", "embeddings", "find", "themes", "theme", "period", "baseline", "recent", "both",
    "and", "none", "null", "report", "agencies", "provinces", "evidence", "cases", "unknown",
}  # fmt: skip


def _get(service: Service, path: str, params: dict[str, Any], role: str = "analyst") -> Any:
    r = service.client.get(path, params=params, headers=service.headers(role))
    assert r.status_code == 200, r.text
    return r


def _systemic(service: Service) -> dict[str, Any]:
    _stage(service)
    report = _get(service, "/api/v1/themes", PERIOD).json()
    with_panel = [t for t in report["themes"] if t["evidence"]]
    assert with_panel, [t["label"] for t in report["themes"]]
    flood = with_panel[0]
    assert any("ngập" in k for k in flood["keywords"]) and flood["systemic"]
    return dict(flood)


def visible_words(page: str) -> list[str]:
    """The words a reader sees: no markup, scripts, styles or attribute values."""
    body = re.sub(r"<(script|style)\b.*?</\1>", " ", page, flags=re.S | re.I)
    body = re.sub(r"<[^>]+>", " ", body)
    return re.findall(r"[^\W\d_]+", html.unescape(body))


def assert_vietnamese(page: str) -> None:
    text = " ".join(visible_words(page))
    assert not [m for m in ENGLISH_MESSAGES if m in text.lower()], text
    english = sorted({w for w in visible_words(page) if w.lower() in ENGLISH_WORDS})
    assert not english, english


@pytest.mark.slow
def test_the_panel_through_the_api(service: Service) -> None:
    flood = _systemic(service)
    panel = _get(service, f"/api/v1/themes/{flood['id']}/evidence", PERIOD).json()
    e = panel["evidence"]
    assert panel["theme_id"] == flood["id"] and panel["label"] == flood["label"] and e == flood["evidence"]
    assert "agencies" in e["spans"] and {a["code"] for a in e["agencies"]} == {"BXD", "BNNMT"}
    assert sum(a["count"] for a in e["agencies"]) + e["unassigned"] == e["cases"] > 0
    assert e["texts"] and all("0912" not in t["text"] and "[SĐT]" in t["text"] for t in e["texts"])
    # CSV for Excel: a BOM first, then the same counts
    r = _get(service, f"/api/v1/themes/{flood['id']}/evidence", {**PERIOD, "format": "csv"})
    assert r.headers["content-type"].startswith("text/csv") and "attachment" in r.headers["content-disposition"]
    body = r.content.decode("utf-8")
    assert body.startswith(BOM)
    rows = list(csv.reader(io.StringIO(body[1:])))
    assert {x[1]: int(x[3]) for x in rows if x[0] == "Cơ quan" and x[1]} == {
        a["code"]: a["count"] for a in e["agencies"]
    }
    md = _get(service, f"/api/v1/themes/{flood['id']}/evidence", {**PERIOD, "format": "md"}).text
    assert md.startswith("## Chủ đề liên ngành") and "Bộ Xây dựng" in md and "0912" not in md


@pytest.mark.slow
def test_who_may_read_it_and_what_has_none(service: Service) -> None:
    flood = _systemic(service)
    report = _get(service, "/api/v1/themes", PERIOD).json()
    plain = next(t for t in report["themes"] if not t["evidence"])
    r = service.client.get(f"/api/v1/themes/{plain['id']}/evidence", params=PERIOD, headers=service.headers("analyst"))
    assert r.status_code == 404 and "không có bảng bằng chứng" in r.json()["detail"]
    for role, agency in (("clerk", None), ("handler", "BXD")):  # a handler of an agency in the theme too
        headers = service.headers(role, agency)
        r = service.client.get(f"/api/v1/themes/{flood['id']}/evidence", params=PERIOD, headers=headers)
        assert r.status_code == 403, (role, r.text)
    r = service.client.get(f"/api/v1/themes/{flood['id']}/evidence", params=PERIOD)
    assert r.status_code == 401
    _get(service, f"/api/v1/themes/{flood['id']}/evidence", PERIOD, role="admin")


@pytest.mark.slow
def test_the_report_page_links_the_exports(service: Service) -> None:
    flood = _systemic(service)
    analyst = browser(service, "analyst")
    page = analyst.get("/staff/reports", params={"start": "2025-03-01", "end": PERIOD["until"]})
    assert page.status_code == 200
    panel = page.text[page.text.index(f'id="evidence-{flood["id"]}"') :]
    panel = panel[: panel.index("</details>")]
    assert "Bộ Xây dựng" in panel and "0912" not in panel
    links = re.findall(r'href="(/staff/reports/themes/[^"]+)"', panel)
    assert len(links) == 2 and any(".csv?" in x for x in links) and any(".md?" in x for x in links)
    csv_file = analyst.get(html.unescape(next(x for x in links if ".csv?" in x)))
    assert csv_file.status_code == 200 and csv_file.content.decode("utf-8").startswith(BOM + "Mục,")
    assert browser(service, "clerk").get(html.unescape(links[0])).status_code == 403
    assert_vietnamese(page.text)


@pytest.mark.slow
def test_the_report_page_is_vietnamese_when_the_emerging_test_cannot_run(service: Service) -> None:
    """Two weeks of data in the 12 weeks to 19 Jan 2025: themes, but no emerging test (it needs more)."""
    from service.theme_cache import period_report

    _stage(service)
    page = browser(service, "analyst").get("/staff/reports", params={"start": "2025-01-06", "end": "2025-01-19"})
    assert page.status_code == 200
    assert '<ol class="themes">' in page.text
    assert "chưa kiểm định chủ đề nổi lên: dữ liệu chỉ trải trên 2 tuần" in page.text
    assert_vietnamese(page.text)
    api = _get(service, "/api/v1/themes", {"until": "2025-01-19"}).json()
    assert api["note"] and api["note"].startswith("chưa kiểm định chủ đề nổi lên")
    report = period_report(service.svc, date.fromisoformat(api["since"]), date.fromisoformat(api["until"]))
    assert_vietnamese(render_report(report))  # the HTML file `triage themes --out` writes
