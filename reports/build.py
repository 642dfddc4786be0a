"""``orderguard report``: choose the period (a month, a configured campaign, or dates), backtest the live policy
on it, and write the HTML (and PDF) report."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

from features.settings import Settings
from orderguard.errors import InvalidInputError
from orderguard.ingest.orderlog import OrderLog
from reports.content import ReportContent, build_content
from reports.models import model_rows
from reports.pdf import write_pdf
from reports.render import render_html
from reports.words import words
from training.backtest import Backtest
from training.backtest_data import Period
from training.backtest_setup import backtest_log


@dataclass(frozen=True, slots=True)
class Written:
    """What was written: the HTML, the PDF (and the language it was written in), and the backtest behind them."""

    html: Path
    pdf: Path | None
    pdf_lang: str | None
    content: ReportContent
    backtest: Backtest


def report_period(settings: Settings, *, month: str | None, campaign: str | None, first: date | None,
                  last: date | None) -> tuple[Period, str, bool]:
    """The period, its name and whether it is a campaign; exactly one of month, campaign or dates."""
    given = sum(x is not None for x in (month, campaign)) + (first is not None or last is not None)
    if given != 1:
        raise InvalidInputError("`period` must be given once: --month YYYY-MM, --campaign NAME or --from/--to",
                                field="month")
    if month is not None:
        return Period.month(month), month.strip(), False
    if campaign is not None:
        found = [c for c in settings.policy.campaigns if c.name == campaign]
        if not found:
            names = ", ".join(c.name for c in settings.policy.campaigns) or "none configured"
            raise InvalidInputError(f"`--campaign` must name a campaign of the policy settings ({names}); "
                                    f"got {campaign!r}", field="campaign")
        return Period.of_days(found[0].first_day, found[0].last_day), campaign, True
    if first is None or last is None:
        raise InvalidInputError("`--from` and `--to` must be given together", field="from" if first is None else "to")
    period = Period.of_days(first, last)
    return period, f"{first.isoformat()} – {last.isoformat()}", False


def write_report(settings: Settings, log: OrderLog, *, period: Period, name: str, out: Path, lang: str = "zh",
                 campaign: bool = False, pdf: Path | None = None, now: datetime | None = None) -> Written:
    """Backtest the live policy on ``period`` and write the report to ``out`` (and ``pdf``)."""
    words(lang)  # a bad --lang fails before the slow part
    result = backtest_log(settings, log, period=period)
    if len(result.history) == 0:
        raise InvalidInputError(f"`period` must hold orders; none were created {period.first_day} .. "
                                f"{period.last_day}", field="month")
    content = build_content(result, rules=result.live.replay.under.rules, name=name, campaign=campaign,
                            models=model_rows(settings))
    html = render_html(content, result.live, lang=lang, generated_at=now or datetime.now(UTC))
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(html, encoding="utf-8")
    pdf_lang = write_pdf(content, result.live, pdf, lang=lang) if pdf is not None else None
    return Written(out, pdf, pdf_lang, content, result)
