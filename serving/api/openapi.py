"""The published OpenAPI document, with every channel's own payload schemas.

Channel payloads are validated by the channel adapters, not by FastAPI: that is what
names a bad field by its path in the channel's document (``tid``, ``orders.order.0.num``),
what lists every bad item of a batch with its position instead of refusing the whole
request, what answers an unknown channel with 404 (and takes ``" JD "`` for ``jd``),
and what decides order versus after-sale (``parse`` looks for a key such as
``refund_id``). Declaring the channel models as the routes' body types would move that
validation into FastAPI and change which requests are accepted and how their errors
read, so the routes keep their loose body types (``dict | list``,
``ScoreRequest.channel: str``, ``ScoreRequest.payload: dict``) and only the document is
refined. ``openapi_extra`` cannot do it: it cannot add components and it is merged into
the generated body schema instead of replacing it. Hence a custom ``app.openapi`` that
builds the default document with ``get_openapi`` and then

* adds the JSON schemas pydantic generates from the channel models to
  ``components.schemas`` (never written by hand, so they follow the models);
* gives each channel's ingest operation (``/v1/orders/tmall`` …) the request body
  ``oneOf: [order document, after-sale document, array of either]``;
* publishes ``ScoreRequest`` as a ``oneOf`` discriminated by ``channel``, one variant
  per channel whose ``payload`` is that channel's order or after-sale document.

The order variant excludes the key that makes ``parse`` read a document as an
after-sale, so the two variants never overlap and the schema dispatches as the parser does.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel
from pydantic.json_schema import JsonSchemaValue, models_json_schema

from orderguard.ingest.channels import ADAPTERS, douyin, jd, kuaishou, site, tmall, wechat
from orderguard.schema import Channel
from serving.api.ingest import channel_path

__all__ = ["CHANNEL_DOCUMENTS", "ChannelDocuments", "install_openapi", "publish_channel_schemas"]

_REF = "#/components/schemas/{model}"
_JSON = "application/json"


@dataclass(frozen=True, slots=True)
class ChannelDocuments:
    """A channel's two document models, told apart the way its adapter's ``parse`` does.

    Attributes:
        order: the model ``parse`` validates an order document with.
        after_sale: the model of the after-sale (refund) document.
        after_sale_key: the key whose presence makes ``parse`` read a document as an
            after-sale; ``None`` when a field value decides and the two models already
            exclude each other (site's ``type``).
    """

    order: type[BaseModel]
    after_sale: type[BaseModel]
    after_sale_key: str | None


#: Every channel's documents, as its module's ``parse`` dispatches them.
CHANNEL_DOCUMENTS: Mapping[Channel, ChannelDocuments] = MappingProxyType({
    tmall.CHANNEL: ChannelDocuments(tmall.TmallTrade, tmall.TmallRefund, "refund_id"),
    jd.CHANNEL: ChannelDocuments(jd.JdOrder, jd.JdRefundApply, "applyRefundSum"),
    douyin.CHANNEL: ChannelDocuments(douyin.DouyinOrder, douyin.DouyinAfterSale, "process_info"),
    kuaishou.CHANNEL: ChannelDocuments(kuaishou.KsOrder, kuaishou.KsRefund, "refundId"),
    wechat.CHANNEL: ChannelDocuments(wechat.WxOrder, wechat.WxAfterSale, "after_sale_order_id"),
    site.CHANNEL: ChannelDocuments(site.SiteOrder, site.SiteAfterSale, None),
})


def install_openapi(app: FastAPI) -> None:
    """Make ``app.openapi()`` (and ``/openapi.json``) serve the document with the channel schemas."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            app.openapi_schema = publish_channel_schemas(_default_document(app))
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def _default_document(app: FastAPI) -> dict[str, Any]:
    """The document FastAPI itself would publish for ``app``."""
    return get_openapi(
        title=app.title, version=app.version, openapi_version=app.openapi_version, summary=app.summary,
        description=app.description, terms_of_service=app.terms_of_service, contact=app.contact,
        license_info=app.license_info, routes=app.routes, webhooks=app.webhooks.routes, tags=app.openapi_tags,
        servers=app.servers, separate_input_output_schemas=app.separate_input_output_schemas,
        external_docs=app.openapi_external_docs)


def publish_channel_schemas(document: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``document`` with the channel schemas in place (see the module docstring).

    Raises:
        ValueError: a generated component would replace a different one of the same name,
            or the document lacks a channel's ingest operation or ``ScoreRequest``.
    """
    if set(CHANNEL_DOCUMENTS) != set(ADAPTERS):
        raise ValueError("CHANNEL_DOCUMENTS must list exactly the registered channels")
    out = copy.deepcopy(dict(document))
    components: dict[str, Any] = out.setdefault("components", {}).setdefault("schemas", {})
    refs = _add_models(components)
    for channel, docs in CHANNEL_DOCUMENTS.items():
        _add(components, _document_name(channel), _document_schema(channel, docs, refs))
        _set_ingest_body(out, channel, docs, refs)
    _publish_score_request(components)
    return out


def _add_models(components: dict[str, Any]) -> dict[type[BaseModel], JsonSchemaValue]:
    """Add every channel model's schema (nested models included) and return each model's ``$ref``."""
    models = [model for docs in CHANNEL_DOCUMENTS.values() for model in (docs.order, docs.after_sale)]
    refs, schema = models_json_schema([(model, "validation") for model in models], ref_template=_REF)
    for name, definition in schema.get("$defs", {}).items():
        _add(components, name, definition)
    return {model: refs[(model, "validation")] for model in models}


def _add(components: dict[str, Any], name: str, schema: JsonSchemaValue) -> None:
    """Add one component, refusing to overwrite a different one of the same name."""
    if components.get(name, schema) != schema:
        raise ValueError(f"component schema {name!r} is already published with a different definition")
    components[name] = schema


def _title(channel: Channel) -> str:
    """``Channel.JD`` → ``"Jd"``: the prefix of the names given to one channel's components."""
    return channel.value.capitalize()


def _document_name(channel: Channel) -> str:
    return f"{_title(channel)}Document"


def _ref(name: str) -> JsonSchemaValue:
    return {"$ref": _REF.format(model=name)}


def _variants(docs: ChannelDocuments, refs: Mapping[type[BaseModel], JsonSchemaValue]) -> list[JsonSchemaValue]:
    """``[order document, after-sale document]``, mutually exclusive as ``parse`` reads them."""
    order = dict(refs[docs.order])
    if docs.after_sale_key is not None:
        order = {"allOf": [order], "not": {"required": [docs.after_sale_key]}}
    return [order, dict(refs[docs.after_sale])]


def _document_schema(channel: Channel, docs: ChannelDocuments,
                     refs: Mapping[type[BaseModel], JsonSchemaValue]) -> JsonSchemaValue:
    """One document of ``channel``: its order document or its after-sale document."""
    how = (f"a document carrying `{docs.after_sale_key}` is read as an after-sale" if docs.after_sale_key
           else "the two models exclude each other")
    return {"title": _document_name(channel), "oneOf": _variants(docs, refs),
            "description": f"A {channel.value} order document ({docs.order.__name__}) or after-sale document "
                           f"({docs.after_sale.__name__}); {how}."}


def _set_ingest_body(document: dict[str, Any], channel: Channel, docs: ChannelDocuments,
                     refs: Mapping[type[BaseModel], JsonSchemaValue]) -> None:
    """The channel's ingest body: one of its documents, or an array of them."""
    path = channel_path(channel)
    try:
        media = document["paths"][path]["post"]["requestBody"]["content"][_JSON]
    except KeyError as e:
        raise ValueError(f"the document has no POST {path} with a JSON body") from e
    generated = media["schema"]
    media["schema"] = {
        "title": generated.get("title", "Payload"), "description": generated.get("description", ""),
        "oneOf": [*_variants(docs, refs), {"type": "array", "items": _ref(_document_name(channel))}],
    }


def _publish_score_request(components: dict[str, Any]) -> None:
    """``ScoreRequest`` as one variant per channel, discriminated by ``channel``."""
    generated = components.get("ScoreRequest")
    if generated is None:
        raise ValueError("the document has no ScoreRequest component")
    mapping: dict[str, str] = {}
    for channel in CHANNEL_DOCUMENTS:
        name = f"ScoreRequest{_title(channel)}"
        _add(components, name, _score_variant(generated, channel, name))
        mapping[channel.value] = _REF.format(model=name)
    components["ScoreRequest"] = {
        "title": generated["title"], "description": generated.get("description", ""),
        "oneOf": [{"$ref": ref} for ref in mapping.values()],
        "discriminator": {"propertyName": "channel", "mapping": mapping},
    }


def _score_variant(generated: JsonSchemaValue, channel: Channel, name: str) -> JsonSchemaValue:
    """The generated ``ScoreRequest`` narrowed to one channel and that channel's documents."""
    variant = copy.deepcopy(generated)
    properties = variant["properties"]
    properties["channel"] = {"type": "string", "enum": [channel.value], "title": "Channel"}
    properties["payload"] = _ref(_document_name(channel))
    variant["title"] = name
    variant["description"] = f"A {channel.value} order or after-sale document to score."
    return variant
