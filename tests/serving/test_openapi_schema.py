"""The published OpenAPI document describes each channel's real documents.

The channels' literal platform samples (``tests/contracts/samples``) must validate
against the request body of their channel's ingest operation and against
``ScoreRequest``, each against exactly the variant (order or after-sale) its adapter
reads it as; a document missing a required field, or another channel's document, must
not. The generic ``/v1/orders/{channel}`` route is hidden from the document but still
answers any spelling of a channel, and 404 in the usual error shape for an unknown one.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from fastapi.testclient import TestClient
from jsonschema_rs import Draft202012Validator
from schemathesis.core.result import Ok

from features.settings import Settings
from orderguard.errors import InvalidInputError
from orderguard.ingest.channels import ADAPTERS
from orderguard.ingest.channels.kit import DocumentAdapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.schema import Channel, EventKind
from serving.api.ingest import channel_path
from serving.api.openapi import CHANNEL_DOCUMENTS
from serving.app import create_app
from tests.factories import api_client

SAMPLES_DIR = Path(__file__).parents[1] / "contracts" / "samples"
CHANNELS = list(ADAPTERS)
KINDS = {EventKind.ORDER: "order", EventKind.AFTER_SALE: "after_sale"}
DOCUMENT = create_app(Settings()).openapi()
SCHEMAS: dict[str, Any] = DOCUMENT["components"]["schemas"]


def sample(channel: Channel, kind: EventKind) -> dict[str, Any]:
    """A channel's literal platform document of one kind."""
    loaded: dict[str, Any] = json.loads((SAMPLES_DIR / f"{channel.value}_{KINDS[kind]}.json").read_text("utf-8"))
    return loaded


def validator(schema: dict[str, Any]) -> Draft202012Validator:
    """A JSON Schema 2020-12 validator of ``schema`` whose ``#/components/schemas/…`` references resolve in
    the document (``jsonschema_rs``: typed, and the validator schemathesis itself uses)."""
    return Draft202012Validator({"components": DOCUMENT["components"], **schema})


def ingest_body(channel: Channel) -> Draft202012Validator:
    operation = DOCUMENT["paths"][channel_path(channel)]["post"]
    return validator(operation["requestBody"]["content"]["application/json"]["schema"])


def component(name: str) -> Draft202012Validator:
    return validator({"$ref": f"#/components/schemas/{name}"})


def parsed_kind(channel: Channel, document: dict[str, Any]) -> EventKind:
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"test-key"))
    return ADAPTERS[channel].parse(document, ctx=ctx).kind


def without(document: dict[str, Any], dotted: str) -> dict[str, Any]:
    """A copy of ``document`` without the field at a dotted path (``orders.order.0.oid``)."""
    out = copy.deepcopy(document)
    *parents, last = dotted.split(".")
    node: Any = out
    for part in parents:
        node = node[int(part)] if isinstance(node, list) else node[part]
    del node[last]
    return out


def required_paths(channel: Channel, kind: EventKind) -> list[str]:
    """Every required field of a document: the adapter's list for orders, the model's top level for both."""
    docs = CHANNEL_DOCUMENTS[channel]
    model = docs.order if kind is EventKind.ORDER else docs.after_sale
    top = list(SCHEMAS[model.__name__]["required"])
    adapter = ADAPTERS[channel]
    assert isinstance(adapter, DocumentAdapter)
    nested = list(adapter.required_fields) if kind is EventKind.ORDER else []
    return sorted(set(top) | set(nested))


def test_the_document_loads_as_openapi_3_1_and_every_operation_resolves() -> None:
    assert DOCUMENT["openapi"].startswith("3.1")
    loaded = schemathesis.openapi.from_dict(DOCUMENT)
    results = list(loaded.get_all_operations())
    assert all(isinstance(result, Ok) for result in results)
    paths = {result.ok().path for result in results if isinstance(result, Ok)}
    assert {channel_path(c) for c in CHANNELS} <= paths


def test_every_channel_has_its_own_documented_ingest_operation() -> None:
    assert set(CHANNEL_DOCUMENTS) == set(ADAPTERS)
    assert "/v1/orders/{channel}" not in DOCUMENT["paths"]
    for channel in CHANNELS:
        operation = DOCUMENT["paths"][channel_path(channel)]["post"]
        assert {"200", "207", "404", "422"} <= set(operation["responses"])
        assert [p["name"] for p in operation["parameters"]] == ["atomic"]
        assert len(operation["requestBody"]["content"]["application/json"]["schema"]["oneOf"]) == 3


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_channel_sample_fits_its_operation_as_the_variant_its_adapter_reads(channel: Channel,
                                                                               kind: EventKind) -> None:
    document = sample(channel, kind)
    assert parsed_kind(channel, document) is kind
    body = ingest_body(channel)
    assert not list(body.iter_errors(document))
    assert body.is_valid([document, document])
    variants = DOCUMENT["paths"][channel_path(channel)]["post"]["requestBody"]["content"]["application/json"][
        "schema"]["oneOf"]
    fits = [i for i, variant in enumerate(variants) if validator(variant).is_valid(document)]
    assert fits == [0 if kind is EventKind.ORDER else 1]


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_sample_fits_score_request_under_its_channel_only(channel: Channel, kind: EventKind) -> None:
    document = sample(channel, kind)
    score_request = component("ScoreRequest")
    assert score_request.is_valid({"channel": channel.value, "payload": document})
    assert component("ScoreBatchRequest").is_valid({"items": [{"channel": channel.value, "payload": document}]})
    for other in CHANNELS:
        if other is not channel:
            assert not score_request.is_valid({"channel": other.value, "payload": document}), other
            assert not ingest_body(other).is_valid(document), other


@pytest.mark.parametrize("kind", list(KINDS))
@pytest.mark.parametrize("channel", CHANNELS)
def test_a_sample_missing_a_required_field_fits_no_schema(channel: Channel, kind: EventKind) -> None:
    document = sample(channel, kind)
    body = ingest_body(channel)
    score_request = component("ScoreRequest")
    paths = required_paths(channel, kind)
    assert paths
    for path in paths:
        broken = without(document, path)
        assert not body.is_valid(broken), path
        assert not body.is_valid([document, broken]), path
        assert not score_request.is_valid({"channel": channel.value, "payload": broken}), path


@pytest.mark.parametrize("channel", [c for c in CHANNELS if CHANNEL_DOCUMENTS[c].after_sale_key])
def test_an_order_carrying_the_after_sale_key_fits_no_schema_as_its_adapter_refuses_it(channel: Channel) -> None:
    key = CHANNEL_DOCUMENTS[channel].after_sale_key
    assert key is not None
    document = {**sample(channel, EventKind.ORDER), key: "1"}
    assert not ingest_body(channel).is_valid(document)
    with pytest.raises(InvalidInputError):
        parsed_kind(channel, document)


@pytest.fixture
def client(settings: Settings) -> Iterator[TestClient]:
    with api_client(settings) as c:
        yield c


@pytest.mark.parametrize("path", ["/v1/orders/unknown", "/v1/orders/taobao"])
def test_an_unknown_channel_is_still_a_404_in_the_error_shape(client: TestClient, path: str) -> None:
    response = client.post(path, json=sample(Channel.JD, EventKind.ORDER))
    assert response.status_code == 404, response.text
    body = response.json()
    assert set(body) == {"code", "message", "field"}
    assert body["field"] == "channel"


def test_the_hidden_generic_route_still_takes_any_spelling_of_a_channel(client: TestClient) -> None:
    response = client.post("/v1/orders/JD", json=sample(Channel.JD, EventKind.ORDER))
    assert response.status_code == 200, response.text
    assert response.json()["channel"] == "jd"
    again = client.post(channel_path(Channel.JD), json=[sample(Channel.JD, EventKind.ORDER)], params={"atomic": True})
    assert again.status_code == 200, again.text
    assert again.json()["items"][0]["outcome"] == "duplicate"
