"""Errors as Kubernetes answers them: a Status object with the reason and HTTP code its clients
branch on (kubectl, client-go and the Python client read `reason` and `code`, not the message)."""

from __future__ import annotations

import re
from typing import Any

from aiohttp import web

from photoncloud.common.rest import json_response
from photoncloud.common.errors import Code, ServiceError

# The platform's codes as Kubernetes' reasons (k8s.io/apimachinery/pkg/apis/meta/v1 StatusReason).
REASONS: dict[Code, tuple[str, int]] = {
    Code.INVALID_ARGUMENT: ("BadRequest", 400),
    Code.FAILED_PRECONDITION: ("BadRequest", 400),
    Code.OUT_OF_RANGE: ("BadRequest", 400),
    Code.UNAUTHENTICATED: ("Unauthorized", 401),
    Code.PERMISSION_DENIED: ("Forbidden", 403),
    Code.NOT_FOUND: ("NotFound", 404),
    Code.ALREADY_EXISTS: ("AlreadyExists", 409),
    Code.ABORTED: ("Conflict", 409),
    Code.RESOURCE_EXHAUSTED: ("TooManyRequests", 429),
    Code.UNIMPLEMENTED: ("MethodNotAllowed", 405),
    Code.UNAVAILABLE: ("ServiceUnavailable", 503),
    Code.DEADLINE_EXCEEDED: ("Timeout", 504),
    Code.INTERNAL: ("InternalError", 500),
}
# Refusals whose Kubernetes reason is finer than their code: by the reason in their details.
BY_DETAIL = {"RESOURCE_VERSION_TOO_OLD": ("Expired", 410), "UNSUPPORTED_MEDIA_TYPE": ("UnsupportedMediaType", 415),
             "NOT_ACCEPTABLE": ("NotAcceptable", 406), "CONFLICT": ("Conflict", 409)}
# Query parameters, as the core and this API name them: a refused one is a bad request, not an invalid object.
QUERY_FIELDS = {"page_token", "page_size", "label_selector", "labelSelector", "fieldSelector", "limit", "continue",
                "timeoutSeconds", "tailLines", "tail_lines", "limitBytes", "container", "resource_version",
                "resourceVersion", "node_name", "kind", "previous", "timestamps", "sinceSeconds", "sinceTime", "body"}
_CAMEL = re.compile(r"_([a-z])")


def camel(path: str) -> str:
    """A field path in Kubernetes' names (spec.restart_policy -> spec.restartPolicy)."""
    return _CAMEL.sub(lambda m: m.group(1).upper(), path)


def status(message: str, reason: str, code: int, details: dict[str, Any] | None = None) -> dict[str, Any]:
    """A failure Status."""
    body: dict[str, Any] = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
                            "message": message, "reason": reason, "code": code}
    if details:
        body["details"] = details
    return body


def of_error(exc: ServiceError, kind: str = "", name: str = "") -> dict[str, Any]:
    """The Status of a platform error (about the object kind/name, when the request named one)."""
    reason, code = REASONS.get(exc.code, ("InternalError", 500))
    extra = exc.details or {}
    reason, code = BY_DETAIL.get(str(extra.get("reason")), (reason, code))
    details: dict[str, Any] = {}
    if name:
        details["name"] = name
    if kind:
        details["kind"] = kind
    if exc.code is Code.INVALID_ARGUMENT and isinstance(extra.get("field"), str) and extra["field"] not in QUERY_FIELDS:
        # A value the schema allows but the rules refuse: Kubernetes' Invalid, with the field as a cause.
        reason, code = "Invalid", 422
        details["causes"] = [{"reason": "FieldValueInvalid", "message": exc.message, "field": camel(extra["field"])}]
    if exc.code is Code.RESOURCE_EXHAUSTED and extra.get("retry_after_seconds") is not None:
        details["retryAfterSeconds"] = int(extra["retry_after_seconds"])
    return status(exc.message, reason, code, details)


def response(body: dict[str, Any]) -> web.Response:
    """A Status as the HTTP response Kubernetes sends for it."""
    answer = json_response(body, body["code"])  # the request ID header is the platform middleware's
    if body["code"] == 401:
        answer.headers["WWW-Authenticate"] = 'Bearer realm="photoncloud"'
    return answer
