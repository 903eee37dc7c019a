"""The OpenAPI 3.1 document of a service, generated from its route table: the descriptors of the RPCs
its routes run, or the pydantic models of hand-written routes."""

from __future__ import annotations

import re
from collections import Counter
from typing import Any

from google.protobuf import descriptor_pool
from pydantic import BaseModel
from pydantic.json_schema import models_json_schema

from . import protojson, sse
from .errors import Code
from .rest import Route, RouteTable

_PARAM = re.compile(r"\{(\w+)(?::[^}]*)?\}")
_REF = "#/components/schemas/{model}"

_META = {
    "type": "object",
    "properties": {
        "request_id": {"type": "string"},
        "timestamp": {"type": "string", "format": "date-time"},
    },
    "required": ["request_id", "timestamp"],
}
_ERROR = {
    "type": "object",
    "properties": {
        "error": {
            "type": "object",
            "properties": {
                "code": {"type": "string", "enum": [code.name for code in Code]},
                "message": {"type": "string"},
                "details": {"anyOf": [{"type": "object"}, {"type": "null"}]},
            },
            "required": ["code", "message", "details"],
        },
        "meta": {"$ref": "#/components/schemas/Meta"},
    },
    "required": ["error", "meta"],
}


def _envelope(data_schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "object",
        "properties": {"data": data_schema, "meta": {"$ref": "#/components/schemas/Meta"}},
        "required": ["data", "meta"],
    }


def _query_parameters(model: type[BaseModel], defs: dict[str, Any]) -> list[dict[str, Any]]:
    schema = model.model_json_schema(ref_template=_REF)
    defs.update(schema.pop("$defs", {}))
    required = set(schema.get("required", []))
    return [
        {"name": name, "in": "query", "required": name in required, "schema": prop,
         "description": prop.get("description", "")}
        for name, prop in schema.get("properties", {}).items()
    ]


def _from_binding(binding: Any, parameters: list[dict[str, Any]],
                  schemas: dict[str, Any]) -> tuple[dict[str, Any] | None, bool, dict[str, Any]]:
    """The request body's schema, whether a body must be sent, and the response's schema of a route
    made from an RPC (gateway.Binding), its path parameters typed and its query parameters added to
    parameters."""
    request = binding.method.input_type
    for parameter in parameters:
        field = request.fields_by_name.get(parameter["name"])
        if field is not None:
            parameter["schema"] = protojson.field_schema(field, schemas)
    body: dict[str, Any] | None = None
    required = False
    if binding.body == "*":
        body = protojson.message_schema(request, schemas, exclude=frozenset(binding.path_fields), inline=True)
        # The gateway reads a missing body as {}: one is needed only when a field of it is (k8shost's
        # DELETEs bind `body: "*"` for their options, and are sent without one).
        required = bool(body.get("required"))
    elif binding.body:
        body = protojson.field_schema(request.fields_by_name[binding.body], schemas)
        required = protojson.is_required(request.fields_by_name[binding.body])
    if binding.body != "*":
        parameters += [
            {"name": f.name, "in": "query", "required": protojson.is_required(f),
             "schema": protojson.field_schema(f, schemas)}
            for f in request.fields
            if f.name not in binding.path_fields and f.name != binding.body and f.message_type is None
        ]
    return body, required, protojson.message_schema(binding.method.output_type, schemas)


def _streams(rpc: str | None) -> bool:
    """Whether rpc ("package.Service/Method") is a server stream, which REST serves as server-sent events."""
    if not rpc:
        return False
    service, _, name = rpc.partition("/")
    try:
        method = descriptor_pool.Default().FindServiceByName(service).methods_by_name[name]
    except KeyError:  # a route naming an RPC of no imported contract (tests)
        return False
    return bool(method.server_streaming)


def _media_schema(media_type: str) -> dict[str, Any]:
    if media_type == "application/json":
        return {"type": "object"}
    if media_type == sse.CONTENT_TYPE:
        return {"type": "string", "description": "server-sent events: `event:` and `data:` (JSON) lines"}
    return {"type": "string"}


def _raw_success(route: Route) -> dict[str, Any]:
    """The success response of a route whose handler writes its own body (metrics text, a page, an
    event stream, a file): of the media types it declares, not an envelope."""
    media_types = route.content_types or ((sse.CONTENT_TYPE,) if _streams(route.rpc) else ())
    if not media_types:
        return {"description": "success: the body is the handler's own, not an envelope"}
    return {"description": "success: the body is the handler's own, not an envelope",
            "content": {media_type: {"schema": _media_schema(media_type)} for media_type in media_types}}


def _operation_id(route: Route, names: Counter[str]) -> str:
    """The route's handler's name, with its RPC's service before it when another route has that name
    too (ChainFire's KV and Lease both have `get`): operation IDs are unique in a document."""
    name = route.handler.__name__
    if names[name] > 1 and route.rpc:
        service = route.rpc.split("/")[0].rsplit(".", 1)[-1]
        return re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", service).lower() + "_" + name
    return name


def openapi_document(title: str, version: str, routes: RouteTable) -> dict[str, Any]:
    """The OpenAPI document describing every route in routes."""
    models = {m for r in routes.routes for m in (r.body, r.response) if m is not None}
    refs, top = models_json_schema(
        [(m, "validation") for m in sorted(models, key=lambda m: m.__name__)], ref_template=_REF
    )
    schemas: dict[str, Any] = {"Meta": _META, "Error": _ERROR, **top.get("$defs", {})}
    paths: dict[str, dict[str, Any]] = {}
    names = Counter(route.handler.__name__ for route in routes.routes)
    for route in routes.routes:
        path = _PARAM.sub(r"{\1}", route.path)
        parameters = [
            {"name": name, "in": "path", "required": True, "schema": {"type": "string"}}
            for name in _PARAM.findall(route.path)
        ]
        if route.query is not None:
            parameters += _query_parameters(route.query, schemas)
        data = refs[(route.response, "validation")] if route.response is not None else {}
        body = refs[(route.body, "validation")] if route.body is not None else None
        # read_json reads a missing body as {}: one is needed only when the model requires a field.
        body_required = route.body is not None and any(f.is_required() for f in route.body.model_fields.values())
        if route.binding is not None:
            body, body_required, data = _from_binding(route.binding, parameters, schemas)
        success: dict[str, Any] = {
            "description": "success",
            "content": {"application/json": {"schema": _envelope(data)}},
        }
        if route.raw and route.response is None:
            success = _raw_success(route)
        operation: dict[str, Any] = {
            "summary": route.summary,
            "operationId": _operation_id(route, names),
            "parameters": parameters,
            "responses": {
                str(route.status): success,
                "default": {
                    "description": "error",
                    "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
                },
            },
        }
        if route.rpc:
            operation["x-grpc-method"] = route.rpc
        operation["security"] = [] if route.public else [{"bearer": []}]
        if route.who:
            operation["x-who"] = route.who  # public, tenant or operator (see photoncloud.common.auth)
        if route.permission:
            operation["x-permission"] = route.permission
        if body is not None:
            operation["requestBody"] = {"required": body_required,
                                        "content": {"application/json": {"schema": body}}}
        paths.setdefault(path, {})[route.method.lower()] = operation
    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {
            "schemas": schemas,
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}},
        },
    }
