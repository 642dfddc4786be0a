"""API keys and users on both backends: keys shown once and stored hashed, checked in memory, revoked at once;
argon2 passwords; roles validated; the CLI as an admin uses it."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from typer.testing import CliRunner

from cli import app
from orderguard.access import KEY_PATTERN, Directory, DuplicateUserError, Principal, Role, key_hash, parse_roles
from orderguard.errors import InvalidInputError, NotFoundError
from orderguard.ingest.orderlog import OrderLog

NOW = datetime(2026, 12, 4, 8, 0, tzinfo=UTC)
FAST = PasswordHasher(time_cost=1, memory_cost=8, parallelism=1)  # the tests need argon2, not its cost


def test_a_key_is_shown_once_stored_hashed_and_checked_in_memory(order_log: OrderLog) -> None:
    directory = Directory(order_log.engine, hasher=FAST)
    key, secret = directory.create_key("erp", frozenset({Role.ORDER_SYSTEM}), now=NOW)
    assert KEY_PATTERN.fullmatch(secret) and secret.startswith(f"og_{key.prefix}_")
    with order_log.engine.connect() as conn:
        stored = conn.execute(sa.text("select * from api_keys")).one()._asdict()
    assert secret not in str(stored) and stored["key_hash"] == key_hash(secret)
    ring = directory.key_ring()
    assert ring.authenticate(secret) == Principal("key", f"erp ({key.prefix})", frozenset({Role.ORDER_SYSTEM}))
    forged = secret[:-1] + ("A" if secret[-1] != "A" else "B")  # same prefix, wrong secret
    for bad in (forged, "", "Bearer " + secret, secret + "x", "og_00000000_" + "a" * 43):
        assert ring.authenticate(bad) is None, bad
    assert [k.prefix for k in directory.api_keys()] == [key.prefix]


def test_a_revoked_key_is_out_of_the_next_ring(order_log: OrderLog) -> None:
    directory = Directory(order_log.engine, hasher=FAST)
    key, secret = directory.create_key("pipeline", frozenset({Role.DATA_SCIENTIST}), now=NOW)
    other, other_secret = directory.create_key("erp", frozenset({Role.ORDER_SYSTEM}), now=NOW)
    revoked = directory.revoke_key(key.prefix, now=NOW + timedelta(hours=1))
    assert revoked.revoked_at == NOW + timedelta(hours=1)
    again = directory.revoke_key(key.prefix, now=NOW + timedelta(hours=2))  # idempotent: the first time stays
    assert again.revoked_at == NOW + timedelta(hours=1)
    ring = directory.key_ring()
    assert ring.authenticate(secret) is None and ring.authenticate(other_secret) is not None
    with pytest.raises(NotFoundError):
        directory.revoke_key("deadbeef", now=NOW)
    directory.touch_keys({other.prefix: NOW + timedelta(minutes=5)})
    assert {k.prefix: k.last_used_at for k in directory.api_keys()}[other.prefix] == NOW + timedelta(minutes=5)


def test_users_sign_in_with_argon2_passwords(order_log: OrderLog) -> None:
    directory = Directory(order_log.engine, hasher=FAST)
    directory.add_user("alice", "correct horse battery", frozenset({Role.REVIEWER}), now=NOW)
    with order_log.engine.connect() as conn:
        digest = conn.execute(sa.text("select password_hash from users")).scalar_one()
    assert digest.startswith("$argon2id$") and "correct horse" not in digest
    assert directory.verify_password("alice", "correct horse battery") == Principal(
        "user", "alice", frozenset({Role.REVIEWER}))
    assert directory.verify_password("alice", "correct horse batterY") is None
    assert directory.verify_password("mallory", "correct horse battery") is None
    with pytest.raises(DuplicateUserError):
        directory.add_user("alice", "another long password", frozenset({Role.ADMIN}), now=NOW)
    for name, password in (("Alice", "long enough password"), ("a", "long enough password"), ("bob", "short")):
        with pytest.raises(InvalidInputError):
            directory.add_user(name, password, frozenset({Role.REVIEWER}), now=NOW)
    assert [u.name for u in directory.users()] == ["alice"]


def test_roles_are_checked_and_admin_may_everything() -> None:
    assert parse_roles([" Reviewer ", "admin"]) == {Role.REVIEWER, Role.ADMIN}
    for bad in (["root"], []):
        with pytest.raises(InvalidInputError):
            parse_roles(bad)
    reviewer = Principal("user", "alice", frozenset({Role.REVIEWER}))
    assert reviewer.may(frozenset({Role.REVIEWER, Role.OPERATIONS}))
    assert not reviewer.may(frozenset({Role.DATA_SCIENTIST}))
    assert Principal("key", "ops", frozenset({Role.ADMIN})).may(frozenset({Role.MARKETING}))


def test_the_cli_creates_lists_and_revokes_keys_without_showing_them_again(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    created = runner.invoke(app, [*base, "keys", "create", "--name", "erp", "--role", "order_system"])
    assert created.exit_code == 0, created.output
    secret = created.stdout.strip()
    assert KEY_PATTERN.fullmatch(secret)
    listed = runner.invoke(app, [*base, "keys", "list", "--json"])
    assert secret not in listed.stdout and '"roles": ["order_system"]' in listed.stdout
    prefix = secret.split("_")[1]
    assert runner.invoke(app, [*base, "keys", "revoke", prefix]).exit_code == 0
    with OrderLog.open(f"sqlite:///{tmp_path / 'orderguard.db'}") as log:
        assert Directory(log.engine).key_ring().authenticate(secret) is None
    bad_role = runner.invoke(app, [*base, "keys", "create", "--name", "x", "--role", "root"])
    assert bad_role.exit_code == 2 and bad_role.stderr.startswith("error[invalid_input]: `role` must be one of")


def test_sessions_end_at_sign_out_disabling_and_a_new_password(order_log: OrderLog) -> None:
    directory = Directory(order_log.engine, hasher=FAST)
    directory.add_user("alice", "correct horse battery", frozenset({Role.REVIEWER}), now=NOW)
    signed_in = NOW + timedelta(minutes=1)
    assert directory.key_ring().session_user("alice", signed_in) == Principal("user", "alice",
                                                                             frozenset({Role.REVIEWER}))
    directory.end_sessions("alice", now=NOW + timedelta(minutes=2))
    ring = directory.key_ring()
    assert ring.session_user("alice", signed_in) is None  # a copy of the old cookie is refused
    assert ring.session_user("alice", NOW + timedelta(minutes=3)) is not None  # a new sign-in is fine
    directory.set_user("alice", password="a brand new password", now=NOW + timedelta(minutes=4))
    assert directory.key_ring().session_user("alice", NOW + timedelta(minutes=3)) is None
    assert directory.verify_password("alice", "a brand new password") is not None
    assert directory.verify_password("alice", "correct horse battery") is None
    changed = directory.set_user("alice", roles=frozenset({Role.OPERATIONS}), now=NOW + timedelta(minutes=5))
    assert changed.roles == {Role.OPERATIONS}
    directory.set_user("alice", enabled=False, now=NOW + timedelta(minutes=6))
    assert directory.key_ring().session_user("alice", NOW + timedelta(minutes=7)) is None
    assert directory.verify_password("alice", "a brand new password") is None
    directory.set_user("alice", enabled=True, now=NOW + timedelta(minutes=8))
    assert directory.key_ring().session_user("alice", NOW + timedelta(minutes=9)) is not None
    with pytest.raises(NotFoundError):
        directory.set_user("mallory", enabled=False, now=NOW)
    with pytest.raises(InvalidInputError):
        directory.set_user("alice", password="short", now=NOW)


def test_the_cli_adds_changes_and_signs_out_users(tmp_path: Path) -> None:
    runner = CliRunner()
    base = ["--data-dir", str(tmp_path)]
    added = runner.invoke(app, [*base, "users", "add", "bob", "--role", "reviewer", "--password",
                                "long enough password"])
    assert added.exit_code == 0, added.output
    changed = runner.invoke(app, [*base, "users", "change", "bob", "--role", "reviewer", "--role", "operations",
                                  "--disable"])
    assert changed.exit_code == 0 and "operations, reviewer; disabled since" in changed.stdout
    assert runner.invoke(app, [*base, "users", "sign-out", "bob"]).exit_code == 0
    both = runner.invoke(app, [*base, "users", "change", "bob", "--enable", "--disable"])
    assert both.exit_code == 2 and "not both" in both.stderr
    nobody = runner.invoke(app, [*base, "users", "sign-out", "nobody"])
    assert nobody.exit_code == 2 and nobody.stderr.startswith("error[not_found]: `name` must be an existing user")
