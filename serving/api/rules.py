"""``/v1/rules``: the rule pack in force, its history, publishing, rollback and the shadow candidate.

A pack is published as YAML text; it is validated against the service's feature set
before anything is stored (422 naming the field, e.g. ``rules[3].when.feature``), stored
as a new version with its author (the caller) and diff (``scoring.pack_store``), and
swapped in by this process at once and by every other process within
``scoring.rules_poll_s`` (``serving.rule_slot``). The same text again is a no-op.
Reading is open to everyone who works with decisions; changing to data scientists and
admins (``serving.api.auth``).
"""

from __future__ import annotations

import asyncio
from typing import Annotated

from fastapi import APIRouter, Depends, Path, Response

from orderguard.access import Principal
from scoring.pack_store import Published, StoredPack, parse_bands
from serving.api.auth import AUTH_RESPONSES, RULE_PUBLISHERS, RULE_READERS
from serving.api.deps import services
from serving.api.schemas import (
    MAX_VERSION,
    ErrorBody,
    PublishRulesIn,
    PublishRulesOut,
    RollbackRulesIn,
    RuleHistoryOut,
    RulePackDetailOut,
    RulePackOut,
    RulesOut,
    ServingRulesOut,
    ShadowRulesIn,
)
from serving.services import Services

router = APIRouter(tags=["rules"], responses=AUTH_RESPONSES)

_CHANGE_ERRORS: dict[int | str, dict[str, object]] = {
    200: {"model": PublishRulesOut, "description": "nothing changed: the same text (and bands) was in force"},
    413: {"model": ErrorBody, "description": "the request body is larger than the service accepts"},
    422: {"model": ErrorBody, "description": "the pack does not load against the feature set: the field and why"},
}


def _out(pack: StoredPack) -> RulePackOut:
    return RulePackOut(version=pack.version, label=pack.label, role=pack.role, content_hash=pack.content_hash,
                       author=pack.author, source=pack.source, applied_at=pack.applied_at, note=pack.note,
                       bands=[pack.bands.verify, pack.bands.review, pack.bands.hold] if pack.bands else None,
                       rollback_of=pack.rollback_of)


async def _published(svc: Services, published: Published | None, response: Response, *,
                     created: int = 201) -> PublishRulesOut | None:
    """Swap the change in here at once (other processes poll), and answer ``created`` when something was stored
    (200 when nothing changed)."""
    await svc.rules.refresh()
    if published is None:
        return None
    response.status_code = created if published.changed else 200
    return PublishRulesOut(changed=published.changed, pack=_out(published.pack))


@router.get("/v1/rules", response_model=RulesOut, summary="The rule pack in force and the shadow candidate",
            dependencies=[RULE_READERS])
async def rules_in_force(svc: Annotated[Services, Depends(services)]) -> RulesOut:
    """Live pack and shadow candidate as stored, and what the answering process serves."""
    state = await asyncio.to_thread(svc.rules.store.state)
    status = svc.rules.status
    assert state.live is not None and status is not None  # the start-up took in a pack
    return RulesOut(live=_out(state.live), shadow=_out(state.shadow) if state.shadow else None,
                    serving=ServingRulesOut(live=status.live.label,
                                            shadow=status.shadow.label if status.shadow else None,
                                            seen=status.seen, loaded_at=status.loaded_at, problem=status.problem))


@router.get("/v1/rules/history", response_model=RuleHistoryOut, summary="Every rule pack change, newest first",
            dependencies=[RULE_READERS])
async def rules_history(svc: Annotated[Services, Depends(services)]) -> RuleHistoryOut:
    """Version, hash, author, time, note and role of every change."""
    return RuleHistoryOut(items=[_out(p) for p in await asyncio.to_thread(svc.rules.store.history)])


@router.get("/v1/rules/versions/{version}", response_model=RulePackDetailOut, summary="One version's text and diff",
            dependencies=[RULE_READERS], responses={404: {"model": ErrorBody, "description": "no such version"}})
async def rules_version(version: Annotated[int, Path(ge=1, le=MAX_VERSION)],
                        svc: Annotated[Services, Depends(services)]) -> RulePackDetailOut:
    """The YAML text as applied and the unified diff against the live pack before it."""
    pack = await asyncio.to_thread(svc.rules.store.get, version)
    return RulePackDetailOut(**_out(pack).model_dump(), text=pack.text, diff=pack.diff)


@router.post("/v1/rules", response_model=PublishRulesOut, status_code=201, summary="Publish a new live rule pack",
             responses=_CHANGE_ERRORS)
async def publish_rules(body: PublishRulesIn, svc: Annotated[Services, Depends(services)], response: Response,
                        caller: Annotated[Principal, RULE_PUBLISHERS]) -> PublishRulesOut | None:
    """Validate, store as the next version (201) and serve it; the text already live is a no-op (200)."""
    published = await asyncio.to_thread(svc.rules.store.publish, body.text, author=caller.reviewer_id,
                                        now=svc.clock.now(), note=body.note)
    return await _published(svc, published, response)


@router.post("/v1/rules/rollback", response_model=PublishRulesOut, status_code=201,
             summary="Serve an earlier version again",
             responses={404: {"model": ErrorBody, "description": "no such version"}, **_CHANGE_ERRORS})
async def rollback_rules(body: RollbackRulesIn, svc: Annotated[Services, Depends(services)], response: Response,
                         caller: Annotated[Principal, RULE_PUBLISHERS]) -> PublishRulesOut | None:
    """The version's text is published again as a new version, recorded as a rollback to it."""
    published = await asyncio.to_thread(svc.rules.store.rollback, body.version, author=caller.reviewer_id,
                                        now=svc.clock.now(), note=body.note)
    return await _published(svc, published, response)


@router.post("/v1/rules/shadow", response_model=PublishRulesOut, status_code=201,
             summary="Judge a candidate pack beside the live one", responses=_CHANGE_ERRORS)
async def set_shadow(body: ShadowRulesIn, svc: Annotated[Services, Depends(services)], response: Response,
                     caller: Annotated[Principal, RULE_PUBLISHERS]) -> PublishRulesOut | None:
    """Every order is also judged by the candidate (and its bands) on the same features and model probability;
    its verdict is stored with the score record and never changes the answer."""
    bands = parse_bands(body.bands) if body.bands is not None else None
    published = await asyncio.to_thread(svc.rules.store.set_shadow, body.text, author=caller.reviewer_id,
                                        now=svc.clock.now(), bands=bands, note=body.note)
    return await _published(svc, published, response)


@router.delete("/v1/rules/shadow", response_model=PublishRulesOut | None, summary="End the shadow run")
async def clear_shadow(svc: Annotated[Services, Depends(services)], response: Response,
                       caller: Annotated[Principal, RULE_PUBLISHERS]) -> PublishRulesOut | None:
    """Stop judging with the candidate (null when none ran)."""
    published = await asyncio.to_thread(svc.rules.store.clear_shadow, author=caller.reviewer_id,
                                        now=svc.clock.now())
    return await _published(svc, published, response, created=200)
