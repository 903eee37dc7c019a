"""The platform's error types and the one table that maps each code to HTTP and gRPC."""

from __future__ import annotations

import enum
from typing import Any

import grpc


class Code(enum.Enum):
    """An error code, with its HTTP status and gRPC status code."""

    INVALID_ARGUMENT = (400, grpc.StatusCode.INVALID_ARGUMENT)
    FAILED_PRECONDITION = (400, grpc.StatusCode.FAILED_PRECONDITION)
    OUT_OF_RANGE = (400, grpc.StatusCode.OUT_OF_RANGE)
    UNAUTHENTICATED = (401, grpc.StatusCode.UNAUTHENTICATED)
    PERMISSION_DENIED = (403, grpc.StatusCode.PERMISSION_DENIED)
    NOT_FOUND = (404, grpc.StatusCode.NOT_FOUND)
    ALREADY_EXISTS = (409, grpc.StatusCode.ALREADY_EXISTS)
    ABORTED = (409, grpc.StatusCode.ABORTED)
    RESOURCE_EXHAUSTED = (429, grpc.StatusCode.RESOURCE_EXHAUSTED)
    UNIMPLEMENTED = (501, grpc.StatusCode.UNIMPLEMENTED)
    UNAVAILABLE = (503, grpc.StatusCode.UNAVAILABLE)
    DEADLINE_EXCEEDED = (504, grpc.StatusCode.DEADLINE_EXCEEDED)
    INTERNAL = (500, grpc.StatusCode.INTERNAL)

    @property
    def http_status(self) -> int:
        """The HTTP status this code is sent with."""
        return self.value[0]

    @property
    def grpc_status(self) -> grpc.StatusCode:
        """The gRPC status code this code is sent with."""
        return self.value[1]

    @classmethod
    def from_grpc(cls, status: grpc.StatusCode) -> "Code":
        """The code a gRPC status maps back to (INTERNAL for ones the table lacks)."""
        return _BY_GRPC.get(status, cls.INTERNAL)


_BY_GRPC = {code.grpc_status: code for code in Code}


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
