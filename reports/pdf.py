"""The report as a PDF through matplotlib's ``PdfPages``: nothing beyond the wheels already installed.

Why not an HTML-to-PDF engine: WeasyPrint needs Pango and its system libraries, which a
fresh machine with only Python may lack; a headless browser is heavier still. The PDF
carries the same sections and figures as the HTML, laid out as pages of charts and
tables. Chinese text needs a CJK font: without one installed the PDF is written in
English (the HTML, which the reader's browser renders, stays Chinese), and
:func:`write_pdf` says so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from reports.charts import chart_lang, fonts, models_figure, new_figure, orders_figure, sweep_labels
from reports.content import ReportContent
from reports.render import pct, yuan
from reports.words import words
from training.backtest import PolicyFigures
from training.backtest_chart import sweep_figure

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: A4 portrait, inches.
PAGE = (8.27, 11.69)
#: Rules listed in the PDF (most hits first).
PDF_RULES = 24


def _table(figure: Figure, rect: tuple[float, float, float, float], title: str, header: Sequence[str],
           rows: Sequence[Sequence[str]]) -> None:
    ax = figure.add_axes(rect)
    ax.axis("off")
    ax.set_title(title, loc="left", fontsize=11, fontweight="bold")
    if not rows:
        return
    table = ax.table(cellText=[list(r) for r in rows], colLabels=list(header), loc="upper left", cellLoc="right",
                     colLoc="right")
    table.auto_set_font_size(False)
    table.set_fontsize(7)
    table.scale(1, 1.25)


def _first_page(content: ReportContent, lang: str) -> Figure:
    w = words(lang)
    figure = new_figure(*PAGE)
    figure.set_layout_engine(None)
    figure.text(0.06, 0.95, f"{w[content.title_key]} · {content.name}", fontsize=18, fontweight="bold")
    figure.text(0.06, 0.925, f"{w['period']}: {content.first_day} – {content.last_day} ({content.days} {w['days']}) · "
                             f"{w['model']}: {content.model or w['rules_only']}", fontsize=9)
    summary = [[w["orders"], f"{content.orders:,}"],
               [w["flagged"], f"{content.band_orders['review'] + content.band_orders['hold']:,}"],
               [w["frauds"], f"{content.outcomes['fraud']:,}"], [w["honest"], f"{content.outcomes['honest']:,}"],
               [w["held_money"], yuan(content.held_fen)], [w["stopped_money"], yuan(content.stopped_fen)],
               [w["missed_money"], yuan(content.missed_fen)]]
    _table(figure, (0.06, 0.66, 0.88, 0.24), w["summary"], ["", ""], summary)
    bands = [[w[b.decision.value], f"{b.orders:,}", f"{b.per_day:,.1f}", f"{b.flagged:,}", pct(b.precision),
              pct(b.recall), pct(b.false_positive_rate), yuan(b.money_caught_fen)] for b in content.bands]
    _table(figure, (0.06, 0.46, 0.88, 0.16), w["bands"],
           [w["band"], w["band_orders"], w["per_day"], w["at_or_above"], w["precision"], w["recall"], w["fpr"],
            w["money_caught"]], bands)
    patterns = [[p.pattern, f"{p.flagged:,}", f"{p.frauds:,}", yuan(p.money_caught_fen)] for p in content.patterns]
    _table(figure, (0.06, 0.24, 0.88, 0.18), w["patterns"],
           [w["pattern"], w["chart_flags"], w["frauds"], w["money_caught"]], patterns)
    figure.text(0.06, 0.12, w["note_labels"], fontsize=7, wrap=True)
    figure.text(0.06, 0.09, f"{w['note_source']} {content.served_line}", fontsize=7, wrap=True)
    return figure


def _rules_page(content: ReportContent, lang: str) -> Figure:
    w = words(lang)
    figure = new_figure(*PAGE)
    figure.set_layout_engine(None)
    rows = [[r.code, r.pattern, f"{r.hits:,}", f"{r.frauds:,}", f"{r.honest:,}", pct(r.precision), f"{r.points:g}",
             f"{r.weight:.2f}"] for r in content.rules if r.hits][:PDF_RULES]
    _table(figure, (0.04, 0.30, 0.92, 0.64), w["rules"],
           [w["rule"], w["pattern"], w["hits"], w["frauds"], w["honest"], w["precision"], w["points"], w["weight"]],
           rows)
    models = [[m.version + (" ★" if m.champion else ""), m.data_window, f"{m.metrics.get('blend_pr_auc', 0.0):.3f}",
               pct(m.metrics.get("blend_precision_review", float("nan"))),
               pct(m.metrics.get("blend_recall_review", float("nan")))] for m in content.models]
    _table(figure, (0.04, 0.04, 0.92, 0.22), w["models"],
           [w["version"], w["data_window"], w["pr_auc"], w["precision"], w["recall"]], models)
    return figure


def write_pdf(content: ReportContent, live: PolicyFigures, path: Path, *, lang: str) -> str:
    """Write the PDF; returns the language it was written in (English when Chinese has no font here)."""
    from matplotlib.backends.backend_pdf import PdfPages

    drawn = chart_lang(lang)
    path.parent.mkdir(parents=True, exist_ok=True)
    with fonts(drawn), PdfPages(path, metadata={"Title": f"{words(drawn)[content.title_key]} {content.name}",
                                                "Creator": "orderguard"}) as pdf:
        pdf.savefig(_first_page(content, drawn))
        pdf.savefig(orders_figure(content, drawn))
        pdf.savefig(sweep_figure(live, labels=dict(sweep_labels(drawn))))
        pdf.savefig(_rules_page(content, drawn))
        models = models_figure(content, drawn)
        if models is not None:
            pdf.savefig(models)
    return drawn
