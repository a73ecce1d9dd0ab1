"""``load(folder, **deps)``: open any saved model folder by the ``kind`` its manifest names.

Like sentence-transformers reading ``modules.json``, the caller does not need to know what a folder
holds: the manifest's ``kind`` picks the class, ``triage.nlp.manifest.read_manifest`` refuses what
this version cannot read (the one format check), and each loader takes the dependencies it needs
from ``deps`` (``embedder`` for routers, bundles and moderators, ``threads`` for tuned routers and
encoders, ...). ``kinds`` restricts what the caller accepts, so a predict command handed a moderator
folder says so instead of failing later.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from pathlib import Path
from typing import Any

from triage.errors import InvalidInput
from triage.nlp.duplicates import DuplicateIndex
from triage.nlp.embed import load_embedder
from triage.nlp.manifest import (
    BUNDLE,
    DUPLICATE_INDEX,
    ENCODER,
    MODERATOR,
    ROUTER,
    TUNED_ROUTER,
    read_manifest,
)
from triage.nlp.model_bundle import load_bundle
from triage.nlp.moderation import Moderator
from triage.nlp.router import Router
from triage.nlp.tuned_router import TunedRouter


def _encoder(folder: Path, *, backend: str = "onnx", threads: int = 0, spin: bool = True) -> Any:
    return load_embedder(folder, folder.parent, backend=backend, threads=threads, spin=spin)


def _duplicate_index(folder: Path, *, ef_search: int | None = None) -> DuplicateIndex:
    return DuplicateIndex.load(folder) if ef_search is None else DuplicateIndex.load(folder, ef_search=ef_search)


LOADERS: dict[str, Callable[..., Any]] = {
    ROUTER: Router.load,
    TUNED_ROUTER: TunedRouter.load,
    BUNDLE: load_bundle,
    MODERATOR: Moderator.load,
    DUPLICATE_INDEX: _duplicate_index,
    ENCODER: _encoder,
}


def _accepts(loader: Callable[..., Any]) -> set[str]:
    kinds = (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    return {name for name, p in list(inspect.signature(loader).parameters.items())[1:] if p.kind in kinds}


def kind_of(folder: Path) -> str:
    """The kind of model ``folder`` holds, after the format check (``ModelMissing`` when none)."""
    return str(read_manifest(Path(folder))["kind"])


def load(folder: Path, *, kinds: tuple[str, ...] | None = None, **deps: Any) -> Any:
    """The model saved in ``folder``, loaded by the class its manifest's ``kind`` names.

    ``deps`` are handed to the loader that takes them (one not taken by any kind is a mistake:
    ``InvalidInput``). Raises ``ModelMissing`` when ``folder`` holds no model and ``ModelIncompatible``
    for a format this version cannot read or a kind outside ``kinds``; both say what rebuilds it.
    """
    folder = Path(folder)
    known = set().union(*(_accepts(f) for f in LOADERS.values()))
    if unknown := set(deps) - known:
        raise InvalidInput(f"no model kind takes {sorted(unknown)}; known: {sorted(known)}")
    loader = LOADERS[str(read_manifest(folder, kinds)["kind"])]
    taken = _accepts(loader)
    return loader(folder, **{k: v for k, v in deps.items() if k in taken})
