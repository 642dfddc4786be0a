"""``GET /v1/model`` and ``POST /v1/admin/reload-model``: which model serves, and picking up a new champion.

After ``orderguard promote`` moves the ``champion`` alias, a running service takes the
new model with one call here: no restart, no failed or slowed request (see
``serving.champion``). A champion that cannot be served (unreachable registry, features
the online engine does not compute) is refused with the reason and the old model stays.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from serving.api.auth import AUTH_RESPONSES, DATA_SCIENTIST, MODEL_READERS
from serving.api.deps import services
from serving.api.schemas import ErrorBody, ModelStatusOut, ReloadOut
from serving.champion import ModelStatus
from serving.services import Services

router = APIRouter(tags=["model"], responses=AUTH_RESPONSES)


def _out(status: ModelStatus) -> ModelStatusOut:
    return ModelStatusOut(model_version=status.version, rules_only=status.rules_only, note=status.note,
                          loaded_at=status.loaded_at)


@router.get("/v1/model", response_model=ModelStatusOut, summary="The model currently serving",
            dependencies=[MODEL_READERS])
async def model_status(svc: Annotated[Services, Depends(services)]) -> ModelStatusOut:
    """The served model's registry version, or rules-only with the reason."""
    return _out(svc.champion.status)


@router.post("/v1/admin/reload-model", response_model=ReloadOut, summary="Load the current champion",
             dependencies=[DATA_SCIENTIST],
             responses={409: {"model": ErrorBody, "description": "the champion uses features this service lacks"},
                        503: {"model": ErrorBody, "description": "the model registry cannot be reached"}})
async def reload_model(svc: Annotated[Services, Depends(services)]) -> ReloadOut:
    """Load the registry's ``champion`` and swap it in between requests.

    Requests in flight finish with the model they started with; later ones use the new
    model. If the champion did not change, nothing is reloaded.
    """
    before, after = await svc.champion.reload()
    return ReloadOut(changed=before.version != after.version, previous=_out(before), current=_out(after))
