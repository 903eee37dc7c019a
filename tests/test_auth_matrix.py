"""The authorization matrix, generated from the gates the services serve: every REST route and every
gRPC method (etcd's API included) of all seven services, for no token and six callers (another
project's member; the project's viewer, member and admin; the org's admin; the system's admin),
each with the outcome its declaration (who it is for, and the permission it takes) implies.

Each service's OpenAPI document lists its routes (`x-who`, `x-permission`) and, under
`x-grpc-methods`, every method of every gRPC service it serves with the gate the interceptor applies.
A route or method that declares no audience fails the matrix: a new one cannot skip it."""

from __future__ import annotations

import asyncio
import importlib
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import grpc
import pytest
from google.protobuf import descriptor_pool, message_factory

from photoncloud.common import rpc
from photoncloud.common.auth import AUDIENCES, OPERATOR, PUBLIC, TENANT, permits
from photoncloud.common.testing import start_platform

PROTOS = Path(__file__).resolve().parents[1] / "protos"
SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")
GATE_REASONS = ("OPERATOR_ONLY", "MISSING_PERMISSION")
STREAM_WAIT = 3.0  # seconds: a stream the gate admitted may send nothing for as long as it lives


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """All seven services (the shared fixture leaves out PlasmaVMC and k8shost)."""
    running = start_platform(tmp_path_factory.mktemp("platform"), *SERVICES)
    yield running
    running.stop()


@dataclass
class Caller:
    """One column of the matrix: how its token is made, what it holds, and which project it is in."""

    name: str
    login: tuple[str, str] | None  # (user, password); None: no token
    scope: dict[str, str]
    permissions: tuple[str, ...] = ()
    projects: frozenset[str] | None = frozenset()  # the projects its scope covers (None: every one)
    token: str | None = None


@pytest.fixture(scope="module")
def matrix(platform) -> Matrix:
    org_id, project_a = platform.project("matrix-a")
    _, project_b = platform.project("matrix-b")
    admin = platform.admin_token()

    def grants(role: str) -> tuple[str, ...]:
        status, reply = platform.request("GET", f"{platform.iam.url}/api/v1/roles/{role}", token=admin)
        assert status == 200, reply
        return tuple(reply["data"]["permissions"])

    def member(role: str, project_id: str) -> tuple[str, str]:
        return platform.user_with_role(role, {"type": "project", "project_id": project_id})

    callers = [
        Caller("no token", None, {}),
        Caller("another project's member", member("member", project_b), {"project_id": project_b},
               grants("member"), frozenset({project_b})),
        *(Caller(f"the project's {role}", member(role, project_a), {"project_id": project_a}, grants(role),
                 frozenset({project_a})) for role in ("viewer", "member", "admin")),
        Caller("the org's admin", platform.user_with_role("admin", {"type": "org", "org_id": org_id}),
               {"org_id": org_id}, grants("admin"), frozenset({project_a, project_b})),
        Caller("the system's admin", ("admin", platform.admin_password), {}, grants("admin"), None),
    ]
    renew(platform, callers)
    # Project A has a wallet, so that CreditService's reads of it have something to refuse or show.
    status, reply = platform.request("POST", f"{platform.services['creditservice'].url}/api/v1/wallets",
                                     {"project_id": project_a, "org_id": org_id}, admin)
    assert status == 201, reply
    return Matrix(callers, project_a)


@dataclass(frozen=True)
class Matrix:
    """The callers, and the project (A) whose resources reads name."""

    callers: list[Caller]
    project_a: str


def renew(platform, callers: list[Caller]) -> None:
    """Fresh tokens for every caller (after an operation that may have revoked the caller's own)."""
    for caller in callers:
        if caller.login is not None:
            caller.token = platform.token(*caller.login, **caller.scope)


@dataclass(frozen=True)
class Outcome:
    """What one call answered: the HTTP status (or gRPC code's name), the error's reason and action."""

    status: int | str
    reason: str = ""
    action: str = ""

    @staticmethod
    def of(status: int | str, details: object) -> Outcome:
        """The outcome of an error with these details."""
        details = details if isinstance(details, dict) else {}
        return Outcome(status, str(details.get("reason", "")), str(details.get("action", "")))


def expected(who: str, permission: str | None, caller: Caller, names_project: str) -> str:
    """The outcome the gate's declaration implies for caller, as one of:
    `unauthenticated`, `operator_only`, `missing_permission`, `out_of_scope` (refused, or not found:
    the call names a project outside the caller's scope) or `admitted` (past the gate and in scope)."""
    if who == PUBLIC:
        return "admitted"
    if caller.token is None:
        return "unauthenticated"
    if who != TENANT and caller.projects is not None:
        return "operator_only"
    if permission and not permits(caller.permissions, permission):
        return "missing_permission"
    if names_project and caller.projects is not None and names_project not in caller.projects:
        return "out_of_scope"
    return "admitted"


def judge(outcome: Outcome, wanted: str, permission: str | None) -> bool:
    """Whether a REST status (int) or a gRPC code (name) is the outcome wanted."""
    http = outcome.status if isinstance(outcome.status, int) else None
    code = outcome.status if isinstance(outcome.status, str) else None
    unauthenticated = http == 401 or code == "UNAUTHENTICATED"
    denied = http == 403 or code == "PERMISSION_DENIED"
    # The gate's own refusals (a service may refuse another action further in: that is past the gate).
    gate = denied and (outcome.reason == "OPERATOR_ONLY"
                       or (outcome.reason == "MISSING_PERMISSION" and outcome.action == (permission or "")))
    if wanted == "unauthenticated":
        return unauthenticated
    if wanted in ("operator_only", "missing_permission"):
        return gate and outcome.reason == wanted.upper()
    if wanted == "out_of_scope":  # never a success: refused, or the call could not name the resource
        return (denied and outcome.reason == "OUT_OF_SCOPE") or http in (400, 404) or \
            code in ("NOT_FOUND", "INVALID_ARGUMENT")
    return not unauthenticated and not gate and not (denied and outcome.reason == "OUT_OF_SCOPE")


def documents(platform) -> dict[str, dict]:
    """Each running service's OpenAPI document, by service name."""
    docs = {}
    for process in [platform.iam, *platform.services.values()]:
        status, doc = platform.request("GET", f"{process.url}/api/v1/openapi.json")
        assert status == 200
        docs[process.name] = doc
    return docs


def routes(docs: dict[str, dict]):
    """(service, method, path, operation) for every route of every service."""
    for name, doc in docs.items():
        for path, methods in doc["paths"].items():
            for method, operation in methods.items():
                yield name, method.upper(), path, operation


def grpc_methods(docs: dict[str, dict]):
    """(service, full method, gate) for every gRPC method of every service."""
    for name, doc in docs.items():
        for method, gate in doc["x-grpc-methods"].items():
            yield name, method, gate


def test_every_route_and_method_declares_who_it_is_for(platform):
    docs = documents(platform)
    undeclared = [f"{name} {method} {path}" for name, method, path, operation in routes(docs)
                  if operation.get("x-who") not in AUDIENCES]
    undeclared += [f"{name} {method}" for name, method, gate in grpc_methods(docs)
                   if gate.get("x-who") not in AUDIENCES]
    assert undeclared == []
    assert sum(1 for _ in grpc_methods(docs)) >= 100  # every service's methods, etcd's included
    assert any(m.startswith("/etcdserverpb.") for _, m, _ in grpc_methods(docs))


# The platform's upkeep, which no tenant may do whatever its roles: the matrix checks that every
# gate does what it declares, this that these declare what they must.
OPERATORS_ROUTES = {
    "creditservice": {("POST", "/api/v1/wallets"), ("POST", "/api/v1/wallets/{project_id}/topup"),
                      ("PATCH", "/api/v1/wallets/{project_id}"), ("GET", "/api/v1/audit"),
                      ("PUT", "/api/v1/quotas/{project_id}/{resource_type}")},
    "plasmavmc": {("POST", "/api/v1/flavors"), ("PATCH", "/api/v1/flavors/{id}"), ("DELETE", "/api/v1/flavors/{id}"),
                  ("POST", "/api/v1/images"), ("DELETE", "/api/v1/images/{id}")},
    "chainfire": {("POST", "/api/v1/compact"), ("POST", "/api/v1/cluster/members"),
                  ("DELETE", "/api/v1/cluster/members/{id}")},
    "k8shost": {("POST", "/api/v1/nodes"), ("PUT", "/api/v1/nodes/{name}"), ("DELETE", "/api/v1/nodes/{name}"),
                ("POST", "/api/v1/nodes/{name}/heartbeat"), ("PUT", "/api/v1/pods/{namespace}/{name}/status")},
    "iam": {("POST", "/api/v1/orgs"), ("POST", "/api/v1/users"), ("PATCH", "/api/v1/users/{user_id}"),
            ("DELETE", "/api/v1/users/{user_id}"), ("POST", "/api/v1/roles"), ("PATCH", "/api/v1/roles/{name}"),
            ("DELETE", "/api/v1/roles/{name}"), ("POST", "/api/v1/auth/keys/rotate"), ("GET", "/api/v1/audit")},
}
OPERATORS_ETCD_METHODS = ("/etcdserverpb.KV/Compact", "/etcdserverpb.Cluster/MemberAdd",
                          "/etcdserverpb.Cluster/MemberRemove")


def test_the_platforms_upkeep_is_the_operators(platform):
    docs = documents(platform)
    for name, wanted in OPERATORS_ROUTES.items():
        declared = {(method.upper(), path) for path, methods in docs[name]["paths"].items()
                    for method, operation in methods.items() if operation["x-who"] == OPERATOR}
        assert wanted <= declared, (name, wanted - declared)
    for method in OPERATORS_ETCD_METHODS:
        assert docs["chainfire"]["x-grpc-methods"][method]["x-who"] == OPERATOR, method


def test_every_write_declares_a_permission_a_viewer_lacks(platform, matrix):
    viewer = next(c for c in matrix.callers if c.name == "the project's viewer")
    for name, method, path, operation in routes(documents(platform)):
        if method in ("PUT", "PATCH", "DELETE") and operation["x-who"] != PUBLIC:
            assert not permits(viewer.permissions, operation.get("x-permission") or "*"), (name, method, path)


def concrete(path: str, method: str, project_a: str) -> tuple[str, str]:
    """The path with its parameters filled, and the project it names: a read names project A where
    it takes a project, a change a project no caller is in ("x"); other parameters name a resource
    that does not exist."""
    names_project = ""

    def fill(match: re.Match) -> str:
        nonlocal names_project
        if match.group(1) == "project_id":
            names_project = project_a if method == "GET" else "x"
            return names_project
        return "x"

    return re.sub(r"\{([^}]+)\}", fill, path), names_project


def rest_call(url: str, method: str, token: str | None) -> Outcome:
    """One call; a success may be any content type (a backup is a file), an error is the envelope."""
    headers = {"Content-Type": "application/json", **({"Authorization": f"Bearer {token}"} if token else {})}
    data = b"{}" if method in ("POST", "PUT", "PATCH") else None
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return Outcome(response.status)
    except urllib.error.HTTPError as exc:
        return Outcome.of(exc.code, json.loads(exc.read())["error"]["details"])


def test_rest_matrix(platform, matrix):
    project_a, callers = matrix.project_a, matrix.callers
    wrong, checked = [], 0
    for name, method, path, operation in routes(documents(platform)):
        if path in ("/metrics",) or "watch" in path:  # not JSON / a stream (their gates: the gRPC matrix)
            continue
        concrete_path, names_project = concrete(path, method, project_a)
        query = "?" + urllib.parse.urlencode({"project_id": project_a}) if method == "GET" and any(
            p["name"] == "project_id" and p["in"] == "query" for p in operation["parameters"]) else ""
        names_project = names_project or (project_a if query else "")
        url = platform.services[name].url if name in platform.services else platform.iam.url
        for caller in callers:
            outcome = rest_call(url + concrete_path + query, method, caller.token)
            wanted = expected(operation["x-who"], operation.get("x-permission"), caller, names_project)
            if not judge(outcome, wanted, operation.get("x-permission")):
                wrong.append((name, method, path, caller.name, wanted, outcome))
            checked += 1
        if "revoke" in path:
            renew(platform, callers)
    assert wrong == [], "\n".join(map(str, wrong))
    assert checked >= 7 * 150


def load_protos() -> None:
    """Import every generated module so that the descriptor pool knows every method."""
    for path in PROTOS.glob("photoncloud/**/*_pb2.py"):
        importlib.import_module(".".join(path.relative_to(PROTOS).with_suffix("").parts))


async def grpc_call(channel: grpc.aio.Channel, method: str, token: str | None, project_id: str) -> Outcome:
    descriptor = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
    request_class = message_factory.GetMessageClass(descriptor.input_type)
    response_class = message_factory.GetMessageClass(descriptor.output_type)
    request = request_class(**({"project_id": project_id} if project_id else {}))
    streams = descriptor.server_streaming or descriptor.client_streaming
    metadata = (("authorization", f"Bearer {token}"),) if token else ()
    stub = channel.unary_unary(method, request_serializer=request_class.SerializeToString,
                               response_deserializer=response_class.FromString)
    try:
        await stub(request, metadata=metadata, timeout=STREAM_WAIT if streams else 30)
    except grpc.aio.AioRpcError as exc:
        return Outcome.of(exc.code().name, rpc.error_from_rpc(exc).details)
    return Outcome("OK")


def test_grpc_matrix(platform, matrix):
    load_protos()
    project_a, callers = matrix.project_a, matrix.callers
    docs = documents(platform)
    reads = {op["x-grpc-method"]: method == "GET" for _, method, _, op in routes(docs) if op.get("x-grpc-method")}

    async def walk() -> tuple[list, int]:
        wrong, checked = [], 0
        for name, method, gate in grpc_methods(docs):
            process = platform.services.get(name, platform.iam)
            descriptor = descriptor_pool.Default().FindMethodByName(method.strip("/").replace("/", "."))
            names_project = project_a if reads.get(method.strip("/")) and "project_id" in \
                descriptor.input_type.fields_by_name else ""
            async with grpc.aio.insecure_channel(f"127.0.0.1:{process.grpc_port}") as channel:
                outcomes = await asyncio.gather(*(grpc_call(channel, method, c.token, names_project) for c in callers))
            for caller, outcome in zip(callers, outcomes):
                wanted = expected(gate["x-who"], gate.get("x-permission"), caller, names_project)
                if not judge(outcome, wanted, gate.get("x-permission")):
                    wrong.append((name, method, caller.name, wanted, outcome))
                checked += 1
            if "Revoke" in method:
                renew(platform, callers)
        return wrong, checked

    wrong, checked = asyncio.run(walk())
    assert wrong == [], "\n".join(map(str, wrong))
    assert checked >= 7 * 100
