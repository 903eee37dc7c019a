"""The platform's error types and the table of their codes, free of any transport.

Each code's HTTP status is here; the gRPC status each code is sent with lives with the gRPC
adapter (`rpc.grpc_status`), so that a core importing these errors imports no transport.
"""

from __future__ import annotations

import enum
from typing import Any


class Code(enum.Enum):
    """An error code, with the HTTP status it is sent with."""

    INVALID_ARGUMENT = 400
    FAILED_PRECONDITION = 400
    OUT_OF_RANGE = 400
    UNAUTHENTICATED = 401
    PERMISSION_DENIED = 403
    NOT_FOUND = 404
    ALREADY_EXISTS = 409
    ABORTED = 409
    RESOURCE_EXHAUSTED = 429
    UNIMPLEMENTED = 501
    UNAVAILABLE = 503
    DEADLINE_EXCEEDED = 504
    INTERNAL = 500

    def __new__(cls, http_status: int) -> Code:
        code = object.__new__(cls)
        # Several codes share an HTTP status; a distinct value each keeps them from becoming aliases.
        code._value_ = len(cls.__members__)
        code.http_status = http_status
        return code

    http_status: int


class ServiceError(Exception):
    """An error a service reports to its caller: a code, a message, and optional details."""

    code: Code = Code.INTERNAL

    def __init__(self, message: str, details: dict[str, Any] | None = None, *, code: Code | None = None):
        super().__init__(message)
        self.message = message
        self.details = details
        if code is not None:
            self.code = code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.code.name}: {self.message!r}, details={self.details!r})"


def _error_class(code: Code, doc: str) -> type[ServiceError]:
    return type(code.name.title().replace("_", ""), (ServiceError,), {"code": code, "__doc__": doc})


InvalidArgument = _error_class(Code.INVALID_ARGUMENT, "The request is malformed or a field is invalid.")
FailedPrecondition = _error_class(Code.FAILED_PRECONDITION, "The system is not in a state the operation needs.")
OutOfRange = _error_class(Code.OUT_OF_RANGE, "A value is past the valid range (e.g. a future revision).")
Unauthenticated = _error_class(Code.UNAUTHENTICATED, "The caller's credentials are missing or invalid.")
PermissionDenied = _error_class(Code.PERMISSION_DENIED, "The caller may not do this.")
NotFound = _error_class(Code.NOT_FOUND, "The resource does not exist.")
AlreadyExists = _error_class(Code.ALREADY_EXISTS, "The resource exists already.")
Aborted = _error_class(Code.ABORTED, "The operation lost a race (a concurrency conflict); retry it.")
ResourceExhausted = _error_class(Code.RESOURCE_EXHAUSTED, "A quota or capacity is exhausted.")
Unimplemented = _error_class(Code.UNIMPLEMENTED, "The operation is not supported.")
Unavailable = _error_class(Code.UNAVAILABLE, "The service or a dependency cannot answer now; retry later.")
DeadlineExceeded = _error_class(Code.DEADLINE_EXCEEDED, "The operation did not finish in time.")
Internal = _error_class(Code.INTERNAL, "A bug or an unexpected failure inside the service.")
