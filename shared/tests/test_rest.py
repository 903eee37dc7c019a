"""The REST adapter: declared routes and models, and every failure mapped to the error envelope."""

from __future__ import annotations

import json

import pytest
from aiohttp import web
from prometheus_client.parser import text_string_to_metric_families
from pydantic import Field

from photoncloud.common import envelope, errors, paging, rest
from photoncloud.common.errors import ServiceError
from photoncloud.common.models import Body, Query, Result
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service

# DESIGN.md's table, code -> HTTP status.
HTTP_STATUS = {
    "INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400, "UNAUTHENTICATED": 401,
    "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409, "ABORTED": 409,
    "RESOURCE_EXHAUSTED": 429, "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504,
    "INTERNAL": 500,
}
ERROR_CLASSES = {
    "INVALID_ARGUMENT": errors.InvalidArgument, "FAILED_PRECONDITION": errors.FailedPrecondition,
    "OUT_OF_RANGE": errors.OutOfRange, "UNAUTHENTICATED": errors.Unauthenticated,
    "PERMISSION_DENIED": errors.PermissionDenied, "NOT_FOUND": errors.NotFound,
    "ALREADY_EXISTS": errors.AlreadyExists, "ABORTED": errors.Aborted,
    "RESOURCE_EXHAUSTED": errors.ResourceExhausted, "UNIMPLEMENTED": errors.Unimplemented,
    "UNAVAILABLE": errors.Unavailable, "DEADLINE_EXCEEDED": errors.DeadlineExceeded,
    "INTERNAL": errors.Internal,
}
SECRET = "s3cr3t-connection-string-do-not-leak"
MAX_BODY = 256


class CreateItem(Body):
    """A new item."""

    name: str = Field(min_length=1)
    size: int = Field(ge=0)


class Item(Result):
    """An item."""

    id: str
    name: str
    size: int


class ListItems(Query):
    """Paging of items."""

    page_size: int = 0
    page_token: str = ""


def build_routes() -> RouteTable:
    routes = RouteTable()
    items = {f"i{n}": Item(id=f"i{n}", name=f"item {n}", size=n) for n in range(5)}

    @routes.get("/api/v1/items/{item_id}", "Get an item", response=Item)
    async def get_item(request, item_id: str):
        if item_id not in items:
            raise errors.NotFound(f"item {item_id} not found", {"item_id": item_id})
        return items[item_id]

    @routes.post("/api/v1/items", "Create an item", body=CreateItem, response=Item, status=201)
    async def create_item(request, body: CreateItem):
        item = Item(id=f"i{len(items)}", name=body.name, size=body.size)
        items[item.id] = item
        return item

    @routes.get("/api/v1/items", "List items", query=ListItems)
    async def list_items(request, query: ListItems):
        size = paging.page_size(query.page_size, default=2)
        start = paging.decode_token(query.page_token)["offset"] if query.page_token else 0
        keys = sorted(items)[start:start + size]
        more = start + size < len(items)
        token = paging.encode_token({"offset": start + size}) if more else ""
        return envelope.page([items[k].model_dump() for k in keys], token)

    @routes.get("/api/v1/kv/{key:.+}", "Get a key with slashes in it")
    async def get_key(request, key: str):
        return {"key": key}

    @routes.post("/api/v1/fail/{code}", "Fail with the named code")
    async def fail(request, code: str):
        raise ERROR_CLASSES[code](f"failing with {code}", {"reason": "TEST", "code": code})

    @routes.get("/api/v1/crash", "Fail with an unexpected exception")
    async def crash(request):
        raise RuntimeError(f"database said: {SECRET}")

    @routes.get("/api/v1/crash-key", "Fail with an unexpected KeyError")
    async def crash_key(request):
        return {}[SECRET]

    @routes.get("/api/v1/moved", "Redirect elsewhere")
    async def moved(request):
        raise web.HTTPFound("/api/v1/items")

    return routes


@pytest.fixture
async def base(start):
    server = await start(Service("t", "1.0.0", build_routes(), []), max_body_bytes=MAX_BODY)
    return f"http://127.0.0.1:{server.rest_port}"


async def error_of(resp, status: int, code: str) -> dict:
    """The error member of resp, after checking the envelope and the status."""
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body = await resp.json()
    assert set(body) == {"error", "meta"}
    assert set(body["error"]) == {"code", "message", "details"}
    assert body["error"]["code"] == code
    assert isinstance(body["error"]["message"], str) and body["error"]["message"]
    assert body["meta"]["request_id"] == resp.headers["X-Request-ID"]
    return body["error"]


# --- success ------------------------------------------------------------------------------------


async def test_get_returns_the_result_in_a_success_envelope(base, http):
    async with http.get(f"{base}/api/v1/items/i3") as resp:
        assert resp.status == 200
        assert resp.content_type == "application/json"
        body = await resp.json()
    assert set(body) == {"data", "meta"}
    assert body["data"] == {"id": "i3", "name": "item 3", "size": 3}
    assert body["meta"]["request_id"] == resp.headers["X-Request-ID"]


async def test_post_uses_the_declared_status_and_parses_the_body(base, http):
    async with http.post(f"{base}/api/v1/items", json={"name": "new", "size": 7}) as resp:
        assert resp.status == 201
        body = await resp.json()
    assert body["data"]["name"] == "new" and body["data"]["size"] == 7
    async with http.get(f"{base}/api/v1/items/{body['data']['id']}") as resp:
        assert (await resp.json())["data"]["name"] == "new"


async def test_path_parameter_may_hold_slashes(base, http):
    async with http.get(f"{base}/api/v1/kv/a/b/c") as resp:
        assert resp.status == 200
        assert (await resp.json())["data"] == {"key": "a/b/c"}


async def test_list_pages_through_every_item_once(base, http):
    seen, token, pages = [], "", 0
    while True:
        async with http.get(f"{base}/api/v1/items", params={"page_token": token} if token else {}) as resp:
            assert resp.status == 200
            data = (await resp.json())["data"]
        assert set(data) >= {"items", "next_page_token"}
        assert len(data["items"]) <= 2
        seen += [item["id"] for item in data["items"]]
        token, pages = data["next_page_token"], pages + 1
        if not token:
            break
        assert pages < 10
    assert sorted(seen) == [f"i{n}" for n in range(5)]
    assert len(seen) == len(set(seen))


# --- routing errors -----------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_unknown_route_is_not_found(base, http, method):
    async with http.request(method, f"{base}/api/v1/nothing-here", data=b"{not json") as resp:
        error = await error_of(resp, 404, "NOT_FOUND")
    assert "/api/v1/nothing-here" in error["message"]


async def test_unknown_root_path_is_not_found(base, http):
    async with http.get(f"{base}/") as resp:
        await error_of(resp, 404, "NOT_FOUND")


async def test_wrong_method_is_405_unimplemented_with_allow(base, http):
    # The one exception to the code table: UNIMPLEMENTED, sent as 405 with Allow (RFC 9110).
    async with http.delete(f"{base}/api/v1/items/i1") as resp:
        error = await error_of(resp, 405, "UNIMPLEMENTED")
        assert resp.headers["Allow"] == "GET"
    assert error["details"]["allowed_methods"] == ["GET"]
    assert "DELETE" in error["message"] and "/api/v1/items/i1" in error["message"]
    async with http.put(f"{base}/api/v1/items", json={"name": "x", "size": 1}) as resp:
        error = await error_of(resp, 405, "UNIMPLEMENTED")
        assert sorted(m.strip() for m in resp.headers["Allow"].split(",")) == ["GET", "POST"]
    assert error["details"]["allowed_methods"] == ["GET", "POST"]


async def test_a_wrong_method_runs_no_handler(base, http):
    async with http.post(f"{base}/api/v1/items/i1", json={"name": "changed", "size": 9}) as resp:
        await error_of(resp, 405, "UNIMPLEMENTED")
    async with http.get(f"{base}/api/v1/items/i1") as resp:
        assert (await resp.json())["data"]["name"] == "item 1"


async def test_a_wrong_method_is_counted_as_unimplemented(base, http):
    async with http.patch(f"{base}/api/v1/items") as resp:
        assert resp.status == 405
    async with http.get(f"{base}/metrics") as resp:
        text = await resp.text()
    counted = [sample for family in text_string_to_metric_families(text) for sample in family.samples
               if sample.name == "photoncloud_requests_total" and sample.labels["method"] == "PATCH"]
    assert [(s.labels["code"], s.value) for s in counted] == [("UNIMPLEMENTED", 1.0)]


# --- request body errors ------------------------------------------------------------------------


@pytest.mark.parametrize("raw", [b"{not json", b'{"name": "x",', b"\xff\xfe\xfd", b"nul"])
async def test_malformed_json_is_invalid_argument(base, http, raw):
    async with http.post(f"{base}/api/v1/items", data=raw, headers={"Content-Type": "application/json"}) as resp:
        await error_of(resp, 400, "INVALID_ARGUMENT")


async def test_body_that_is_not_an_object_is_invalid_argument(base, http):
    async with http.post(f"{base}/api/v1/items", json=[1, 2]) as resp:
        await error_of(resp, 400, "INVALID_ARGUMENT")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"name": "x", "size": -1}, "size"),
        ({"name": "x", "size": "big"}, "size"),
        ({"size": 1}, "name"),
        ({"name": "", "size": 1}, "name"),
        ({"name": "x", "size": 1, "colour": "red"}, "colour"),
    ],
)
async def test_body_validation_error_names_the_field(base, http, body, field):
    async with http.post(f"{base}/api/v1/items", json=body) as resp:
        error = await error_of(resp, 400, "INVALID_ARGUMENT")
    assert error["details"]["field"] == field
    assert field in error["message"]


async def test_rejected_values_are_not_echoed(base, http):
    async with http.post(f"{base}/api/v1/items", json={"name": "x", "size": SECRET}) as resp:
        await error_of(resp, 400, "INVALID_ARGUMENT")
        assert SECRET not in await resp.text()


async def test_oversized_body_is_invalid_argument_body_too_large(base, http):
    big = json.dumps({"name": "x" * (MAX_BODY * 4), "size": 1})
    async with http.post(f"{base}/api/v1/items", data=big, headers={"Content-Type": "application/json"}) as resp:
        error = await error_of(resp, 400, "INVALID_ARGUMENT")
    assert error["details"]["reason"] == "BODY_TOO_LARGE"
    # a body well within the limit still passes
    async with http.post(f"{base}/api/v1/items", json={"name": "small", "size": 1}) as resp:
        assert resp.status == 201


# --- query errors -------------------------------------------------------------------------------


async def test_unknown_query_parameter_is_invalid_argument(base, http):
    async with http.get(f"{base}/api/v1/items", params={"pagesize": "3"}) as resp:
        error = await error_of(resp, 400, "INVALID_ARGUMENT")
    assert error["details"]["field"] == "pagesize"
    assert "pagesize" in error["message"]


async def test_query_parameter_of_the_wrong_type_is_invalid_argument(base, http):
    async with http.get(f"{base}/api/v1/items", params={"page_size": "lots"}) as resp:
        error = await error_of(resp, 400, "INVALID_ARGUMENT")
    assert error["details"]["field"] == "page_size"


@pytest.mark.parametrize("params", [{"page_token": "garbage!!"}, {"page_size": "100000"}, {"page_size": "-1"}])
async def test_bad_paging_is_invalid_argument(base, http, params):
    async with http.get(f"{base}/api/v1/items", params=params) as resp:
        error = await error_of(resp, 400, "INVALID_ARGUMENT")
    assert error["details"]["field"] in params


# --- errors raised by handlers ------------------------------------------------------------------


@pytest.mark.parametrize("code", sorted(HTTP_STATUS))
async def test_service_error_maps_to_its_status(base, http, code):
    async with http.post(f"{base}/api/v1/fail/{code}") as resp:
        error = await error_of(resp, HTTP_STATUS[code], code)
    assert error["message"] == f"failing with {code}"
    assert error["details"] == {"reason": "TEST", "code": code}


async def test_handler_not_found_carries_details(base, http):
    async with http.get(f"{base}/api/v1/items/missing") as resp:
        error = await error_of(resp, 404, "NOT_FOUND")
    assert error["details"] == {"item_id": "missing"}


@pytest.mark.parametrize("path", ["/api/v1/crash", "/api/v1/crash-key"])
async def test_unexpected_exception_is_internal_without_its_text(base, http, path, caplog):
    async with http.get(f"{base}{path}", headers={"X-Request-ID": "crash-1"}) as resp:
        error = await error_of(resp, 500, "INTERNAL")
        text = await resp.text()
    assert SECRET not in text
    assert "Traceback" not in text
    assert "Error" not in text.replace('"error"', "")  # no exception class name either
    assert error["details"] is None
    # ... but the service log has it, next to the request ID
    logged = [r for r in caplog.records if r.exc_info and SECRET in str(r.exc_info[1])]
    assert logged


async def test_error_subclass_defined_elsewhere_keeps_its_code(base, http, start):
    class QuotaGone(errors.ResourceExhausted):
        pass

    routes = RouteTable()

    @routes.get("/api/v1/quota", "Out of quota")
    async def quota(request):
        raise QuotaGone("no quota left", {"reason": "INSUFFICIENT_CREDITS"})

    @routes.get("/api/v1/explicit", "An explicit code")
    async def explicit(request):
        raise ServiceError("conflict", code=errors.Code.ABORTED)

    server = await start(Service("t2", "1.0.0", routes, []))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/quota") as resp:
        error = await error_of(resp, 429, "RESOURCE_EXHAUSTED")
    assert error["details"] == {"reason": "INSUFFICIENT_CREDITS"}
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/explicit") as resp:
        await error_of(resp, 409, "ABORTED")


async def test_a_raised_redirect_is_passed_through(base, http):
    async with http.get(f"{base}/api/v1/moved", allow_redirects=False) as resp:
        assert resp.status == 302
        assert resp.headers["Location"] == "/api/v1/items"
        assert resp.headers["X-Request-ID"]


def test_an_error_response_reads_back_as_the_error_it_was_made_from():
    sent = rest.error_response(errors.NotFound("no such project", {"project_id": "p"}))
    exc = envelope.error_from_body(sent.status, json.loads(sent.text))
    assert (exc.code, exc.message, exc.details) == (errors.Code.NOT_FOUND, "no such project", {"project_id": "p"})
