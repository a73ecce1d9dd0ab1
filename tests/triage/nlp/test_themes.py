"""Themes on real text: a stream of VNTC news articles with timestamps over ten weeks.

The articles' topics (Thể thao, Sức khỏe, ...) are the ground truth the clustering does not see.
One stream has a burst (one topic triples in the last two weeks), the other has none.
"""

from __future__ import annotations

import gzip
import json
from collections import Counter
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from triage.errors import InvalidInput, NotFitted
from triage.nlp.text import mask_personal, normalize
from triage.nlp.themes import (
    OUTLIER,
    ThemeModel,
    benjamini_hochberg,
    domain_stop_words,
    emerging_scores,
    headline,
    looks_like_person,
    match_themes,
    stability,
    stop_words,
    theme_label,
    week_start,
)

TOPICS = ["Suc khoe", "The thao", "Vi tinh", "Kinh doanh", "Phap luat"]
PER_WEEK = 5  # articles per topic per week
WEEKS = 10
BURST = "The thao"
START = date(2025, 1, 6)  # a Monday
CHARS = 240
_VIETNAMESE = set("ăâđêôơưàáảãạằắẳẵặầấẩẫậèéẻẽẹềếểễệìíỉĩịòóỏõọồốổỗộờớởỡợùúủũụừứửữựỳýỷỹỵ")


@pytest.fixture(scope="module")
def articles(shared_data: Path, embedder: Any) -> dict[str, Any]:
    """Enough articles of each topic for both streams (first ones in file order), embedded once."""
    need = {t: PER_WEEK * WEEKS + 2 * 2 * PER_WEEK for t in TOPICS}
    texts: list[str] = []
    labels: list[str] = []
    with gzip.open(shared_data / "vntc" / "train.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            row = json.loads(line)
            if need.get(row["label"], 0) > 0:
                need[row["label"]] -= 1
                texts.append(normalize(row["text"])[:CHARS])
                labels.append(row["label"])
            if not any(need.values()):
                break
    return {"texts": texts, "labels": np.asarray(labels), "emb": embedder.encode(texts)}


def stream(articles: dict[str, Any], burst: str | None, seed: int = 0) -> tuple[np.ndarray, list[date]]:
    """Indices and dates: PER_WEEK articles per topic per week; ``burst`` x3 in the last two weeks."""
    rng = np.random.default_rng(seed)
    pools = {t: list(rng.permutation(np.flatnonzero(articles["labels"] == t))) for t in TOPICS}
    idx, days = [], []
    for week in range(WEEKS):
        for topic in TOPICS:
            k = PER_WEEK * (3 if topic == burst and week >= WEEKS - 2 else 1)
            for _ in range(k):
                idx.append(pools[topic].pop())
                days.append(START + timedelta(days=7 * week + int(rng.integers(7))))
    return np.asarray(idx), days


def fit(articles: dict[str, Any], idx: np.ndarray, days: list[date], seed: int = 0, **known: Any) -> ThemeModel:
    return ThemeModel(random_state=seed, keyword_docs=25).fit(
        [articles["texts"][i] for i in idx], timestamps=days, embeddings=articles["emb"][idx], **known
    )


@pytest.mark.slow
def test_same_seed_same_themes_and_other_seeds_agree(articles: dict[str, Any]) -> None:
    idx, days = stream(articles, None)
    a, b = fit(articles, idx, days), fit(articles, idx, days)
    assert np.array_equal(a.labels_, b.labels_)
    assert [t.keywords for t in a.themes_] == [t.keywords for t in b.themes_]
    report = stability(articles["emb"][idx], seeds=(0, 1, 2))
    assert report["ari_min"] == 1.0, report  # the clustering has no seed: any seed, the same themes
    assert 0.0 < a.outlier_share_ < 0.25
    # the themes follow the (unseen) topics: each big theme is mostly one topic
    purity = [Counter(articles["labels"][idx][a.labels_ == t.id]).most_common(1)[0][1] / t.size for t in a.themes_]
    assert float(np.average(purity, weights=[t.size for t in a.themes_])) >= 0.6


@pytest.mark.slow
def test_keywords_are_vietnamese_words_without_stop_words(articles: dict[str, Any]) -> None:
    idx, days = stream(articles, None)
    model = fit(articles, idx, days)
    stops = stop_words()
    words = [w for t in model.themes_ for w in t.keywords]
    assert words and all(t.keywords for t in model.themes_)
    assert not {w.lower().replace(" ", "_") for w in words} & stops
    assert sum(any(ch in _VIETNAMESE for ch in w.lower()) for w in words) >= len(words) // 2  # diacritics kept
    assert any(" " in w for w in words)  # segmented multi-syllable words ("bóng đá"), not syllables
    sport = Counter(articles["labels"][idx][model.labels_ == 0]).most_common(1)[0][0]
    assert sport in TOPICS
    for theme in model.themes_:
        assert len(theme.representatives) == 3
        assert all(model.labels_[r] == theme.id for r in theme.representatives)


@pytest.mark.slow
def test_a_tripled_topic_ranks_first_as_emerging(articles: dict[str, Any]) -> None:
    idx, days = stream(articles, BURST)
    model = fit(articles, idx, days)
    ranked = model.emerging()
    top = ranked[0]
    assert top.significant and top.growth >= 1.5 and top.q_value <= 0.05
    members = articles["labels"][idx][model.labels_ == top.theme]
    assert Counter(members).most_common(1)[0][0] == BURST
    assert [e.theme for e in ranked if e.significant]  # ranked list puts significant ones first
    weeks, counts = model.themes_over_time()
    assert len(weeks) == WEEKS and weeks[0] == START
    assert counts[top.theme, -2:].sum() > 2 * counts[top.theme, :-2].mean() * 2 * 0.9


@pytest.mark.slow
def test_without_a_burst_nothing_is_significant(articles: dict[str, Any]) -> None:
    for seed in (0, 1):
        idx, days = stream(articles, None, seed=seed)
        ranked = fit(articles, idx, days, seed=seed).emerging()
        assert not [e for e in ranked if e.significant], ranked[:3]


def test_benjamini_hochberg_matches_hand_computation() -> None:
    q = benjamini_hochberg([0.01, 0.04, 0.03, 0.20])
    assert np.allclose(q, [0.04, 0.0533333, 0.0533333, 0.20])
    assert len(benjamini_hochberg([])) == 0


def test_emerging_scores_follow_shares_not_volume() -> None:
    # everybody doubles: no theme grows in share; theme 0's share triples (20 % -> 60 %): it grows
    flat = emerging_scores(np.array([20, 20]), np.array([10, 10]), recent_total=40, baseline_total=20)
    assert not any(e.significant for e in flat)
    burst = emerging_scores(
        np.array([30, 10, 10]), np.array([30, 60, 60]), recent_total=50, baseline_total=150, min_size=5
    )
    assert burst[0].significant and burst[0].growth > 2.5 and burst[0].growth_low > 1.5
    assert not burst[1].significant and burst[1].score < burst[0].score
    small = emerging_scores(np.array([4]), np.array([0]), recent_total=50, baseline_total=150, min_size=5)
    assert not small[0].significant  # too few recent submissions, whatever the ratio
    with pytest.raises(InvalidInput):
        emerging_scores(np.array([1]), np.array([1]), recent_total=0, baseline_total=5)


def test_themes_over_time_is_a_query_and_emerging_does_not_lean_on_it() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(30, 16)) for c in centers]).astype(np.float32)
    texts = ["Đường ngập nước sau mưa lớn"] * 30 + ["Thủ tục cấp phép xây dựng kéo dài"] * 30
    days = [START + timedelta(days=int(d)) for d in rng.integers(0, 42, size=60)]
    model = ThemeModel(n_themes=2, random_state=0, segmenter=str.split).fit(texts, embeddings=emb, timestamps=days)
    learned = set(vars(model))
    weeks, counts = model.themes_over_time(until=START + timedelta(weeks=1), weeks=2)
    assert set(vars(model)) == learned  # answering a query sets no attribute
    assert weeks == [START, START + timedelta(weeks=1)] and counts.sum() == sum(
        d < START + timedelta(weeks=2) for d in days
    )
    ranked = model.emerging(window=2)
    assert set(vars(model)) == learned
    assert model.themes_over_time(until=START, weeks=1)[1].shape == (2, 1)
    assert model.emerging(window=2) == ranked  # whatever was asked in between
    assert sum(e.recent + e.baseline for e in ranked) == 60


def test_systemic_when_several_agencies_hold_a_share() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(20, 16)) for c in centers]).astype(np.float32)
    texts = ["Đường ngập nước sau mưa lớn"] * 20 + ["Thủ tục cấp phép xây dựng kéo dài"] * 20
    agencies = ["BXD"] * 10 + ["BGTVT"] * 10 + ["BXD"] * 19 + ["BTC"]
    model = ThemeModel(n_themes=2, random_state=0, segmenter=str.split).fit(texts, embeddings=emb, agencies=agencies)
    by_first = {t.representatives[0] < 20: t for t in model.themes_}
    assert by_first[True].systemic and set(by_first[True].agencies) == {"BXD", "BGTVT"}
    assert not by_first[False].systemic  # one agency holds it (a single BTC case is below the share)


def test_bad_input_and_unfitted_model() -> None:
    with pytest.raises(NotFitted):
        ThemeModel().emerging()
    with pytest.raises(InvalidInput):
        ThemeModel().fit([])
    with pytest.raises(InvalidInput):
        ThemeModel().fit(["một", "hai"], embeddings=np.zeros((3, 4), np.float32))
    with pytest.raises(InvalidInput):
        ThemeModel().fit(["một"])  # no embeddings and no embedder
    model = ThemeModel(n_themes=1, min_theme_size=1, segmenter=str.split).fit(
        ["a b", "a c"], embeddings=np.ones((2, 4), np.float32)
    )
    with pytest.raises(InvalidInput):
        model.themes_over_time()  # fitted without timestamps
    assert OUTLIER == -1


def test_week_start_is_monday() -> None:
    assert week_start(date(2025, 1, 12)) == date(2025, 1, 6)
    assert week_start(date(2025, 1, 6)) == date(2025, 1, 6)


@pytest.mark.slow
def test_themes_move_little_when_a_tenth_of_the_texts_change(articles: dict[str, Any]) -> None:
    """Seed-proof is by construction; what is measured is how much the themes move with the data."""
    from sklearn.metrics import adjusted_rand_score

    emb = articles["emb"]
    rng = np.random.default_rng(0)
    runs = []
    for _ in range(2):
        keep = np.sort(rng.choice(len(emb), int(0.9 * len(emb)), replace=False))
        labels = np.full(len(emb), -2)
        labels[keep] = ThemeModel().cluster(emb[keep])[0]
        runs.append(labels)
    both = (runs[0] > -2) & (runs[1] > -2)
    assert adjusted_rand_score(runs[0][both], runs[1][both]) >= 0.5


@pytest.mark.slow
def test_a_theme_keeps_its_id_and_label_across_overlapping_12_week_windows(articles: dict[str, Any]) -> None:
    """Weeks 1-12, then weeks 3-14 started from the first window's themes: the same themes, the same ids."""
    rng = np.random.default_rng(3)
    week = rng.integers(0, 14, size=len(articles["texts"]))
    days = [START + timedelta(days=7 * int(w) + int(rng.integers(7))) for w in week]
    first, second = np.flatnonzero(week < 12), np.flatnonzero(week >= 2)
    a = fit(articles, first, [days[i] for i in first])
    b = fit(articles, second, [days[i] for i in second], known=a.known_themes())
    by_key = {t.key: t for t in a.themes_}
    kept = [t for t in b.themes_ if t.key in by_key]
    assert len(kept) >= 0.8 * len(b.themes_)
    assert all(t.label == by_key[t.key].label for t in kept)  # same id, same name
    assert len({t.key for t in b.themes_}) == len(b.themes_)  # one theme per id
    # a kept id is the same theme: the shared weeks' texts it holds were mostly under that id before
    shared = np.flatnonzero((week >= 2) & (week < 12))
    la = a.labels_[np.searchsorted(first, shared)]
    lb = b.labels_[np.searchsorted(second, shared)]
    same = 0
    for t in kept:
        before = la[lb == t.id]
        before = before[before >= 0]
        same += bool(len(before)) and a.themes_[Counter(before.tolist()).most_common(1)[0][0]].key == t.key
    assert same >= 0.8 * len(kept), (same, len(kept))
    # a fresh start (no known themes) numbers from 0; new themes after known ones get new ids
    assert sorted(t.key for t in a.themes_) == list(range(len(a.themes_)))
    assert all(t.key > max(by_key) for t in b.themes_ if t.key not in by_key)


def test_match_themes_is_one_to_one_and_needs_the_threshold() -> None:
    rng = np.random.default_rng(0)
    known = rng.normal(size=(3, 16))
    moved = known[[2, 0]] + 0.05 * rng.normal(size=(2, 16))
    fresh = rng.normal(size=(1, 16))
    assert match_themes(np.vstack([moved, fresh]), known, threshold=0.8) == [2, 0, None]
    twins = match_themes(np.vstack([moved[:1], moved[:1]]), known)
    assert sorted(twins, key=str) == [2, None]  # no two themes take one id


@pytest.mark.slow
def test_no_catch_all_theme_on_real_public_service_questions(shared_data: Path, embedder: Any) -> None:
    """400 real portal questions: no theme holds more than 20 %, and the labels read as matters."""
    rows = [json.loads(line) for line in (shared_data / "dvc_faq" / "train.jsonl").open(encoding="utf-8")]
    rows = [rows[i] for i in np.random.default_rng(0).permutation(len(rows))[:400]]
    texts = [normalize(r["text"]) for r in rows]
    model = ThemeModel(keyword_docs=15).fit(
        texts, embeddings=embedder.encode(texts), agencies=[r["agency"] for r in rows]
    )
    sizes = [t.size for t in model.themes_]
    assert len(sizes) >= 10 and max(sizes) <= 0.2 * len(texts)
    assert {"thủ_tục", "thực_hiện"} <= model.domain_stop_words_  # every ministry's questions say these
    for theme in model.themes_:
        assert not {w.replace(" ", "_") for w in theme.keywords} & model.domain_stop_words_


def test_a_theme_over_the_share_cap_is_split_and_none_otherwise() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(3, 64))
    sizes = (140, 30, 30)  # one matter holds 70 %
    emb = np.concatenate([c + 0.3 * rng.normal(size=(n, 64)) for c, n in zip(centers, sizes, strict=True)])
    emb = emb.astype(np.float32)
    free = ThemeModel().cluster(emb)[0]
    assert np.bincount(free[free >= 0]).max() >= 0.6 * len(emb)  # one real matter is one theme ...
    capped = ThemeModel(max_theme_share=0.3).cluster(emb)[0]
    assert np.bincount(capped[capped >= 0]).max() <= 0.3 * len(emb)  # ... unless a cap is asked for


def test_domain_stop_words_are_the_evenly_spread_ones() -> None:
    groups = ["BCA", "BXD", "BTP", "BYT"] * 10
    topic = {"BCA": "căn_cước", "BXD": "giấy_phép_lái_xe", "BTP": "khai_sinh", "BYT": "bảo_hiểm_y_tế"}
    docs = [["thủ_tục", "thực_hiện", topic[g]] + (["hồ_sơ"] if i % 3 == 0 else []) for i, g in enumerate(groups)]
    docs[0].append("lệ_phí")  # in one group only, once
    stops = domain_stop_words(docs, groups)
    assert {"thủ_tục", "thực_hiện", "hồ_sơ"} <= stops
    assert not stops & {"căn_cước", "giấy_phép_lái_xe", "khai_sinh", "bảo_hiểm_y_tế", "lệ_phí"}
    assert domain_stop_words(docs[:4], groups[:4][:2] * 2) == frozenset()  # two groups tell nothing


@pytest.mark.slow
def test_labels_are_vietnamese_phrases_naming_the_matter(articles: dict[str, Any]) -> None:
    idx, days = stream(articles, None)
    model = fit(articles, idx, days)
    texts = [articles["texts"][i] for i in idx]
    for theme in model.themes_[:8]:
        words, _, title = theme.label.partition(" — ")
        assert words.split(" · ") == theme.keywords[:2]  # the top segmented keywords ...
        assert title and len(title) <= 70  # ... and the opening of its most central submission
        assert title == headline(mask_personal(texts[theme.representatives[0]]))
        assert any(ch in _VIETNAMESE for ch in theme.label.lower())


def test_headline_and_label_wording() -> None:
    assert (
        headline("Thủ tục cấp đổi Giấy phép lái xe bị hỏng? Tôi cần gì") == "Thủ tục cấp đổi Giấy phép lái xe bị hỏng"
    )
    long = "Đề nghị cho biết trình tự thực hiện thủ tục tặng thưởng Bằng khen của Thủ tướng Chính phủ cho gia đình"
    cut = headline(long)
    assert cut.endswith("…") and len(cut) <= 70 and long.startswith(cut[:-1])
    assert theme_label(["giấy phép lái xe", "cấp đổi", "hỏng"], "Thủ tục cấp đổi", 0) == (
        "giấy phép lái xe · cấp đổi — Thủ tục cấp đổi"
    )
    assert theme_label([], "", 4) == "chủ đề 5"


def test_person_names_never_become_keywords_but_places_do() -> None:
    rng = np.random.default_rng(0)
    centers = rng.normal(size=(2, 16))
    emb = np.concatenate([c + 0.05 * rng.normal(size=(20, 16)) for c in centers]).astype(np.float32)
    texts = [f"Ông Nguyễn Văn Hùng phản ánh cống ngập ở Hà Nội lần {i}" for i in range(20)] + [
        f"Bà Trần Thị Lan hỏi thủ tục cấp phép xây dựng lần {i}" for i in range(20)
    ]
    model = ThemeModel(n_themes=2, random_state=0).fit(texts, embeddings=emb)
    words = {w for t in model.themes_ for w in t.keywords}
    assert "cống" in words or "ngập" in words
    assert not {"nguyễn văn hùng", "trần thị lan"} & words
    assert all("nguyễn" not in w and "trần thị" not in w for w in words)
    assert looks_like_person("Nguyễn Văn Hùng") and not looks_like_person("Hà Nội")
    assert not looks_like_person("Hồ Chí Minh") and not looks_like_person("đỗ xe")


def test_merging_close_clusters_ignores_an_empty_cluster() -> None:
    """k-means may leave a label unused (identical texts): its zero centre must not reach cosine linkage."""
    import numpy as np

    from triage.nlp.themes import _merge_close

    z = np.array([[1.0, 0.0], [1.0, 0.01], [0.0, 1.0], [0.01, 1.0], [-1.0, 0.0]], dtype=np.float32)
    labels = np.array([0, 1, 3, 3, 4])  # label 2 has no members
    merged = _merge_close(z, labels, similarity=0.99)
    assert merged[0] == merged[1]  # the two near-identical centres merge
    assert len({merged[0], merged[2], merged[4]}) == 3
