"""The review desk: ``/desk`` (the queue) and ``/desk/case/{channel}/{order_id}`` (one case), for reviewers.

The queue lists flagged orders nobody has decided (``serving.desk.queue``), riskiest
first, with filters, their counts and how long each has waited. Opening a case claims it
(two reviewers never work one order); the case page shows the order as a reviewer may see
it (``orderguard.privacy``), its score, decision and reasons in Chinese with the values
that fired, its key feature values and the most similar labelled past cases. A verdict
(keys ``1`` ``2`` ``3``, ``j``/``k`` to move; ``static/desk.js``) is stored through the
same use case as ``POST /v1/labels`` (``serving.services.label_and_apply``: the online
label features change at once), the order system is asked to cancel, release or keep
holding the order (:data:`ACTIONS`, through the outbox: the desk never waits for it), the
claim is dropped and the next case opens.

Everything the pages need is served from here (templates, ``static/``): no CDN.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from dataclasses import asdict
from datetime import datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode

from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import RedirectResponse, Response

from features.describe import FeatureDescriber
from orderguard.access import Role
from orderguard.clock import shop_day
from orderguard.errors import InvalidInputError, NotFoundError
from orderguard.outbox import Outbox
from orderguard.schema import Label, Verdict
from scoring.policy import Decision
from serving.api.deps import services
from serving.api.orders import order_out, path_order_key
from serving.desk.links import KINDS, REACH, graph, verdict_counts
from serving.desk.queue import FILTER_NAMES, Filters, Queue, QueueItem, claim, holder, load_queue, release
from serving.notify.messages import OrderAction, queue_order_action
from serving.services import Services, label_and_apply
from serving.web.pages import PAGE_HEADERS, PageCaller, PageForbidden, form_user, page_user, render

router = APIRouter(include_in_schema=False)
Svc = Annotated[Services, Depends(services)]
Reviewer = Annotated[PageCaller, Depends(page_user(Role.REVIEWER))]
#: Most queue rows on one page.
PAGE_ROWS = 200
VERDICT_KEYS = {"1": Verdict.CONFIRMED_FRAUD, "2": Verdict.FALSE_POSITIVE, "3": Verdict.NEEDS_INVESTIGATION}
#: What the order system is asked to do after each verdict (through the outbox, when a callback is set).
ACTIONS = {Verdict.CONFIRMED_FRAUD: OrderAction.CANCEL, Verdict.FALSE_POSITIVE: OrderAction.RELEASE,
           Verdict.NEEDS_INVESTIGATION: OrderAction.KEEP_HOLD}
VERDICT_ZH = {Verdict.CONFIRMED_FRAUD: "确认欺诈", Verdict.FALSE_POSITIVE: "误报（正常）",
              Verdict.NEEDS_INVESTIGATION: "待调查"}
VERIFICATION_ZH = {"failed": "核验失败", "timed_out": "核验超时", "no_answer": "核验无回报"}
DECISION_ZH = {Decision.APPROVE.value: "通过", Decision.VERIFY.value: "核验", Decision.REVIEW.value: "人工审核",
               Decision.HOLD.value: "拦截"}


def _filters(request: Request) -> Filters:
    q = request.query_params
    return Filters(**{name: str(q.get(name, ""))[:64] for name in FILTER_NAMES})


def _query(filters: Filters, **extra: str) -> str:
    return urlencode({k: v for k, v in {**asdict(filters), **extra}.items() if v})


def _url(path: str, query: str) -> str:
    return f"{path}?{query}" if query else path


def _patterns(svc: Services) -> Mapping[str, str]:
    """Rule code → the abuse pattern the served rule pack files it under."""
    return {rule.code: rule.pattern for rule in svc.engine.scorer.rules.rules if rule.pattern}


def _queue(svc: Services, filters: Filters) -> Queue:
    return load_queue(svc.order_log.engine, svc.flagged, now=svc.clock.now(), window=svc.settings.desk.window,
                      filters=filters, patterns=_patterns(svc), day_of=lambda t: shop_day(t).isoformat(),
                      verify_timeout=svc.settings.desk.verify_timeout)


def _waited(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    if minutes < 60:
        return f"{minutes} 分钟"
    if minutes < 48 * 60:
        return f"{minutes // 60} 小时 {minutes % 60} 分"
    return f"{minutes // 1440} 天"


def _row(item: QueueItem, now: datetime, me: str) -> dict[str, Any]:
    record, waited = item.record, item.waiting(now)
    return {"key": str(item.key), "channel": item.key.channel.value, "order_id": item.key.channel_order_id,
            "score": record.score, "decision": record.decision.value,
            "decision_zh": DECISION_ZH[record.decision.value], "waited": _waited(waited),
            "waited_s": int(waited.total_seconds()),
            "reasons": list(record.reasons_zh), "claimed_by": item.claimed_by,
            "mine": item.claimed_by == me, "investigating": item.investigating, "day": item.day,
            "verification": VERIFICATION_ZH.get(item.verification or "")}


@router.get("/desk")
async def desk(request: Request, svc: Svc, caller: Reviewer) -> Response:
    """The queue."""
    filters = _filters(request)
    queue = _queue(svc, filters)
    now = svc.clock.now()
    rows = [_row(i, now, caller.user.reviewer_id) for i in queue.items[:PAGE_ROWS]]
    choices = {name: sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])) for name, counts in queue.counts.items()}
    return render(request, "desk.html", {
        "user": caller.user, "csrf_token": caller.session.csrf, "rows": rows, "shown": len(queue.items),
        "total": queue.total, "filters": filters, "choices": choices, "query": _query(filters),
        "decision_zh": DECISION_ZH})


def _next_key(queue: Queue, *, after: str, me: str, step: int = 1) -> str | None:
    """The next (or, ``step=-1``, previous) case after ``after`` nobody else works."""
    keys = [str(i.key) for i in queue.items if i.claimed_by in (None, me)]
    if not keys:
        return None
    if after not in keys:
        return keys[0] if step > 0 else keys[-1]
    position = keys.index(after) + step
    return keys[position] if 0 <= position < len(keys) else None


@router.get("/desk/next")
async def next_case(request: Request, svc: Svc, caller: Reviewer, after: str = "", step: int = 1) -> Response:
    """Open the next case of the (filtered) queue, or go back to the queue when none is left."""
    filters = _filters(request)
    key = _next_key(_queue(svc, filters), after=after, me=caller.user.reviewer_id, step=1 if step >= 0 else -1)
    if key is None:
        return RedirectResponse(_url("/desk", _query(filters, done="1")), status_code=303, headers=PAGE_HEADERS)
    channel, order_id = key.split(":", 1)
    return RedirectResponse(_url(f"/desk/case/{channel}/{order_id}", _query(filters)), status_code=303,
                            headers=PAGE_HEADERS)


def _key_features(values: Mapping[str, float], describer: FeatureDescriber, *, limit: int = 10) -> list[str]:
    """The history features that stand out (the largest counts over an entity), in words."""
    chosen = sorted(((v, n) for n, v in values.items()
                     if v == v and v >= 2 and n.startswith(("count_", "distinct_")) and n in describer),
                    reverse=True)[:limit]
    return [describer.describe(name, value).zh for value, name in chosen]


@router.get("/desk/case/{channel}/{order_id}")
async def case(request: Request, channel: str, order_id: str, svc: Svc, caller: Reviewer) -> Response:
    """One case: the order, its score and reasons, the similar labelled cases; claimed for the caller."""
    key = path_order_key(channel, order_id)
    order = svc.order_log.get(key)
    record = svc.scores.latest(key)
    if order is None or record is None:
        raise NotFoundError(f"`order_key` must be a scored order in the order log; got {str(key)!r}",
                            field="order_key")
    me = caller.user.reviewer_id
    claimant = claim(svc.order_log.engine, key, me, now=svc.clock.now(), hold_for=svc.settings.desk.claim_for)
    history = svc.labels.history(key)
    filters = _filters(request)
    describer = svc.engine.describer
    found = await asyncio.to_thread(svc.similar.nearest, record, labels=svc.labels, scorer=svc.engine.scorer,
                                    scores=svc.scores, k=svc.settings.desk.similar_cases)
    similar = []
    for n in found:
        past = svc.order_log.get(n.case.order_key)
        if past is not None:
            similar.append({"order": order_out(past, caller.user.roles), "verdict": n.label.verdict.value,
                            "verdict_zh": VERDICT_ZH[n.label.verdict], "reviewer": n.label.reviewer_id,
                            "labeled_at": n.label.labeled_at, "note": n.label.note, "similarity": n.similarity,
                            "score": n.case.score,
                            "because": [describer.label(f).zh for f in n.shared if f in describer]})
    await asyncio.to_thread(svc.links.refresh, svc.order_log, since=svc.clock.now() - svc.settings.desk.window - REACH)
    linked = svc.links.linked(order)
    nodes, edges = graph(order, linked, svc.similar.labels)
    return render(request, "case.html", {
        "linked": linked, "nodes": nodes, "edges": edges, "kinds": KINDS,
        "linked_counts": verdict_counts(linked, svc.similar.labels),
        "user": caller.user, "csrf_token": caller.session.csrf, "order": order_out(order, caller.user.roles),
        "record": record, "decision_zh": DECISION_ZH[record.decision.value],
        "hits": record.hits, "model_reasons": [r for r in record.reasons if r.source == "model"][:5],
        "features": _key_features(record.features, describer),
        "holder": claimant, "mine": claimant == me, "history": history, "verdicts": VERDICT_KEYS,
        "verdict_zh": VERDICT_ZH, "similar": similar, "query": _query(filters),
        "key": str(key)})


@router.post("/desk/case/{channel}/{order_id}/verdict")
async def verdict(request: Request, channel: str, order_id: str, svc: Svc,
                  caller: Annotated[PageCaller, Depends(form_user(Role.REVIEWER))],
                  verdict: Annotated[str, Form()] = "", note: Annotated[str, Form()] = "") -> Response:
    """Store the verdict as ``POST /v1/labels`` does, drop the claim and open the next case."""
    key = path_order_key(channel, order_id)
    try:
        chosen = Verdict(verdict)
    except ValueError as e:
        raise InvalidInputError.must("verdict", "confirmed_fraud, false_positive or needs_investigation",
                                   verdict) from e
    now = svc.clock.now()
    working = holder(svc.order_log.engine, key, now=now)
    if working not in (None, caller.user.reviewer_id):
        raise PageForbidden(f"{working} is working this case; your verdict was not stored. Open the next case.")
    label = Label(key, chosen, now, caller.user.reviewer_id, note.strip()[:2000])
    await svc.worker.run(label_and_apply, svc, [(0, label)], [], batch=False, now=now)
    await asyncio.to_thread(queue_order_action, Outbox(svc.order_log.engine), svc.settings.alerts, key,
                            ACTIONS[chosen], reviewer=caller.user.reviewer_id, note=label.note, now=now)
    release(svc.order_log.engine, key, caller.user.reviewer_id)
    filters = _filters(request)
    return RedirectResponse(_url("/desk/next", _query(filters, after=str(key))), status_code=303,
                            headers=PAGE_HEADERS)
