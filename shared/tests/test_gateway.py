"""REST routes made from the contract: each RPC's google.api.http binding, served by the servicer itself."""

from __future__ import annotations

import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from photoncloud.common import auth, gateway
from photoncloud.common.errors import NotFound
from photoncloud.common.rest import RouteTable
from photoncloud.common.rpc import Access
from photoncloud.common.server import Service, grpc_services
from photoncloud.prismnet.v1 import prismnet_pb2 as pb
from photoncloud.prismnet.v1 import prismnet_pb2_grpc as pb_grpc


class Ports(pb_grpc.PortsServicer):
    """Records the requests it is given; answers a port named after them."""

    def __init__(self):
        self.requests = []

    async def _answer(self, request, context):
        self.requests.append(request)
        if getattr(request, "id", "") == "missing":
            raise NotFound("no such port")
        return pb.Port(id=getattr(request, "id", "") or "new", name=getattr(request, "name", ""))

    CreatePort = GetPort = UpdatePort = AttachPort = DetachPort = DeletePort = _answer

    async def ListPorts(self, request, context):
        self.requests.append(request)
        return pb.ListPortsResponse(items=[pb.Port(id="p1")], next_page_token="")


@pytest.fixture
async def served(start):
    servicer = Ports()
    services = grpc_services(pb, pb_grpc, {"Ports": servicer})
    server = await start(Service("t", "1.0.0", gateway.rest_routes(services), services))
    return f"http://127.0.0.1:{server.rest_port}/api/v1", servicer, server


def test_the_routes_are_the_contracts_bindings_with_its_declarations():
    table = {(r.method, r.path): r for r in gateway.routes(None, "photoncloud.prismnet.v1.Ports").routes}
    assert set(table) == {("POST", "/api/v1/ports"), ("GET", "/api/v1/ports/{id}"), ("GET", "/api/v1/ports"),
                          ("PATCH", "/api/v1/ports/{id}"), ("POST", "/api/v1/ports/{id}/attach"),
                          ("POST", "/api/v1/ports/{id}/detach"), ("DELETE", "/api/v1/ports/{id}")}
    create = table["POST", "/api/v1/ports"]
    assert (create.status, create.who, create.permission, create.rpc) == (
        201, auth.TENANT, "prismnet:ports:write", "photoncloud.prismnet.v1.Ports/CreatePort")


def test_a_multi_segment_template_becomes_a_greedy_route():
    assert gateway.aiohttp_path("/api/v1/kv/{key=**}/put") == ("/api/v1/kv/{key:[\\s\\S]+}/put", ("key",))
    assert gateway.aiohttp_path("/api/v1/x/{id}") == ("/api/v1/x/{id}", ("id",))


@pytest.mark.parametrize(("target", "key"), [("/api/v1/kv/a/b/put", "a/b"), ("/api/v1/kv/a%0Ab/put", "a\nb")])
async def test_a_multi_segment_field_takes_any_character(target, key):
    async def handler(request):
        return web.Response()

    app = web.Application()
    path, _ = gateway.aiohttp_path("/api/v1/kv/{key=**}/put")
    app.router.add_post(path, handler)
    match = await app.router.resolve(make_mocked_request("POST", target))
    assert match.http_exception is None
    assert match["key"] == key


async def test_the_body_path_and_query_make_the_request_and_the_reply_is_the_envelope(served, http):
    base, servicer, _ = served
    async with http.post(f"{base}/ports", json={"subnet_id": "s1", "name": "web",
                                                "security_group_ids": ["g1"]}) as response:
        assert response.status == 201
        body = await response.json()
    assert body["data"]["id"] == "new" and body["data"]["name"] == "web"
    assert servicer.requests[-1] == pb.CreatePortRequest(subnet_id="s1", name="web", security_group_ids=["g1"])
    async with http.get(f"{base}/ports?vpc_id=v1&page_size=5") as response:
        assert response.status == 200
    assert servicer.requests[-1] == pb.ListPortsRequest(vpc_id="v1", page_size=5)


async def test_a_patch_sets_the_update_mask_to_the_fields_the_body_sets(served, http):
    base, servicer, _ = served
    async with http.patch(f"{base}/ports/p1", json={"security_group_ids": [], "name": "x"}) as response:
        assert response.status == 200
    request = servicer.requests[-1]
    assert request.id == "p1" and sorted(request.update_mask.paths) == ["name", "security_group_ids"]
    async with http.patch(f"{base}/ports/p1", json={"description": "d"}) as response:
        assert response.status == 200
    assert list(servicer.requests[-1].update_mask.paths) == ["description"]


@pytest.mark.parametrize(("method", "path", "body", "field"), [
    ("POST", "/ports", {"name": "no subnet"}, "subnet_id"),
    ("POST", "/ports", {"subnet_id": "s", "typo": 1}, "typo"),
    ("PATCH", "/ports/p1", {"id": "p2"}, "id"),
    ("GET", "/ports?page_size=many", None, "page_size"),
    ("GET", "/ports?unknown=1", None, "unknown"),
])
async def test_bad_input_is_invalid_argument_before_the_servicer_runs(served, http, method, path, body, field):
    base, servicer, _ = served
    async with http.request(method, base + path, json=body) as response:
        assert response.status == 400
        error = (await response.json())["error"]
    assert error["code"] == "INVALID_ARGUMENT" and error["details"]["field"] == field
    assert servicer.requests == []


async def test_the_servicers_errors_are_the_envelopes(served, http):
    base, _, _ = served
    async with http.get(f"{base}/ports/missing") as response:
        assert response.status == 404
        assert (await response.json())["error"]["code"] == "NOT_FOUND"


async def test_the_grpc_gates_come_from_the_same_declarations(served):
    _, _, server = served
    access = server.grpc_access()
    assert access["/photoncloud.prismnet.v1.Ports/CreatePort"] == Access(auth.TENANT, "prismnet:ports:write")


async def test_a_hand_written_route_reads_its_rpcs_request_from_the_query_string(start, http):
    binding = gateway.binding("photoncloud.prismnet.v1.Ports/ListPorts", "/api/v1/custom/{vpc_id}")
    seen = []
    table = RouteTable()

    @table.get("/api/v1/custom/{vpc_id}", "A hand-written route", raw=True, who=auth.PUBLIC, binding=binding)
    async def custom(request: web.Request, vpc_id: str) -> web.Response:
        seen.append(await gateway.request_message(request, binding))
        return web.Response(text="ok")

    server = await start(Service("t", "1.0.0", table, []))
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/custom/v9?device_id=d&page_size=3") as response:
        assert response.status == 200
    assert seen == [pb.ListPortsRequest(vpc_id="v9", device_id="d", page_size=3)]
    async with http.get(f"http://127.0.0.1:{server.rest_port}/api/v1/openapi.json") as response:
        document = await response.json()
    parameters = {p["name"]: p for p in document["paths"]["/api/v1/custom/{vpc_id}"]["get"]["parameters"]}
    assert parameters["page_size"]["schema"]["format"] == "int32" and parameters["vpc_id"]["in"] == "path"


async def test_a_path_field_is_typed_and_is_not_given_again_in_the_query(start, http):
    binding = gateway.binding("photoncloud.prismnet.v1.Ports/ListPorts", "/api/v1/sized/{page_size}")
    table = RouteTable()

    @table.get("/api/v1/sized/{page_size}", "A hand-written route", raw=True, who=auth.PUBLIC, binding=binding)
    async def sized(request: web.Request, page_size: str) -> web.Response:
        return web.Response(text=str((await gateway.request_message(request, binding)).page_size))

    server = await start(Service("t", "1.0.0", table, []))
    base = f"http://127.0.0.1:{server.rest_port}/api/v1/sized"
    async with http.get(f"{base}/7") as response:
        assert (response.status, await response.text()) == (200, "7")
    for url, where in ((f"{base}/seven", "path parameter"), (f"{base}/7?page_size=8", "query parameter")):
        async with http.get(url) as response:
            error = (await response.json())["error"]
        assert response.status == 400 and error["details"]["field"] == "page_size"
        assert error["message"].startswith(f"invalid {where}: page_size")


def test_a_hand_written_route_takes_its_rpcs_place_and_its_declaration():
    rpc = "photoncloud.prismnet.v1.Ports/GetPort"
    by_hand = RouteTable()

    @by_hand.get("/api/v1/ports/{id}", "A port, by hand", raw=True, **gateway.declared(rpc))
    async def get_port(request: web.Request, id: str) -> web.Response:
        return web.Response(text=id)

    services = grpc_services(pb, pb_grpc, {"Ports": Ports()})
    table = gateway.rest_routes(services, by_hand)
    serving = [r for r in table.routes if r.rpc == rpc]
    assert [r.handler for r in serving] == [get_port]
    assert (serving[0].who, serving[0].permission) == (auth.TENANT, "prismnet:ports:read")
    assert len(table.routes) == len(gateway.rest_routes(services).routes)
