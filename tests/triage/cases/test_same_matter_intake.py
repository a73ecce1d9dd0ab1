"""Distinct real questions filed through intake: the same-matter scorer flags few and groups none.

Every question of the public portal FAQ's dev split is its own request (split by procedure, so
several share one); filed within one week through the real intake path (real encoder, case index,
database), at most 2 % may be flagged as likely duplicates and no campaign may form. The same run
with the raw cosine flags far more (``benchmarks/same_matter.py`` files train + dev, both scorers).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from tests.conftest import read_rows
from triage.cases.intake import NewSubmission, receive
from triage.cases.pipeline import CampaignPolicy, Pipeline
from triage.nlp.agency_router import AgencyRouter
from triage.nlp.same_matter import load_same_matter
from triage.nlp.text import normalize
from triage.store.case_index import CaseIndex
from triage.store.db import Database
from triage.store.tables import Campaign, Case

pytestmark = pytest.mark.slow


def test_distinct_portal_questions_are_neither_duplicates_nor_a_campaign(
    db: Database, embedder: Any, shared_data: Path
) -> None:
    texts = list(dict.fromkeys(normalize(r["text"]) for r in read_rows(shared_data / "dvc_faq" / "dev.jsonl")))
    scorer = load_same_matter(embedder=embedder)
    pipeline = Pipeline(
        embedder=embedder,
        agency_router=AgencyRouter(embedder=embedder).fit(),
        similar=CaseIndex(db),
        same_matter=scorer,
        duplicate_threshold=scorer.threshold_,
        campaigns=CampaignPolicy(threshold=scorer.campaign_threshold_),
    )
    start = datetime(2026, 3, 2, 1, tzinfo=UTC)
    flagged = 0
    for i, text in enumerate(texts):
        new = NewSubmission(kind="kien_nghi", submitter_type="citizen", title=text[:120], content=text)
        receipt = receive(db, new, pipeline=pipeline, now=start + timedelta(minutes=3 * i))
        with db.read() as s:
            case = s.get(Case, receipt.case_id)
            assert case is not None and case.suggestion is not None
            assert case.suggestion["duplicate_scorer"] == "same_matter"
            flagged += bool(case.suggestion["likely_duplicate"])
    assert len(texts) == 267
    assert flagged <= 0.02 * len(texts), flagged
    with db.read() as s:  # a campaign is listed from 3 cases on (two near-twins may pair up, unlisted)
        assert s.scalar(select(func.count()).select_from(Campaign).where(Campaign.size >= 3)) == 0
