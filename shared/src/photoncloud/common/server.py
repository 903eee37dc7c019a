"""The runner: serves one core over REST (aiohttp) and gRPC (grpc.aio) from one asyncio loop."""

from __future__ import annotations

import asyncio
import errno
import functools
import logging
import os
import socket
import sys
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import grpc
from aiohttp import web
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from . import apidocs, auth, envelope, gateway, tls
from .auth import Verifier
from .config import AddOptions, ServerConfig, load_config
from .logs import setup_logging
from .metrics import CONTENT_TYPE, DomainMetrics, DomainRead, RequestMetrics
from .openapi import openapi_document
from .rest import RouteTable, json_response, make_app
from .rpc import Access, ServerInterceptor
from .signals import on_stop_signals

log = logging.getLogger("photoncloud.server")
EXIT_BIND = 3  # the exit status of a service that cannot listen on its ports


@dataclass(frozen=True)
class GrpcService:
    """A gRPC service to serve: its full name (for health and reflection) and how to add it."""

    name: str
    add_to_server: Callable[[grpc.aio.Server], None]
    # What calling each method takes, by full method name ("/package.Service/Method"), where it
    # differs from what the contract's method option declares (etcd's refusal wording).
    access: Mapping[str, Access] = field(default_factory=dict)
    # The servicer instance add_to_server adds: REST routes are made from it for the methods the
    # contract binds to HTTP (gateway.rest_routes).
    servicer: Any = None


def grpc_services(pb2: Any, pb2_grpc: Any, servicers: Mapping[str, Any]) -> list[GrpcService]:
    """The GrpcService of each servicer, by the name its service has in the pb2 module (e.g.
    `{"Vpcs": VpcsServicer(core)}`), added with the pb2_grpc module's `add_<Name>Servicer_to_server`."""
    return [GrpcService(pb2.DESCRIPTOR.services_by_name[name].full_name,
                        functools.partial(getattr(pb2_grpc, f"add_{name}Servicer_to_server"), servicer),
                        servicer=servicer)
            for name, servicer in servicers.items()]


async def _no_dependencies() -> dict[str, Any]:
    return {}


@dataclass
class Service:
    """What a service hands the runner: its routes, its gRPC services, its health and its close."""

    name: str
    version: str
    routes: RouteTable
    grpc_services: list[GrpcService]
    # Reports dependencies (e.g. the store, Raft role); raising marks the service NOT_SERVING.
    dependencies: Callable[[], Awaitable[dict[str, Any]]] = _no_dependencies
    close: Callable[[], Awaitable[None]] | None = None
    # Checks bearer tokens on every route and RPC not declared public; None: no authentication
    # (only for the shared library's own tests; every service sets one).
    verifier: Verifier | None = None
    # Called when the service starts stopping, before the grace period: ends what would otherwise
    # run through it (e.g. watch streams), while in-flight requests finish.
    draining: Callable[[], Awaitable[None]] | None = None
    # Whole applications served under a path prefix beside the routes, with their own wire format
    # (k8shost's Kubernetes API under /k8s); they are not in the OpenAPI document of the routes.
    mounts: Mapping[str, web.Application] = field(default_factory=dict)
    # Reads the domain's gauges and counters from the core when /metrics is scraped (cheap reads:
    # counts, not listings); None: the service has only the request, process and build metrics.
    domain_metrics: DomainRead | None = None


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class BindError(RuntimeError):
    """A port the service is configured for cannot be listened on (taken, not this host's address, ...)."""

    def __init__(self, service: str, transport: str, address: str, reason: str):
        super().__init__(f"{service} cannot listen on {address} ({transport}): {reason}")
        self.address = address
        self.transport = transport


def _check_free(service: str, transport: str, host: str, port: int) -> None:
    """Raise BindError when host:port cannot be bound now (as the servers bind: SO_REUSEADDR, so that a
    port in TIME_WAIT counts as free). Checked before either server starts, so a taken port is reported
    in one line and no port of the service stays held."""
    if port == 0:
        return
    try:
        infos = socket.getaddrinfo(host or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror as exc:
        raise BindError(service, transport, _host_port(host, port), exc.strerror or str(exc)) from None
    for family, kind, proto, _, address in infos:
        with socket.socket(family, kind, proto) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(address)
            except OSError as exc:
                reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
                raise BindError(service, transport, _host_port(host, port), reason) from None


class Server:
    """Both transports of one service; start() binds them, stop() drains them and closes the core."""

    def __init__(self, service: Service, config: ServerConfig):
        self.service = service
        self.config = config
        self.metrics = RequestMetrics(service.name, service.version)
        self.domain_metrics = (DomainMetrics(service.name, service.domain_metrics)
                               if service.domain_metrics is not None else None)
        self.health = health.aio.HealthServicer()
        self.serving = False
        self.rest_port = 0
        self.grpc_port = 0
        self._grpc: grpc.aio.Server | None = None
        self._runner: web.AppRunner | None = None
        self.tls_files: tls.ServerFiles | None = None  # what both ports present when TLS is on

    async def start(self) -> None:
        """Bind and start both servers (port 0 picks free ports, stored in rest_port/grpc_port)."""
        if self.config.tls.enabled:
            # auto mode makes the CA and this service's certificate here, on first start
            self.tls_files = tls.server_files(self.config.tls, self.service.name)
        access = self.grpc_access()  # read once: both transports show the same gates
        _check_free(self.service.name, "REST", self.config.bind, self.config.rest_port)
        _check_free(self.service.name, "gRPC", self.config.bind, self.config.grpc_port)
        try:
            await self._start_grpc(access)
            await self._start_rest(access)
        except BaseException:
            # One port taken (between the check and the bind): let the other go, not hold it while exiting.
            await self._release()
            raise
        self.serving = True
        scheme = "https" if self.tls_files else "http"
        log.info("%s serving REST on %s://%s and gRPC%s on %s", self.service.name, scheme,
                 _host_port(self.config.bind, self.rest_port), " (TLS)" if self.tls_files else "",
                 _host_port(self.config.bind, self.grpc_port))

    def grpc_access(self) -> dict[str, Access | None]:
        """Every method of the served gRPC services and what calling it takes: its declaration in the
        contract (the method's option), or in the service's table (None: undeclared, the operator's)."""
        access: dict[str, Access | None] = {}
        for grpc_service in self.service.grpc_services:
            try:
                access.update(gateway.access_table(gateway.service_descriptor(grpc_service.name)))
            except KeyError:  # served by a generic handler with no descriptor (tests)
                pass
            access.update(grpc_service.access)
        return access

    async def _start_grpc(self, declared: dict[str, Access | None]) -> None:
        access = {method: a for method, a in declared.items() if a is not None}
        # No SO_REUSEPORT (gRPC sets it by default): a second server on a taken port must fail to
        # bind, not silently share the port and answer half of this service's calls.
        server = grpc.aio.server(interceptors=[ServerInterceptor(self.metrics, self.service.verifier, access)],
                                 options=[("grpc.so_reuseport", 0)])
        for grpc_service in self.service.grpc_services:
            grpc_service.add_to_server(server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, server)
        names = [s.name for s in self.service.grpc_services]
        reflection.enable_server_reflection(
            [*names, health_pb2.DESCRIPTOR.services_by_name["Health"].full_name, reflection.SERVICE_NAME],
            server,
        )
        address = _host_port(self.config.bind, self.config.grpc_port)
        try:
            if self.tls_files is not None:
                self.grpc_port = server.add_secure_port(address, tls.grpc_server_credentials(self.tls_files))
            else:
                self.grpc_port = server.add_insecure_port(address)
        except RuntimeError:  # grpc says only "Failed to bind"; the check before it says why when it can
            raise BindError(self.service.name, "gRPC", address, "the port cannot be bound") from None
        await server.start()
        for name in ["", *names]:
            await self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        self._grpc = server

    async def _start_rest(self, declared: dict[str, Access | None]) -> None:
        routes = RouteTable().extend(self.service.routes).extend(self.operations_routes())
        app = make_app(routes, self.metrics, self.config.max_body_bytes, self.service.verifier)
        for prefix, mounted in self.service.mounts.items():
            app.add_subapp(prefix, mounted)
        self._openapi = openapi_document(f"{self.service.name} REST API", self.service.version, routes)
        # The gRPC methods' declarations beside the routes', so that one document shows the gate
        # of every operation on both transports (tests generate the authorization matrix from it).
        self._openapi["x-grpc-methods"] = {
            method: {"x-who": a.who, "x-permission": a.permission} if a is not None else {}
            for method, a in sorted(declared.items())
        }
        self._runner = web.AppRunner(app, access_log=None, shutdown_timeout=self.config.shutdown_grace)
        await self._runner.setup()
        ssl_context = tls.server_ssl_context(self.tls_files) if self.tls_files is not None else None
        site = web.TCPSite(self._runner, self.config.bind, self.config.rest_port, ssl_context=ssl_context)
        try:
            await site.start()
        except OSError as exc:
            reason = "address already in use" if exc.errno == errno.EADDRINUSE else exc.strerror or str(exc)
            raise BindError(self.service.name, "REST", _host_port(self.config.bind, self.config.rest_port),
                            reason) from None
        self.rest_port = self._runner.addresses[0][1]

    def operations_routes(self) -> RouteTable:
        """GET /health, /metrics, /api/v1/openapi.json and the API explorer over it, /docs."""
        routes = RouteTable()

        @routes.get("/health", "Service health: status, version and dependencies", raw=True, who=auth.PUBLIC,
                    content_types=("application/json",))
        async def get_health(request: web.Request) -> web.Response:
            report: dict[str, Any] = {"status": "SERVING", "service": self.service.name,
                                      "version": self.service.version}
            try:
                report["dependencies"] = await self.service.dependencies()
            except Exception as exc:  # noqa: BLE001 - a failing dependency is what health reports
                report.update(status="NOT_SERVING", dependencies={"error": str(exc)})
            if not self.serving:
                report["status"] = "NOT_SERVING"
            return json_response(envelope.success(report), 200 if report["status"] == "SERVING" else 503)

        @routes.get("/metrics", "Request counts and latencies, the process, the build and the domain's gauges, "
                    "Prometheus text format", raw=True, who=auth.PUBLIC, content_types=(CONTENT_TYPE,))
        async def get_metrics(request: web.Request) -> web.Response:
            domain = await self.domain_metrics.collect() if self.domain_metrics is not None else []
            response = web.Response(body=self.metrics.exposition(domain))
            response.headers["Content-Type"] = CONTENT_TYPE
            return response

        @routes.get("/api/v1/openapi.json", "This OpenAPI document", raw=True, who=auth.PUBLIC,
                    content_types=("application/json",))
        async def get_openapi(request: web.Request) -> web.Response:
            return json_response(self._openapi)

        @routes.get(apidocs.PAGE_PATH, "The API explorer (Swagger UI) over this OpenAPI document", raw=True,
                    who=auth.PUBLIC, content_types=(apidocs.HTML,))
        async def get_docs(request: web.Request) -> web.Response:
            return apidocs.page(f"{self.service.name} REST API")

        @routes.get(apidocs.STATIC_PATH, "A file of the API explorer (its script, style sheet, icons)", raw=True,
                    who=auth.PUBLIC, content_types=apidocs.STATIC_TYPES)
        async def get_docs_file(request: web.Request, name: str) -> web.FileResponse:
            return apidocs.static_file(name)

        return routes

    async def _release(self) -> None:
        """Close whatever port a failed start bound (nothing was served on it yet)."""
        if self._grpc is not None:
            await self._grpc.stop(0)
            self._grpc = None
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def stop(self) -> None:
        """Refuse new work, let in-flight requests finish (up to the grace period), close the core."""
        self.serving = False
        await self.health.enter_graceful_shutdown()
        if self.service.draining is not None:
            await self.service.draining()
        stopping = []
        if self._grpc is not None:
            stopping.append(self._grpc.stop(self.config.shutdown_grace))
        if self._runner is not None:
            stopping.append(self._runner.cleanup())
        await asyncio.gather(*stopping)
        if self.service.close is not None:
            await self.service.close()
        log.info("%s stopped", self.service.name)


async def serve(service: Service, config: ServerConfig) -> None:
    """Run service until SIGTERM or SIGINT, then stop gracefully (BindError, the core closed, when a
    port cannot be listened on)."""
    server = Server(service, config)
    try:
        await server.start()
    except BindError:
        if service.close is not None:
            await service.close()
        raise
    stop = asyncio.Event()
    on_stop_signals(stop.set)
    await stop.wait()
    log.info("%s shutting down", service.name)
    await server.stop()


def run(
    name: str,
    rest_port: int,
    build: Callable[[ServerConfig], Awaitable[Service]],
    argv: Sequence[str] | None = None,
    add_options: AddOptions | None = None,
) -> None:
    """The `__main__` of a service: read the configuration (with the service's own flags), build
    the service, serve it."""
    config = load_config(name, rest_port, argv, add_options=add_options)
    # Everything a service writes (data files, their directories, keys) is its own: 0600 and 0700.
    os.umask(0o077)
    setup_logging(name, config.log_level, config.log_format)
    # The calls this service makes to others (IAM, PrismNET, ...) verify them against the CA.
    tls.configure_clients(config.tls)
    if config.tls.enabled and name != "iam" and config.iam_url.startswith("http://"):
        log.warning("TLS is on but --iam-url is %s: a platform with TLS on serves IAM over https", config.iam_url)

    async def main() -> None:
        await serve(await build(config), config)

    try:
        asyncio.run(main())
    except BindError as exc:
        # One line saying which address, no traceback: the usual cause is another process on the port.
        log.error("%s", exc, extra={"fields": {"address": exc.address, "transport": exc.transport}})
        sys.exit(EXIT_BIND)
