"""Rules + blend + decision for one order at one moment: the step serving and replays share.

The scorer (``scoring.scorer``) and the rules replay report (``training.rules_report``)
must decide identically, allow and deny lists included, so both call :func:`judge`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from datetime import datetime

from features.facts import Entity, entity_keys
from orderguard.schema import Order
from scoring.blend_weights import BlendWeights
from scoring.policy import Decision, Policy, blend, decide
from scoring.rules import Evaluation, ListKeys, RulePack


@dataclass(frozen=True, slots=True)
class Judgement:
    """What the rules found, the blended score (0-100) and the decision band."""

    evaluation: Evaluation
    score: float
    decision: Decision
    released: bool = False  # a VIP release capped the decision (``policy.vip_release``)


def list_keys(order: Order, keys: Mapping[str, Sequence[str]] | None = None) -> ListKeys:
    """The identifiers allow and deny lists match: phone hash, device id, address key, member level.

    ``keys`` are the order's entity keys when the caller has them already (the online engine
    derived them when it applied the order): the address key is then read, not hashed again.
    """
    details = order.details
    found = entity_keys(order) if keys is None else keys
    return ListKeys(
        phone=details.buyer.phone.hash if details.buyer.phone else None,
        device=details.client.device_id if details.client else None,
        address=found.get(Entity.ADDRESS, (None,))[0],
        member_level=details.buyer.member_level)


def judge(order: Order, vector: Mapping[str, float], *, rules: RulePack, policy: Policy, at: datetime,
          probability: float | None = None, weights: BlendWeights | None = None,
          keys: ListKeys | None = None) -> Judgement:
    """Evaluate the rule pack on ``vector``, blend with the model probability (None = rules
    only) and cut the decision with the bands in force at ``at``.

    Allow-listed orders are never held and released VIP members are capped at the release's
    decision, unless a hard hit fired (``scoring.policy``'s docstring says why).

    ``weights`` are the model's learned blend weights (``scoring.blend_weights``); they apply
    only with a probability: rules alone score as written. ``keys`` are ``list_keys(order)`` when the caller
    has them already.
    """
    evaluation = rules.evaluate(vector, keys if keys is not None else list_keys(order))
    if probability is not None and weights is not None:
        points = weights.points(evaluation.hits)
        policy = replace(policy, model_weight=policy.model_weight * weights.model_weight)
    else:
        points = evaluation.points
    score = blend(points, probability, policy=policy)
    hard = evaluation.hard
    release = policy.vip_release
    released = release is not None and not hard and release.applies(order.details.buyer.member_level)
    bands = policy.bands_at(at)
    never_hold = evaluation.allow_listed and not hard
    decision = decide(score, bands=bands, never_hold=never_hold)
    if released and release is not None:
        capped = decide(score, bands=bands, never_hold=never_hold, cap=release.release_to)
        return Judgement(evaluation, score, capped, released=capped is not decision)
    return Judgement(evaluation, score, decision)
