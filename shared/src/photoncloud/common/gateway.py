"""REST routes made from the contract: each RPC's `google.api.http` binding and PhotonCloud's
method option, served by calling the gRPC servicer itself (as gRPC-gateway does for Go).

A route turns JSON into the request message (path fields from the path, the body's fields from the
body, and for a binding without `body: "*"` the rest from the query string), awaits the servicer's
method, and answers the response message as JSON (protojson) inside the envelope. Because REST
runs the very method gRPC runs, the two transports cannot disagree; the access table the gRPC
interceptor applies and the OpenAPI document come from the same descriptors.
"""

from __future__ import annotations

import importlib
import pkgutil
import re
from collections.abc import Awaitable, Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from google.api import annotations_pb2, http_pb2
from google.protobuf import descriptor_pool
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message

from photoncloud.api.v1 import options_pb2

from . import protojson
from .errors import InvalidArgument, ServiceError
from .rest import Route, RouteTable, read_json
from .rpc import Access

_VERBS = ("get", "put", "post", "delete", "patch")
_TEMPLATE = re.compile(r"\{(\w+)(?:=([^}]*))?\}")
# A PATCH whose request has this field (google.protobuf.FieldMask) and whose body does not set it
# gets the body's top-level field names as its paths: which fields to change (AIP-134; gRPC-gateway
# does the same).
UPDATE_MASK = "update_mask"


@dataclass(frozen=True)
class Binding:
    """One REST binding of an RPC: its method descriptor, the body rule and the path's fields."""

    method: MethodDescriptor
    body: str  # "*" (every field not in the path), a field name, or "" (no body: the query string)
    path_fields: tuple[str, ...]


def service_descriptor(name: str) -> ServiceDescriptor:
    """The descriptor of a gRPC service by its full name (its *_pb2 module must be imported)."""
    return descriptor_pool.Default().FindServiceByName(name)


def method_options(method: MethodDescriptor) -> options_pb2.Method:
    """The method's `(photoncloud.api.v1.method)` option (empty when it declares none)."""
    found: options_pb2.Method = protojson.extension(method.GetOptions(), options_pb2.method)
    return found


def access_of(method: MethodDescriptor) -> Access | None:
    """Who may call the method and what it takes, as its option declares (None: undeclared)."""
    option = method_options(method)
    if not option.who:
        return None
    return Access(option.who, option.permission or None)


def access_table(service: ServiceDescriptor) -> dict[str, Access | None]:
    """The gRPC interceptor's entries for every method of a service, keyed "/package.Service/Method"."""
    return {f"/{service.full_name}/{m.name}": access_of(m) for m in service.methods}


def http_rules(method: MethodDescriptor) -> list[http_pb2.HttpRule]:
    """The method's google.api.http binding and its additional bindings (none: not on REST)."""
    rule: http_pb2.HttpRule = protojson.extension(method.GetOptions(), annotations_pb2.http)
    if not rule.WhichOneof("pattern"):
        return []
    return [rule, *rule.additional_bindings]


def aiohttp_path(template: str) -> tuple[str, tuple[str, ...]]:
    r"""An aiohttp route path for a google.api.http path template, and the fields it binds
    (`{key=**}`, a field matching several segments, becomes `{key:[\s\S]+}`: any character, line
    breaks too, which `.` would not match, leaving a key with one in it no route)."""
    fields: list[str] = []

    def convert(match: re.Match[str]) -> str:
        fields.append(match.group(1))
        pattern = match.group(2)
        name = match.group(1)
        return rf"{{{name}:[\s\S]+}}" if pattern and "**" in pattern else f"{{{name}}}"

    return _TEMPLATE.sub(convert, template), tuple(fields)


class RestContext:
    """What a servicer reads of its gRPC context, given from a REST request: the metadata (the
    request's headers, names lower-cased as gRPC's) and the peer's address."""

    def __init__(self, request: web.Request):
        self.request = request

    def invocation_metadata(self) -> tuple[tuple[str, str], ...]:
        """The request's headers as gRPC metadata."""
        return tuple((name.lower(), value) for name, value in self.request.headers.items())

    def peer(self) -> str:
        """The client's address as gRPC writes it ("ipv4:127.0.0.1:0")."""
        remote = self.request.remote or ""
        return f"ipv6:[{remote}]:0" if ":" in remote else f"ipv4:{remote}:0"

    async def abort(self, code: Any, details: str = "") -> None:
        """Fail the call (a servicer raises the platform's errors instead; this keeps the contract)."""
        raise ServiceError(details)


def _read_request(binding: Binding, path: Mapping[str, str], query: Mapping[str, Any], body: Any) -> Message:
    request_type = binding.method.input_type
    # One collector per source, so that an error names where the offending field was given.
    in_path, in_query, in_body = protojson.Problems(), protojson.Problems(), protojson.Problems()
    kwargs: dict[str, Any] = {}
    given_twice = set(binding.path_fields) & set(body if binding.body == "*" and isinstance(body, Mapping) else query)
    for name in sorted(given_twice):
        (in_body if binding.body == "*" else in_query).add(name, "is given by the path; leave it out")
    if binding.body == "*":
        kwargs.update(protojson.read_fields(body, request_type, "request body", in_body))
    else:
        if binding.body:
            kwargs.update(protojson.read_fields({binding.body: body}, request_type, "request body", in_body))
        if query:
            kwargs.update(protojson.read_fields(query, request_type, "query parameter", in_query))
    kwargs.update(protojson.read_fields(path, request_type, "path parameter", in_path))
    protojson.missing_required(kwargs, request_type, in_body if binding.body else in_query)
    protojson.raise_problems(in_path, "path parameter")
    protojson.raise_problems(in_query, "query parameter")
    protojson.raise_problems(in_body, "request body")
    if (binding.body == "*" and UPDATE_MASK in request_type.fields_by_name and UPDATE_MASK not in kwargs
            and isinstance(body, Mapping)):
        kwargs[UPDATE_MASK] = {"paths": sorted(name for name, value in body.items() if value is not None)}
    return protojson.message_class(request_type)(**kwargs)


def _query(request: web.Request, binding: Binding) -> dict[str, Any]:
    fields = binding.method.input_type.fields_by_name
    query: dict[str, Any] = {}
    for name in request.query:
        f = fields.get(name)
        repeated = f is not None and protojson.fields_of(binding.method.input_type)[f.index].repeated
        query[name] = request.query.getall(name) if repeated else request.query[name]
    return query


def _handler(servicer: Any, binding: Binding) -> Callable[..., Awaitable[Any]]:
    async def handler(request: web.Request, **path: str) -> Any:
        call = getattr(servicer, binding.method.name)
        body = await read_json(request) if binding.body else None
        if binding.body == "*" and not isinstance(body, Mapping):
            raise InvalidArgument("invalid request body: body: Input should be an object", {"field": "body"})
        message = _read_request(binding, path, _query(request, binding), body)
        return protojson.to_json(await call(message, RestContext(request)))

    handler.__name__ = re.sub(r"(?<!^)(?=[A-Z])", "_", binding.method.name).lower()
    return handler


def binding(rpc: str, path: str) -> Binding:
    """The binding of a hand-written route (path, in aiohttp's syntax) to the RPC it serves,
    "package.Service/Method": its handler reads the request with request_message, and the OpenAPI
    document describes its parameters from the RPC's request (a stream's events stay its own)."""
    service, name = rpc.split("/")
    fields = tuple(match.group(1) for match in re.finditer(r"\{(\w+)(?::[^}]*)?\}", path))
    return Binding(service_descriptor(service).methods_by_name[name], "", fields)


async def request_message(request: web.Request, binding: Binding) -> Message:
    """The request message of a hand-written route's RPC, read from its path and query string as a
    made route reads it (INVALID_ARGUMENT naming each bad parameter)."""
    return _read_request(binding, request.match_info, _query(request, binding), None)


def contract_routes(package: str) -> RouteTable:
    """The REST routes the contract binds for every gRPC service of a package of generated modules
    (e.g. "photoncloud.prismnet.v1"), described without a servicer: what the service serves."""
    table = RouteTable()
    modules = importlib.import_module(package)
    for found in sorted(pkgutil.iter_modules(modules.__path__), key=lambda m: m.name):
        if found.name.endswith("_pb2"):
            module = importlib.import_module(f"{package}.{found.name}")
            for service in module.DESCRIPTOR.services_by_name.values():
                table.extend(routes(None, service.full_name))
    return table


def rest_routes(services: Iterable[Any], by_hand: RouteTable | None = None) -> RouteTable:
    """A service's REST routes: those written by hand (by_hand: streams, files), then those the
    contract binds for each served gRPC service (server.GrpcService) that carries its servicer,
    but for the RPCs a hand-written route serves."""
    table = RouteTable().extend(by_hand) if by_hand is not None else RouteTable()
    served = {route.rpc for route in table.routes}
    for service in services:
        if service.servicer is not None:
            table.routes += [r for r in routes(service.servicer, service.name).routes if r.rpc not in served]
    return table


def declared(rpc: str) -> dict[str, Any]:
    """What a hand-written route serving rpc ("package.Service/Method") declares, as the contract
    says it: `@table.get(path, summary, **declared(rpc))` (rpc, who and permission)."""
    service, name = rpc.split("/")
    option = method_options(service_descriptor(service).methods_by_name[name])
    return {"rpc": rpc, "who": option.who, "permission": option.permission or None}


def routes(servicer: Any, service_name: str) -> RouteTable:
    """REST routes for every unary method of a gRPC service that has a google.api.http binding,
    served by servicer (an instance of the service's generated *Servicer; None describes the
    routes without serving them)."""
    table = RouteTable()
    for method in service_descriptor(service_name).methods:
        if method.client_streaming or method.server_streaming:
            continue  # a stream has a hand-written REST counterpart (server-sent events)
        option = method_options(method)
        for n, rule in enumerate(http_rules(method)):
            verb = rule.WhichOneof("pattern")
            if verb not in _VERBS:
                raise ValueError(f"{method.full_name}: unsupported HTTP binding {verb!r}")
            path, fields = aiohttp_path(getattr(rule, verb))
            binding = Binding(method, rule.body, fields)
            handler = _handler(servicer, binding)
            if n:
                handler.__name__ += f"_{n}"  # operation IDs are unique in a document
            table.routes.append(Route(
                verb.upper(), path, handler, option.summary or method.name, status=option.status or 200,
                rpc=f"{service_name}/{method.name}", permission=option.permission or None, who=option.who,
                binding=binding,
            ))
    return table
