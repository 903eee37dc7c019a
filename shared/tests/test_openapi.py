"""The OpenAPI 3.1 document: generated from the route table, every route, resolvable schemas, gRPC links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from pydantic import BaseModel, Field

from photoncloud.common.models import Body, Query, Result
from photoncloud.common.openapi import openapi_document
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service

HTTP_METHODS = {"get", "put", "post", "delete", "options", "head", "patch", "trace"}


class Limits(BaseModel):
    """Nested model, to make the schema need $defs."""

    cpu: int = Field(ge=1)
    memory_mib: int


class CreateThing(Body):
    """A new thing."""

    name: str
    limits: Limits


class ThingOut(Result):
    """A thing."""

    id: str
    name: str
    limits: Limits


class ListThings(Query):
    """Listing options."""

    page_size: int = Field(0, description="things per page")
    page_token: str = ""


class PutValue(Body):
    """A value."""

    value: str


def build_routes() -> RouteTable:
    routes = RouteTable()

    @routes.get("/api/v1/things/{thing_id}", "Get a thing", response=ThingOut, rpc="test.v1.Things/GetThing")
    async def get_thing(request, thing_id): ...

    @routes.post("/api/v1/things", "Create a thing", body=CreateThing, response=ThingOut, status=201,
                 rpc="test.v1.Things/CreateThing")
    async def create_thing(request, body): ...

    @routes.get("/api/v1/things", "List things", query=ListThings)
    async def list_things(request, query): ...

    @routes.delete("/api/v1/things/{thing_id}", "Delete a thing", status=204)
    async def delete_thing(request, thing_id): ...

    @routes.put("/api/v1/kv/{key:.+}", "Put a key", body=PutValue, rpc="test.v1.KV/Put")
    async def put_key(request, key, body): ...

    @routes.post("/api/v1/kv/{key:.+}/put", "Put a key, the odd way", body=PutValue)
    async def put_key_odd(request, key, body): ...

    return routes


# (method, path as declared, path as OpenAPI writes it, path parameters, rpc)
DECLARED = [
    ("get", "/api/v1/things/{thing_id}", "/api/v1/things/{thing_id}", ["thing_id"], "test.v1.Things/GetThing"),
    ("post", "/api/v1/things", "/api/v1/things", [], "test.v1.Things/CreateThing"),
    ("get", "/api/v1/things", "/api/v1/things", [], None),
    ("delete", "/api/v1/things/{thing_id}", "/api/v1/things/{thing_id}", ["thing_id"], None),
    ("put", "/api/v1/kv/{key:.+}", "/api/v1/kv/{key}", ["key"], "test.v1.KV/Put"),
    ("post", "/api/v1/kv/{key:.+}/put", "/api/v1/kv/{key}/put", ["key"], None),
]


@pytest.fixture
async def served(start, http) -> dict[str, Any]:
    server = await start(Service("things", "2.3.4", build_routes(), []))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/openapi.json") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        return await resp.json()


def resolve(document: dict[str, Any], ref: str) -> Any:
    assert ref.startswith("#/"), ref
    node: Any = document
    for part in ref[2:].split("/"):
        part = part.replace("~1", "/").replace("~0", "~")
        assert isinstance(node, dict) and part in node, f"unresolvable {ref}"
        node = node[part]
    return node


def refs_in(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in refs_in(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in refs_in(value)]
    return []


def operations(document: dict[str, Any]):
    for path, item in document["paths"].items():
        for method, operation in item.items():
            if method in HTTP_METHODS:
                yield path, method, operation


def test_document_has_the_openapi_31_shape(served):
    assert re.fullmatch(r"3\.1\.\d+", served["openapi"])
    assert isinstance(served["info"]["title"], str) and served["info"]["title"]
    assert served["info"]["version"] == "2.3.4"
    assert isinstance(served["paths"], dict)
    assert isinstance(served["components"]["schemas"], dict)
    for path, method, operation in operations(served):
        assert path.startswith("/")
        assert operation["responses"], (method, path)
        for status in operation["responses"]:
            assert status == "default" or re.fullmatch(r"[1-5]\d\d", status)
        for parameter in operation.get("parameters", []):
            assert parameter["in"] in {"path", "query", "header", "cookie"}
            assert "schema" in parameter
            if parameter["in"] == "path":
                assert parameter["required"] is True


def test_operation_ids_are_unique(served):
    ids = [operation["operationId"] for _, _, operation in operations(served) if "operationId" in operation]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize(("method", "declared", "path", "params", "rpc"), DECLARED)
def test_every_declared_route_is_documented(served, method, declared, path, params, rpc):
    assert path in served["paths"], sorted(served["paths"])
    operation = served["paths"][path][method]
    path_params = [p["name"] for p in operation.get("parameters", []) if p["in"] == "path"]
    assert path_params == params
    # every {name} in the path is declared as a path parameter, and nothing else
    assert re.findall(r"\{([^}]*)\}", path) == params
    assert operation.get("x-grpc-method") == rpc


def test_no_routing_regex_leaks_into_paths(served):
    for path in served["paths"]:
        assert ":" not in path and ".+" not in path, path


def test_operations_routes_are_documented(served):
    for path in ("/health", "/metrics", "/api/v1/openapi.json"):
        assert "get" in served["paths"][path]


def test_the_document_lists_exactly_the_routes(served):
    documented = {(method, path) for path, method, _ in operations(served)}
    expected = {(method, path) for method, _, path, _, _ in DECLARED}
    expected |= {("get", "/health"), ("get", "/metrics"), ("get", "/api/v1/openapi.json")}
    assert documented == expected


def test_every_ref_resolves(served):
    found = refs_in(served)
    assert found
    for ref in found:
        resolve(served, ref)


@pytest.mark.parametrize(("method", "path", "model"), [
    ("post", "/api/v1/things", CreateThing),
    ("put", "/api/v1/kv/{key}", PutValue),
    ("post", "/api/v1/kv/{key}/put", PutValue),
])
def test_request_body_schema_is_the_body_model(served, method, path, model):
    body = served["paths"][path][method]["requestBody"]
    schema = body["content"]["application/json"]["schema"]
    resolved = resolve(served, schema["$ref"]) if "$ref" in schema else schema
    assert set(resolved["properties"]) == set(model.model_fields)
    assert set(resolved.get("required", [])) == {n for n, f in model.model_fields.items() if f.is_required()}
    # Body models refuse unknown fields, and say so
    assert resolved.get("additionalProperties") is False


def test_nested_models_resolve(served):
    schema = served["paths"]["/api/v1/things"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    thing = resolve(served, schema["$ref"]) if "$ref" in schema else schema
    limits = thing["properties"]["limits"]
    limits = resolve(served, limits["$ref"]) if "$ref" in limits else limits
    assert set(limits["properties"]) == {"cpu", "memory_mib"}


def test_routes_without_a_body_have_no_request_body(served):
    assert "requestBody" not in served["paths"]["/api/v1/things/{thing_id}"]["get"]
    assert "requestBody" not in served["paths"]["/api/v1/things"]["get"]


def test_query_model_becomes_query_parameters(served):
    parameters = served["paths"]["/api/v1/things"]["get"]["parameters"]
    query = {p["name"]: p for p in parameters if p["in"] == "query"}
    assert set(query) == {"page_size", "page_token"}
    assert query["page_size"]["required"] is False


def test_success_response_is_the_envelope_around_the_result(served):
    responses = served["paths"]["/api/v1/things"]["post"]["responses"]
    assert "201" in responses
    schema = responses["201"]["content"]["application/json"]["schema"]
    if "$ref" in schema:
        schema = resolve(served, schema["$ref"])
    assert {"data", "meta"} <= set(schema["properties"])
    data = schema["properties"]["data"]
    data = resolve(served, data["$ref"]) if "$ref" in data else data
    assert set(data["properties"]) == set(ThingOut.model_fields)
    assert "204" in served["paths"]["/api/v1/things/{thing_id}"]["delete"]["responses"]


def test_error_response_is_the_error_envelope(served):
    for _, _, operation in operations(served):
        errors = [r for status, r in operation["responses"].items() if status == "default" or status[0] in "45"]
        assert errors
        for response in errors:
            schema = response["content"]["application/json"]["schema"]
            schema = resolve(served, schema["$ref"]) if "$ref" in schema else schema
            error = schema["properties"]["error"]
            error = resolve(served, error["$ref"]) if "$ref" in error else error
            assert {"code", "message", "details"} <= set(error["properties"])
            assert "NOT_FOUND" in error["properties"]["code"]["enum"]


def test_generated_from_the_table_without_a_server():
    routes = build_routes()
    document = openapi_document("things REST API", "0.0.1", routes)
    assert document["info"]["version"] == "0.0.1"
    assert {(m, p) for p, m, _ in operations(document)} == {(m, p) for m, _, p, _, _ in DECLARED}
    for ref in refs_in(document):
        resolve(document, ref)
