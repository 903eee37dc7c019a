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


# One class per code (the class's name is the code's, in CamelCase), spelled out so that type
# checkers see each as a class of its own.
class InvalidArgument(ServiceError):
    """The request is malformed or a field is invalid."""

    code = Code.INVALID_ARGUMENT


class FailedPrecondition(ServiceError):
    """The system is not in a state the operation needs."""

    code = Code.FAILED_PRECONDITION


class OutOfRange(ServiceError):
    """A value is past the valid range (e.g. a future revision)."""

    code = Code.OUT_OF_RANGE


class Unauthenticated(ServiceError):
    """The caller's credentials are missing or invalid."""

    code = Code.UNAUTHENTICATED


class PermissionDenied(ServiceError):
    """The caller may not do this."""

    code = Code.PERMISSION_DENIED


class NotFound(ServiceError):
    """The resource does not exist."""

    code = Code.NOT_FOUND


class AlreadyExists(ServiceError):
    """The resource exists already."""

    code = Code.ALREADY_EXISTS


class Aborted(ServiceError):
    """The operation lost a race (a concurrency conflict); retry it."""

    code = Code.ABORTED


class ResourceExhausted(ServiceError):
    """A quota or capacity is exhausted."""

    code = Code.RESOURCE_EXHAUSTED


class Unimplemented(ServiceError):
    """The operation is not supported."""

    code = Code.UNIMPLEMENTED


class Unavailable(ServiceError):
    """The service or a dependency cannot answer now; retry later."""

    code = Code.UNAVAILABLE


class DeadlineExceeded(ServiceError):
    """The operation did not finish in time."""

    code = Code.DEADLINE_EXCEEDED


class Internal(ServiceError):
    """A bug or an unexpected failure inside the service."""

    code = Code.INTERNAL
