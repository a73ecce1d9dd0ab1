"""Move the served champion by hand: promote a registered version, or roll back to the previous one.

Shared by `triage models promote|rollback` and the service (API and web page), so every move is
checked and recorded the same way: the registry moves the `champion` alias (and appends to its
history, which is what rollback walks back along), and the audit trail gets a ``model_promote`` or
``model_rollback`` event naming the actor and the versions before and after. A service picks the new
champion up at its next registry check; the service's own endpoints check at once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any

from training.registry import CHAMPION, HISTORY_TAG, ModelRegistry
from triage.cases import audit
from triage.config import Settings
from triage.store.db import Database

log = logging.getLogger("training.promotion")
PROMOTE, ROLLBACK = "model_promote", "model_rollback"


@dataclass(frozen=True)
class ChampionChange:
    """One move of the `champion` alias, as recorded in the audit trail."""

    action: str  # model_promote | model_rollback
    registry_model: str
    before: int | None
    after: int
    actor: str
    event_seq: int

    def as_dict(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "registry_model": self.registry_model,
            "before": self.before,
            "after": self.after,
            "actor": self.actor,
            "event_seq": self.event_seq,
        }


def _record(
    db: Database, reg: ModelRegistry, action: str, actor: str, before: int | None, after: int, reason: str
) -> ChampionChange:
    with db.session() as s:
        event = audit.record(
            s,
            actor=actor,
            action=action,
            before={"registry_model": reg.name, "champion": before},
            after={"registry_model": reg.name, "champion": after, "reason": reason},
            model_version=f"{reg.name}/v{after}",
        )
    return ChampionChange(action, reg.name, before, after, actor, int(event.seq))  # numbered at the commit


def _restore(reg: ModelRegistry, before: int | None) -> None:
    """Put the alias back after a move whose audit event could not be written (no unrecorded moves)."""
    try:
        if before is None:
            reg.client.delete_registered_model_alias(reg.name, CHAMPION)
        else:
            reg.client.set_registered_model_alias(reg.name, CHAMPION, str(before))
    except Exception:  # the original error is the one to report
        log.exception("could not restore the champion of %s to version %s", reg.name, before)


def promote(
    settings: Settings,
    db: Database,
    version: int,
    *,
    actor: str,
    reason: str | None = None,
    registry: ModelRegistry | None = None,
) -> ChampionChange:
    """Serve registered ``version`` (NotFound for a version that does not exist); bypasses the gate."""
    reg = registry or ModelRegistry(settings)
    current = reg.champion()
    before = None if current is None else current.version
    why = reason or f"promoted by hand by {actor}"
    reg.promote(version, reason=why)
    try:
        return _record(db, reg, PROMOTE, actor, before, version, why)
    except Exception:
        _restore(reg, before)
        raise


def rollback(settings: Settings, db: Database, *, actor: str, registry: ModelRegistry | None = None) -> ChampionChange:
    """Serve the previous champion again (Conflict when the champion has no predecessor)."""
    reg = registry or ModelRegistry(settings)
    current = reg.champion()
    before = None if current is None else current.version
    history = reg.history()
    after = reg.rollback().version
    why = f"rollback by {actor} from version {before}"
    try:
        return _record(db, reg, ROLLBACK, actor, before, after, why)
    except Exception:
        _restore(reg, before)
        reg.client.set_registered_model_tag(reg.name, HISTORY_TAG, json.dumps(history))
        raise
