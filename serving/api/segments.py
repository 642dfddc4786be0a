"""``GET /v1/segments/trusted`` (the trusted-customer pool, page by page) and ``.../explain`` (why not?).

For marketing and admins. A pool is computed once per as-of and criteria and kept for
the pages that follow (``segments.cache``); the cursor carries the as-of and criteria of
its first page, so paging through a pool never mixes two days. Phone numbers leave only
as keyed hashes; an admin may ask for the channels' masked forms with ``phones=masked``.
The criteria are a shipped preset's name or the configured file, never a path from the
request.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import tempfile
from contextlib import AbstractContextManager
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import FileResponse
from pydantic import BaseModel, Field
from starlette.background import BackgroundTask

from orderguard.access import Principal, Role
from orderguard.errors import InvalidInputError, NotFoundError
from segments.build import TrustPool, as_of_label, resolve_as_of
from segments.criteria import PRESETS, Criteria, load_criteria
from segments.export import MEDIA_TYPES, Format, write
from serving.api.auth import AUTH_RESPONSES, ForbiddenError, require
from serving.api.deps import services
from serving.api.schemas import ErrorBody
from serving.services import Services

MARKETING = Depends(require(Role.MARKETING))
router = APIRouter(tags=["segments"], responses=AUTH_RESPONSES)

_AS_OF = ("the close of this shop day (YYYY-MM-DD) or an ISO time; only what was known then counts "
          "(default: the close of yesterday)")


class TrustedCustomer(BaseModel):
    """One customer of the pool: the accounts to target, the tier and the figures that qualified them."""

    customer_id: str
    tier: str
    accounts: list[str] = Field(description="channel:account_id of every account of the customer")
    channels: list[str]
    phone_hashes: list[str] = Field(description="keyed hashes of the customer's phones (join within this shop)")
    phones: list[str] | None = Field(default=None, description="masked phones; only with phones=masked (admin)")
    orders: int
    completed_orders: int
    tenure_days: int
    refund_rate: float
    max_score: float
    last_order_at: datetime
    completed_yuan: float


class TrustedPage(BaseModel):
    """A page of the pool and the cursor of the next (null on the last page)."""

    as_of: datetime
    criteria: str
    criteria_digest: str
    customers: int = Field(description="customers known at as_of")
    pool_size: int
    items: list[TrustedCustomer]
    next_cursor: str | None


class CheckOut(BaseModel):
    check: str
    value: float
    op: str
    threshold: float
    passes: bool
    reason_zh: str | None = None
    reason_en: str | None = None


class LinkOut(BaseModel):
    via: str = Field(description="what is shared: device, wifi, ip, address, phone, id_card")
    why: str = Field(description="confirmed_fraud, held or deny_list")
    account: str | None = Field(default=None, description="the other account (admin only)")


class ExplainOut(BaseModel):
    account: str
    as_of: datetime
    criteria: str
    customer_id: str
    accounts: list[str]
    in_pool: bool
    tier: str | None
    checks: list[CheckOut]
    links: list[LinkOut]


def chosen_criteria(name: str | None, svc: Services) -> Criteria:
    """The criteria a request names: a shipped preset or the configured one (never a path), default the configured."""
    if name is None:
        return load_criteria(svc.settings.segments.criteria)
    if name not in PRESETS and name != svc.settings.segments.criteria:
        raise InvalidInputError.must("criteria", f"one of {', '.join(PRESETS)}", name)
    return load_criteria(name)


def _encode_cursor(as_of: datetime, criteria: str, after: str) -> str:
    raw = json.dumps({"a": as_of.isoformat(), "c": criteria, "k": after}, separators=(",", ":"))
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def _decode_cursor(text: str) -> tuple[datetime, str, str]:
    try:
        data = json.loads(base64.urlsafe_b64decode(text + "=" * (-len(text) % 4)))
        as_of = datetime.fromisoformat(data["a"]).astimezone(UTC)
        criteria, after = str(data["c"]), str(data["k"])
    except (binascii.Error, ValueError, KeyError, TypeError, UnicodeDecodeError) as e:
        raise InvalidInputError.must("cursor", "a next_cursor of an earlier page", text) from e
    if not after.startswith("c_") or len(after) > 34:
        raise InvalidInputError.must("cursor", "a next_cursor of an earlier page", text)
    return as_of, criteria, after


def pool_for(svc: Services, criteria: Criteria, as_of: datetime, now: datetime) -> AbstractContextManager[TrustPool]:
    """The service's pool for ``as_of`` and ``criteria``: from the cache, built from the order log when missing."""
    return svc.pools.use((as_of, criteria.name, criteria.digest), now,
                         lambda: TrustPool.build(svc.order_log.engine, svc.settings, criteria, as_of=as_of))


def _check_phones(caller: Principal, phones: str) -> None:
    """Masked phones are for admins only; marketing works from the hashes."""
    if phones == "masked" and Role.ADMIN not in caller.roles:
        raise ForbiddenError("`phones=masked` is for admins; marketing receives phone hashes", field="phones")


def _split(value: Any) -> list[str]:
    return str(value).split(" ") if value else []


@router.get("/v1/segments/trusted", response_model=TrustedPage, summary="The trusted-customer pool, a page at a time",
            responses={422: {"model": ErrorBody, "description": "a bad as_of, criteria, limit or cursor"}})
def trusted(
    svc: Annotated[Services, Depends(services)],
    caller: Annotated[Principal, MARKETING],
    as_of: Annotated[str | None, Query(description=_AS_OF, max_length=40)] = None,
    criteria: Annotated[str | None, Query(description="a preset: standard, loose or strict", max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=10_000, description="customers per page (at most segments.page_max)")] = 500,
    cursor: Annotated[str | None, Query(max_length=400, description="next_cursor of the previous page")] = None,
    phones: Annotated[Literal["hashed", "masked"], Query(
        description="hashed (default) or masked: the channels' masked numbers, admin only")] = "hashed",
) -> TrustedPage:
    """Customers in the pool ordered by customer id; follow ``next_cursor`` until it is null."""
    _check_phones(caller, phones)
    if limit > svc.settings.segments.page_max:
        raise InvalidInputError.must("limit", f"at most {svc.settings.segments.page_max}", limit)
    now = svc.clock.now()
    after = None
    if cursor is not None:
        moment, name, after = _decode_cursor(cursor)
        if (as_of is not None and resolve_as_of(as_of, now=now) != moment) or (criteria not in (None, name)):
            raise InvalidInputError.must("cursor", "used with the as_of and criteria of its first page", cursor)
        chosen = chosen_criteria(name, svc)
    else:
        moment = resolve_as_of(as_of, now=now)
        chosen = chosen_criteria(criteria, svc)
    with pool_for(svc, chosen, moment, now) as pool:
        names, rows = pool.rows(phones=phones == "masked", after=after, limit=limit + 1)
        more = len(rows) > limit
        items = []
        for row in rows[:limit]:
            data = dict(zip(names, row, strict=True))
            for column in ("accounts", "channels", "phone_hashes", "phones"):
                if column in data:
                    data[column] = _split(data[column])
            data["last_order_at"] = data["last_order_at"].replace(tzinfo=UTC)
            items.append(TrustedCustomer(**data))
        return TrustedPage(as_of=pool.as_of, criteria=chosen.name, criteria_digest=chosen.digest,
                           customers=pool.stats.customers, pool_size=pool.stats.pool, items=items,
                           next_cursor=_encode_cursor(moment, chosen.name, items[-1].customer_id) if more else None)


@router.get("/v1/segments/trusted/export", summary="The whole pool as a file: CSV, XLSX or Parquet",
            response_class=FileResponse,
            responses={200: {"content": {"text/csv": {}, MEDIA_TYPES[Format.XLSX]: {}, MEDIA_TYPES[Format.PARQUET]: {}},
                             "description": "the file, one row per customer, ordered by customer id"},
                       422: {"model": ErrorBody, "description": "a bad format, as_of or criteria"}})
def export(
    svc: Annotated[Services, Depends(services)],
    caller: Annotated[Principal, MARKETING],
    format: Annotated[Literal["csv", "xlsx", "parquet"], Query(description="the file's format")] = "csv",
    as_of: Annotated[str | None, Query(description=_AS_OF, max_length=40)] = None,
    criteria: Annotated[str | None, Query(description="a preset: standard, loose or strict", max_length=64)] = None,
    phones: Annotated[Literal["hashed", "masked"], Query(
        description="hashed (default) or masked: the channels' masked numbers, admin only")] = "hashed",
) -> FileResponse:
    """The file ``orderguard trust-pool --out`` writes: the same bytes for the same as-of and criteria."""
    _check_phones(caller, phones)
    now = svc.clock.now()
    moment = resolve_as_of(as_of, now=now)
    chosen = chosen_criteria(criteria, svc)
    fmt = Format(format)
    handle, name = tempfile.mkstemp(prefix="trusted-", suffix=f".{fmt.value}")
    os.close(handle)
    path = Path(name)
    try:
        with pool_for(svc, chosen, moment, now) as pool:
            write(pool.relation(phones=phones == "masked"), path, fmt, as_of=moment)
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    filename = f"trusted-customers-{as_of_label(moment)}-{chosen.name}.{fmt.value}"
    return FileResponse(path, media_type=MEDIA_TYPES[fmt], filename=filename,
                        background=BackgroundTask(path.unlink, missing_ok=True))


@router.get("/v1/segments/trusted/explain", response_model=ExplainOut, summary="Why an account is (not) in the pool",
            responses={404: {"model": ErrorBody, "description": "no order of the account was known at as_of"},
                       422: {"model": ErrorBody, "description": "a bad account, as_of or criteria"}})
def explain(
    svc: Annotated[Services, Depends(services)],
    caller: Annotated[Principal, MARKETING],
    account: Annotated[str, Query(min_length=3, max_length=200, description="<channel>:<account id>")],
    as_of: Annotated[str | None, Query(description=_AS_OF, max_length=40)] = None,
    criteria: Annotated[str | None, Query(description="a preset: standard, loose or strict", max_length=64)] = None,
) -> ExplainOut:
    """Every check with the customer's value and the bar; the failing ones carry the reason to give."""
    now = svc.clock.now()
    moment = resolve_as_of(as_of, now=now)
    chosen = chosen_criteria(criteria, svc)
    with pool_for(svc, chosen, moment, now) as pool:
        result = pool.explain(account.strip())
    if not result.found or result.customer_id is None:
        raise NotFoundError(f"no order of `account` {account[:80]!r} was known at {moment.isoformat()}",
                            field="account")
    checks = [CheckOut(check=c.check, value=c.value, op=c.op.value, threshold=c.threshold, passes=c.passes,
                       reason_zh=c.reason_zh, reason_en=c.reason_en) for c in result.checks]
    admin = Role.ADMIN in caller.roles
    links = [LinkOut(via=link.via, why=link.why, account=link.bad_account if admin else None)
             for link in result.links]
    return ExplainOut(account=result.account, as_of=moment, criteria=chosen.name, customer_id=result.customer_id,
                      accounts=list(result.accounts), in_pool=result.in_pool, tier=result.tier, checks=checks,
                      links=links)
