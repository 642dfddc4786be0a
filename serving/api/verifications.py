"""``POST /v1/verifications``: the order system reports how a ``verify`` order's step-up check ended.

A failed check, or none reported within ``settings.desk.verify_timeout``, puts the order
in the review desk's queue; a passed one keeps it out (``serving.desk.queue``).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends

from orderguard.errors import InvalidInputError
from orderguard.verifications import Outcome, Verification, VerificationLog
from serving.api.auth import AUTH_RESPONSES, ORDER_SYSTEM
from serving.api.deps import services
from serving.api.orders import body_order_key
from serving.api.schemas import ErrorBody, VerificationIn, VerificationOut
from serving.services import Services, stored_order

router = APIRouter(tags=["verifications"], responses=AUTH_RESPONSES, dependencies=[ORDER_SYSTEM])


@router.post("/v1/verifications", response_model=VerificationOut, status_code=201,
             summary="Report the outcome of a verify order's check",
             responses={404: {"model": ErrorBody, "description": "the order is not in the order log"},
                        422: {"model": ErrorBody, "description": "a bad field (order key, outcome, time)"}})
async def report_verification(body: VerificationIn, svc: Annotated[Services, Depends(services)]) -> VerificationOut:
    """Store the outcome; the review queue reads it at its next look."""
    key = body_order_key(body.order_key)
    order = stored_order(svc, key)
    now = svc.clock.now()
    at = body.verified_at or now
    if at > now or at < order.details.created_at:
        raise InvalidInputError.must("verified_at", "between the order's creation and now", at.isoformat())
    verification = Verification(key, Outcome(body.outcome), body.method.strip(), at)
    VerificationLog(svc.order_log.engine).add(verification, recorded_at=now)
    return VerificationOut(order_key=str(key), outcome=verification.outcome.value, method=verification.method,
                           verified_at=at)
