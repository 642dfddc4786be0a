"""``orderguard sign-push``: the curl command it prints carries a push the service accepts, once."""

from __future__ import annotations

import shlex
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
from typer.testing import CliRunner

from cli import app
from orderguard.ingest.webhooks import ReplayGuard, WebhookRejected, verify_push
from orderguard.settings import WebhookSettings

SAMPLES = Path(__file__).parents[1] / "contracts" / "samples"


@pytest.mark.parametrize("channel", ["jd", "douyin", "site"])
def test_the_printed_push_verifies_once(tmp_path: Path, channel: str) -> None:
    payload = SAMPLES / f"{channel}_order.json"
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "sign-push", channel, str(payload)])
    assert result.exit_code == 0, result.output
    words = shlex.split(result.stdout)
    url = urlsplit(words[words.index("POST") + 1])
    assert url.path == f"/v1/orders/{channel}" and words[-1] == f"@{payload}"
    headers = dict(w.split(": ", 1) for w in words[words.index("-H") + 1::2] if ": " in w)
    replays = ReplayGuard()
    push = {"headers": headers, "query": dict(parse_qsl(url.query)), "body": payload.read_bytes(),
            "now": datetime.now(UTC), "replays": replays}
    verify_push(channel, WebhookSettings(), **push)  # type: ignore[arg-type]
    with pytest.raises(WebhookRejected, match="replayed"):
        verify_push(channel, WebhookSettings(), **push)  # type: ignore[arg-type]


def test_an_unknown_channel_is_a_one_line_error(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["--data-dir", str(tmp_path), "sign-push", "ebay", str(SAMPLES / "jd_order.json")])
    assert result.exit_code == 2 and result.stderr.startswith("error[unknown_channel]: `channel` must be one of")
