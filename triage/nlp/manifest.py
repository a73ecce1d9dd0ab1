"""``manifest.json``: how every saved model folder describes itself, and the one format check.

In the spirit of sentence-transformers' ``modules.json``, each artefact (router, tuned router,
routing bundle, moderator, duplicate index, encoder) writes a ``manifest.json`` whose ``kind`` says
which class loads the folder and whose ``format`` says which layout it has; ``triage.nlp.artifacts.load``
dispatches on the kind. Folders written before the protocol (no ``format``: format 0) go through
``upgrade`` below, the only place that knows old layouts: those whose content is what this version
writes are read as format 1, the others are refused with the command that rebuilds them.
"""

from __future__ import annotations

import json
import platform
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import ModelIncompatible, ModelMissing

MANIFEST = "manifest.json"
FORMAT = 1  # the layout this version writes; bump it (and teach ``upgrade``) when a layout changes
LEGACY_BUNDLE_CARD = "bundle.json"  # format 0 routing bundles: a card without a kind, no manifest

ROUTER, TUNED_ROUTER, BUNDLE = "router", "tuned_router", "bundle"
MODERATOR, DUPLICATE_INDEX, ENCODER = "moderator", "duplicate_index", "encoder"

# What each kind is called in messages, and the command that (re)builds one.
_NAMES: dict[str, tuple[str, str]] = {
    ROUTER: ("router", "train one with `triage train`"),
    TUNED_ROUTER: ("tuned router", "train one with `triage train --finetune-encoder`"),
    BUNDLE: ("routing bundle", "retrain it with `triage retrain`"),
    MODERATOR: ("moderator", "train one with `triage moderation train` (or `triage build-models --force`)"),
    DUPLICATE_INDEX: ("duplicate index", "build it with `triage index rebuild`"),
    ENCODER: ("encoder", "build it with `triage build-models --force`"),
}
KINDS: tuple[str, ...] = tuple(_NAMES)


def describe(kind: str) -> str:
    return _NAMES[kind][0] if kind in _NAMES else repr(kind)


def how_to_build(kind: str) -> str:
    return _NAMES[kind][1] if kind in _NAMES else "rebuild it with the command that made it"


def versions(**extra: str) -> dict[str, str]:
    """Library versions worth recording next to a pickle (a different scikit-learn may not read it)."""
    import sklearn  # imported here: encoder folders are written without scikit-learn (~0.5 s)

    return {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": np.__version__,
        **extra,
    }


def write_manifest(folder: Path, kind: str, fields: Mapping[str, Any]) -> dict[str, Any]:
    """Write ``folder/manifest.json``: ``kind``, ``format``, ``created_at`` first, then ``fields``.

    Written to a temporary name and renamed, so a reader never sees half a manifest.
    """
    if kind not in _NAMES:
        raise ValueError(f"unknown model kind {kind!r}")
    if {"kind", "format"} & set(fields):
        raise ValueError("kind and format are the protocol's own keys")
    manifest = {"kind": kind, "format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    manifest.update(fields)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / (MANIFEST + ".tmp")
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(folder / MANIFEST)
    return manifest


def is_model_folder(folder: Path) -> bool:
    """Whether ``folder`` describes itself (a manifest, or a format 0 bundle card)."""
    folder = Path(folder)
    return (folder / MANIFEST).exists() or (folder / LEGACY_BUNDLE_CARD).exists()


def is_current(folder: Path, kind: str | None = None) -> bool:
    """Whether ``folder`` holds a manifest of this version's format (and of ``kind``): nothing to rebuild."""
    try:
        manifest = json.loads((Path(folder) / MANIFEST).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    return manifest.get("format") == FORMAT and (kind is None or manifest.get("kind") == kind)


def read_manifest(folder: Path, kind: str | tuple[str, ...] | None = None) -> dict[str, Any]:
    """The folder's manifest in this version's format; its kind must be ``kind`` (or one of them) when given.

    Raises ``ModelMissing`` when there is no model folder and ``ModelIncompatible`` when there is one
    this version cannot read (older layout, newer format, unknown or other kind); both messages say
    which command (re)builds it.
    """
    folder = Path(folder)
    wanted = (kind,) if isinstance(kind, str) else tuple(kind or ())
    hint = how_to_build(wanted[0]) if wanted else "no manifest.json there"
    path = folder / MANIFEST
    if not is_model_folder(folder):
        raise ModelMissing(f"no {describe(wanted[0]) if wanted else 'model'} at {folder}; {hint}")
    try:
        raw = json.loads((path if path.exists() else folder / LEGACY_BUNDLE_CARD).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelIncompatible(f"{path} is unreadable ({exc}); {hint}") from exc
    if not isinstance(raw, dict):
        raise ModelIncompatible(f"{path} is not a JSON object; {hint}")
    manifest = upgrade(folder, raw, legacy_card=not path.exists())
    found = str(manifest["kind"])
    if found not in _NAMES:
        raise ModelIncompatible(f"{folder} holds a model of unknown kind {found!r}; known kinds: {', '.join(KINDS)}")
    if wanted and found not in wanted:
        names = " or ".join(describe(k) for k in wanted)
        raise ModelIncompatible(f"{folder} holds a {describe(found)}, not a {names}; {hint}")
    return manifest


def upgrade(folder: Path, manifest: dict[str, Any], *, legacy_card: bool = False) -> dict[str, Any]:
    """``manifest`` in format ``FORMAT``: the one place that reads layouts written by older versions.

    Format 0 (before ``format`` existed) is read as format 1 where the folder's content is the same:
    encoders (no kind then), duplicate indexes, routers pickled since the embedding weight search
    (their manifest lists ``search_out_of_fold_log_loss``), tuned routers (one member before
    ``members`` existed), moderators and bundles (``bundle.json``, no kind) whose routers pass. Anything
    older, and any newer format, is refused with the command that rebuilds it.
    """
    fmt = manifest.get("format", 0)
    kind = str(manifest.get("kind") or (BUNDLE if legacy_card else ENCODER if "dimension" in manifest else ""))
    if not isinstance(fmt, int) or fmt > FORMAT:
        raise ModelIncompatible(
            f"{folder} holds a {describe(kind)} in format {fmt!r}, newer than this version reads ({FORMAT}): "
            f"upgrade pakn-triage or {how_to_build(kind)}"
        )
    if fmt == FORMAT:
        return manifest

    def refuse(why: str) -> ModelIncompatible:
        return ModelIncompatible(
            f"{folder} holds a {describe(kind)} saved by an older version ({why}) that this version "
            f"cannot read: {how_to_build(kind)}"
        )

    out = {**manifest, "kind": kind, "format": FORMAT}
    if kind == ROUTER:
        if "search_out_of_fold_log_loss" not in manifest:
            raise refuse("from before the embedding weight search")
    elif kind == TUNED_ROUTER:
        out.setdefault("members", 1)  # one encoder/ and router/ pair before members existed
        out.setdefault("temperature", 1.0)
        out.setdefault("n_calibration", 0)
        n = int(out["members"])
        _parts_readable(folder, [("router" if n == 1 else f"router-{m}") for m in range(n)], refuse)
    elif kind == MODERATOR:
        _parts_readable(folder, ["abuse", "spam"], refuse)
    elif kind == BUNDLE:
        _parts_readable(folder, ["agency", "field"], refuse, optional=("field",))
    elif kind not in (ENCODER, DUPLICATE_INDEX):
        raise refuse("no kind this version knows")
    return out


def _parts_readable(
    folder: Path, parts: list[str], refuse: Callable[[str], ModelIncompatible], optional: tuple[str, ...] = ()
) -> None:
    """A composite folder is only as readable as its parts (the routers inside it)."""
    for part in parts:
        if part in optional and not (folder / part).exists():
            continue
        try:
            read_manifest(folder / part)
        except ModelMissing as exc:  # ModelIncompatible included
            raise refuse(f"its {part}/ part: {exc}") from exc
