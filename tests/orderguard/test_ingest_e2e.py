"""End to end through the CLI: generate a week of the shop, ingest every file twice.

Runs on the embedded SQLite default and on a real PostgreSQL (fails when it is down).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from typer.testing import CliRunner

from cli import app
from orderguard.ingest.orderlog import OrderLog

runner = CliRunner()


@pytest.fixture(scope="module")
def shop(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("shop")
    result = runner.invoke(app, ["generate", "--days", "7", "--seed", "1", "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


@pytest.fixture(params=["sqlite", "postgres"])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'og.db'}"
        return
    admin_url: str = request.getfixturevalue("pg_url")
    name = f"og_e2e_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        yield str(sa.make_url(admin_url).set(database=name))
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def _ingest(url: str, files: list[Path], tmp_path: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url", url, "ingest",
                                 *map(str, files)])
    assert result.exit_code == 0, result.output


def test_generate_then_ingest_twice_equals_once(shop: Path, database_url: str, tmp_path: Path) -> None:
    files = sorted(shop.glob("*.jsonl"))
    assert {p.stem for p in files} == {"tmall", "jd", "douyin", "kuaishou", "wechat", "site"}
    truth_orders = sum(1 for _ in (shop / "ground_truth.csv").open(encoding="utf-8")) - 1

    _ingest(database_url, files, tmp_path)
    log = OrderLog.open(database_url)
    try:
        first = (log.count_orders(), log.count_events(), log.status_counts(), log.snapshot())
    finally:
        log.close()
    assert first[0] == truth_orders

    _ingest(database_url, files, tmp_path)
    log = OrderLog.open(database_url)
    try:
        second = (log.count_orders(), log.count_events(), log.status_counts(), log.snapshot())
    finally:
        log.close()
    assert second == first


def test_bad_rows_are_reported_by_line_and_good_rows_kept(tmp_path: Path, shop: Path) -> None:
    lines = (shop / "site.jsonl").read_text(encoding="utf-8").splitlines()[:5]
    broken = json.loads(lines[1])
    broken.pop("order_id", None)
    bad = tmp_path / "site.jsonl"
    bad.write_text("\n".join([lines[0], json.dumps(broken), "{oops", *lines[2:]]) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'og.db'}"
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["--database-url", url, "ingest", str(bad), "--rejects", str(rejects)])
    assert result.exit_code == 2
    assert "site.jsonl:2:" in result.output and "site.jsonl:3:" in result.output
    assert [json.loads(r)["line"] for r in rejects.read_text(encoding="utf-8").splitlines()] == [2, 3]
    log = OrderLog.open(url)
    try:
        kept_events = log.count_events()
    finally:
        log.close()
    assert kept_events == len({lines[0], *lines[2:]})  # the 4 good rows; exact duplicates collapse


def test_all_or_nothing_keeps_nothing_from_a_bad_file(tmp_path: Path, shop: Path) -> None:
    lines = (shop / "jd.jsonl").read_text(encoding="utf-8").splitlines()[:3]
    bad = tmp_path / "jd.jsonl"
    bad.write_text("\n".join([*lines, "[]"]) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'og.db'}"
    result = runner.invoke(app, ["--database-url", url, "ingest", str(bad), "--all-or-nothing"])
    assert result.exit_code == 2
    log = OrderLog.open(url)
    try:
        assert log.count_events() == 0
    finally:
        log.close()


def test_unknown_channel_is_one_line_with_exit_code_2(tmp_path: Path) -> None:
    path = tmp_path / "orders.jsonl"
    path.write_text("{}\n", encoding="utf-8")
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "ingest", str(path), "--channel", "ebay"])
    assert result.exit_code == 2
    assert "unknown_channel" in result.output


def test_several_processes_store_exactly_what_one_does(shop: Path, database_url: str, tmp_path: Path) -> None:
    """``--jobs`` deals each file's batches to worker processes appending side by side (one order's events
    land in different processes' batches): the log must hold the very events and states of a one-process
    import, the report must count what one process counts, and a second run must find only duplicates."""
    files = []
    for source in sorted(shop.glob("*.jsonl"))[:3]:  # a part of three channels' files: many batches each
        files.append(tmp_path / source.name)
        files[-1].write_text("".join(source.read_text(encoding="utf-8").splitlines(keepends=True)[:600]),
                             encoding="utf-8")
    reference = f"sqlite:///{tmp_path / 'one.db'}"
    _ingest(reference, files, tmp_path / "one")
    with OrderLog.open(reference) as log:
        want = log.snapshot()

    def run() -> str:
        result = runner.invoke(app, ["--data-dir", str(tmp_path), "--database-url", database_url, "ingest",
                                     "--jobs", "3", "--batch-size", "40", *map(str, files)])
        assert result.exit_code == 0, result.output
        return result.output

    first = run()
    with OrderLog.open(database_url) as log:
        assert log.snapshot() == want
    rows = {p.name: sum(1 for line in p.open(encoding="utf-8") if line.strip()) for p in files}
    for name, count in rows.items():
        line = next(line for line in first.splitlines() if name in line)
        assert line.split("│")[3].strip() == str(count), line  # every row counted once, in its file's row
    again = run()
    for name in rows:
        cells = [c.strip() for c in next(line for line in again.splitlines() if name in line).split("│")]
        assert cells[4] == "0" and cells[5] == str(rows[name]), cells  # inserted 0, all duplicates


def test_several_processes_report_refused_rows_by_line_in_file_order(tmp_path: Path, shop: Path) -> None:
    lines = (shop / "site.jsonl").read_text(encoding="utf-8").splitlines()[:60]
    bad_at = [3, 17, 18, 41, 60]  # spread over the batches of different processes
    text = ["{oops" if n in bad_at else line for n, line in enumerate(lines, start=1)]
    bad = tmp_path / "site.jsonl"
    bad.write_text("\n".join(text) + "\n", encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'og.db'}"
    rejects = tmp_path / "rejects.jsonl"
    result = runner.invoke(app, ["--database-url", url, "ingest", str(bad), "--jobs", "2", "--batch-size", "10",
                                 "--rejects", str(rejects)])
    assert result.exit_code == 2
    assert [json.loads(r)["line"] for r in rejects.read_text(encoding="utf-8").splitlines()] == bad_at
    with OrderLog.open(url) as log:
        assert log.count_events() == len({line for n, line in enumerate(lines, start=1) if n not in bad_at})


def test_jobs_must_be_a_positive_count(tmp_path: Path, shop: Path) -> None:
    result = runner.invoke(app, ["--data-dir", str(tmp_path), "ingest", str(shop / "jd.jsonl"), "--jobs", "0"])
    assert result.exit_code == 2
    assert "--jobs" in result.output


def test_a_part_that_fails_stops_the_parts_not_started_and_raises_its_own_error(tmp_path: Path, shop: Path) -> None:
    """A worker's error (here a file of an unsupported kind) cancels the parts still queued and is raised as
    itself, as a one-process import would raise it, never as the error of a cancelled part. One worker and six
    files: parts are queued behind the failing one, whatever the timing."""
    from orderguard.errors import InvalidInputError
    from orderguard.ingest.parallel import import_files
    from orderguard.settings import PiiSettings

    bad = tmp_path / "orders.txt"
    bad.write_text("{}\n", encoding="utf-8")
    good = tmp_path / "jd.jsonl"
    good.write_text("".join((shop / "jd.jsonl").read_text(encoding="utf-8").splitlines(keepends=True)[:50]),
                    encoding="utf-8")
    url = f"sqlite:///{tmp_path / 'og.db'}"
    OrderLog.open(url).close()
    with pytest.raises(InvalidInputError, match="must end in one of"):
        import_files([bad, *[good] * 5], url=url, pii=PiiSettings(), jobs=1, channel="jd")
    result = runner.invoke(app, ["--database-url", url, "ingest", "--channel", "jd", "--jobs", "2", str(bad),
                                 str(good), str(good)])
    assert result.exit_code == 2, result.output
    assert "`FILE` must end in one of" in result.output
