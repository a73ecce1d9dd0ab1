"""Weak same-matter pairs from the public TRAIN splits, and the fit of the packaged scorer.

Sources (``../shared/data``, public splits only; nothing of them is shipped, only the fitted arrays):

* ``dvc_faq/train``: portal questions sharing a related procedure are the same matter; questions
  of the same ministry about another procedure are hard negatives (the nearest by cosine and
  random ones), questions of another ministry easy ones;
* ``vnpara/pairs``: the *calibration* half of the benchmark's split (seed 0, the first half of the
  permutation, ``benchmarks.duplicates``); the held-out half is never read here;
* ``zalo_legal``: legal questions citing the same single document (weak positives, capped per
  text); the same issuer's questions on another document are the negatives.

``dvc_faq/dev`` is never used for fitting: the benchmark builds its pairs from it.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from triage.nlp.embed import Embedder
from triage.nlp.io import read_jsonl
from triage.nlp.same_matter import SameMatterScorer
from triage.nlp.text import normalize

SEED = 0
Progress = Callable[[str], None]


@dataclass
class PairSet:
    """Texts (unique, normalised), their vectors, and labelled index pairs with a group and a source each."""

    texts: list[str] = field(default_factory=list)
    pairs: list[tuple[int, int]] = field(default_factory=list)
    labels: list[int] = field(default_factory=list)
    groups: list[str] = field(default_factory=list)
    sources: list[str] = field(default_factory=list)
    hard: list[int] = field(default_factory=list)  # per pair: a hard negative text index for the adapter, -1 none
    duplicate: list[int] = field(default_factory=list)  # per pair: 1 duplicate, 0 distinct requests, -1 neither
    _where: dict[str, int] = field(default_factory=dict)

    def index(self, text: str) -> int:
        if text not in self._where:
            self._where[text] = len(self.texts)
            self.texts.append(text)
        return self._where[text]

    def add(self, a: str, b: str, label: int, group: str, source: str, hard: int = -1, duplicate: int = -1) -> None:
        i, j = self.index(a), self.index(b)
        if i == j:
            return
        self.pairs.append((i, j))
        self.labels.append(int(label))
        self.groups.append(group)
        self.sources.append(source)
        self.hard.append(hard)
        self.duplicate.append(duplicate)


def cached_vectors(embedder: Embedder, texts: Sequence[str], cache: Path | None) -> np.ndarray:
    """``embedder.encode(texts)``, kept under ``cache`` keyed by the model and the exact texts."""
    if cache is None:
        return np.asarray(embedder.encode(list(texts)), np.float32)
    digest = hashlib.sha256(str(embedder.model_id).encode())
    for t in texts:
        digest.update(t.encode())
        digest.update(b"\x00")
    path = cache / f"{digest.hexdigest()[:24]}.npy"
    if path.exists():
        return np.load(path)
    vectors = np.asarray(embedder.encode(list(texts)), np.float32)
    cache.mkdir(parents=True, exist_ok=True)
    np.save(path, vectors)
    return vectors


def _rows(path: Path) -> list[dict[str, Any]]:
    return [dict(r) for r in read_jsonl(path)]


def dvc_rows(shared: Path, split: str) -> list[dict[str, Any]]:
    """dvc_faq questions of a split, normalised, each text once (the first row kept)."""
    seen: set[str] = set()
    out = []
    for r in _rows(shared / "dvc_faq" / f"{split}.jsonl"):
        text = normalize(r["text"])
        if text and text not in seen:
            seen.add(text)
            out.append({**r, "text": text})
    return out


def procedure_pairs(
    rows: Sequence[dict[str, Any]],
    vectors: np.ndarray | None = None,
    *,
    hard_per_text: int = 3,
    random_per_text: int = 3,
    other_ministry_per_text: int = 1,
    seed: int = SEED,
    every_negative: bool = False,
) -> list[tuple[int, int, int]]:
    """(i, j, label) over ``rows``: same procedure = 1; same ministry, other procedure = 0.

    ``every_negative``: every same-ministry other-procedure pair (the benchmark's protocol);
    otherwise, per text, the ``hard_per_text`` nearest by cosine (needs ``vectors``), some random
    ones and a few of another ministry (easy).
    """
    rng = np.random.default_rng(seed)
    n = len(rows)
    proc = [r["procedure_code"] for r in rows]
    agency = [r["agency"] for r in rows]
    out: list[tuple[int, int, int]] = []
    for i in range(n):
        for j in range(i + 1, n):
            if proc[i] == proc[j]:
                out.append((i, j, 1))
            elif every_negative and agency[i] == agency[j]:
                out.append((i, j, 0))
    if every_negative:
        return out
    by_agency: dict[str, list[int]] = defaultdict(list)
    for i, a in enumerate(agency):
        by_agency[a].append(i)
    seen = {(min(i, j), max(i, j)) for i, j, _ in out}
    sims = None if vectors is None else vectors @ vectors.T
    for i in range(n):
        same = [j for j in by_agency[agency[i]] if proc[j] != proc[i]]
        chosen: list[int] = []
        if sims is not None and same:
            chosen += [same[k] for k in np.argsort(-sims[i, same])[:hard_per_text]]
        if same:
            chosen += rng.choice(same, size=min(random_per_text, len(same)), replace=False).tolist()
        others = [j for j in range(n) if agency[j] != agency[i]]
        if others:
            chosen += rng.choice(others, size=min(other_ministry_per_text, len(others)), replace=False).tolist()
        for j in chosen:
            key = (min(i, int(j)), max(i, int(j)))
            if key not in seen:
                seen.add(key)
                out.append((key[0], key[1], 0))
    return out


# A question sent again with small edits (a courtesy opening or closing, punctuation, case): the
# duplicates intake must catch, which the public sets lack in the portal's own wording.
_OPENINGS = (
    "Xin hỏi",
    "Cho tôi hỏi",
    "Tôi muốn hỏi",
    "Đề nghị cho biết",
    "Kính gửi cơ quan chức năng",
    "Nhờ tư vấn giúp",
)
_CLOSINGS = ("Xin cảm ơn.", "Trân trọng cảm ơn!", "Mong được trả lời sớm.", "Cảm ơn ạ.")
_LEAD = re.compile(r"^(?:xin hỏi|cho tôi hỏi|tôi muốn hỏi|đề nghị cho biết|xin cho biết|kính gửi[^,:]*)[,:]?\s*", re.I)


def resubmitted(text: str, k: int) -> str:
    """The ``k``-th deterministic light edit of ``text`` (same request, other wording around it)."""
    core = _LEAD.sub("", text).strip()
    core = core[:1].upper() + core[1:] if k % 2 else core[:1].lower() + core[1:]
    if k % 3 == 0:
        core = core.rstrip("?.! ")
    opening = _OPENINGS[k % len(_OPENINGS)]
    closing = _CLOSINGS[k % len(_CLOSINGS)] if k % 2 == 0 else ""
    return normalize(f"{opening}: {core} {closing}".strip() if k % 4 else f"{core} {closing}".strip())


# A petition drive: the same text signed by different people (campaign copies are one matter).
_SIGNERS = ("Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường", "Phạm Thị Dung", "Hoàng Văn Em", "Vũ Thị Giang")


def signed(text: str, k: int) -> tuple[str, str]:
    """The same text signed by two different people (``k`` picks them)."""
    a, b = _SIGNERS[k % len(_SIGNERS)], _SIGNERS[(k + 1 + k // len(_SIGNERS)) % len(_SIGNERS)]
    return normalize(f"{text} Người gửi: {a}."), normalize(f"{text} Người gửi: {b}.")


def vnpara_halves(shared: Path) -> tuple[list[tuple[str, str, int]], list[tuple[str, str, int]]]:
    """(calibration half, held-out half) of vnPara as (text1, text2, paraphrase), split as the benchmark splits it."""
    rows = _rows(shared / "vnpara" / "pairs.jsonl")
    perm = np.random.default_rng(SEED).permutation(len(rows))
    calib, held = np.sort(perm[: len(rows) // 2]), np.sort(perm[len(rows) // 2 :])

    def pick(idx: np.ndarray) -> list[tuple[str, str, int]]:
        return [(normalize(rows[i]["text1"]), normalize(rows[i]["text2"]), int(rows[i]["paraphrase"])) for i in idx]

    return pick(calib), pick(held)


def zalo_pairs(
    shared: Path, vectors_of: Callable[[list[str]], np.ndarray], *, per_text: int = 2, seed: int = SEED
) -> list[tuple[str, str, int, str]]:
    """(a, b, label, issuer): questions citing the same single document (1) vs the same issuer's other documents (0)."""
    rng = np.random.default_rng(seed)
    rows = []
    for rel in ("agency_train.jsonl", "unlabelled.jsonl"):
        for r in _rows(shared / "zalo_legal" / rel):
            law = str(r.get("law_ids", ""))
            if law and ";" not in law:
                rows.append((normalize(r["text"]), law, str(r.get("issuer_at_issuance", ""))))
    texts = list(dict.fromkeys(t for t, _, _ in rows))
    where = {t: i for i, t in enumerate(texts)}
    law_of = {t: law for t, law, _ in rows}
    issuer_of = {t: iss for t, _, iss in rows}
    vecs = vectors_of(texts)
    by_law: dict[str, list[int]] = defaultdict(list)
    by_issuer: dict[str, list[int]] = defaultdict(list)
    for t in texts:
        by_law[law_of[t]].append(where[t])
        by_issuer[issuer_of[t]].append(where[t])
    out: list[tuple[str, str, int, str]] = []
    for i, t in enumerate(texts):
        mates = [j for j in by_law[law_of[t]] if j > i]
        if mates:
            best = sorted(mates, key=lambda j: -float(vecs[i] @ vecs[j]))[:per_text]
            out += [(t, texts[j], 1, issuer_of[t]) for j in best]
        others = [j for j in by_issuer[issuer_of[t]] if law_of[texts[j]] != law_of[t]]
        if others:
            near = [others[k] for k in np.argsort(-(vecs[others] @ vecs[i]))[:per_text]]
            rand = rng.choice(others, size=min(per_text, len(others)), replace=False).tolist()
            out += [(t, texts[int(j)], 0, issuer_of[t]) for j in dict.fromkeys(near + rand)]
    return out


def training_pairs(
    shared: Path, embedder: Embedder, *, zalo: bool = True, cache: Path | None = None, say: Progress = print
) -> tuple[PairSet, np.ndarray]:
    """Every weak pair of the public training splits, and the vectors of ``PairSet.texts``."""
    ps = PairSet()
    say("same-matter: dvc_faq train pairs")
    dvc = dvc_rows(shared, "train")
    dvc_vecs = cached_vectors(embedder, [r["text"] for r in dvc], cache)
    sims = dvc_vecs @ dvc_vecs.T
    # The pairs intake meets: each question against its 5 nearest others (all distinct requests).
    intake_seen = {(min(i, int(j)), max(i, int(j))) for i in range(len(dvc)) for j in np.argsort(-sims[i])[1:6]}
    pairs = procedure_pairs(dvc, dvc_vecs)
    have = {(i, j) for i, j, _ in pairs}
    pairs += [(i, j, int(dvc[i]["procedure_code"] == dvc[j]["procedure_code"])) for i, j in sorted(intake_seen - have)]
    for i, j, label in pairs:
        hard = -1
        if label:
            other = [
                k
                for k, r in enumerate(dvc)
                if r["agency"] == dvc[i]["agency"] and r["procedure_code"] != dvc[i]["procedure_code"]
            ]
            if other:
                hard = ps.index(dvc[other[int(np.argmax(sims[i, other]))]]["text"])
        dup = 0 if (i, j) in intake_seen else -1
        ps.add(dvc[i]["text"], dvc[j]["text"], label, f"dvc:{dvc[i]['agency']}", "dvc_faq", hard, dup)
    for k, r in enumerate(dvc):
        ps.add(r["text"], resubmitted(r["text"], k), 1, f"dvc:{r['agency']}", "dvc_faq_resubmitted", -1, 1)
        if k % 2 == 0:
            a, b = signed(r["text"], k)
            ps.add(a, b, 1, f"dvc:{r['agency']}", "dvc_faq_resubmitted", -1, 1)
    say("same-matter: vnPara calibration half")
    calib, _ = vnpara_halves(shared)
    for k, (a, b, label) in enumerate(calib):
        ps.add(a, b, label, f"vnpara:{k % 8}", "vnpara", -1, label)
    if zalo:
        say("same-matter: zalo_legal same-document pairs")
        for a, b, label, issuer in zalo_pairs(shared, lambda t: cached_vectors(embedder, t, cache)):
            ps.add(a, b, label, f"zalo:{issuer}", "zalo_legal")
    say(f"same-matter: encoding {len(ps.texts)} texts")
    vectors = cached_vectors(embedder, ps.texts, cache)
    return ps, vectors


def fit_same_matter(
    shared: Path,
    embedder: Embedder,
    *,
    zalo: bool = True,
    cache: Path | None = None,
    say: Progress = print,
    **params: Any,
) -> tuple[SameMatterScorer, dict[str, Any]]:
    """The scorer fitted on every weak training pair (deterministic for ``SEED``), and what it was fitted on."""
    ps, vectors = training_pairs(shared, embedder, zalo=zalo, cache=cache, say=say)
    idx = np.asarray(ps.pairs)
    y = np.asarray(ps.labels)
    pos = np.where(y == 1)[0]
    # Each source weighs the same in all (vnPara has a tenth of dvc_faq's pairs, and must not be drowned).
    sources = np.asarray(ps.sources)
    names = sorted(set(ps.sources))
    weight = np.zeros(len(y))
    for name in names:
        mask = sources == name
        weight[mask] = len(y) / (len(names) * mask.sum())
    scorer = SameMatterScorer(embedder=embedder, seed=SEED, **params)
    say(f"same-matter: fitting on {len(y)} pairs ({int(y.sum())} same matter)")
    scorer.fit(
        [(ps.texts[i], ps.texts[j]) for i, j in ps.pairs],
        y,
        embeddings=(vectors[idx[:, 0]], vectors[idx[:, 1]]),
        groups=np.asarray(ps.groups),
        sample_weight=weight,
        duplicate=np.asarray(ps.duplicate),
        adapter_vectors=vectors,
        adapter_pairs=idx[pos],
        adapter_hard=np.asarray(ps.hard)[pos],
        adapter_groups=np.asarray(ps.groups)[pos],
        idf_texts=ps.texts,
        model_id=str(embedder.model_id),
    )
    counts: dict[str, dict[str, int]] = {}
    for s, label in zip(ps.sources, ps.labels, strict=True):
        c = counts.setdefault(s, {"pairs": 0, "same_matter": 0})
        c["pairs"] += 1
        c["same_matter"] += label
    info = {"trained_on": counts, "texts": len(ps.texts), "seed": SEED}
    return scorer, info


def write_info(path: Path, info: dict[str, Any]) -> None:
    path.write_text(json.dumps(info, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
