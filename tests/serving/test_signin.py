"""People sign in to the pages: signed http-only session cookie, CSRF on every form, sign-out that ends the
session everywhere, rate-limited failures, no open redirect; a session also calls the API (with its CSRF
token for changes) under the roles the directory gives the user now."""

from __future__ import annotations

import base64
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.access import Directory, parse_roles
from orderguard.ingest.orderlog import OrderLog
from serving.app import create_app
from serving.web.session import CSRF_HEADER, SESSION_COOKIE, SessionCodec
from tests.factories import FixedClock, form_token, sign_in, user

NOW = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def client(db_settings: Settings, clock: FixedClock) -> Iterator[TestClient]:
    user(db_settings.database_url, "alice", "reviewer")
    user(db_settings.database_url, "mona", "marketing")
    settings = db_settings.model_copy(update={"session": db_settings.session.model_copy(
        update={"max_failures": 3, "max_failures_per_address": 8})})
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1") as c:
        yield c


def test_a_visitor_is_sent_to_sign_in_and_back(client: TestClient) -> None:
    first = client.get("/", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"] == "/signin?next=/"
    form = client.get("/signin?next=/")
    assert form.status_code == 200 and 'name="password"' in form.text
    assert form.headers["cache-control"] == "no-store" and "frame-ancestors 'none'" in form.headers[
        "content-security-policy"]
    signed = sign_in(client, "alice")
    assert signed.status_code == 303 and signed.headers["location"] == "/"
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith(f"{SESSION_COOKIE}="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and "Max-Age=43200" in cookie
    home = client.get("/")
    assert home.status_code == 200 and "alice · reviewer" in home.text and 'href="/static/orderguard.css"' in home.text
    assert client.get("/static/orderguard.css").status_code == 200


def test_a_wrong_password_and_an_unknown_user_get_the_same_answer(client: TestClient) -> None:
    wrong = sign_in(client, "alice", "not the password at all")
    nobody = sign_in(client, "zed", "not the password at all")
    assert wrong.status_code == nobody.status_code == 401
    assert "user name or the password is wrong" in wrong.text and "user name or the password is wrong" in nobody.text
    assert SESSION_COOKIE not in client.cookies
    assert client.get("/", follow_redirects=False).status_code == 303


def test_the_sign_in_form_needs_its_own_token(client: TestClient) -> None:
    client.get("/signin")
    forged = client.post("/signin", data={"username": "alice", "password": "correct horse battery staple",
                                          "csrf_token": "made-up"}, follow_redirects=False)
    assert forged.status_code == 403 and "expired or came from another site" in forged.text
    client.cookies.clear()  # another site posting the form: no pre-session cookie at all
    token = form_token(client.get("/signin").text)
    client.cookies.clear()
    cross = client.post("/signin", data={"username": "alice", "password": "correct horse battery staple",
                                         "csrf_token": token}, follow_redirects=False)
    assert cross.status_code == 403 and SESSION_COOKIE not in client.cookies


def test_failed_sign_ins_are_limited_per_user_and_address(client: TestClient, clock: FixedClock,
                                                          db_settings: Settings) -> None:
    for _ in range(3):
        assert sign_in(client, "alice", "guess guess guess").status_code == 401
    locked = sign_in(client, "alice")  # even the right password waits: the guesser learns nothing
    assert locked.status_code == 429 and "Too many failed sign-ins" in locked.text
    assert 0 < int(locked.headers["retry-after"]) <= 15 * 60
    elsewhere = _browser(client, address="10.9.9.9")
    assert sign_in(elsewhere, "alice").status_code == 303  # the owner elsewhere is not locked out
    assert sign_in(client, "mona").status_code == 303  # nor another user at this address
    client.cookies.clear()
    clock.advance(minutes=15)
    assert sign_in(client, "alice").status_code == 303


def test_an_address_spraying_many_names_is_limited(client: TestClient) -> None:
    for i in range(8):
        assert sign_in(client, f"user{i}", "guess guess guess").status_code == 401
    assert sign_in(client, "alice").status_code == 429


@pytest.mark.parametrize("target", ["//evil.example/", "https://evil.example/x", "/\\evil.example"])
def test_next_never_leaves_the_service(client: TestClient, target: str) -> None:
    assert sign_in(client, "alice", next_url=target).headers["location"] == "/"


def test_sign_out_needs_the_token_and_ends_copies_of_the_session(client: TestClient, db_settings: Settings,
                                                                 clock: FixedClock) -> None:
    sign_in(client, "alice")
    copied = client.cookies[SESSION_COOKIE]
    refused = client.post("/signout", data={"csrf_token": "nope"}, follow_redirects=False)
    assert refused.status_code == 403 and client.get("/").status_code == 200  # still signed in
    token = form_token(client.get("/").text)
    clock.advance(seconds=1)
    out = client.post("/signout", data={"csrf_token": token}, follow_redirects=False)
    assert out.status_code == 303 and out.headers["location"] == "/signin"
    assert SESSION_COOKIE not in client.cookies
    thief = _browser(client, cookies={SESSION_COOKIE: copied})
    assert thief.get("/", follow_redirects=False).status_code == 303
    assert thief.get("/v1/labels/site/x").status_code == 401
    clock.advance(seconds=1)
    assert sign_in(client, "alice").status_code == 303 and client.get("/").status_code == 200  # in again


def test_a_session_expires(client: TestClient, clock: FixedClock) -> None:
    sign_in(client, "alice")
    clock.advance(hours=11, minutes=59)
    assert client.get("/").status_code == 200
    clock.advance(minutes=1)
    assert client.get("/", follow_redirects=False).headers["location"] == "/signin?next=/"


def test_a_forged_or_tampered_cookie_is_no_session(client: TestClient) -> None:
    forged = SessionCodec("a secret the attacker guessed", max_age=timedelta(hours=12)).issue("alice", now=NOW)[1]
    stranger = _browser(client, cookies={SESSION_COOKIE: forged})
    assert stranger.get("/", follow_redirects=False).status_code == 303
    assert stranger.get("/v1/labels/site/x").status_code == 401
    sign_in(client, "mona")
    payload, signature = client.cookies[SESSION_COOKIE].split(".", 1)
    tampered = base64.urlsafe_b64encode(base64.urlsafe_b64decode(payload + "==").replace(b"mona", b"alice"))
    client.cookies.clear()
    client.cookies[SESSION_COOKIE] = f"{tampered.decode().rstrip('=')}.{signature}"
    assert client.get("/", follow_redirects=False).status_code == 303


def test_a_session_calls_the_api_with_its_csrf_token_for_changes(client: TestClient) -> None:
    sign_in(client, "alice")
    assert client.get("/v1/labels/site/x").status_code == 404  # a reviewer may read labels: let in, no such order
    label = {"order_key": "site:x", "verdict": "confirmed_fraud"}
    no_token = client.post("/v1/labels", json=label)
    assert no_token.status_code == 403 and no_token.json()["field"] == CSRF_HEADER
    token = form_token(client.get("/").text)
    with_token = client.post("/v1/labels", json=label, headers={CSRF_HEADER: token})
    assert with_token.status_code == 404  # let in: the order is unknown
    assert client.post("/v1/score", json={}, headers={CSRF_HEADER: token}).status_code == 403  # not a reviewer's


def test_a_removed_role_and_a_disabled_user_count_at_once(db_settings: Settings, clock: FixedClock) -> None:
    user(db_settings.database_url, "bob", "reviewer", "data_scientist")
    settings = db_settings.model_copy(update={"access": db_settings.access.model_copy(update={"refresh_s": 0.05})})
    with TestClient(create_app(settings, clock=clock), base_url="http://127.0.0.1") as client:
        sign_in(client, "bob")
        assert client.get("/v1/model").status_code == 200
        with OrderLog.open(settings.database_url) as log:
            Directory(log.engine).set_user("bob", roles=parse_roles(["reviewer"]), now=clock.now())
        _eventually(lambda: client.get("/v1/model").status_code == 403)
        assert client.get("/").status_code == 200  # still signed in, as a reviewer
        with OrderLog.open(settings.database_url) as log:
            Directory(log.engine).set_user("bob", enabled=False, now=clock.now())
        _eventually(lambda: client.get("/", follow_redirects=False).status_code == 303)
        assert sign_in(client, "bob").status_code == 401


def _browser(client: TestClient, *, address: str = "testclient", cookies: dict[str, str] | None = None,
             ) -> TestClient:
    """Another browser on the same running app (no second lifespan: it shares the first one's services)."""
    return TestClient(client.app, base_url="http://127.0.0.1", client=(address, 5000), cookies=cookies)


def _eventually(check: Callable[[], bool]) -> None:
    deadline = time.monotonic() + 10
    while not check():
        assert time.monotonic() < deadline, "the change did not reach the running service"
        time.sleep(0.05)
