"""The Kubernetes API (core/v1) over k8shost's core, as an aiohttp application mounted under /k8s on
k8shost's REST port: `kubectl --server https://host:8085/k8s` (kubectl sends tokens only over TLS) and the
official clients work against it.

Every request is authenticated with the same IAM bearer tokens as the rest of the platform; the core
authorizes it, exactly as for the platform's own API (the same permissions, the same tenancy). Errors
are Kubernetes Status objects. Writes go through the same core calls, so the rules hold in one place.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any, cast

from aiohttp import web

from photoncloud.common import auth
from photoncloud.common.auth import Verifier
from photoncloud.common.rest import json_response
from photoncloud.common.errors import Aborted, InvalidArgument, NotFound, ServiceError, Unimplemented
from photoncloud.common.streams import StreamGuard

from .. import selectors, validation
from ..core import KubeCore, Page
from ..records import Event, Namespace, Node, Object, Pod, Service
from . import discovery, fields, objects, patch, protobuf, schema, status, tables, watching
from .resources import GROUPS, RESOURCES, SUBRESOURCES, Resource

log = logging.getLogger("photoncloud.k8shost.kube")

PREFIX = "/k8s"
MAX_LIST = 100_000  # items one unpaged listing returns at most (Kubernetes has no bound; clients page with limit)
PATCH_RETRIES = 5  # a PATCH re-reads and re-applies when the object changed under it, as the API server does
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
WARNINGS = "photoncloud.kube.warnings"  # the request's key for the Warning headers its answer carries
REASON_OF_HTTP = {413: "RequestEntityTooLarge", 415: "UnsupportedMediaType", 406: "NotAcceptable"}


def _flag(value: str | None) -> bool:
    return (value or "").lower() in ("true", "1")


class KubeApi:
    """The handlers, over one core."""

    def __init__(self, kube: KubeCore, verifier: Verifier | None, streams: StreamGuard, service_version: str,
                 bookmark_seconds: float = watching.BOOKMARK_SECONDS) -> None:
        self.kube = kube
        self.verifier = verifier
        self.streams = streams
        self.service_version = service_version
        self.bookmark_seconds = bookmark_seconds

    def app(self) -> web.Application:
        """The application to mount under PREFIX."""
        app = web.Application()
        public = {"/version": self.version, "/api": self.api, "/api/v1": self.resource_list, "/apis": self.groups,
                  "/openapi/v3": self.openapi_paths, "/openapi/v3/api/v1": self.openapi}
        for path, handler in public.items():
            app.router.add_route("GET", path, self._endpoint(handler, public=True))
        # Namespaced paths first: /api/v1/namespaces/{name} alone is the cluster-scoped namespace itself.
        app.router.add_route("*", "/api/v1/namespaces/{namespace}/{resource}/{name}/{sub}",
                             self._endpoint(self.subresource))
        app.router.add_route("*", "/api/v1/namespaces/{namespace}/{resource}/{name}", self._endpoint(self.item))
        app.router.add_route("*", "/api/v1/namespaces/{namespace}/{resource}", self._endpoint(self.collection))
        app.router.add_route("*", "/api/v1/{resource}/{name}", self._endpoint(self.item))
        app.router.add_route("*", "/api/v1/{resource}", self._endpoint(self.collection))
        # The named groups (discovery.k8s.io), the same way under /apis/<group>/v1.
        app.router.add_route("GET", "/apis/{group}", self._endpoint(self.group, public=True))
        app.router.add_route("GET", "/apis/{group}/v1", self._endpoint(self.group_resources, public=True))
        app.router.add_route("*", "/apis/{group}/v1/namespaces/{namespace}/{resource}/{name}",
                             self._endpoint(self.item))
        app.router.add_route("*", "/apis/{group}/v1/namespaces/{namespace}/{resource}", self._endpoint(self.collection))
        app.router.add_route("*", "/apis/{group}/v1/{resource}/{name}", self._endpoint(self.item))
        app.router.add_route("*", "/apis/{group}/v1/{resource}", self._endpoint(self.collection))
        app.router.add_route("*", "/{tail:.*}", self._endpoint(self.unknown, public=True))
        return app

    def _endpoint(self, handler: Handler, public: bool = False) -> Handler:
        async def endpoint(request: web.Request) -> web.StreamResponse:
            info = request.match_info
            what = RESOURCES.get(info.get("resource", ""))
            try:
                principal = None if public else await auth.admit(
                    self.verifier, request.headers.get("Authorization"), auth.TENANT, None)
                token = auth.bind(principal)
                try:
                    response = await handler(request)
                finally:
                    auth.reset(token)
                if not response.prepared:
                    for warning in request.get(WARNINGS, ()):
                        response.headers.add("Warning", warning)
                return response
            except ServiceError as exc:
                return status.response(status.of_error(exc, what.name if what else "", info.get("name", "")))
            except web.HTTPException as exc:  # aiohttp's own refusals (a body over the size limit: 413)
                reason = REASON_OF_HTTP.get(exc.status, "BadRequest" if exc.status < 500 else "InternalError")
                return status.response(status.status(exc.text or exc.reason, reason, exc.status))
            except Exception:
                log.exception("unhandled error serving %s %s", request.method, request.path)
                return status.response(status.status("internal error; see the service log", "InternalError", 500))

        return endpoint

    # Discovery

    async def version(self, request: web.Request) -> web.Response:
        """GET /version."""
        return json_response(discovery.version(self.service_version))

    async def api(self, request: web.Request) -> web.Response:
        """GET /api."""
        return json_response(discovery.api_versions(request.host))

    async def resource_list(self, request: web.Request) -> web.Response:
        """GET /api/v1."""
        return json_response(discovery.resource_list())

    async def groups(self, request: web.Request) -> web.Response:
        """GET /apis."""
        return json_response(discovery.api_groups())

    async def group(self, request: web.Request) -> web.Response:
        """GET /apis/<group>."""
        return json_response(discovery.api_group(self._group(request)))

    async def group_resources(self, request: web.Request) -> web.Response:
        """GET /apis/<group>/v1."""
        return json_response(discovery.resource_list(self._group(request)))

    @staticmethod
    def _group(request: web.Request) -> str:
        group = request.match_info["group"]
        if group not in GROUPS:
            raise NotFound(f"the server could not find the requested resource (group {group})")
        return group

    async def openapi_paths(self, request: web.Request) -> web.Response:
        """GET /openapi/v3."""
        return json_response(discovery.openapi_v3_paths())

    async def openapi(self, request: web.Request) -> web.Response:
        """GET /openapi/v3/api/v1."""
        answer = web.Response(body=discovery.openapi_v3_body(), content_type="application/json")
        answer.headers["Cache-Control"] = "public, immutable" if request.query.get("hash") else "no-cache"
        return answer

    async def unknown(self, request: web.Request) -> web.Response:
        """Any other path."""
        return status.response(status.status("the server could not find the requested resource", "NotFound", 404,
                                              {"causes": [{"reason": "UnexpectedServerResponse",
                                                           "message": f"{request.method} {request.path}"}]}))

    # Routing

    def _resource(self, request: web.Request) -> tuple[Resource, str]:
        """The resource the path names, and its namespace ("" for cluster-scoped ones and all namespaces)."""
        info = request.match_info
        resource = RESOURCES.get(info["resource"])
        namespace = info.get("namespace", "")
        if resource is None or resource.group != info.get("group", "") or (namespace and not resource.namespaced):
            raise NotFound(f"the server could not find the requested resource ({info['resource']})")
        return resource, namespace

    @staticmethod
    def _refuse(resource: Resource, verb: str) -> None:
        if not resource.can(verb):
            raise Unimplemented(f"{resource.name} cannot be {verb}d through this API (it serves "
                                f"{', '.join(resource.verbs)})", {"reason": "METHOD_NOT_ALLOWED"})

    async def collection(self, request: web.Request) -> web.StreamResponse:
        """GET (list or watch) and POST (create) on a collection."""
        resource, namespace = self._resource(request)
        if request.method == "GET":
            self._refuse(resource, "list")
            if _flag(request.query.get("watch")):
                return await self.watch(request, resource, namespace)
            return await self.list(request, resource, namespace)
        if request.method == "POST":
            self._refuse(resource, "create")
            if resource.namespaced and not namespace:
                raise NotFound(f"{resource.name} are created in a namespace: POST "
                               f"/api/v1/namespaces/{{namespace}}/{resource.name}")
            body = await self._manifest(request, resource)
            return json_response(objects.show(await self.create(resource, namespace, body)), 201)
        raise Unimplemented(f"{request.method} is not served on a collection", {"reason": "METHOD_NOT_ALLOWED"})

    async def item(self, request: web.Request) -> web.StreamResponse:
        """GET, PUT, PATCH and DELETE on one object."""
        resource, namespace = self._resource(request)
        name = request.match_info["name"]
        if resource.namespaced and not namespace:
            raise NotFound(f"the server could not find the requested resource ({resource.name} are namespaced)")
        if request.method == "GET":
            return json_response(objects.show(await self.get(resource, namespace, name), resource.name))
        if request.method == "PUT":
            self._refuse(resource, "update")
            body = await self._manifest(request, resource)
            return json_response(objects.show(await self.update(resource, namespace, name, body)))
        if request.method == "PATCH":
            self._refuse(resource, "patch")
            return json_response(objects.show(await self.patch(request, resource, namespace, name)))
        if request.method == "DELETE":
            self._refuse(resource, "delete")
            return json_response(objects.show(await self.delete(request, resource, namespace, name)))
        raise Unimplemented(f"{request.method} is not served on an object", {"reason": "METHOD_NOT_ALLOWED"})

    async def subresource(self, request: web.Request) -> web.StreamResponse:
        """GET pods/{name}/status and pods/{name}/log."""
        resource, namespace = self._resource(request)
        name, sub = request.match_info["name"], request.match_info["sub"]
        if (resource.name, sub) not in SUBRESOURCES:
            raise NotFound(f"the server could not find the requested resource ({resource.name}/{sub})")
        if sub == "log" and request.method == "GET":
            return await self.log(request, namespace, name)
        if request.method == "GET":
            return json_response(objects.show(await self.get(resource, namespace, name)))
        if request.method in ("PUT", "PATCH"):
            return json_response(objects.show(await self.status(request, namespace, name)))
        raise Unimplemented(f"{request.method} is not served on {resource.name}/{sub}",
                            {"reason": "METHOD_NOT_ALLOWED"})

    async def status(self, request: web.Request, namespace: str, name: str) -> Object:
        """PUT or PATCH pods/{name}/status: a node agent's report (a system-scoped token, as the core requires)."""
        pods = RESOURCES["pods"]
        current = await self.get(pods, namespace, name)
        if request.method == "PUT":
            body = await self._manifest(request, pods)
        else:
            body = self._checked(request, pods, patch.apply(request.headers.get("Content-Type", ""),
                                                            objects.show(current), await self._json_body(request),
                                                            pods.kind))
        return await self.kube.update_pod_status(namespace, name, current.metadata.uid, objects.pod_status(body))

    # Reads

    async def get(self, resource: Resource, namespace: str, name: str) -> Object:
        """One object."""
        kube = self.kube
        try:
            match resource.kind_of_core:
                case "namespaces":
                    return await kube.namespace(name)
                case "pods":
                    return await kube.pod(namespace, name)
                case "services":
                    return await kube.service(namespace, name)
                case "endpoints":
                    return await kube.endpoints(namespace, name)  # type: ignore[no-any-return]
                case "nodes":
                    return await kube.node(name)
                case _:
                    return await kube.event(namespace, name)
        except NotFound as exc:
            if (exc.details or {}).get("name") == name:  # the object itself, not its namespace
                raise NotFound(f'{resource.name} "{name}" not found', exc.details) from None
            raise

    async def _page(self, resource: Resource, namespace: str, label_selector: str, limit: int,
                    token: str) -> Page:
        kube = self.kube
        match resource.kind_of_core:
            case "namespaces":
                return await kube.namespaces(label_selector=label_selector, page_size=limit, page_token=token)
            case "pods":
                return await kube.pods(namespace, label_selector, page_size=limit, page_token=token)
            case "services":
                return await kube.services(namespace, label_selector, limit, token)
            case "endpoints":
                return await kube.endpoints_list(namespace, label_selector, limit, token)
            case "nodes":
                return await kube.nodes(label_selector, limit, token)
            case _:
                return await kube.events(namespace, label_selector, limit, token)

    @staticmethod
    def _selection(request: web.Request, resource: Resource) -> tuple[str, Callable[[dict[str, Any]], bool]]:
        """The label selector the core filters by, and what this API filters the objects it shows by: the field
        selector, and the label selector too for a view whose labels are not its core objects' (EndpointSlices)."""
        matches = fields.parse(request.query.get("fieldSelector", ""), resource.name)
        label_selector = request.query.get("labelSelector", "")
        if not resource.source:
            return label_selector, matches
        wanted = selectors.parse(label_selector)
        return "", lambda obj: wanted.matches(obj["metadata"].get("labels") or {}) and matches(obj)

    async def list(self, request: web.Request, resource: Resource, namespace: str) -> web.Response:
        """A listing: every matching object, or a page of limit with a continue token."""
        query = request.query
        label_selector, matches = self._selection(request, resource)
        limit = _integer(query.get("limit"), "limit")
        token = query.get("continue", "")
        items: list[dict[str, Any]] = []
        while True:
            page = await self._page(resource, namespace, label_selector, limit or 0, token)
            items.extend(x for x in (objects.show(o, resource.name) for o in page.items) if matches(x))
            token = page.next_page_token
            if limit or not token:
                break
            if len(items) > MAX_LIST:
                raise InvalidArgument(f"more than {MAX_LIST} {resource.name}: list them in pages (limit, continue)",
                                      {"field": "limit"})
        list_meta = {"resourceVersion": str(page.resource_version)}
        if token:
            list_meta["continue"] = token
        if tables.wants_table(request.headers.get("Accept", "")):
            return json_response(tables.table(resource.name, items, list_meta, query.get("includeObject", "Metadata")))
        for item in items:  # items of a list carry no kind of their own, as Kubernetes writes them
            item.pop("kind", None)
            item.pop("apiVersion", None)
        return json_response({"kind": f"{resource.kind}List", "apiVersion": resource.api_version, "metadata": list_meta,
                      "items": items})

    async def watch(self, request: web.Request, resource: Resource, namespace: str) -> web.StreamResponse:
        """A watch: Kubernetes watch events, one JSON document a line."""
        query = request.query
        label_selector, matches = self._selection(request, resource)
        timeout = _integer(query.get("timeoutSeconds"), "timeoutSeconds")
        version = query.get("resourceVersion", "")
        initial: list[dict[str, Any]] | None = None
        if _flag(query.get("sendInitialEvents")):
            # A streamed list: the current objects as ADDED, a bookmark saying they are all there, then changes.
            page = await self._page(resource, namespace, label_selector, 0, "")
            initial = [x for x in (objects.show(o, resource.name) for o in page.items) if matches(x)]
            version = str(page.resource_version)
        table = query.get("includeObject", "Metadata") if tables.wants_table(request.headers.get("Accept", "")) \
            else None
        async with self.streams.hold():
            try:
                opened = await self.kube.watch(resource.kind_of_core, namespace, label_selector, "",
                                               "" if version == "0" else version)
            except ServiceError as exc:
                if (exc.details or {}).get("reason") != "RESOURCE_VERSION_TOO_OLD":
                    raise
                return await watching.expired(request, status.of_error(exc))
            return await watching.stream(request, self.streams.watch(opened), resource, matches, opened.revision,
                                         timeout, table, _flag(query.get("allowWatchBookmarks")),
                                         self.bookmark_seconds, initial)

    async def log(self, request: web.Request, namespace: str, name: str) -> web.StreamResponse:
        """GET pods/{name}/log: text, or followed until the pod ends (follow=true)."""
        query = request.query
        for unsupported in ("previous", "timestamps", "sinceSeconds", "sinceTime"):
            if query.get(unsupported) not in (None, "", "false", "0"):
                raise InvalidArgument(f"{unsupported} is not supported by k8shost's logs", {"field": unsupported})
        tail = _integer(query.get("tailLines"), "tailLines")
        limit = _integer(query.get("limitBytes"), "limitBytes")
        container = query.get("container", "")
        _, text = await self.kube.pod_logs(namespace, name, container, tail)
        if not _flag(query.get("follow")):
            data = text.encode()
            return web.Response(body=data[:limit] if limit else data, content_type="text/plain", charset="utf-8")
        return await watching.follow(request, text, limit, lambda: self.kube.pod_logs(namespace, name, container, 0),
                                     lambda: self.kube.pod(namespace, name))

    # Writes

    async def _manifest(self, request: web.Request, resource: Resource) -> dict[str, Any]:
        """The request's object, checked against the schema as fieldValidation says."""
        if request.content_type == protobuf.MEDIA_TYPE:  # kubectl's typed commands (create namespace)
            return self._checked(request, resource, protobuf.decode(await request.read(), resource.kind))
        return self._checked(request, resource, await self._json_body(request))

    @staticmethod
    async def _json_body(request: web.Request) -> Any:
        try:
            return json.loads(await request.read() or b"null")
        except (ValueError, UnicodeDecodeError, RecursionError) as exc:
            raise InvalidArgument(f"the body is not JSON: {exc}", {"field": "body"}) from None

    @staticmethod
    def _checked(request: web.Request, resource: Resource, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise InvalidArgument("the body is not a JSON object", {"field": "body"})
        if body.get("kind", resource.kind) != resource.kind or body.get("apiVersion", "v1") != "v1":
            raise InvalidArgument(f"the object is {body.get('apiVersion')}/{body.get('kind')}, and this is the "
                                  f"path of v1/{resource.kind}", {"field": "body"})
        mode = request.query.get("fieldValidation", "Strict")
        if mode not in ("Strict", "Warn", "Ignore"):
            raise InvalidArgument("fieldValidation is Strict, Warn or Ignore", {"field": "body"})
        unknown = schema.unknown_fields(body, schema.kind_schema(resource.kind))
        if not unknown:
            return body
        if mode == "Strict":
            raise InvalidArgument("strict decoding error: " + ", ".join(
                f'unknown field "{f}"' for f in unknown) + " (k8shost does not keep these fields)",
                {"field": "body", "unknown_fields": unknown})
        if mode == "Warn":  # the API server's Warning headers (RFC 7234's 299), which kubectl prints
            request[WARNINGS] = [f'299 - "unknown field \\"{f}\\""' for f in unknown]
        return cast(dict[str, Any], schema.known(body, schema.kind_schema(resource.kind)))

    async def create(self, resource: Resource, namespace: str, body: dict[str, Any]) -> Object:
        """Create the object a manifest describes."""
        meta = body.get("metadata") or {}
        name = meta.get("name") or ""
        if not isinstance(name, str) or not name:
            raise InvalidArgument("metadata.name is required", {"field": "metadata.name"})
        if resource.namespaced and meta.get("namespace", namespace) != namespace:
            raise InvalidArgument("the namespace of the object does not match the namespace of the request",
                                  {"field": "metadata.namespace"})
        labels, annotations = objects.labels_and_annotations(body)
        kube = self.kube
        if resource.name == "namespaces":
            project_id, org_id = self._project(meta.get("annotations") or {})
            return await kube.create_namespace(name, org_id, project_id, labels, annotations,
                                               (meta.get("annotations") or {}).get(objects.SUBNET, ""))
        if resource.name == "pods":
            return await kube.create_pod(namespace, name, labels, annotations, spec=objects.pod_spec(body))
        if resource.name == "services":
            return await kube.create_service(namespace, name, labels, annotations, spec=objects.service_spec(body))
        return await kube.create_event(namespace, name, **objects.event_fields(body), labels=labels,
                                       annotations=annotations)

    @staticmethod
    def _project(annotations: dict[str, str]) -> tuple[str, str]:
        """The project (and org) a new namespace belongs to: the annotation's, or the project token's own."""
        project_id, org_id = annotations.get(objects.PROJECT, ""), annotations.get(objects.ORG, "")
        principal = auth.current()
        if principal is not None and principal.scope.kind == auth.PROJECT:
            project_id = project_id or principal.scope.project_id
            org_id = org_id or principal.scope.org_id
        if not project_id:
            raise InvalidArgument(f"a namespace belongs to an IAM project: create it with a project-scoped token, or "
                                  f"name the project in the annotation {objects.PROJECT}",
                                  {"field": f"metadata.annotations.{objects.PROJECT}"})
        return project_id, org_id

    async def update(self, resource: Resource, namespace: str, name: str, body: dict[str, Any],
                     expected: str | None = None) -> Object:
        """Replace an object with a manifest (what may change of it: labels, annotations, a service's spec, a
        namespace's subnet, a node's unschedulable)."""
        meta = body.get("metadata") or {}
        if meta.get("name", name) != name or (resource.namespaced and meta.get("namespace", namespace) != namespace):
            raise InvalidArgument("the name and namespace of the object must match the request's",
                                  {"field": "metadata.name"})
        version = str(meta.get("resourceVersion") or "") if expected is None else expected
        labels, annotations = objects.labels_and_annotations(body)
        current = await self.get(resource, namespace, name)
        kube = self.kube
        if isinstance(current, Namespace):
            given = meta.get("annotations") or {}
            if given.get(objects.PROJECT, current.project_id) != current.project_id:
                raise InvalidArgument("a namespace's project cannot change",
                                      {"field": f"metadata.annotations.{objects.PROJECT}"})
            return await kube.update_namespace(name, labels, annotations, version, given.get(objects.SUBNET, ""))
        if isinstance(current, Pod):
            wanted = validation.pod_spec(objects.pod_spec(body))
            if wanted != replace(current.spec, node_name=""):
                raise InvalidArgument("spec: Forbidden: a pod's spec cannot change once it is created (delete and "
                                      "create it again)", {"field": "spec"})
            return await kube.update_pod(namespace, name, labels, annotations, version)
        if isinstance(current, Service):
            return await kube.update_service(namespace, name, labels, annotations,
                                             objects.service_spec(body, current), version)
        if isinstance(current, Node):
            spec = body.get("spec") or {}
            return await kube.update_node(name, labels, annotations, bool(spec.get("unschedulable")), version)
        if isinstance(current, Event):
            return await kube.update_event(namespace, name, **objects.event_fields(body), labels=labels,
                                           annotations=annotations, resource_version=version)
        raise Unimplemented(f"{resource.name} cannot be updated", {"reason": "METHOD_NOT_ALLOWED"})

    async def patch(self, request: web.Request, resource: Resource, namespace: str, name: str) -> Object:
        """Apply a JSON, merge or strategic merge patch; re-read and re-apply when the object changed meanwhile
        (unless the patch itself names the resourceVersion it was made for)."""
        given = await self._json_body(request)
        for attempt in range(PATCH_RETRIES):
            current = objects.show(await self.get(resource, namespace, name))
            patched = patch.apply(request.headers.get("Content-Type", ""), current, given, resource.kind)
            body = self._checked(request, resource, patched)
            pinned = str((body.get("metadata") or {}).get("resourceVersion") or "")
            read = current["metadata"]["resourceVersion"]
            try:
                return await self.update(resource, namespace, name, body, pinned if pinned != read else read)
            except Aborted:
                if pinned != read or attempt == PATCH_RETRIES - 1:
                    raise
        raise AssertionError("unreachable")

    async def delete(self, request: web.Request, resource: Resource, namespace: str, name: str) -> Object:
        """Delete an object (DeleteOptions' preconditions are checked)."""
        raw = await request.read()
        options: dict[str, Any] = {}
        if raw.strip():
            try:
                options = json.loads(raw)
            except (ValueError, UnicodeDecodeError, RecursionError):
                raise InvalidArgument("the body is not DeleteOptions JSON", {"field": "body"}) from None
            if not isinstance(options, dict):
                raise InvalidArgument("the body is not DeleteOptions JSON", {"field": "body"})
        preconditions = options.get("preconditions") or {}
        version = str(preconditions.get("resourceVersion") or request.query.get("resourceVersion") or "")
        current = await self.get(resource, namespace, name)
        if preconditions.get("uid") and preconditions["uid"] != current.metadata.uid:
            raise Aborted(f'Precondition failed: UID in precondition: {preconditions["uid"]}, UID in object meta: '
                          f'{current.metadata.uid}', {"reason": "CONFLICT"})
        kube = self.kube
        match resource.name:
            case "namespaces":
                return await kube.delete_namespace(name, version)
            case "pods":
                return await kube.delete_pod(namespace, name, version)
            case "services":
                return await kube.delete_service(namespace, name, version)
            case "nodes":
                return await kube.delete_node(name, version)
            case _:
                return await kube.delete_event(namespace, name, version)


def _integer(value: str | None, name: str) -> int:
    """A non-negative integer query parameter (0 when absent)."""
    if value in (None, ""):
        return 0
    if not value.isascii() or not value.isdigit() or len(value) > 9:
        raise InvalidArgument(f"{name} must be a non-negative integer", {"field": name})
    return int(value)

