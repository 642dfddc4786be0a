"""A rule pack published over HTTP to a real ``orderguard serve`` under continuous scoring: no request fails,
answers and records before the publish name the old version and after it the new one, and ``rules history``
shows both with author and diff; a change made by another process (the CLI) is picked up by the poll."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
from typer.testing import CliRunner

from bench.rules_reload import Load, changed_pack, port_in, score_request
from cli import app as cli_app
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import OrderKey
from scoring.records import ScoreLog
from tests.factories import api_key
from tests.processes import serve_process


def test_publishing_under_load_fails_no_request_and_every_record_names_its_version(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/orderguard.db"
    headers = {"Authorization": f"Bearer {api_key(url, 'order_system', 'data_scientist', name='ops')}"}
    port = port_in()
    base = f"http://127.0.0.1:{port}"
    with serve_process(tmp_path, port, env={"ORDERGUARD_SCORING__RULES_POLL_S": "0.5"}):
        old = httpx.get(f"{base}/v1/rules", headers=headers).json()["live"]["label"]
        load = Load(base, headers, threads=2, prefix="R")
        load.start()
        time.sleep(1.5)
        sent = time.monotonic()
        published = httpx.post(f"{base}/v1/rules", headers=headers, timeout=30,
                               json={"text": changed_pack(45), "note": "bursts weigh less"})
        answered = time.monotonic()
        time.sleep(1.5)
        samples = load.stop()
        # another process (the CLI) changes the pack in the shared database: the service's poll picks it up
        code = CliRunner().invoke(cli_app, ["--data-dir", str(tmp_path), "rules", "rollback", "1"]).exit_code
        assert code == 0
        deadline = time.monotonic() + 10
        while (serving := httpx.get(f"{base}/v1/rules", headers=headers).json())["serving"]["live"].startswith("v2:"):
            assert time.monotonic() < deadline, serving
            time.sleep(0.1)
        polled = serving["live"]["label"]
        assert polled.startswith("v3:") and serving["serving"]["live"] == polled
        after_poll = httpx.post(f"{base}/v1/score", headers=headers, json=score_request("polled")).json()
        assert after_poll["rules_version"] == polled
        time.sleep(0.5)  # the last records are stored just after their answers
    assert published.status_code == 201, published.text
    new = published.json()["pack"]["label"]
    assert new != old and new.startswith("v2:")
    assert [s for s in samples if s.status != 200] == []
    before = [s for s in samples if s.done < sent]
    after = [s for s in samples if s.sent > answered]
    assert len(before) > 10 and len(after) > 10
    assert {s.rules_version for s in before} == {old}
    assert {s.rules_version for s in after} == {new}
    assert {s.rules_version for s in samples} == {old, new}
    with OrderLog.open(url) as log:
        records = ScoreLog(log.engine)
        for sample in samples:
            record = records.latest(OrderKey.parse(f"site:{sample.order_id}"))
            assert record is not None and record.rules_version == sample.rules_version, sample
    result = CliRunner().invoke(cli_app, ["--data-dir", str(tmp_path), "rules", "history", "--json"])
    assert result.exit_code == 0, result.output
    history = [json.loads(line) for line in result.output.splitlines()]
    assert [(h["label"], h["role"]) for h in history] == [(polled, "live"), (new, "live"), (old, "live")]
    assert history[0]["rollback_of"] == 1 and history[0]["author"].startswith("cli")
    history = history[1:]
    assert history[0]["author"].startswith("key:ops (") and history[0]["note"] == "bursts weigh less"
    assert history[1]["author"].startswith("file:") and history[1]["source"] == "file"
    assert "-    points: 50\n+    points: 45\n" in history[0]["diff"]
