"""The report as one self-contained HTML file: a packaged Jinja2 template, charts as inline SVG, inline CSS.

Nothing is fetched when the file is opened (no CDN, no web font, no script): it can be
mailed, archived or opened on a shop's offline machine and looks the same.
"""

from __future__ import annotations

import math
from datetime import datetime
from pathlib import Path

from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup

from reports.charts import chart_lang, fonts, models_figure, orders_figure, svg, sweep_labels
from reports.content import ReportContent
from reports.words import words
from training.backtest import PolicyFigures
from training.backtest_chart import sweep_figure

#: The template folder: the package itself (``report.html``, shipped as package data like every ``*.html``).
TEMPLATES = Path(__file__).parent


def _environment() -> Environment:
    env = Environment(loader=FileSystemLoader(TEMPLATES), autoescape=select_autoescape(["html"]),
                      trim_blocks=True, lstrip_blocks=True)
    env.filters["pct"] = pct
    env.filters["yuan"] = yuan
    env.filters["num"] = lambda v: f"{v:,}"
    env.filters["dec"] = lambda v: "-" if v != v else f"{v:,.1f}"
    return env


def pct(value: float) -> str:
    """A share as a percentage; ``-`` when undefined.

    >>> pct(0.1234), pct(float("nan"))
    ('12.3%', '-')
    """
    return "-" if value != value or math.isinf(value) else f"{value:.1%}"


def yuan(fen: int) -> str:
    """Fen as whole yuan with separators.

    >>> yuan(123456789)
    '¥1,234,568'
    """
    return f"¥{fen / 100:,.0f}"


def render_html(content: ReportContent, live: PolicyFigures, *, lang: str, generated_at: datetime) -> str:
    """The report's HTML in ``lang`` (charts fall back to English labels without a CJK font)."""
    w = words(lang)
    drawn = chart_lang(lang)
    with fonts(drawn):
        charts = {"orders": Markup(svg(orders_figure(content, drawn))),
                  "sweep": Markup(svg(sweep_figure(live, labels=dict(sweep_labels(drawn)))))}
        models = models_figure(content, drawn)
        if models is not None:
            charts["models"] = Markup(svg(models))
    template = _environment().get_template("report.html")
    return template.render(c=content, w=w, lang=lang, charts=charts, generated_at=generated_at.strftime(
        "%Y-%m-%d %H:%M %Z"), lost=[r for r in content.rules if r.weight < 1.0],
        kept=[r for r in content.rules if r.weight >= 1.0 and r.hits], nan=math.nan)
