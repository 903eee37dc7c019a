"""The protos are the one schema: every RPC declares who may call it and its REST binding, every
RPC has a REST route and every REST route a gRPC counterpart, in every service."""

from __future__ import annotations

import importlib
from pathlib import Path

import photoncloud

from google.protobuf.descriptor import MethodDescriptor

from photoncloud.common import auth, gateway
from photoncloud.common.config import ServerConfig
from photoncloud.common.server import Server

PROTOS = Path(__file__).resolve().parents[1] / "protos"

# Routes that have no RPC in our protos, and why.
REST_ONLY = {
    ("GET", "/health"): "gRPC has the standard grpc.health.v1.Health service instead",
    ("GET", "/metrics"): "Prometheus scrapes HTTP; there is nothing to mirror over gRPC",
    ("GET", "/api/v1/openapi.json"): "gRPC describes itself through server reflection instead",
    ("GET", "/docs"): "a page for browsers over the OpenAPI document",
    ("GET", "/docs/static/{name}"): "the files of that page",
}
# RPCs that have no REST route, and why (streams, once there are any, belong here).
_ETCD_SHAPED = ("ChainFire's etcd-shaped RPC (bytes keys and values, a response header) for gRPC clients; "
                "REST serves the same operation through its REST-shaped RPC (text keys and values)")
GRPC_ONLY: dict[str, str] = {
    f"photoncloud.chainfire.v1.{rpc}": _ETCD_SHAPED for rpc in (
        "KV/Range", "KV/Put", "KV/DeleteRange", "KV/Txn", "KV/Compact", "Lease/Grant", "Lease/Revoke",
        "Lease/KeepAlive", "Lease/TimeToLive", "Lease/Leases", "Cluster/Status", "Cluster/MemberList",
        "Cluster/MemberAdd", "Cluster/MemberRemove")
}
# Whole gRPC packages exempt from parity, and why.
GRPC_ONLY_PACKAGES = {
    "etcdserverpb.": "etcd's v3 API, served for etcd clients; the ChainFire RPCs behind it have REST routes",
}


def service_modules() -> list[str]:
    """Every PhotonCloud service package: those with an `app` module that builds a Service."""
    # The packages are namespace portions (the protos add their v1 modules to them), which
    # pkgutil does not list; look for their app modules instead.
    return sorted({app.parent.name for root in photoncloud.__path__ for app in Path(root).glob("*/app.py")})


def proto_methods() -> dict[str, MethodDescriptor]:
    """Every RPC of every generated *_pb2 module, by `package.Service/Method`."""
    methods = {}
    for path in PROTOS.glob("photoncloud/**/*_pb2.py"):
        module = importlib.import_module(".".join(path.relative_to(PROTOS).with_suffix("").parts))
        for service in module.DESCRIPTOR.services_by_name.values():
            methods.update({f"{service.full_name}/{method.name}": method for method in service.methods})
    return methods


def proto_rpcs() -> set[str]:
    """`package.Service/Method` for every RPC of every generated *_pb2 module."""
    return set(proto_methods())


def test_every_rpc_declares_who_may_call_it():
    undeclared = sorted(name for name, method in proto_methods().items()
                        if gateway.method_options(method).who not in auth.AUDIENCES)
    assert not undeclared, f"RPCs without (photoncloud.api.v1.method).who: {undeclared}"


def test_every_unary_rpc_of_ours_is_bound_to_http():
    unbound = sorted(name for name, method in proto_methods().items()
                     if not name.startswith(tuple(GRPC_ONLY_PACKAGES)) and name not in GRPC_ONLY
                     and not (method.client_streaming or method.server_streaming) and not gateway.http_rules(method))
    assert not unbound, f"unary RPCs without a google.api.http binding: {unbound}"


async def served_routes(tmp_path) -> list:
    """Every REST route every service serves: its own and the runner's operations routes."""
    routes = []
    for name in service_modules():
        app = importlib.import_module(f"photoncloud.{name}.app")
        config = ServerConfig(service=name, bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=tmp_path / name)
        service = await app.build(config)
        routes += service.routes.routes + Server(service, config).operations_routes().routes
        if service.close is not None:
            await service.close()
    return routes


def test_the_services_are_found():
    assert "chainfire" in service_modules()
    assert "photoncloud.chainfire.v1.KV/Put" in proto_rpcs()


async def test_every_rpc_has_a_rest_route_and_every_route_an_rpc(tmp_path):
    rpcs = proto_rpcs()
    routes = await served_routes(tmp_path)
    unknown = [(r.method, r.path, r.rpc) for r in routes if r.rpc is not None and r.rpc not in rpcs]
    assert not unknown, f"routes name RPCs that no proto defines: {unknown}"
    without_rpc = {(r.method, r.path) for r in routes if r.rpc is None}
    assert without_rpc == set(REST_ONLY), f"REST routes with no gRPC counterpart: {without_rpc - set(REST_ONLY)}"
    covered = {r.rpc for r in routes}
    exempt = {rpc for rpc in rpcs if rpc.startswith(tuple(GRPC_ONLY_PACKAGES))}
    assert exempt, "the etcd API is missing from the generated modules"
    missing = sorted(rpcs - covered - set(GRPC_ONLY) - exempt)
    assert not missing, f"RPCs with no REST route: {missing}"
