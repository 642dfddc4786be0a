"""``/segments``: marketing's page for the trusted-customer pool.

Pick a day and a preset; the page shows the pool's size by tier, why the other customers
are not in it (customers failing each bar), the first rows, and download links for the
three file formats (``GET /v1/segments/trusted/export``, the same bytes as the CLI). An
account typed into the "why not?" box gets every bar with its value and, for the bars it
fails, the reason to give the customer. The pool comes from the service's pool cache, so
the downloads and the explanation read the pool the page shows.
"""

from __future__ import annotations

import asyncio
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response

from orderguard.access import Role
from orderguard.errors import InvalidInputError
from segments.build import as_of_label, resolve_as_of
from segments.criteria import PRESETS
from serving.api.deps import services
from serving.api.segments import chosen_criteria, pool_for
from serving.services import Services
from serving.web.pages import PageCaller, page_user, render

router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]
Marketing = Annotated[PageCaller, Depends(page_user(Role.MARKETING))]
#: Rows the page previews (the files hold them all).
PREVIEW_ROWS = 50


def _view(svc: Services, as_of: str | None, criteria: str | None, account: str | None) -> dict[str, Any]:
    now = svc.clock.now()
    moment = resolve_as_of(as_of, now=now)
    chosen = chosen_criteria(criteria, svc)
    with pool_for(svc, chosen, moment, now) as pool:
        names, rows = pool.rows(limit=PREVIEW_ROWS)
        explained = pool.explain(account.strip()) if account and account.strip() else None
        view: dict[str, Any] = {
            "as_of": as_of_label(moment), "as_of_day": as_of_label(moment)[:10], "criteria": chosen,
            "presets": PRESETS, "customers": pool.stats.customers, "pool_size": pool.stats.pool,
            "tiers": pool.tiers(), "failing": pool.stats.failing, "columns": names, "rows": rows,
            "account": account or "", "explained": explained}
    query = {"as_of": view["as_of"] if as_of else "", "criteria": chosen.name}
    view["downloads"] = [(fmt, "/v1/segments/trusted/export?" + urlencode({**query, "format": fmt}))
                         for fmt in ("csv", "xlsx", "parquet")]
    return view


@router.get("/segments")
async def segments_page(request: Request, svc: Svc, caller: Marketing, as_of: str | None = None,
                        criteria: str | None = None, account: str | None = None) -> Response:
    """The pool as of a day, with downloads and the "why not?" box."""
    error = None
    view: dict[str, Any] = {"presets": PRESETS, "as_of_day": as_of or "", "account": account or ""}
    try:
        view = await asyncio.to_thread(_view, svc, as_of or None, criteria or None, (account or "")[:200] or None)
    except InvalidInputError as e:
        error = e.message
    return render(request, "segments.html", {"user": caller.user, "csrf_token": caller.session.csrf,
                                             "error": error, **view}, status_code=422 if error else 200)
