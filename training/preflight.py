"""Checks that need no features: run before any feature is built, so a doomed run fails in seconds.

Building the point-in-time features of a few hundred thousand orders takes minutes. A
run that is bound to fail afterwards - a rule pack citing features the feature set does
not have, a monotone constraint on a feature it does not have, labels that arrive later
than the maturity window - must say so before that work starts:

* the rule pack against the feature set, and the feature set's own ``monotone`` list, are
  checked when they load (``scoring.rules.rules_from``, ``features.specs.FeatureSet``);
  ``training.pipeline.prepare`` loads them first;
* :func:`label_delays` measures, from the labels themselves, how long after an order its
  fraud verdict came. An unlabelled order older than ``training.maturity`` trains as
  honest, so frauds labelled later than that were trained as honest in every run whose
  cutoff fell in between. Above ``late_labels_warn_share`` of them the run carries a note;
  above ``late_labels_max_share`` it is refused, naming the setting and the delay that
  would cover 95 % of the verdicts.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from orderguard.errors import InvalidInputError
from orderguard.schema import Label, Order, Verdict

_DAY = timedelta(days=1)


class LabelDelayError(InvalidInputError):
    """Too many frauds are labelled later than the maturity window: they would train as honest."""

    code = "label_delay"


@dataclass(frozen=True, slots=True)
class LabelDelays:
    """How late fraud verdicts came, measured from the order (or its refund claim, which keeps it out until then).

    Attributes:
        frauds: fraud labels on known orders.
        late: those given more than ``maturity`` after the order.
        maturity: the window they were measured against.
        p95_days: the delay (days) within which 95 % of the verdicts came; NaN without labels.
    """

    frauds: int
    late: int
    maturity: timedelta
    p95_days: float

    @property
    def share(self) -> float:
        """Share of fraud labels given after the maturity window (0 without labels)."""
        return self.late / self.frauds if self.frauds else 0.0

    def text(self) -> str:
        """E.g. ``12.0% of 410 fraud labels came more than 14 days after their order (95% within 31.0 days)``."""
        days = self.maturity / _DAY
        return (f"{self.share:.1%} of {self.frauds:,} fraud labels came more than {days:g} days after their order "
                f"(95% within {self.p95_days:.1f} days)")


def label_delays(orders: Iterable[Order], labels: Iterable[Label], *, maturity: timedelta,
                 positive: frozenset[Verdict] = frozenset({Verdict.CONFIRMED_FRAUD})) -> LabelDelays:
    """Delays of the ``positive`` labels on ``orders``, from the order's creation or its refund claim."""
    anchor: Mapping[str, datetime] = {
        str(o.key): (o.refund.requested_at if o.refund is not None else o.details.created_at) for o in orders}
    delays = sorted((label.labeled_at - anchor[str(label.key)]) / _DAY for label in labels
                    if label.verdict in positive and str(label.key) in anchor)
    if not delays:
        return LabelDelays(0, 0, maturity, math.nan)
    late = sum(1 for d in delays if d > maturity / _DAY)
    p95 = delays[min(len(delays) - 1, math.ceil(0.95 * len(delays)) - 1)]
    return LabelDelays(len(delays), late, maturity, p95)


def check_label_delays(delays: LabelDelays, *, warn_share: float, max_share: float) -> str | None:
    """A note above ``warn_share``; a :class:`LabelDelayError` naming ``training.maturity`` above ``max_share``.

    >>> d = LabelDelays(frauds=100, late=3, maturity=timedelta(days=14), p95_days=12.0)
    >>> check_label_delays(d, warn_share=0.02, max_share=0.1)
    '3.0% of 100 fraud labels came more than 14 days after their order (95% within 12.0 days): those trained as \
honest while unlabelled; consider a longer training.maturity'
    >>> check_label_delays(LabelDelays(100, 30, timedelta(days=14), 40.0), warn_share=0.02, max_share=0.1)
    Traceback (most recent call last):
    ...
    training.preflight.LabelDelayError: `training.maturity` must cover how late frauds are labelled: 30.0% of 100 \
fraud labels came more than 14 days after their order (95% within 40.0 days); set ORDERGUARD_TRAINING__MATURITY=41d \
or more (at most 10% may be later)
    """
    if delays.share > max_share:
        needed = math.ceil(delays.p95_days + 1e-9)
        raise LabelDelayError(f"`training.maturity` must cover how late frauds are labelled: {delays.text()}; set "
                              f"ORDERGUARD_TRAINING__MATURITY={needed}d or more (at most {max_share:.0%} may be "
                              "later)", field="training.maturity")
    if delays.share > warn_share:
        return f"{delays.text()}: those trained as honest while unlabelled; consider a longer training.maturity"
    return None
