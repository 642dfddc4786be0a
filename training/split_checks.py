"""Is this split fit to train and judge a model on? Refusals for the states that make a run meaningless, notes
for the ones that make it misleading.

A holdout with too few confirmed frauds or honest orders ranks any scorer "perfectly" or
randomly, and a model registered on it would be judged on noise; an empty one makes MLflow
fail half-way through logging. Those are refused before anything is trained or
registered, with the numbers and the setting to change. Two states are legal but
surprising and are said aloud: a training part much smaller than the holdout (unlabelled
orders only count as honest once they mature, so the newest weeks shrink), and a holdout
day far busier than usual (a promotion), whose traffic the metrics then mostly describe.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from orderguard.errors import InvalidInputError
from training.dataset import Split

#: A holdout day with more than this many times the median day's orders is called out.
BUSY_DAY_FACTOR = 3.0
#: A training part smaller than the holdout times this is called out.
SMALL_TRAIN_FACTOR = 1.0


class InsufficientDataError(InvalidInputError):
    """The split cannot support a verdict: nothing is trained or registered."""

    code = "insufficient_data"


@dataclass(frozen=True, slots=True)
class SplitCounts:
    """Rows and confirmed frauds on each side of a split."""

    train_rows: int
    train_positives: int
    holdout_rows: int
    holdout_positives: int

    @classmethod
    def of(cls, split: Split) -> SplitCounts:
        return cls(len(split.train.frame), split.train.positives, len(split.holdout.frame), split.holdout.positives)


def refuse_unusable(split: Split, *, min_positives: int) -> None:
    """Raise :class:`InsufficientDataError` when either side of ``split`` has fewer than ``min_positives``
    frauds or honest orders, naming the numbers, the window and the settings that change them."""
    counts = SplitCounts.of(split)
    window = f"{split.holdout_start:%Y-%m-%d %H:%M}..{split.holdout_end:%Y-%m-%d %H:%M} UTC"
    advice = ("label more orders, choose an earlier --cutoff, or widen the holdout "
              "(ORDERGUARD_TRAINING__HOLDOUT_DAYS); ORDERGUARD_TRAINING__GATE__MIN_HOLDOUT_POSITIVES sets the minimum")
    sides = (("holdout", counts.holdout_rows, counts.holdout_positives, window),
             ("training", counts.train_rows, counts.train_positives, f"before {split.train_end:%Y-%m-%d %H:%M} UTC"))
    for side, rows, positives, span in sides:
        negatives = rows - positives
        if positives < min_positives or negatives < min_positives:
            raise InsufficientDataError(
                f"the {side} part ({span}) holds {positives} confirmed frauds and {negatives} honest orders; "
                f"each must be >= {min_positives} for a model to be trained and judged: {advice}",
                field=f"training.{side}")


def notes(split: Split, *, maturity_days: float) -> tuple[str, ...]:
    """What is legal but surprising about ``split``, each with the setting to change."""
    counts = SplitCounts.of(split)
    found: list[str] = []
    if counts.train_rows < counts.holdout_rows * SMALL_TRAIN_FACTOR:
        found.append(
            f"the training part ({counts.train_rows:,} orders) is smaller than the holdout ({counts.holdout_rows:,}): "
            f"unlabelled orders count as honest only {maturity_days:g} days after creation, so recent weeks are "
            "thin; an earlier --cutoff or a shorter ORDERGUARD_TRAINING__HOLDOUT_DAYS gives training more")
    days = Counter(split.holdout.frame["event_time"].dt.date) if counts.holdout_rows else Counter()
    if len(days) >= 3:
        ordered = sorted(days.values())
        median = ordered[len(ordered) // 2]
        for day, n in sorted(days.items()):
            if median and n > BUSY_DAY_FACTOR * median:
                found.append(f"holdout day {day} has {n:,} orders, {n / median:.1f}x the median day ({median:,}): "
                             "a promotion? its traffic weighs most in the metrics; move --cutoff or "
                             "ORDERGUARD_TRAINING__HOLDOUT_DAYS to judge on usual days")
    return tuple(found)
