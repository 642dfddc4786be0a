"""The threshold sweep of a backtest as a chart: what each score cut-off would cost and catch.

Left: precision, recall and false-positive rate against the cut-off; right: the queue per
day. Live solid, candidate dashed; the bands as thin vertical lines (the candidate's dashed). Drawn on a
private Agg canvas (no pyplot state), saved as SVG or PNG by the file's suffix.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from orderguard.errors import InvalidInputError
from scoring.policy import Bands
from training.backtest import PolicyFigures

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Chart formats by file suffix.
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf"}
_COLORS = {"precision": "#2a9d8f", "recall": "#e76f51", "false_positive_rate": "#6c757d"}


def _figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def sweep_figure(live: PolicyFigures, candidate: PolicyFigures | None = None, *, bands: Bands | None = None,
                 candidate_bands: Bands | None = None, labels: dict[str, str] | None = None) -> Figure:
    """Precision / recall / FPR and queue per day against the score cut-off, live and candidate.

    ``bands`` (live, solid) and ``candidate_bands`` (dashed) are drawn as vertical lines: a
    candidate that only moves bands has the live curves and other lines. ``labels`` replaces
    the English axis and legend words (the report's Chinese).
    """
    words = {"precision": "precision", "recall": "recall", "false_positive_rate": "false-positive rate",
             "cutoff": "score cut-off", "per_day": "orders per day at or above the cut-off", "live": "live",
             "candidate": "candidate", "rates": "share"}
    words.update(labels or {})
    figure = _figure(10, 3.8)
    rates, queue = figure.subplots(1, 2)
    policies = [(live, "-")] + ([(candidate, "--")] if candidate is not None else [])
    for figures, style in policies:
        x = [p.cutoff for p in figures.sweep]
        name = words["live"] if figures is live else words["candidate"]
        for metric, color in _COLORS.items():
            rates.plot(x, [getattr(p, metric) for p in figures.sweep], style, color=color, linewidth=1.5,
                       label=f"{words[metric]} ({name})")
        queue.plot(x, [p.per_day for p in figures.sweep], style, color="#264653", linewidth=1.5, label=name)
    for axis in (rates, queue):
        axis.set_xlabel(words["cutoff"])
        axis.set_xlim(0, 100)
        axis.grid(alpha=0.3)
        for drawn, style in ((bands, "-"), (candidate_bands, "--")):
            for cut in (drawn.verify, drawn.review, drawn.hold) if drawn is not None else ():
                axis.axvline(cut, color="#adb5bd", linewidth=0.8, linestyle=style)
    rates.set_ylim(0, 1.02)
    rates.set_ylabel(words["rates"])
    rates.legend(fontsize=7, loc="best")
    queue.set_yscale("symlog", linthresh=1.0)  # the whole day's orders at 0, a handful near 100: both readable
    queue.set_ylim(bottom=0)
    queue.set_ylabel(words["per_day"])
    queue.legend(fontsize=8)
    return figure


def save_chart(figure: Figure, path: Path) -> Path:
    """Write ``figure`` as SVG, PNG or PDF by ``path``'s suffix."""
    kind = FORMATS.get(path.suffix.lower())
    if kind is None:
        raise InvalidInputError.must("chart", f"a file ending in {', '.join(FORMATS)}", path.name)
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, format=kind, dpi=120)
    return path
