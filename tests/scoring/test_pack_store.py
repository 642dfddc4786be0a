"""Rule packs as versioned data, on SQLite and PostgreSQL: validation before storing, no-op re-publish, diffs,
rollback, the shadow candidate and the start-up rule for the configured file."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest

from orderguard.errors import ConfigError, InvalidInputError, NotFoundError
from orderguard.ingest.orderlog import OrderLog
from scoring.pack_store import InvalidPackError, PackStore, content_hash, parse_bands
from scoring.policy import Bands
from tests.factories import BASE_TIME

FEATURES = {"count_orders_by_device_5m", "count_orders_by_ip_5m"}


def pack_text(points: int = 50, *, feature: str = "count_orders_by_device_5m", extra: str = "") -> str:
    """A one-rule pack (a second rule first when ``extra`` is given, so positions move)."""
    return (f"rules:\n{extra}"
            f"  - code: DEVICE_BURST_5M\n    points: {points}\n"
            f"    when: {{feature: {feature}, op: ge, value: 5}}\n"
            "    reason: {zh: \"设备{value:.0f}次\", en: \"{value:.0f} orders from one device\"}\n")


IP_RULE = ("  - code: IP_BURST_5M\n    points: 20\n    when: {feature: count_orders_by_ip_5m, op: ge, value: 3}\n"
           "    reason: {zh: \"IP{value:.0f}次\", en: \"{value:.0f} orders from one IP\"}\n")


@pytest.fixture
def store(order_log: OrderLog) -> PackStore:
    return PackStore(order_log.engine, known_features=FEATURES)


def test_publish_versions_diff_author_and_identical_text_is_a_no_op(store: PackStore) -> None:
    assert store.latest_version() == 0 and store.state().live is None
    first = store.publish(pack_text(50), author="alice", now=BASE_TIME, note="first")
    assert first.changed and first.pack.version == 1 and first.pack.role == "live"
    assert first.pack.content_hash == content_hash(pack_text(50))
    assert first.pack.label == f"v1:{content_hash(pack_text(50))[:8]}"
    again = store.publish(pack_text(50), author="bob", now=BASE_TIME + timedelta(minutes=1))
    assert not again.changed and again.pack == first.pack and store.latest_version() == 1
    second = store.publish(pack_text(60), author="key:tuning (og_ab12)", now=BASE_TIME + timedelta(minutes=2),
                           note="tighter")
    assert second.changed and second.pack.version == 2
    assert "-    points: 50\n+    points: 60\n" in second.pack.diff
    assert second.pack.diff.startswith(f"--- {first.pack.label}\n+++ v2\n")
    stored = store.get(2)
    assert (stored.author, stored.note, stored.applied_at, stored.text) == (
        "key:tuning (og_ab12)", "tighter", BASE_TIME + timedelta(minutes=2), pack_text(60))
    assert [p.version for p in store.history()] == [2, 1]
    assert store.state().live == stored


def test_a_bad_pack_is_refused_naming_the_field_and_nothing_is_stored(store: PackStore) -> None:
    with pytest.raises(InvalidPackError) as info:
        store.publish(pack_text(feature="no_such_feature", extra=IP_RULE), author="a", now=BASE_TIME)
    assert info.value.field == "rules[1].when.feature" and info.value.http_status == 422
    with pytest.raises(InvalidPackError) as info:
        store.publish("rules:\n  - code: lower\n", author="a", now=BASE_TIME)
    assert info.value.field is not None and info.value.field.startswith("rules[0]")
    with pytest.raises(InvalidPackError) as info:
        store.publish("rules: [unclosed", author="a", now=BASE_TIME)
    assert info.value.field == "rules"
    with pytest.raises(InvalidPackError) as info:
        store.publish("# " + "x" * 300_000 + "\n" + pack_text(), author="a", now=BASE_TIME)
    assert info.value.field == "text"
    bomb = "a: &a [x, x, x, x, x, x, x, x]\n" + "".join(
        f"{n}: &{n} [{', '.join([f'*{p}'] * 8)}]\n" for p, n in zip("abcdefgh", "bcdefghi", strict=True))
    with pytest.raises(InvalidPackError) as info:  # 8**9 nodes once expanded, in under 400 bytes
        store.publish(bomb + pack_text(), author="a", now=BASE_TIME)
    assert info.value.field == "text" and "aliases" in info.value.message
    assert store.latest_version() == 0


def test_rollback_republishes_as_a_new_version_recorded_as_a_rollback(store: PackStore) -> None:
    store.publish(pack_text(50), author="a", now=BASE_TIME)
    store.publish(pack_text(70), author="a", now=BASE_TIME)
    back = store.rollback(1, author="carol", now=BASE_TIME + timedelta(hours=1))
    assert back.changed and back.pack.version == 3 and back.pack.rollback_of == 1
    assert back.pack.source == "rollback" and back.pack.note == "rollback to v1" and back.pack.text == pack_text(50)
    assert "-    points: 70\n+    points: 50\n" in back.pack.diff
    assert not store.rollback(1, author="carol", now=BASE_TIME).changed  # the same text is live already
    with pytest.raises(NotFoundError) as info:
        store.rollback(99, author="carol", now=BASE_TIME)
    assert info.value.field == "version"


def test_shadow_is_set_replaced_and_ended_without_touching_the_live_pack(store: PackStore) -> None:
    live = store.publish(pack_text(50), author="a", now=BASE_TIME).pack
    assert store.clear_shadow(author="a", now=BASE_TIME) is None
    shadow = store.set_shadow(pack_text(40, extra=IP_RULE), author="b", now=BASE_TIME, bands=Bands(30, 50, 75))
    assert shadow.changed and shadow.pack.role == "shadow" and shadow.pack.bands == Bands(30, 50, 75)
    assert "+  - code: IP_BURST_5M\n" in shadow.pack.diff  # against the live pack
    assert not store.set_shadow(pack_text(40, extra=IP_RULE), author="b", now=BASE_TIME,
                                bands=Bands(30, 50, 75)).changed
    assert store.set_shadow(pack_text(40, extra=IP_RULE), author="b", now=BASE_TIME).changed  # other bands
    state = store.state()
    assert state.live == live and state.shadow is not None and state.shadow.version == 3
    assert state.shadow.bands is None
    ended = store.clear_shadow(author="b", now=BASE_TIME)
    assert ended is not None and ended.pack.role == "shadow_off"
    assert store.state().shadow is None and store.state().live == live
    with pytest.raises(InvalidInputError):
        store.rollback(ended.pack.version, author="b", now=BASE_TIME)
    with pytest.raises(InvalidPackError):
        store.set_shadow(pack_text(feature="nope"), author="b", now=BASE_TIME)


def test_start_up_rule_for_the_configured_file(store: PackStore, tmp_path: Path) -> None:
    path = tmp_path / "rules.yaml"
    path.write_text(pack_text(50), encoding="utf-8")
    first = store.adopt_file(path, now=BASE_TIME)
    assert (first.version, first.source, first.author) == (1, "file", f"file:{path}")
    assert store.adopt_file(path, now=BASE_TIME) == first  # a restart with the same file: nothing new
    published = store.publish(pack_text(60), author="alice", now=BASE_TIME).pack
    assert store.adopt_file(path, now=BASE_TIME) == published  # the API's pack survives a restart
    path.write_text(pack_text(70), encoding="utf-8")  # the operator edits the file: it wins, as a new version
    edited = store.adopt_file(path, now=BASE_TIME)
    assert (edited.version, edited.text, edited.source) == (3, pack_text(70), "file")
    store.publish(pack_text(80), author="alice", now=BASE_TIME)
    path.write_text(pack_text(80), encoding="utf-8")  # the file now says what the API published: nothing new
    assert store.adopt_file(path, now=BASE_TIME).version == 4
    store.publish(pack_text(90), author="alice", now=BASE_TIME)
    assert store.adopt_file(path, now=BASE_TIME).version == 5
    path.write_text(pack_text(feature="gone"), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        store.adopt_file(path, now=BASE_TIME)
    assert info.value.field == "rules[0].when.feature"


def test_parse_bands() -> None:
    assert parse_bands("35,55,80") == Bands(35, 55, 80) == parse_bands([35, 55, 80])
    for bad in ("35,55", "a,b,c", "80,55,35", "0,10,20"):
        with pytest.raises(InvalidInputError) as info:
            parse_bands(bad)
        assert info.value.field == "bands"
