"""`triage moderation train|check`: build the abuse / spam moderator and try it on a text."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated

import typer

from triage.cli._common import console, fail, load_embedder
from triage.config import get_settings
from triage.errors import TriageError

moderation_app = typer.Typer(help="Abuse / spam flags for a clerk's review (never automatic removal).")


@moderation_app.command("train")
def train(
    out: Annotated[Path | None, typer.Option(help="Folder to write to (default: the configured moderator).")] = None,
    data_dir: Annotated[Path | None, typer.Option(help="Shared datasets (default: TRIAGE_SHARED_DATA_DIR).")] = None,
    limit: Annotated[int | None, typer.Option(help="Cap each source (a quick smoke build).")] = None,
) -> None:
    """Train on ViHSD + ViSpam + civic negatives, choose thresholds for the civic false-flag rate, save."""
    # Deferred: training.moderation loads the public datasets' readers and scikit-learn (~2 s).
    from training.moderation import train_moderator
    from triage.nlp.moderation import default_moderator_path

    s = get_settings()
    target = out or default_moderator_path(s)
    try:
        _, metrics = train_moderator(
            data_dir or s.shared_data_dir,
            target,
            abuse_threshold=s.moderation_abuse_threshold,
            spam_threshold=s.moderation_spam_threshold,
            max_false_flag_rate=s.moderation_max_false_flag_rate,
            limit=limit,
            say=lambda m: console.print(f"[cyan]moderation[/cyan] {m}"),
        )
    except TriageError as exc:
        fail(exc)
    sys.stdout.write(json.dumps(metrics, ensure_ascii=False, indent=2) + "\n")
    console.print(f"moderator saved to {target}")


@moderation_app.command("check")
def check(
    text: Annotated[list[str], typer.Option("--text", help="Text to screen (repeatable).")],
    model: Annotated[Path | None, typer.Option(help="Moderator folder (default: the configured one).")] = None,
) -> None:
    """Screen texts and print the flag, the reasons and the probabilities as JSON lines."""
    # Deferred: the moderator module loads scikit-learn (~1.7 s), which `triage --help` must not pay.
    from triage.nlp.moderation import Moderator, default_moderator_path
    from triage.nlp.text import mask_pii, normalize

    s = get_settings()
    try:
        mod = Moderator.load(
            model or default_moderator_path(s),
            abuse_threshold=s.moderation_abuse_threshold,
            spam_threshold=s.moderation_spam_threshold,
        )
        if mod.needs_embeddings:
            mod = Moderator.load(
                model or default_moderator_path(s),
                embedder=load_embedder(),
                abuse_threshold=s.moderation_abuse_threshold,
                spam_threshold=s.moderation_spam_threshold,
            )
        results = mod.moderate([mask_pii(normalize(t)) for t in text])
    except TriageError as exc:
        fail(exc)
    for t, r in zip(text, results, strict=True):
        sys.stdout.write(json.dumps({"text": t, **r.to_dict()}, ensure_ascii=False) + "\n")


def register(app: typer.Typer) -> None:
    app.add_typer(moderation_app, name="moderation")
