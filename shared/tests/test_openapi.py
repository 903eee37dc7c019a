"""The OpenAPI 3.1 document: generated from the route table, every route, resolvable schemas, gRPC links."""

from __future__ import annotations

import re
from typing import Any

import pytest
from openapi_spec_validator import validate
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


OPERATIONS_ROUTES = {("get", "/health"), ("get", "/metrics"), ("get", "/api/v1/openapi.json"), ("get", "/docs"),
                     ("get", "/docs/static/{name}")}


def test_operations_routes_are_documented_as_public(served):
    for method, path in OPERATIONS_ROUTES:
        assert served["paths"][path][method]["security"] == []
        assert served["paths"][path][method]["x-who"] == "public"


def test_the_document_lists_exactly_the_routes(served):
    documented = {(method, path) for path, method, _ in operations(served)}
    expected = {(method, path) for method, _, path, _, _ in DECLARED}
    assert documented == expected | OPERATIONS_ROUTES


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


# --- what the routes really answer ------------------------------------------------------------------


def test_the_served_document_is_valid_openapi_31(served):
    validate(served)  # raises on any violation of the OpenAPI 3.1 schema


def success_media_types(operation: dict[str, Any]) -> set[str]:
    success = [r for status, r in operation["responses"].items() if status.startswith("2")]
    assert len(success) == 1, operation["responses"]
    return set(success[0].get("content", {}))


@pytest.mark.parametrize(("path", "media_type"), [
    ("/metrics", "text/plain"),
    ("/docs", "text/html"),
    ("/health", "application/json"),
    ("/api/v1/openapi.json", "application/json"),
])
async def test_operations_routes_declare_the_media_type_they_answer(start, http, served, path, media_type):
    declared = success_media_types(served["paths"][path]["get"])
    assert [t.split(";")[0] for t in declared] == [media_type]
    server = await start(Service("things", "2.3.4", build_routes(), []))
    async with http.get(f"http://127.0.0.1:{server.rest_port}{path}") as resp:
        assert resp.status == 200
        assert resp.headers["Content-Type"].split(";")[0] == media_type
        if media_type == "text/plain":  # Prometheus' own content type, its version included
            assert declared == {resp.headers["Content-Type"]}


def test_the_explorer_files_declare_their_media_types(served):
    declared = success_media_types(served["paths"]["/docs/static/{name}"]["get"])
    assert {"text/css", "image/png"} <= declared
    assert declared & {"text/javascript", "application/javascript"}


def raw_routes() -> RouteTable:
    routes = RouteTable()

    @routes.get("/api/v1/watch", "Watch: server-sent events", raw=True, rpc="test.v1.Stream/Watch")
    async def watch(request): ...

    @routes.get("/api/v1/backup", "A file", raw=True, content_types=("application/vnd.sqlite3",))
    async def backup(request): ...

    @routes.get("/api/v1/own", "The handler's own body", raw=True, rpc="test.v1.Stream/Get")
    async def own(request): ...

    return routes


@pytest.fixture
def streaming_contract():
    """test.v1.Stream in the default descriptor pool: Watch streams its replies, Get answers one."""
    from google.protobuf import descriptor_pb2, descriptor_pool
    from google.protobuf.descriptor_pb2 import FieldDescriptorProto

    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName("test.v1.Stream")
        return
    except KeyError:
        pass
    proto = descriptor_pb2.FileDescriptorProto(name="test/v1/stream_openapi.proto", package="test.v1", syntax="proto3")
    message = proto.message_type.add(name="StreamMessage")
    message.field.add(name="key", number=1, type=FieldDescriptorProto.TYPE_STRING,
                      label=FieldDescriptorProto.LABEL_OPTIONAL)
    service = proto.service.add(name="Stream")
    service.method.add(name="Watch", input_type=".test.v1.StreamMessage", output_type=".test.v1.StreamMessage",
                       server_streaming=True)
    service.method.add(name="Get", input_type=".test.v1.StreamMessage", output_type=".test.v1.StreamMessage")
    pool.Add(proto)


def test_a_raw_route_of_a_streaming_rpc_is_an_event_stream(streaming_contract):
    document = openapi_document("raw", "1", raw_routes())
    validate(document)
    paths = document["paths"]
    assert success_media_types(paths["/api/v1/watch"]["get"]) == {"text/event-stream"}
    assert success_media_types(paths["/api/v1/backup"]["get"]) == {"application/vnd.sqlite3"}
    # A raw route declaring nothing, of a unary RPC: no media type is claimed for it.
    assert success_media_types(paths["/api/v1/own"]["get"]) == set()


class Options(Body):
    """Only optional fields."""

    force: bool = False


def test_a_body_is_required_only_when_a_field_of_it_is():
    routes = RouteTable()

    @routes.post("/api/v1/things", "Create a thing", body=CreateThing)
    async def create(request, body): ...

    @routes.delete("/api/v1/things/{thing_id}", "Delete a thing", body=Options)
    async def delete(request, thing_id, body): ...

    document = openapi_document("bodies", "1", routes)
    validate(document)
    assert document["paths"]["/api/v1/things"]["post"]["requestBody"]["required"] is True
    assert document["paths"]["/api/v1/things/{thing_id}"]["delete"]["requestBody"]["required"] is False


def test_handlers_of_one_name_in_two_services_get_distinct_operation_ids():
    routes = RouteTable()

    async def get(request, **path): ...  # the gateway names the handlers of both RPCs `get`

    routes.get("/api/v1/kv/{key}", "Get a key", rpc="test.v1.KV/Get")(get)
    routes.get("/api/v1/leases/{id}", "Get a lease", rpc="test.v1.LeaseGrants/Get")(get)

    @routes.get("/api/v1/health-of-things", "Unique")
    async def unique(request): ...

    document = openapi_document("ids", "1", routes)
    ids = {path: item["get"]["operationId"] for path, item in document["paths"].items()}
    assert ids == {"/api/v1/kv/{key}": "kv_get", "/api/v1/leases/{id}": "lease_grants_get",
                   "/api/v1/health-of-things": "unique"}
    validate(document)
