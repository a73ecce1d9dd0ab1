"""Moderation flags: offensive or hateful content and spam, raised for a clerk's review.

Two heads, each the project's calibrated ``Router``: *abuse* (clean / offensive / hate, trained on
ViHSD social-media comments) and *spam* (0 / 1, trained on ViSpam reviews). Both are trained with
real civic texts (legal questions, public-health questions, student feedback, the public-service
portal's formal questions) added as clean / not spam, so an angry but legitimate complaint or a
polite formal request is not mistaken for abuse or spam. A text is *flagged* when
P(offensive) + P(hate) or P(spam) reaches its threshold; :meth:`Moderator.calibrate` chooses both
thresholds on held-out civic texts for a stated false-flag rate (never below 0.5). A flag only asks
a person to look: nothing is hidden or deleted automatically, and the clerk's confirm / dismiss
decision is audited.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from triage.errors import InvalidInput, NotFitted, TriageError
from triage.nlp.manifest import MANIFEST, MODERATOR, read_manifest, versions, write_manifest
from triage.nlp.router import Router

if TYPE_CHECKING:
    from triage.config import Settings
    from triage.nlp.embed import Embedder

log = logging.getLogger(__name__)

ABUSE_LABELS: tuple[str, ...] = ("clean", "offensive", "hate")
ABUSIVE: tuple[str, ...] = ("offensive", "hate")
SPAM_LABELS: tuple[str, ...] = ("0", "1")
REASON_ABUSE = "abuse"
REASON_SPAM = "spam"
DECISIONS: tuple[str, ...] = ("confirm", "dismiss")


@dataclass(frozen=True)
class ModerationResult:
    """The screening of one text: probabilities, thresholds and whether it awaits a clerk's review."""

    flagged: bool
    reasons: tuple[str, ...]  # REASON_ABUSE and/or REASON_SPAM; empty when not flagged
    abuse: float  # P(offensive) + P(hate)
    offensive: float
    hate: float
    spam: float
    abuse_threshold: float
    spam_threshold: float
    model: str

    def to_dict(self) -> dict[str, Any]:
        """The JSON stored in the case's suggestion under ``moderation`` (no clerk decision yet)."""
        return {**asdict(self), "reasons": list(self.reasons), "model_flagged": self.flagged, "decision": None}


def _head(embedder: Embedder | None, *, use_embeddings: bool, C: float) -> Router:
    return Router(embedder=embedder if use_embeddings else None, embedding_weight=2.0 if use_embeddings else 0.0, C=C)


class Moderator:
    """Two calibrated heads (abuse, spam) and the thresholds that turn their probabilities into flags.

    ``use_embeddings=False`` (the default) trains on TF-IDF words and character n-grams only: on ViHSD
    the sentence embedding does not help (see benchmarks/results/moderation.json) and the heads then
    need no encoder, so moderation keeps working wherever the product runs.
    """

    def __init__(
        self,
        *,
        embedder: Embedder | None = None,
        use_embeddings: bool = False,
        abuse_threshold: float = 0.5,
        spam_threshold: float = 0.5,
        C: float = 0.5,
    ) -> None:
        for name, t in (("abuse_threshold", abuse_threshold), ("spam_threshold", spam_threshold)):
            if not 0.0 < t <= 1.0:
                raise InvalidInput(f"{name} must be in (0, 1], got {t}")
        self.embedder = embedder
        self.use_embeddings = use_embeddings
        self.abuse_threshold = abuse_threshold
        self.spam_threshold = spam_threshold
        self.C = C
        self.abuse_: Router | None = None
        self.spam_: Router | None = None
        self.calibration_: dict[str, Any] | None = None

    # ---- training ---------------------------------------------------------------------------
    def fit(
        self,
        abuse_texts: Sequence[str],
        abuse_labels: Sequence[str],
        spam_texts: Sequence[str],
        spam_labels: Sequence[Any],
    ) -> Moderator:
        """Train both heads; abuse labels must be in ABUSE_LABELS, spam labels 0/1 (or "0"/"1")."""
        a_labels = [str(v) for v in abuse_labels]
        s_labels = [str(int(v)) if isinstance(v, bool | int | np.integer) else str(v) for v in spam_labels]
        if bad := set(a_labels) - set(ABUSE_LABELS):
            raise InvalidInput(f"abuse labels must be {ABUSE_LABELS}, got {sorted(bad)}")
        if bad := set(s_labels) - set(SPAM_LABELS):
            raise InvalidInput(f"spam labels must be 0 or 1, got {sorted(bad)}")
        if not set(ABUSIVE) & set(a_labels):
            raise InvalidInput("the abuse head needs offensive or hate examples")
        self.abuse_ = _head(self.embedder, use_embeddings=self.use_embeddings, C=self.C).fit(abuse_texts, a_labels)
        self.spam_ = _head(self.embedder, use_embeddings=self.use_embeddings, C=self.C).fit(spam_texts, s_labels)
        return self

    def calibrate(
        self,
        civic_texts: Sequence[str],
        *,
        max_false_flag_rate: float,
        floor: float = 0.5,
        embeddings: np.ndarray | None = None,
    ) -> Moderator:
        """Choose both thresholds so that at most ``max_false_flag_rate`` of ``civic_texts`` are flagged.

        ``civic_texts`` are legitimate submissions the heads were not trained on (every flag on them
        is a false flag). Both thresholds stay at ``floor`` when that already meets the rate (a
        threshold only rises here: a clear offensive comment scores near 1 and stays flagged);
        otherwise the rate is split evenly between the heads and each threshold is the lowest that
        flags at most that share of them. What was chosen, and the rate reached, is kept in
        ``calibration_`` (saved with the moderator's metrics).
        """
        if not 0.0 <= max_false_flag_rate < 1.0:
            raise InvalidInput(f"max_false_flag_rate must be in [0, 1), got {max_false_flag_rate}")
        if not civic_texts:
            raise InvalidInput("calibration needs civic texts (legitimate submissions not trained on)")
        s = self.scores(civic_texts, embeddings)
        n = len(civic_texts)
        allowed = int(np.floor(max_false_flag_rate / 2 * n + 1e-9))  # false flags each head may raise

        def threshold(scores: np.ndarray) -> float:
            top = np.sort(scores)[::-1]
            if allowed >= n:
                return floor
            above = float(np.nextafter(top[allowed], np.inf))  # flags only the `allowed` highest scores
            return min(1.0, max(floor, float(np.ceil(above * 1e4) / 1e4)))

        at_floor = float(((s["abuse"] >= floor) | (s["spam"] >= floor)).mean())
        if at_floor <= max_false_flag_rate:
            self.abuse_threshold = self.spam_threshold = floor
        else:
            self.abuse_threshold = threshold(s["abuse"])
            self.spam_threshold = threshold(s["spam"])
        flagged = (s["abuse"] >= self.abuse_threshold) | (s["spam"] >= self.spam_threshold)
        self.calibration_ = {
            "n": n,
            "max_false_flag_rate": max_false_flag_rate,
            "floor": floor,
            "abuse_threshold": self.abuse_threshold,
            "spam_threshold": self.spam_threshold,
            "false_flags": int(flagged.sum()),
            "false_flag_rate": round(float(flagged.mean()), 4),
            "false_flag_rate_at_floor": round(at_floor, 4),
        }
        return self

    def _heads(self) -> tuple[Router, Router]:
        if self.abuse_ is None or self.spam_ is None:
            raise NotFitted("Moderator is not fitted: call fit() or Moderator.load()")
        return self.abuse_, self.spam_

    @property
    def version(self) -> str:
        """``moderator-<abuse data>-<spam data>``: which training sets made a flag."""
        abuse, spam = self._heads()
        return f"moderator-{abuse.data_hash_[:8]}-{spam.data_hash_[:8]}"

    @property
    def needs_embeddings(self) -> bool:
        abuse, spam = self._heads()
        return bool(abuse.embedding_dim_ or spam.embedding_dim_)

    # ---- prediction -------------------------------------------------------------------------
    def scores(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> dict[str, np.ndarray]:
        """Per text: P(offensive), P(hate), their sum (abuse) and P(spam)."""
        abuse, spam = self._heads()
        pa = abuse.predict_proba(texts, embeddings if abuse.embedding_dim_ else None)
        ps = spam.predict_proba(texts, embeddings if spam.embedding_dim_ else None)
        col = {str(c): j for j, c in enumerate(abuse.classes_)}
        n = pa.shape[0]
        off = pa[:, col["offensive"]] if "offensive" in col else np.zeros(n)
        hate = pa[:, col["hate"]] if "hate" in col else np.zeros(n)
        spam_col = [str(c) for c in spam.classes_].index("1")
        return {"offensive": off, "hate": hate, "abuse": off + hate, "spam": ps[:, spam_col]}

    def moderate(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> list[ModerationResult]:
        """Screen each text; ``flagged`` means "a clerk should look", never "remove"."""
        s = self.scores(texts, embeddings)
        version = self.version
        out = []
        for i in range(len(s["abuse"])):
            reasons = []
            if s["abuse"][i] >= self.abuse_threshold:
                reasons.append(REASON_ABUSE)
            if s["spam"][i] >= self.spam_threshold:
                reasons.append(REASON_SPAM)
            out.append(
                ModerationResult(
                    flagged=bool(reasons),
                    reasons=tuple(reasons),
                    abuse=round(float(s["abuse"][i]), 4),
                    offensive=round(float(s["offensive"][i]), 4),
                    hate=round(float(s["hate"][i]), 4),
                    spam=round(float(s["spam"][i]), 4),
                    abuse_threshold=self.abuse_threshold,
                    spam_threshold=self.spam_threshold,
                    model=version,
                )
            )
        return out

    def predict(self, texts: Sequence[str], embeddings: np.ndarray | None = None) -> np.ndarray:
        """Flagged (True) or not, per text."""
        return np.asarray([r.flagged for r in self.moderate(texts, embeddings)], dtype=bool)

    # ---- persistence ------------------------------------------------------------------------
    def save(self, folder: Path, *, metrics: dict[str, Any] | None = None) -> Path:
        """``folder/abuse`` and ``folder/spam`` (Router folders) and a manifest with thresholds and metrics."""
        abuse, spam = self._heads()
        folder = Path(folder)
        abuse.save(folder / "abuse")
        spam.save(folder / "spam")
        fields = {
            "version": self.version,
            "abuse_threshold": self.abuse_threshold,
            "spam_threshold": self.spam_threshold,
            "use_embeddings": self.use_embeddings,
            "abuse_classes": [str(c) for c in abuse.classes_],
            "n_train": {"abuse": abuse.n_train_, "spam": spam.n_train_},
            "metrics": metrics or {},
            "calibration": self.calibration_,
            "versions": versions(),
        }
        write_manifest(folder, MODERATOR, fields)
        return folder

    @classmethod
    def load(
        cls,
        folder: Path,
        *,
        embedder: Embedder | None = None,
        abuse_threshold: float | None = None,
        spam_threshold: float | None = None,
    ) -> Moderator:
        """A saved moderator; thresholds given here override the saved ones (settings win)."""
        folder = Path(folder)
        path = folder / MANIFEST
        manifest = read_manifest(folder, MODERATOR)
        mod = cls(
            embedder=embedder,
            use_embeddings=bool(manifest.get("use_embeddings")),
            abuse_threshold=abuse_threshold if abuse_threshold is not None else float(manifest["abuse_threshold"]),
            spam_threshold=spam_threshold if spam_threshold is not None else float(manifest["spam_threshold"]),
        )
        if mod.use_embeddings:
            mod.abuse_ = Router.load(folder / "abuse", embedder=embedder)
            mod.spam_ = Router.load(folder / "spam", embedder=embedder)
        else:
            mod.abuse_, mod.spam_ = _shared_heads(folder, path.stat().st_mtime_ns)
        return mod


def is_calibrated(folder: Path) -> bool:
    """Whether the moderator in ``folder`` had its thresholds chosen on civic texts (built since issue 21).

    ``triage build-models`` rebuilds one that was not: its 0.5 thresholds flag polite formal questions.
    """
    try:
        return bool(read_manifest(Path(folder), MODERATOR, verify=False).get("calibration"))
    except TriageError:
        return False


_HEADS: dict[tuple[str, int], tuple[Router, Router]] = {}
_HEADS_LOCK = threading.Lock()


def _shared_heads(folder: Path, stamp: int) -> tuple[Router, Router]:
    """TF-IDF-only heads loaded once per process and folder version (~145 MB for each load otherwise).

    Several apps in one process (tests, or an app rebuilt on reload) then share one read-only copy;
    an embedding head is not shared because it holds its app's encoder.
    """
    key = (str(folder.resolve()), stamp)
    with _HEADS_LOCK:
        heads = _HEADS.get(key)
        if heads is None:
            heads = (Router.load(folder / "abuse"), Router.load(folder / "spam"))
            if len(_HEADS) >= 4:  # a few folders at most (tests); the oldest entry goes first
                _HEADS.pop(next(iter(_HEADS)))
            _HEADS[key] = heads
        return heads


def default_moderator_path(settings: Settings) -> Path:
    return settings.moderation_path or settings.model_dir / "moderation"


def load_moderator(settings: Settings, embedder: Embedder | None = None) -> Moderator | None:
    """The configured moderator, or None (logged) when moderation is off or no model was built."""
    if not settings.moderation_enabled:
        log.info("moderation is switched off (TRIAGE_MODERATION_ENABLED=false): no submission is screened")
        return None
    folder = default_moderator_path(settings)
    if not (folder / MANIFEST).exists():
        log.warning(
            "no moderation model at %s: submissions are NOT screened for abuse or spam "
            "(build it with `triage build-models` or `triage moderation train`)",
            folder,
        )
        return None
    mod = Moderator.load(
        folder,
        embedder=embedder,
        abuse_threshold=settings.moderation_abuse_threshold,
        spam_threshold=settings.moderation_spam_threshold,
    )
    log.info("moderation model %s loaded from %s", mod.version, folder)
    return mod


def decided(
    moderation: dict[str, Any] | None, decision: str, *, by: str, at: datetime, note: str | None
) -> dict[str, Any]:
    """The stored moderation after a clerk's decision: the model's scores stay, the flag follows the person.

    ``confirm`` keeps (or raises, when the model missed it) the flag; ``dismiss`` lowers it. The model's
    own verdict stays in ``model_flagged`` so reports can compare the two.
    """
    if decision not in DECISIONS:
        raise InvalidInput(f"decision must be one of {', '.join(DECISIONS)}, got {decision!r}")
    base = dict(moderation or {"model_flagged": None, "reasons": [], "model": None})
    base.update(
        flagged=decision == "confirm",
        decision=decision,
        decided_by=by,
        decided_at=at.astimezone(UTC).isoformat(timespec="seconds"),
        note=note,
    )
    return base
