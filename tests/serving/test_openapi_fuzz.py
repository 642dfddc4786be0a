"""The HTTP API against its own OpenAPI document: generated requests, no server error, no schema violation.

schemathesis generates requests from the published schema (valid and invalid ones) for
every route; each answer must be no 5xx and must conform to what the schema documents
(status codes, content types, response bodies). The service runs with its real order
log (SQLite) and online store, started once for the module.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, settings
from schemathesis.checks import CheckFunction, ignored_auth, negative_data_rejection, positive_data_acceptance

from features.settings import Settings
from serving.app import create_app
from tests.factories import api_key

schema = schemathesis.openapi.from_dict(create_app(Settings()).openapi())


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    """The service, with an admin key in its order log that :func:`_authorised` puts on generated requests."""
    settings = Settings(data_dir=Path(tmp_path_factory.mktemp("openapi")))
    key = api_key(settings.database_url)
    with TestClient(create_app(settings), raise_server_exceptions=False) as c:
        c.app.state.test_key = key  # type: ignore[attr-defined]
        yield c


def _authorised(request: dict[str, Any], client: TestClient) -> dict[str, Any]:
    """A generated request with a working key where schemathesis put a (random) one; a case generated without
    the header (to check that it is refused) stays without."""
    headers = request.get("headers") or {}
    if "Authorization" in headers:
        headers["Authorization"] = f"Bearer {client.app.state.test_key}"  # type: ignore[attr-defined]
    return request


#: "A schema-valid request must be accepted" cannot hold, although every channel's order
#: and after-sale schemas are published: they give each field's JSON type and which fields
#: are required, not what the parsers check beyond that (status codes from the channel's
#: tables, times that parse and lie between 2000 and an hour after receipt, amounts and
#: quantities within the ingest limits, at least one order line, bounded texts), nor a
#: label's "exactly one of ``order`` or ``order_key``". Schema-valid channel documents
#: reach the parsers and are refused there with 422 naming the field (``status`` …).
#: ``ignored_auth`` judges a 2xx answer to the random token it generated as auth ignored, not knowing that
#: :func:`_authorised` swapped in a real key; refusals of missing, unknown, revoked and wrong-role keys on
#: every route are ``test_access_api``'s.
EXCLUDED: list[CheckFunction] = [positive_data_acceptance, ignored_auth]


def answers_per_item(case: schemathesis.Case[Any]) -> bool:
    """Whether what is wrong with this request lies in the items of a batch.

    Batches answer for each item (``/v1/score/batch``: 200 with the item's error;
    ingest: 207 when other payloads are kept), so a bad item does not make the whole
    request refused.
    """
    body = case.body
    if case.operation.path == "/v1/score/batch":
        return isinstance(body, dict) and set(body) == {"items"} and isinstance(body["items"], list) \
            and bool(body["items"])
    return case.operation.path.startswith("/v1/orders/") and isinstance(body, list)


@schema.parametrize()
@settings(max_examples=80, deadline=None, suppress_health_check=list(HealthCheck))
def test_every_route_answers_as_documented(case: schemathesis.Case[Any], client: TestClient) -> None:
    request = case.as_transport_kwargs(base_url="http://testserver")
    request.pop("cookies", None)  # the API reads no cookies (and per-request cookies are deprecated)
    response = client.request(**_authorised(request, client))
    excluded = [*EXCLUDED, negative_data_rejection] if answers_per_item(case) else EXCLUDED
    case.validate_response(response, excluded_checks=excluded)
