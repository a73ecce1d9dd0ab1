"""What every command group shares: the error console, the one way to fail, the database and the encoder."""

from __future__ import annotations

import json
import sys
from typing import Any, NoReturn

import numpy as np
import typer
from rich.console import Console
from rich.progress import track

from triage.config import get_settings
from triage.store.db import Database, audit_key, database_url, init_db

console = Console(stderr=True)


def fail(exc: Exception) -> NoReturn:
    """Print the domain error in one line and exit 2 (no traceback: the message says what to do)."""
    console.print(f"[red]error:[/red] {exc}")
    raise typer.Exit(code=2)


def write_json(payload: Any) -> None:
    """Results go to stdout as JSON so a command can be piped; progress and errors go to stderr."""
    sys.stdout.write(json.dumps(payload, ensure_ascii=False, indent=2, default=str) + "\n")


def open_database(url: str | None = None) -> Database:
    """The database named by TRIAGE_DATABASE_URL (or `url`), migrated to the newest schema first."""
    settings = get_settings()
    db = Database(url or database_url(settings), audit_key=audit_key(settings))
    init_db(db)
    return db


def load_embedder() -> Any:
    """The encoder the settings name, cached per process."""
    # Imported here: loading the encoder module pulls in onnxruntime and tokenizers (~1 s).
    from triage.nlp.embed import cached_embedder

    s = get_settings()
    return cached_embedder(
        str(s.encoder_path) if s.encoder_path else None, str(s.model_dir), s.encoder_backend, s.encoder_threads
    )


def encode_with_progress(embedder: Any, texts: list[str], label: str, batch: int = 256) -> np.ndarray:
    """Encode in batches behind a progress bar (minutes on large files)."""
    parts = [np.zeros((0, embedder.dimension), dtype=np.float32)]
    for start in track(range(0, len(texts), batch), description=label, console=console):
        parts.append(embedder.encode(texts[start : start + batch]))
    return np.concatenate(parts)
