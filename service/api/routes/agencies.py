"""The agency registry (public: a submitter may want to know who is who)."""

from __future__ import annotations

from fastapi import APIRouter

from service.schemas.nlp import AgencyOut
from triage.nlp.agencies import default_registry

router = APIRouter(prefix="/api/v1", tags=["agencies"])


@router.get("/agencies", response_model=list[AgencyOut])
def agencies() -> list[AgencyOut]:
    return [
        AgencyOut(
            code=a.code, name=a.name, kind=a.kind, parent=a.parent, aliases=list(a.aliases), fields=list(a.fields)
        )
        for a in default_registry()
    ]
