"""Every route but health, sign-in and the docs refuses an anonymous caller (401, or a page's redirect to
sign-in) and a caller without its roles (403), by API key and by session alike, and serves one with them; a
key revoked while the service runs is refused within the refresh interval. On SQLite and PostgreSQL."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.access import Directory, Role
from orderguard.ingest.orderlog import OrderLog
from serving.api.auth import route_roles
from serving.app import create_app
from serving.web.session import CSRF_HEADER
from tests.factories import api_key, form_token, sign_in, user


def _contexts(routes: list[Any]) -> Iterator[Any]:
    """Every API route with the dependencies it runs with (FastAPI mounts included routers as contexts)."""
    for route in routes:
        if isinstance(route, APIRoute):
            yield route
        elif hasattr(route, "effective_route_contexts"):
            yield from route.effective_route_contexts()


def _routes(settings: Settings) -> list[tuple[str, str, frozenset[Role] | None]]:
    app = create_app(settings)
    return [(method, context.path, route_roles(context.dependant))
            for context in _contexts(app.routes) for method in sorted(context.methods)]


def _url(path: str) -> str:
    return path.replace("{channel}", "site").replace("{order_id}", "nope")


def _is_page(path: str) -> bool:
    return not path.startswith("/v1/")


Served = tuple[Settings, dict[Role, str], dict[Role, str]]


@pytest.fixture
def served(db_settings: Settings) -> Served:
    """Settings on each backend, an API key per role and a user per role (named after it)."""
    keys = {role: api_key(db_settings.database_url, role.value, name=role.value) for role in Role}
    users = {role: user(db_settings.database_url, role.value.replace("_", "-"), role.value) for role in Role}
    return db_settings, keys, users


def test_only_health_sign_in_and_docs_are_open(served: Served) -> None:
    settings, _, _ = served
    routes = _routes(settings)
    assert {path for _, path, _ in routes} >= {"/healthz", "/v1/score", "/v1/orders/{channel}", "/v1/labels", "/"}
    open_routes = {path for _, path, roles in routes if roles is None}
    assert open_routes == {"/healthz", "/docs", "/signin"}, open_routes


def test_every_protected_route_refuses_strangers_and_wrong_roles_and_serves_its_roles(served: Served) -> None:
    settings, keys, users = served
    routes = [(m, p, r) for m, p, r in _routes(settings) if r is not None]
    assert len(routes) >= 14
    with TestClient(create_app(settings), base_url="http://127.0.0.1") as client:
        for method, path, roles in routes:
            url = _url(path)
            anonymous = client.request(method, url, json={}, follow_redirects=False)
            if _is_page(path):  # a page sends a stranger to the sign-in page
                assert anonymous.status_code == 303, (method, path)
                assert anonymous.headers["location"].startswith("/signin?next="), (method, path)
                continue
            assert anonymous.status_code == 401, (method, path)
            assert anonymous.headers["www-authenticate"] == "Bearer"
            assert anonymous.json()["code"] == "unauthenticated" and anonymous.json()["field"] == "Authorization"
            forged = client.request(method, url, json={}, headers={"Authorization": f"Bearer {keys[Role.ADMIN]}x"})
            assert forged.status_code == 401, (method, path)
            outsiders = [r for r in Role if r not in roles and r is not Role.ADMIN]
            assert outsiders, (method, path)
            for outsider in outsiders:
                refused = client.request(method, url, json={}, headers={"Authorization": f"Bearer {keys[outsider]}"})
                assert refused.status_code == 403, (method, path, outsider)
                assert refused.json()["code"] == "forbidden"
            for insider in (*roles, Role.ADMIN):
                served_ = client.request(method, url, json={}, headers={"Authorization": f"Bearer {keys[insider]}"})
                assert served_.status_code not in (401, 403), (method, path, insider, served_.text)
    # the same walk for people: each role's user, signed in, with the session's CSRF token on changes
    for role, name in users.items():
        with TestClient(create_app(settings), base_url="http://127.0.0.1") as browser:
            assert sign_in(browser, name).status_code == 303
            token = form_token(browser.get("/").text)
            for method, path, roles in routes:
                if path == "/signout":
                    continue  # signs the browser out: checked on its own
                answer = browser.request(method, _url(path), json={}, headers={CSRF_HEADER: token},
                                         follow_redirects=False)
                expected_in = role is Role.ADMIN or role in roles
                assert (answer.status_code == 403) is not expected_in, (method, path, role, answer.text)
                assert answer.status_code != 401, (method, path, role, answer.text)
                assert not answer.headers.get("location", "").startswith("/signin"), (method, path, role)


def test_the_api_documents_its_security_scheme(served: Served) -> None:
    settings, _, _ = served
    document = create_app(settings).openapi()
    assert document["components"]["securitySchemes"]["ApiKey"] == {
        "type": "http", "scheme": "bearer",
        "description": "An API key made by `orderguard keys create --role <role> --name <what for>`."}
    assert document["components"]["securitySchemes"]["Session"]["in"] == "cookie"
    assert document["paths"]["/v1/score"]["post"]["security"] == [{"ApiKey": []}, {"Session": []}]
    assert "security" not in document["paths"]["/healthz"]["get"]


def test_a_key_revoked_while_the_service_runs_is_refused_within_the_refresh(tmp_path: Path) -> None:
    settings = Settings(data_dir=tmp_path, access={"refresh_s": 0.1})
    key = api_key(settings.database_url, "order_system")
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {key}"}) as client:
        assert client.post("/v1/score", json={}).status_code == 422  # let in (the body is bad)
        with OrderLog.open(settings.database_url) as log:
            deadline = time.monotonic() + 10
            while Directory(log.engine).api_keys()[0].last_used_at is None:  # recorded at the next refresh
                assert time.monotonic() < deadline, "the key's use was not recorded"
                time.sleep(0.05)
            Directory(log.engine).revoke_key(key.split("_")[1], now=datetime.now(UTC))
        deadline = time.monotonic() + 10
        while client.post("/v1/score", json={}).status_code != 401:
            assert time.monotonic() < deadline, "the revoked key was still accepted"
            time.sleep(0.05)


