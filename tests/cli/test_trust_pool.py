"""``orderguard trust-pool``: export in each format, explain an account, one-line errors with exit code 2."""

from __future__ import annotations

from pathlib import Path

import pyarrow.parquet as pq
import pytest
from typer.testing import CliRunner

from cli import app
from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from tests.segments.shop import fill


@pytest.fixture
def data(tmp_path: Path) -> Path:
    with OrderLog.open(Settings(data_dir=tmp_path).database_url) as log:
        log.migrate()
        fill(log)
    return tmp_path


def run(data: Path, *args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["--data-dir", str(data), "trust-pool", *args])
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("suffix", ["csv", "xlsx", "parquet"])
def test_export_writes_the_pool_in_each_format(data: Path, suffix: str) -> None:
    out = data / f"pool.{suffix}"
    code, stdout, stderr = run(data, "--as-of", "2024-11-30", "--out", str(out))
    assert code == 0, stderr
    # without the rule pack's deny list ivy is in: alice (with her JD account), dave, hal and ivy
    assert "4 customers in the pool" in stdout and "links" in stdout and out.stat().st_size > 0
    if suffix == "parquet":
        assert pq.read_table(out).num_rows == 4


def test_explain_lists_every_check(data: Path) -> None:
    code, stdout, _ = run(data, "explain", "site:carol", "--as-of", "2024-11-30")
    assert code == 0
    assert "not in the pool" in stdout and "linked to site:bob (confirmed_fraud) via device" in stdout
    code, stdout, _ = run(data, "explain", "site:alice", "--as-of", "2024-11-30", "--lang", "zh")
    assert code == 0 and "is in the pool (bronze)" in stdout and "jd:alice-jd" in stdout


@pytest.mark.parametrize(("args", "message"), [
    (("--as-of", "2024-11-30"), "`--out` must be the file to write"),
    (("--out", "x.txt", "--as-of", "2024-11-30"), "`--format` must be one of csv, xlsx, parquet"),
    (("--out", "x.csv", "--as-of", "2999-01-01"), "`--as-of` must be a day that is over"),
    (("--out", "x.csv", "--criteria", "nope"), "neither a preset"),
    (("explain", "site:nobody", "--as-of", "2024-11-30"), "`account` must be an account with an order"),
])
def test_bad_input_is_one_line_and_exit_2(data: Path, args: tuple[str, ...], message: str) -> None:
    code, _, stderr = run(data, *args)
    assert code == 2 and message in stderr and len(stderr.strip().splitlines()) == 1
