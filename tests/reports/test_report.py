"""``orderguard report`` on a small served shop: every section is there, in Chinese and English, and its
figures are the backtest's."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from html.parser import HTMLParser
from pathlib import Path

import pytest
from typer.testing import CliRunner

from cli import app
from orderguard.ingest.orderlog import OrderLog
from reports.build import Written, report_period, write_report
from reports.charts import cjk_font
from reports.render import pct, render_html, yuan
from scoring.policy import Decision
from tests.reports.shop import CAMPAIGN, BacktestShop, shared_backtest_shop
from training.backtest_setup import backtest_log

SECTIONS = ("summary", "per-day", "bands", "rules", "losses", "models", "patterns", "notes")


@dataclass(frozen=True)
class Reported:
    shop: BacktestShop
    written: Written
    html: str


@pytest.fixture(scope="module")
def reported(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Reported]:
    shop = shared_backtest_shop(tmp_path_factory)
    out = tmp_path_factory.mktemp("report") / "report.html"
    period, name, _ = report_period(shop.settings, month=None, campaign=None, first=shop.period.first_day,
                                    last=shop.period.last_day)
    with OrderLog.open(shop.settings.database_url) as log:
        written = write_report(shop.settings, log, period=period, name=name, out=out,
                               now=datetime(2026, 12, 1, tzinfo=UTC))
    yield Reported(shop, written, out.read_text(encoding="utf-8"))


class _Page(HTMLParser):
    """Sections by id, table rows by their data attribute, and every URL the page would load."""

    def __init__(self) -> None:
        super().__init__()
        self.sections: list[str] = []
        self.rows: dict[str, list[str]] = {}
        self.loads: list[str] = []
        self._row: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "section" and a.get("id"):
            self.sections.append(str(a["id"]))
        for key in ("data-band", "data-rule", "data-pattern"):
            if a.get(key):
                self._row = f"{key[5:]}:{a[key]}"
                self.rows[self._row] = []
        for key in ("src", "href"):
            if a.get(key):
                self.loads.append(str(a[key]))
        if tag == "link" or tag == "script":
            self.loads.append(tag)

    def handle_endtag(self, tag: str) -> None:
        if tag == "tr":
            self._row = None

    def handle_data(self, data: str) -> None:
        if self._row is not None and data.strip():
            self.rows[self._row].append(data.strip())


def _page(html: str) -> _Page:
    page = _Page()
    page.feed(html)
    return page


def test_the_report_has_every_section_inline_and_nothing_to_fetch(reported: Reported) -> None:
    page = _page(reported.html)
    assert page.sections == list(SECTIONS)
    assert page.loads == []  # no stylesheet, script, image or font from anywhere
    assert not re.search(r"https?://(?!www\.w3\.org/)", reported.html)  # SVG namespaces only
    assert reported.html.count("<svg") >= 3  # orders per day, the sweep, the models
    assert "风控月报" in reported.html and "各决策档位" in reported.html  # Chinese by default


def test_the_reports_figures_are_the_backtests(reported: Reported) -> None:
    shop = reported.shop
    with OrderLog.open(shop.settings.database_url) as log:
        backtest = backtest_log(shop.settings, log, period=shop.period)
    page = _page(reported.html)
    for band in backtest.live.bands:
        cells = page.rows[f"band:{band.decision.value}"]
        assert cells[1:] == [f"{band.orders:,}", f"{band.per_day:,.1f}", f"{band.flagged:,}", pct(band.precision),
                             pct(band.recall), pct(band.false_positive_rate), yuan(band.money_caught_fen)]
    content = reported.written.content
    assert content.stopped_fen == backtest.live.band(Decision.REVIEW).money_caught_fen
    assert content.held_fen == backtest.live.band(Decision.HOLD).money_caught_fen
    assert yuan(content.stopped_fen) in reported.html and yuan(content.held_fen) in reported.html
    assert content.orders == len(backtest.history) == sum(sum(r.orders.values()) for r in content.per_day)
    assert backtest.served is not None and backtest.served.line() in reported.html
    assert backtest.served.mismatches == 0


def test_rules_carry_their_verdicts_weights_and_patterns(reported: Reported) -> None:
    content = reported.written.content
    page = _page(reported.html)
    fired = [r for r in content.rules if r.hits]
    assert fired and all(r.frauds + r.honest + r.unlabelled == r.hits for r in fired)
    assert all(f"rule:{r.code}" in page.rows for r in fired)
    halved = [r for r in content.rules if r.weight == 0.5]  # the shop's champion halves its pack's first rule
    assert len(halved) == 1 and content.weighted
    assert content.patterns and all(f"pattern:{p.pattern}" in page.rows for p in content.patterns)
    assert [m.version for m in content.models] == [reported.shop.champion.label] and content.models[0].champion


def test_english_labels_on_the_same_figures(reported: Reported) -> None:
    written = reported.written
    text = render_html(written.content, written.backtest.live, lang="en",
                       generated_at=datetime(2026, 12, 1, tzinfo=UTC))
    assert "Risk report" in text and "Decision bands" in text and "Losses avoided" in text and "风控" not in text
    english, chinese = _page(text).rows, _page(reported.html).rows
    assert english.keys() == chinese.keys()
    assert all(english[k][1:] == chinese[k][1:] for k in english)  # the same figures; only the band names differ


def test_a_campaign_report_and_its_pdf_from_the_command_line(reported: Reported, tmp_path: Path) -> None:
    shop = reported.shop
    html, pdf = tmp_path / "campaign.html", tmp_path / "campaign.pdf"
    done = CliRunner().invoke(app, ["report", "--campaign", CAMPAIGN, "--out", str(html), "--pdf", str(pdf)],
                              env=shop.env)
    assert done.exit_code == 0, done.output
    text = html.read_text(encoding="utf-8")
    assert "大促风控报告" in text and ", 0 mismatches" in text
    campaign = shop.settings.policy.campaigns[0]
    assert f"{campaign.first_day} – {campaign.last_day}" in text
    assert pdf.read_bytes().startswith(b"%PDF") and pdf.stat().st_size > 10_000
    assert ("English: no CJK font" in done.stdout) == (cjk_font() is None)


@pytest.mark.parametrize(("args", "field"), [
    (["--month", "2026-13"], "month"),
    (["--campaign", "no-such-campaign"], "campaign"),
    (["--month", "2026-11", "--campaign", CAMPAIGN], "month"),
    ([], "month"),
    (["--from", "2026-11-01"], "to"),
    (["--month", "2026-11", "--lang", "fr"], "lang"),
])
def test_bad_input_is_one_line_and_exit_2(reported: Reported, args: list[str], field: str) -> None:
    done = CliRunner().invoke(app, ["report", *args], env=reported.shop.env)
    assert done.exit_code == 2, done.output
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error[") and field in lines[0]
