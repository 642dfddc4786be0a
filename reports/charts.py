"""The report's charts as inline SVG: drawn with matplotlib on private canvases, text as paths (no font needed
by the reader), Chinese labels with a CJK font when this machine has one and English labels when it has none."""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

from reports.content import ReportContent, flagged_per_day
from reports.words import words

if TYPE_CHECKING:
    from matplotlib.figure import Figure

#: Fonts tried for Chinese labels, first found wins.
CJK_FONTS = ("Noto Sans CJK SC", "Noto Sans CJK JP", "Source Han Sans SC", "WenQuanYi Zen Hei", "WenQuanYi Micro Hei",
             "SimHei", "Microsoft YaHei", "PingFang SC", "AR PL UMing CN")
_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)
_PALETTE = ("#264653", "#2a9d8f", "#e9c46a", "#f4a261", "#e76f51", "#8ab17d", "#6c757d")


#: Words in font file names that mark a CJK font (for fonts installed after matplotlib built its font cache).
_CJK_FILES = ("cjk", "wqy", "wenquanyi", "simhei", "yahei", "pingfang", "sourcehan", "uming", "ukai")


@cache
def cjk_font() -> str | None:
    """The first installed font of :data:`CJK_FONTS` (None: Chinese text would show as boxes).

    Matplotlib lists the fonts it found when it built its cache; a CJK font installed later
    (a common order on a fresh machine: pip first, fonts after) is only on disk, so the
    system's font files are looked at once and CJK ones registered with the font manager.
    """
    from matplotlib import font_manager

    def known() -> str | None:
        installed = {f.name for f in font_manager.fontManager.ttflist}
        return next((name for name in CJK_FONTS if name in installed), None)

    found = known()
    if found is not None:
        return found
    for path in font_manager.findSystemFonts():
        if any(word in Path(path).name.lower() for word in _CJK_FILES):
            try:
                font_manager.fontManager.addfont(path)
            except (OSError, RuntimeError, ValueError):
                continue  # an unreadable file: try the others
    return known()


def chart_lang(lang: str) -> str:
    """The language charts can be drawn in: Chinese needs a CJK font, English always works."""
    return lang if lang != "zh" or cjk_font() is not None else "en"


@contextmanager
def fonts(lang: str) -> Iterator[None]:
    """Matplotlib's font settings for ``lang`` while drawing (restored after)."""
    import matplotlib

    family = [cjk_font(), "DejaVu Sans"] if lang == "zh" and cjk_font() else ["DejaVu Sans"]
    with matplotlib.rc_context({"font.family": "sans-serif", "font.sans-serif": family, "svg.fonttype": "path",
                                "axes.unicode_minus": False, "svg.hashsalt": "orderguard"}):
        yield


def new_figure(width: float, height: float) -> Figure:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def svg(figure: Figure) -> str:
    """The figure as an ``<svg>`` element for inlining into HTML: no XML prolog, no RDF metadata block (its
    namespace URLs are never fetched, but a page that names no address is simpler to audit)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None})
    text = buffer.getvalue()
    return _METADATA.sub("", text[text.index("<svg"):])


def orders_figure(content: ReportContent, lang: str) -> Figure:
    """Orders per day stacked by channel, flagged orders as a line on top."""
    w = words(lang)
    figure = new_figure(10, 3.4)
    ax = figure.add_subplot()
    import numpy as np

    days = np.arange(len(content.per_day), dtype=np.float64)
    bottom = [0] * len(days)
    for i, channel in enumerate(content.channel_names):
        counts = [r.orders.get(channel, 0) for r in content.per_day]
        ax.bar(days, counts, bottom=bottom, color=_PALETTE[i % len(_PALETTE)], label=channel, width=0.8)
        bottom = [b + c for b, c in zip(bottom, counts, strict=True)]
    ax.plot(days, flagged_per_day(content), color="#d62828", marker="o", markersize=3, label=w["chart_flags"])
    ax.set_title(w["chart_orders"])
    ax.set_ylabel(w["orders"])
    ax.legend(fontsize=7, ncols=4)
    ax.grid(axis="y", alpha=0.3)
    step = max(1, len(days) // 16)
    ax.set_xticks(days[::step], [r.day.strftime("%m-%d") for r in content.per_day][::step], rotation=45)
    return figure


def models_figure(content: ReportContent, lang: str) -> Figure | None:
    """PR AUC of every registered version on its own holdout (None without models)."""
    points = [(m.version.rsplit("/", 1)[-1], m.metrics["blend_pr_auc"]) for m in content.models
              if "blend_pr_auc" in m.metrics]
    if not points:
        return None
    w = words(lang)
    figure = new_figure(6, 2.8)
    ax = figure.add_subplot()
    ax.plot([p[0] for p in points], [p[1] for p in points], marker="o", color="#264653")
    ax.set_ylim(0, 1)
    ax.set_xlabel(w["version"])
    ax.set_ylabel(w["pr_auc"])
    ax.set_title(w["chart_models"])
    ax.grid(alpha=0.3)
    return figure


def sweep_labels(lang: str) -> Mapping[str, str]:
    """The sweep chart's words (``training.backtest_chart.sweep_figure``) in ``lang``."""
    if lang != "zh":
        return {}
    return {"precision": "精确率", "recall": "召回率", "false_positive_rate": "误报率", "cutoff": "分数阈值",
            "per_day": "每日达到阈值的订单", "live": "现行", "candidate": "候选", "rates": "比例"}
