"""triage(): the composed suggestion, on the real default encoder."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import numpy as np
import pytest

from triage.cases.pipeline import Pipeline, SubmissionText, triage
from triage.nlp.agencies import default_registry
from triage.nlp.agency_router import AgencyRouter, Routing
from triage.nlp.router import Prediction


class FixedIndex:
    def __init__(self) -> None:
        self.asked: list[tuple[int, int | None]] = []

    def search(self, vector: np.ndarray, k: int, *, exclude_case: int | None = None) -> list[tuple[int, float]]:
        self.asked.append((k, exclude_case))
        return [(7, 0.93), (3, 0.51)][:k]


@pytest.fixture(scope="module")
def pipeline(embedder: Any) -> Pipeline:
    return Pipeline(embedder=embedder, agency_router=AgencyRouter(embedder=embedder).fit(), similar=FixedIndex())


def sub(content: str, title: str = "Phản ánh", kind: str = "phan_anh", **kw: Any) -> SubmissionText:
    return SubmissionText(title, content, kind, datetime(2026, 2, 13, 3, tzinfo=UTC), **kw)


def test_suggestion_for_a_tax_matter(pipeline: Pipeline) -> None:
    s = pipeline.triage(
        sub("Hồ sơ hoàn thuế thu nhập cá nhân của tôi nộp ở Đà Nẵng đã 3 tháng chưa giải quyết, SĐT 0905123456.")
    )
    assert [a.code for a in s.agencies][:1] == ["BTC"] and len(s.agencies) == 3
    assert all(0 <= a.score <= 1 for a in s.agencies) and s.agencies[0].score >= s.agencies[1].score
    assert s.agencies[0].name == "Bộ Tài chính"
    btc_fields = set(default_registry().get("BTC").fields)
    assert s.fields and {f.name for f in s.fields} <= btc_fields and s.top_field == "Thuế"
    assert s.field_source == "similarity" and s.kind == "phan_anh" and s.kind_source == "submitted"
    assert [p.code for p in s.provinces] == ["P-DN"]
    assert [(c.case_id, c.score) for c in s.similar] == [(7, 0.93), (3, 0.51)]
    assert "0905123456" not in s.masked_text and "[SĐT]" in s.masked_text
    # Received Friday 13 Feb 2026, just before Tết (16-20 Feb): both deadlines skip the holiday week.
    assert s.forward_due == date(2026, 2, 27) and s.answer_due == date(2026, 3, 13)
    assert s.model_version == pipeline.model_version and "agency:cold-start" in s.model_version
    assert s.embedding is not None and s.embedding.dtype == np.float32 and abs(np.linalg.norm(s.embedding) - 1) < 1e-3
    stored = s.to_dict()
    assert "embedding" not in stored and stored["answer_due"] == "2026-03-13"


def test_province_given_by_the_submitter_counts(pipeline: Pipeline) -> None:
    s = pipeline.triage(sub("Đường vào xã bị sạt lở sau mưa lũ.", province_code="P-LCA"))
    assert [p.code for p in s.provinces][:1] == ["P-LCA"]


def test_trained_field_router_is_used_when_given(pipeline: Pipeline) -> None:
    class FieldRouter:
        data_hash_ = "abcdef0123456789"

        def predict_top_k(self, texts: list[str], k: int, embeddings: np.ndarray) -> list[list[Prediction]]:
            assert embeddings.shape[0] == 1
            return [[Prediction("Thuế", 0.8), Prediction("Hải quan", 0.2)][:k]]

    p = Pipeline(
        embedder=pipeline.embedder,
        agency_router=pipeline.agency_router,
        field_router=FieldRouter(),  # type: ignore[arg-type]
    )
    s = p.triage(sub("hoàn thuế"))
    assert [(f.name, f.score) for f in s.fields] == [("Thuế", 0.8), ("Hải quan", 0.2)]
    assert s.field_source == "router" and "field:router-abcdef012345" in s.model_version
    assert s.similar == []


def test_programme_field_is_a_second_suggestion_beside_the_agency(pipeline: Pipeline) -> None:
    s = pipeline.triage(
        sub(
            "Nộp hồ sơ trên Cổng dịch vụ công quốc gia bị lỗi thanh toán trực tuyến, ứng dụng VNeID cũng không "
            "đăng nhập được.",
            title="Dịch vụ công trực tuyến lỗi",
        )
    )
    assert [p.code for p in s.programme_fields][:1] == ["digital_government"] and len(s.programme_fields) == 3
    assert s.top_programme_field == "digital_government"
    assert s.programme_fields[0].name == "Chuyển đổi số trong cơ quan nhà nước"
    assert s.programme_fields[0].score >= s.programme_fields[1].score >= s.programme_fields[2].score
    stored = s.to_dict()["programme_fields"][0]
    assert {k: stored[k] for k in ("name", "score", "code")} == {
        "name": "Chuyển đổi số trong cơ quan nhà nước",
        "score": s.programme_fields[0].score,
        "code": "digital_government",
    }
    everyday = pipeline.triage(sub("Đường vào thôn bị sạt lở sau mưa lũ, xe máy không đi được."))
    assert everyday.top_programme_field == "other" and everyday.programme_fields[0].name == "Khác"
    assert pipeline.programme_taxonomy.codes[-1] == "other"


def test_a_given_programme_classifier_is_used(pipeline: Pipeline) -> None:
    from triage.nlp.programme_fields import ProgrammeFieldClassifier, ProgrammeTaxonomy

    raw = {
        "programme": "Chương trình thử",
        "other": "none",
        "fields": [
            {"code": "roads", "name": "Đường sá", "description": "Đường sá, cầu cống, sạt lở, ổ gà trên đường."},
            {"code": "none", "name": "Khác", "description": "Những việc khác: thuế, hộ tịch, bảo hiểm xã hội."},
        ],
    }
    taxonomy = ProgrammeTaxonomy.from_dict(raw, "test")
    clf = ProgrammeFieldClassifier(taxonomy=taxonomy, embedder=pipeline.embedder, other_margin=0.0, threshold=0.0).fit()
    p = Pipeline(embedder=pipeline.embedder, agency_router=pipeline.agency_router, programme_fields=clf)
    assert p.programme_taxonomy is taxonomy
    s = p.triage(sub("Đường vào thôn bị sạt lở sau mưa lũ, xe máy không đi được."))
    assert [f.code for f in s.programme_fields] == ["roads", "none"]


def test_unknown_kind_is_refused(pipeline: Pipeline) -> None:
    from triage.errors import InvalidInput

    with pytest.raises(InvalidInput, match="kind"):
        pipeline.triage(sub("x", kind="khieu_nai"))


def test_module_function_uses_the_given_pipeline(pipeline: Pipeline) -> None:
    assert triage(sub("Bảo hiểm y tế hộ gia đình"), pipeline).agencies


class PausingRouter(AgencyRouter):
    """The real cold-start router, holding each call until the test lets it go (to swap models mid-request)."""

    def __init__(self, **kw: Any) -> None:
        super().__init__(**kw)
        import threading

        self.entered, self.release = threading.Event(), threading.Event()

    def route(self, texts: Any, k: int = 3, embeddings: Any = None) -> list[Routing]:
        self.entered.set()
        assert self.release.wait(30)
        return super().route(texts, k=k, embeddings=embeddings)


@pytest.mark.slow
def test_a_request_in_flight_finishes_on_the_models_it_started_with(embedder: Any) -> None:
    import threading

    old = PausingRouter(embedder=embedder).fit()
    p = Pipeline(embedder=embedder, agency_router=old)
    p.swap_models(old, label="reg/v1", auto_threshold=0.5)
    done: list[Any] = []
    worker = threading.Thread(target=lambda: done.append(p.triage(sub("Hoàn thuế thu nhập cá nhân chậm"))))
    worker.start()
    assert old.entered.wait(30)
    p.swap_models(AgencyRouter(embedder=embedder).fit(), label="reg/v2", auto_threshold=None)
    old.release.set()
    worker.join(30)
    assert "agency:reg/v1+cold-start" in done[0].model_version and done[0].auto_threshold == 0.5
    after = p.triage(sub("Hoàn thuế thu nhập cá nhân chậm"))
    assert "agency:reg/v2+cold-start" in after.model_version and after.auto_threshold is None
    assert p.model_version == after.model_version


class TextIndex:
    """Earlier cases with their texts: what the same-matter scorer re-scores (the case index's role)."""

    def __init__(self, embedder: Any, texts: dict[int, str]) -> None:
        self.texts = texts
        self.vectors = dict(zip(texts, embedder.encode(list(texts.values())), strict=True))

    def search(self, vector: np.ndarray, k: int, *, exclude_case: int | None = None) -> list[tuple[int, float]]:
        found = sorted(
            ((c, float(v @ vector)) for c, v in self.vectors.items() if c != exclude_case), key=lambda x: -x[1]
        )
        return found[:k]

    def candidates(self, case_ids: list[int]) -> dict[int, tuple[str, np.ndarray]]:
        return {c: (self.texts[c], self.vectors[c]) for c in case_ids if c in self.texts}


EARLIER = {
    1: "Phản ánh. Thủ tục cấp mới Giấy phép lái xe được thực hiện như thế nào?",
    2: "Phản ánh. Thủ tục cấp đổi Giấy phép lái xe bị hỏng được thực hiện như thế nào?",
    3: "Phản ánh. Giá lúa giảm mạnh, nông dân thua lỗ.",
}


def test_same_matter_scorer_judges_the_index_candidates(embedder: Any) -> None:
    from triage.nlp.same_matter import load_same_matter

    scorer = load_same_matter(embedder=embedder)
    index = TextIndex(embedder, EARLIER)
    router = AgencyRouter(embedder=embedder).fit()
    p = Pipeline(
        embedder=embedder,
        agency_router=router,
        similar=index,
        same_matter=scorer,
        duplicate_threshold=scorer.threshold_,
    )
    s = p.triage(sub("Thủ tục cấp mới Giấy phép lái xe được thực hiện như thế nào? Xin cảm ơn."))
    assert s.duplicate_scorer == "same_matter" and s.duplicate_threshold == scorer.threshold_
    by_case = {c.case_id: c for c in s.similar}
    assert by_case[1].likely_duplicate and not by_case[2].likely_duplicate  # new licence vs damaged licence
    assert by_case[2].score > 0.9 and by_case[2].probability is not None  # the cosine is kept beside P
    assert by_case[1].probability > by_case[2].probability > by_case[3].probability  # type: ignore[operator]
    assert s.similar[0].case_id == 1 and s.likely_duplicate  # re-ranked by P(same matter)
    assert s.to_dict()["similar"][0]["probability"] == by_case[1].probability
    # The threshold setting is honoured: nothing clears 1.0; everything clears 0.
    strict = Pipeline(
        embedder=embedder, agency_router=router, similar=index, same_matter=scorer, duplicate_threshold=1.0
    )
    assert not strict.triage(sub(EARLIER[1])).likely_duplicate
    lax = Pipeline(embedder=embedder, agency_router=router, similar=index, same_matter=scorer, duplicate_threshold=0.0)
    assert all(c.likely_duplicate for c in lax.triage(sub("Giá lúa giảm mạnh.")).similar)
    # Cosine mode (no scorer): the raw cosine decides, and both licences are "duplicates".
    cosine = Pipeline(embedder=embedder, agency_router=router, similar=index, duplicate_threshold=0.9)
    c = {x.case_id: x for x in cosine.triage(sub(EARLIER[1][len("Phản ánh. ") :])).similar}
    assert c[1].probability is None and c[1].likely_duplicate and c[2].likely_duplicate


def test_settings_choose_the_scorer_and_its_thresholds(embedder: Any) -> None:
    from triage.config import Settings

    default = Pipeline.from_settings(Settings(), embedder=embedder)
    assert default.same_matter is not None and default.duplicate_threshold == default.same_matter.threshold_
    assert default.campaigns is not None and default.campaigns.threshold == default.same_matter.campaign_threshold_
    tuned = Pipeline.from_settings(
        Settings(same_matter_threshold=0.7, same_matter_campaign_threshold=0.99), embedder=embedder
    )
    assert tuned.duplicate_threshold == 0.7 and tuned.campaigns is not None and tuned.campaigns.threshold == 0.99
    cosine = Pipeline.from_settings(Settings(duplicate_scorer="cosine"), embedder=embedder)
    assert cosine.same_matter is None and cosine.duplicate_threshold == 0.9298
    assert cosine.campaigns is not None and cosine.campaigns.threshold == 0.96
