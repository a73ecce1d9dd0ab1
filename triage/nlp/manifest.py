"""``manifest.json``: how every saved model folder describes itself, and the one format check.

In the spirit of sentence-transformers' ``modules.json``, each artefact (router, tuned router,
routing bundle, moderator, duplicate index, encoder) writes a ``manifest.json`` whose ``kind`` says
which class loads the folder and whose ``format`` says which layout it has; ``triage.nlp.artifacts.load``
dispatches on the kind. Folders written before the protocol (no ``format``: format 0) go through
``upgrade`` below, the only place that knows old layouts: those whose content is what this version
writes are read as format 1, the others are refused with the command that rebuilds them.

Integrity: the manifest lists the SHA-256 of every other file in the folder (``files``), written at
save time, and ``read_manifest`` checks them before any loader opens (unpickles) a file: a folder
without the list ("unsigned"), with a file that differs, is missing or is not listed, is refused
with a log line naming the file. A model that arrives from the MLflow registry is therefore loaded
only as it was saved. Encoders (safetensors and ONNX, nothing unpickled, ~850 MB) are listed but not
re-hashed at every start. ``seal`` lists the files of a folder built before the digests existed
(``triage build-models`` does it for the default models it finds).
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import platform
import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

from triage.errors import ModelIncompatible, ModelMissing

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
FILES = "files"  # the manifest's key listing {relative path: SHA-256} of every other file
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
    if FILES in fields:
        raise ValueError("files is computed from the folder, not given")
    manifest = {"kind": kind, "format": FORMAT, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}
    manifest.update(fields)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    manifest[FILES] = file_digests(folder)
    _write(folder, manifest)
    return manifest


def _write(folder: Path, manifest: dict[str, Any]) -> None:
    tmp = folder / f"{MANIFEST}.{os.getpid()}.{threading.get_ident()}.tmp"
    tmp.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, default=str), encoding="utf-8")
    tmp.replace(folder / MANIFEST)


def _listed(folder: Path) -> list[Path]:
    """Every file under ``folder`` but its own manifest, sorted (temporary files of a writer included: refused)."""
    return sorted(p for p in folder.rglob("*") if p.is_file() and p != folder / MANIFEST)


_digest_cache: dict[tuple[str, int, int, int, int], str] = {}
_cache_lock = threading.Lock()


def sha256_file(path: Path) -> str:
    """SHA-256 of a file, cached per (path, size, inode, mtime, ctime): a changed file is hashed again."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_ino, st.st_mtime_ns, st.st_ctime_ns)
    with _cache_lock:
        hit = _digest_cache.get(key)
    if hit is not None:
        return hit
    h = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    digest = h.hexdigest()
    with _cache_lock:
        _digest_cache[key] = digest
    return digest


def file_digests(folder: Path) -> dict[str, str]:
    """{path relative to ``folder``: SHA-256} of every file in it except its manifest."""
    return {p.relative_to(folder).as_posix(): sha256_file(p) for p in _listed(folder)}


def check_files(folder: Path, manifest: Mapping[str, Any]) -> None:
    """Refuse (``ModelIncompatible``, and an error log line) a folder whose files are not exactly those listed."""
    kind = str(manifest.get("kind"))
    listed = manifest.get(FILES)
    if not isinstance(listed, dict):
        why = "it carries no SHA-256 list of its files (unsigned)"
    else:
        found = {p.relative_to(folder).as_posix(): p for p in _listed(folder)}
        extra = sorted(set(found) - set(listed))
        missing = sorted(set(listed) - set(found))
        bad = sorted(n for n, p in found.items() if n in listed and sha256_file(p) != listed[n])
        if not (extra or missing or bad):
            return
        why = "; ".join(
            part
            for part in (
                f"changed since it was saved: {', '.join(bad)}" if bad else "",
                f"missing: {', '.join(missing)}" if missing else "",
                f"not listed in its manifest: {', '.join(extra)}" if extra else "",
            )
            if part
        )
    log.error("refusing to load the %s at %s: %s", describe(kind), folder, why)
    raise ModelIncompatible(
        f"refusing to load the {describe(kind)} at {folder}: {why}. Nothing in it was opened; "
        f"{how_to_build(kind)} (or `triage build-models`, which lists the files of the default models)"
    )


def seal(folder: Path) -> bool:
    """List the SHA-256 of a folder's files in its manifest if it has no list yet; returns whether it did.

    For folders built on this machine before the digests existed (trusted as they are now).
    """
    folder = Path(folder)
    manifest = read_manifest(folder, verify=False)
    if isinstance(manifest.get(FILES), dict):
        return False
    for part in sorted(p.parent for p in folder.rglob(MANIFEST) if p.parent != folder):
        seal(part)  # parts first: the outer list covers their manifests as they end up
    manifest[FILES] = file_digests(folder)
    _write(folder, manifest)
    log.warning("listed the SHA-256 of the files of the %s at %s", describe(str(manifest["kind"])), folder)
    return True


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


def read_manifest(folder: Path, kind: str | tuple[str, ...] | None = None, *, verify: bool = True) -> dict[str, Any]:
    """The folder's manifest in this version's format; its kind must be ``kind`` (or one of them) when given.

    Raises ``ModelMissing`` when there is no model folder and ``ModelIncompatible`` when there is one
    this version cannot read (older layout, newer format, unknown or other kind); both messages say
    which command (re)builds it. ``verify`` (the default) also checks the files' SHA-256 list
    (``check_files``), except for encoders.
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
    if verify and found != ENCODER:
        check_files(folder, manifest)
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
