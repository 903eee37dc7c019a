"""Discovery: /version, /api, /api/v1, /apis, and the OpenAPI v3 document kubectl reads to validate
manifests on the server (the fieldValidation parameter) and to compute apply's strategic merge patches."""

from __future__ import annotations

import hashlib
import json
from functools import cache
from typing import Any

from . import schema
from .resources import GROUPS, RESOURCES, SUBRESOURCES, Resource

# The Kubernetes release whose core/v1 k8shost follows (the subset the resources list).
KUBERNETES_MAJOR, KUBERNETES_MINOR = "1", "33"
GV_PATH = "api/v1"
PATCH_TYPES = ("application/json-patch+json", "application/merge-patch+json", "application/strategic-merge-patch+json")


def version(service_version: str) -> dict[str, Any]:
    """GET /version."""
    return {"major": KUBERNETES_MAJOR, "minor": KUBERNETES_MINOR,
            "gitVersion": f"v{KUBERNETES_MAJOR}.{KUBERNETES_MINOR}.0+k8shost-{service_version}",
            "gitCommit": "", "gitTreeState": "", "buildDate": "", "goVersion": "", "compiler": "",
            "platform": "linux/amd64"}


def api_versions(address: str) -> dict[str, Any]:
    """GET /api: the legacy group's versions."""
    return {"kind": "APIVersions", "versions": ["v1"],
            "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": address}]}


def api_group(group: str) -> dict[str, Any]:
    """GET /apis/<group>: its one version."""
    version = {"groupVersion": f"{group}/v1", "version": "v1"}
    return {"kind": "APIGroup", "apiVersion": "v1", "name": group, "versions": [version],
            "preferredVersion": version}


def api_groups() -> dict[str, Any]:
    """GET /apis: the named groups (discovery.k8s.io, for EndpointSlices)."""
    return {"kind": "APIGroupList", "apiVersion": "v1", "groups": [api_group(g) for g in GROUPS]}


def resource_list(group: str = "") -> dict[str, Any]:
    """GET /api/v1, or /apis/<group>/v1: the group's resources and subresources, with their verbs."""
    items: list[dict[str, Any]] = []
    for r in RESOURCES.values():
        if r.group == group:
            items.append({"name": r.name, "singularName": r.singular, "namespaced": r.namespaced, "kind": r.kind,
                          "verbs": list(r.verbs), "shortNames": list(r.short_names),
                          "categories": list(r.categories)})
    if group:
        return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": f"{group}/v1", "resources": items}
    for (name, sub), (kind, verbs) in SUBRESOURCES.items():
        items.append({"name": f"{name}/{sub}", "singularName": "", "namespaced": RESOURCES[name].namespaced,
                      "kind": kind, "verbs": list(verbs)})
    return {"kind": "APIResourceList", "apiVersion": "v1", "groupVersion": "v1", "resources": items}


def _gvk(kind: str) -> dict[str, str]:
    return {"group": "", "version": "v1", "kind": kind}


def _parameter(name: str, where: str, description: str, kind: str = "string") -> dict[str, Any]:
    return {"name": name, "in": where, "description": description, "schema": {"type": kind},
            **({"required": True} if where == "path" else {})}


FIELD_VALIDATION = _parameter("fieldValidation", "query", "Strict (the default here): unknown fields are refused; "
                              "Warn: they are dropped with a warning; Ignore: they are dropped")
FIELD_MANAGER = _parameter("fieldManager", "query", "who makes the change (accepted, not recorded)")
LIST_PARAMETERS = [_parameter("labelSelector", "query", "label selector"),
                   _parameter("fieldSelector", "query", "field selector"),
                   _parameter("limit", "query", "at most this many items", "integer"),
                   _parameter("continue", "query", "the continue token of the previous page"),
                   _parameter("resourceVersion", "query", "watch after this version"),
                   _parameter("watch", "query", "stream changes instead of listing", "boolean"),
                   _parameter("allowWatchBookmarks", "query", "send BOOKMARK events", "boolean"),
                   _parameter("timeoutSeconds", "query", "end the watch after this long", "integer")]


def _ok(kind: str) -> dict[str, Any]:
    return {"200": {"description": "OK", "content": {"application/json": {"schema": {
        "$ref": f"#/components/schemas/{schema.CORE}{kind}"}}}}}


def _body(kind: str) -> dict[str, Any]:
    return {"content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{schema.CORE}{kind}"}}},
            "required": True}


def _patch_body() -> dict[str, Any]:
    return {"content": {t: {"schema": {"type": "object"}} for t in PATCH_TYPES}, "required": True}


def _operations(r: Resource) -> dict[str, dict[str, Any]]:
    """The paths of one resource and their operations (only the verbs it serves)."""
    base = "/api/v1/namespaces/{namespace}/" if r.namespaced else "/api/v1/"
    scope = [_parameter("namespace", "path", "the namespace")] if r.namespaced else []
    named = [*scope, _parameter("name", "path", f"the {r.singular}'s name")]
    tag = r.kind

    def op(action: str, verb: str, **extra: Any) -> dict[str, Any]:
        return {"operationId": f"{verb}{tag}", "tags": ["core_v1"], "x-kubernetes-action": action,
                "x-kubernetes-group-version-kind": _gvk(r.kind), "responses": _ok(r.kind), **extra}

    collection: dict[str, Any] = {"parameters": scope}
    if r.can("list"):
        collection["get"] = op("list", "list", parameters=LIST_PARAMETERS)
    if r.can("create"):
        collection["post"] = op("post", "create", parameters=[FIELD_VALIDATION, FIELD_MANAGER],
                                requestBody=_body(r.kind))
    item: dict[str, Any] = {"parameters": named}
    if r.can("get"):
        item["get"] = op("get", "read")
    if r.can("update"):
        item["put"] = op("put", "replace", parameters=[FIELD_VALIDATION, FIELD_MANAGER], requestBody=_body(r.kind))
    if r.can("patch"):
        item["patch"] = op("patch", "patch", parameters=[FIELD_VALIDATION, FIELD_MANAGER], requestBody=_patch_body())
    if r.can("delete"):
        item["delete"] = op("delete", "delete")
    paths = {f"{base}{r.name}": collection, f"{base}{r.name}/{{name}}": item}
    if r.namespaced and r.can("list"):
        paths[f"/api/v1/{r.name}"] = {"get": op("list", "listAllNamespaces", parameters=LIST_PARAMETERS)}
    for (name, sub), (_, verbs) in SUBRESOURCES.items():
        if name != r.name:
            continue
        content = "text/plain" if sub == "log" else "application/json"
        path: dict[str, Any] = {"parameters": named, "get": {
            "operationId": f"read{tag}{sub.title()}", "tags": ["core_v1"], "x-kubernetes-action": "get",
            "x-kubernetes-group-version-kind": _gvk(r.kind),
            "responses": {"200": {"description": "OK", "content": {content: {"schema": {"type": "string"}
                                                                             if sub == "log" else {}}}}}}}
        # Every PATCH of a kind declares fieldValidation: kubectl takes one without it as "validate on the client".
        if "update" in verbs:
            path["put"] = op("put", f"replace{sub.title()}", parameters=[FIELD_VALIDATION, FIELD_MANAGER],
                             requestBody=_body(r.kind))
        if "patch" in verbs:
            path["patch"] = op("patch", f"patch{sub.title()}", parameters=[FIELD_VALIDATION, FIELD_MANAGER],
                               requestBody=_patch_body())
        paths[f"{base}{r.name}/{{name}}/{sub}"] = path
    return paths


@cache
def openapi_v3() -> dict[str, Any]:
    """The OpenAPI v3 document of api/v1."""
    paths: dict[str, Any] = {}
    for r in RESOURCES.values():
        if not r.group:  # what kubectl validates and patches: the core group's (the others are read-only)
            paths.update(_operations(r))
    return {"openapi": "3.0.0", "info": {"title": "k8shost: the Kubernetes API (core/v1)", "version": "v1"},
            "paths": paths, "components": {"schemas": schema.SCHEMAS}}


@cache
def openapi_v3_body() -> bytes:
    """The document as served, encoded once (it never changes while the process runs)."""
    return json.dumps(openapi_v3(), separators=(",", ":")).encode()


@cache
def openapi_v3_hash() -> str:
    """The served document's hash (clients cache it by this)."""
    return hashlib.sha512(openapi_v3_body()).hexdigest()[:128].upper()


def openapi_v3_paths() -> dict[str, Any]:
    """GET /openapi/v3: where each group version's document is."""
    return {"paths": {GV_PATH: {"serverRelativeURL": f"/openapi/v3/{GV_PATH}?hash={openapi_v3_hash()}"}}}
