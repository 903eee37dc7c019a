"""The REST side of a service: declared routes, JSON bodies, and the one error-mapping middleware."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware
from pydantic import BaseModel, ValidationError

from . import auth, envelope, request_id
from .auth import Verifier
from .errors import Code, Internal, InvalidArgument, ServiceError, Unimplemented
from .metrics import RequestMetrics

log = logging.getLogger("photoncloud.rest")

Handler = Callable[..., Awaitable[Any]]


@dataclass(frozen=True)
class Route:
    """One REST operation: method, path, handler, and the models that describe it."""

    method: str
    path: str
    handler: Handler
    summary: str
    body: type[BaseModel] | None = None
    query: type[BaseModel] | None = None
    response: type[BaseModel] | None = None
    status: int = 200
    raw: bool = False  # the handler builds its own web.Response (health, metrics)
    # The media types a raw route answers with (text/plain, text/html, ...), for the OpenAPI document;
    # none: undeclared (a raw route serving a streaming RPC answers text/event-stream: sse.stream).
    content_types: tuple[str, ...] = ()
    rpc: str | None = None  # the gRPC method doing the same, "package.Service/Method"
    permission: str | None = None  # what the caller's token must grant, e.g. "chainfire:kv:write"
    who: str = ""  # auth.PUBLIC, TENANT or OPERATOR; "" (undeclared) is served as OPERATOR
    binding: Any = None  # a gateway.Binding: the RPC the route runs, which describes it instead of models

    @property
    def public(self) -> bool:
        """Whether the route is served without a token (health, token issuance, ...)."""
        return self.who == auth.PUBLIC


class RouteTable:
    """The routes of a service, declared with decorators, e.g. `@routes.get("/api/v1/x")`."""

    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, method: str, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare the decorated coroutine as the handler of method + path."""

        def register(handler: Handler) -> Handler:
            self.routes.append(Route(method, path, handler, summary, **options))
            return handler

        return register

    def get(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a GET route."""
        return self.add("GET", path, summary, **options)

    def put(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a PUT route."""
        return self.add("PUT", path, summary, **options)

    def post(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a POST route."""
        return self.add("POST", path, summary, **options)

    def patch(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a PATCH route."""
        return self.add("PATCH", path, summary, **options)

    def delete(self, path: str, summary: str, **options: Any) -> Callable[[Handler], Handler]:
        """Declare a DELETE route."""
        return self.add("DELETE", path, summary, **options)

    def extend(self, other: RouteTable) -> RouteTable:
        """Add another table's routes to this one."""
        self.routes.extend(other.routes)
        return self

    def install(self, app: web.Application, verifier: Verifier | None) -> None:
        """Register every route with an aiohttp application, behind the verifier's checks."""
        for route in self.routes:
            app.router.add_route(route.method, route.path, _endpoint(route, verifier))


def dump(result: Any) -> Any:
    """A handler's result as JSON-ready data."""
    if isinstance(result, BaseModel):
        return result.model_dump(mode="json")
    return result


def json_response(body: Any, status: int = 200) -> web.Response:
    """A JSON response."""
    return web.Response(
        text=json.dumps(body, separators=(",", ":")), status=status, content_type="application/json"
    )


def error_response(exc: ServiceError) -> web.Response:
    """The error envelope for exc, with the HTTP status its code maps to (and the headers HTTP
    clients look for: Retry-After when the details name a wait, WWW-Authenticate on 401)."""
    response = json_response(envelope.error(exc.code, exc.message, exc.details), exc.code.http_status)
    retry_after = (exc.details or {}).get("retry_after_seconds")
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    if exc.code is Code.UNAUTHENTICATED:
        response.headers["WWW-Authenticate"] = 'Bearer realm="photoncloud"'
    return response


def parse_model(model: type[BaseModel], data: Any, where: str) -> BaseModel:
    """data validated into model; INVALID_ARGUMENT naming the offending fields otherwise."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # Only locations and messages: the rejected input may hold a secret.
        problems = [
            {"field": ".".join(str(part) for part in err["loc"]), "message": err["msg"]}
            for err in exc.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        raise InvalidArgument(
            f"invalid {where}: {first['field'] or where}: {first['message']}",
            {"field": first["field"], "errors": problems},
        ) from None


async def read_json(request: web.Request) -> Any:
    """The request's JSON body ({} when empty); INVALID_ARGUMENT when it is not JSON."""
    raw = await request.read()
    if not raw.strip():
        return {}
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"request body is not valid JSON: {exc}", {"field": "body"}) from None
    except RecursionError:  # arrays or objects nested deeper than the parser goes
        raise InvalidArgument("request body is nested too deeply", {"field": "body"}) from None


def _endpoint(route: Route, verifier: Verifier | None) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    async def endpoint(request: web.Request) -> web.StreamResponse:
        principal = await auth.admit(verifier, request.headers.get("Authorization"), route.who, route.permission)
        token = auth.bind(principal)
        try:
            kwargs: dict[str, Any] = dict(request.match_info)
            if route.query is not None:
                kwargs["query"] = parse_model(route.query, dict(request.query), "query parameter")
            if route.body is not None:
                kwargs["body"] = parse_model(route.body, await read_json(request), "request body")
            result = await route.handler(request, **kwargs)
        finally:
            auth.reset(token)
        if route.raw:
            response: web.StreamResponse = result
            return response
        return json_response(envelope.success(dump(result)), route.status)

    return endpoint


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> ServiceError:
    """The platform error for an error aiohttp itself raised (routing, body size)."""
    if isinstance(exc, web.HTTPNotFound):
        return ServiceError(f"no route for {request.method} {request.path}", code=Code.NOT_FOUND)
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        limit = request.app._client_max_size  # noqa: SLF001 - aiohttp exposes no public getter
        return InvalidArgument(
            f"request body is larger than the limit of {limit} bytes",
            {"reason": "BODY_TOO_LARGE", "max_bytes": limit},
        )
    if exc.status >= 500:
        return Internal(exc.reason)
    return InvalidArgument(exc.reason)


# The one exception to the code table's HTTP statuses: a method a known path does not serve is
# UNIMPLEMENTED (what gRPC answers for a method it lacks), sent as HTTP's 405 with the `Allow` header
# RFC 9110 requires, so that HTTP clients and tools see the status they expect (as gRPC-gateway does).
METHOD_NOT_ALLOWED = 405


def method_not_allowed(exc: web.HTTPMethodNotAllowed, request: web.Request) -> web.Response:
    """405 in the error envelope (code UNIMPLEMENTED), with the path's methods in `Allow` and in
    `details.allowed_methods`."""
    allowed = sorted(exc.allowed_methods)
    response = error_response(Unimplemented(
        f"method {request.method} is not allowed on {request.path}", {"allowed_methods": allowed}))
    response.set_status(METHOD_NOT_ALLOWED)
    response.headers["Allow"] = ", ".join(allowed)
    return response


RequestHandler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _serve(request: web.Request, handler: RequestHandler) -> tuple[web.StreamResponse, str]:
    """The handler's response and its code name, with every failure turned into an envelope."""
    try:
        try:
            return await handler(request), "OK"
        except web.HTTPException as exc:
            if exc.status < 400:  # a redirect is a response, not an error (re-raising made it a 500)
                return web.Response(status=exc.status, headers=exc.headers, body=exc.body), "OK"
            if isinstance(exc, web.HTTPMethodNotAllowed):
                return method_not_allowed(exc, request), Code.UNIMPLEMENTED.name
            raise _from_http_exception(exc, request) from None
    except ServiceError as exc:
        return error_response(exc), exc.code.name
    except Exception:
        log.exception("unhandled error serving %s %s", request.method, request.path)
        return error_response(Internal("internal error; see the service log")), Code.INTERNAL.name


def envelope_middleware(metrics: RequestMetrics) -> Middleware:
    """The one middleware per service: request ID, error envelope, metrics and access log."""

    @web.middleware
    async def middleware(request: web.Request, handler: RequestHandler) -> web.StreamResponse:
        rid = request_id.accept(request.headers.get(request_id.HEADER))
        token = request_id.bind(rid)  # reset only after the envelope, which reads it, is built
        started = time.perf_counter()
        try:
            response, code = await _serve(request, handler)
            if not response.prepared:
                response.headers[request_id.HEADER] = rid
            resource = request.match_info.route.resource
            route = resource.canonical if resource is not None else "unmatched"
            seconds = time.perf_counter() - started
            metrics.observe("rest", request.method, route, code, seconds)
            if log.isEnabledFor(logging.INFO):  # the access line; its arguments are built only if it is written
                log.info(
                    "%s %s %s", request.method, request.path_qs, response.status,
                    extra={"fields": {"status": response.status, "duration_ms": round(seconds * 1000, 2)}},
                )
            return response
        finally:
            request_id.reset(token)

    return middleware


def make_app(routes: RouteTable, metrics: RequestMetrics, max_body_bytes: int,
             verifier: Verifier | None = None) -> web.Application:
    """An aiohttp application serving routes behind the envelope middleware (and the verifier)."""
    app = web.Application(middlewares=[envelope_middleware(metrics)], client_max_size=max_body_bytes)
    routes.install(app, verifier)
    return app
