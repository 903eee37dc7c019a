"""The error code table: each code's HTTP status as DESIGN.md fixes it (the gRPC half is in test_rpc),
and the error classes."""

from __future__ import annotations

import subprocess
import sys

import pytest

from photoncloud.common import errors
from photoncloud.common.errors import Code, ServiceError

# The table of DESIGN.md ("The wire conventions"), written out by hand: code, HTTP, gRPC status.
DESIGN_TABLE = [
    ("INVALID_ARGUMENT", 400, "INVALID_ARGUMENT"),
    ("FAILED_PRECONDITION", 400, "FAILED_PRECONDITION"),
    ("OUT_OF_RANGE", 400, "OUT_OF_RANGE"),
    ("UNAUTHENTICATED", 401, "UNAUTHENTICATED"),
    ("PERMISSION_DENIED", 403, "PERMISSION_DENIED"),
    ("NOT_FOUND", 404, "NOT_FOUND"),
    ("ALREADY_EXISTS", 409, "ALREADY_EXISTS"),
    ("ABORTED", 409, "ABORTED"),
    ("RESOURCE_EXHAUSTED", 429, "RESOURCE_EXHAUSTED"),
    ("UNIMPLEMENTED", 501, "UNIMPLEMENTED"),
    ("UNAVAILABLE", 503, "UNAVAILABLE"),
    ("DEADLINE_EXCEEDED", 504, "DEADLINE_EXCEEDED"),
    ("INTERNAL", 500, "INTERNAL"),
]

# The error class for each code, by the name a reader of the table would look for.
CLASSES = {
    "INVALID_ARGUMENT": "InvalidArgument",
    "FAILED_PRECONDITION": "FailedPrecondition",
    "OUT_OF_RANGE": "OutOfRange",
    "UNAUTHENTICATED": "Unauthenticated",
    "PERMISSION_DENIED": "PermissionDenied",
    "NOT_FOUND": "NotFound",
    "ALREADY_EXISTS": "AlreadyExists",
    "ABORTED": "Aborted",
    "RESOURCE_EXHAUSTED": "ResourceExhausted",
    "UNIMPLEMENTED": "Unimplemented",
    "UNAVAILABLE": "Unavailable",
    "DEADLINE_EXCEEDED": "DeadlineExceeded",
    "INTERNAL": "Internal",
}


def test_the_codes_are_exactly_the_table():
    assert [code.name for code in Code] == [name for name, _, _ in DESIGN_TABLE]


@pytest.mark.parametrize(("name", "http_status", "grpc_name"), DESIGN_TABLE)
def test_code_maps_to_the_table(name, http_status, grpc_name):
    assert Code[name].http_status == http_status


def test_the_error_table_imports_no_transport():
    # A fresh interpreter, since this one has grpc loaded by other tests already.
    check = ("import sys, photoncloud.common.errors; "
             "assert 'grpc' not in sys.modules; assert 'aiohttp' not in sys.modules")
    subprocess.run([sys.executable, "-c", check], check=True)


@pytest.mark.parametrize(("name", "class_name"), sorted(CLASSES.items()))
def test_error_class_carries_its_code(name, class_name):
    cls = getattr(errors, class_name)
    assert issubclass(cls, ServiceError)
    exc = cls("something went wrong", {"field": "x"})
    assert exc.code is Code[name]
    assert exc.message == "something went wrong"
    assert str(exc) == "something went wrong"
    assert exc.details == {"field": "x"}
    with pytest.raises(ServiceError) as caught:
        raise exc
    assert caught.value.code.http_status == dict((n, h) for n, h, _ in DESIGN_TABLE)[name]


def test_error_classes_do_not_share_codes():
    codes = [getattr(errors, class_name).code for class_name in CLASSES.values()]
    assert len(set(codes)) == len(codes)


def test_service_error_defaults_to_internal_and_takes_an_explicit_code():
    assert ServiceError("boom").code is Code.INTERNAL
    assert ServiceError("boom").details is None
    explicit = ServiceError("gone", code=Code.NOT_FOUND)
    assert explicit.code is Code.NOT_FOUND
    # an explicit code on one instance does not change the class or other instances
    assert ServiceError.code is Code.INTERNAL
    assert errors.NotFound("x", code=Code.ABORTED).code is Code.ABORTED
    assert errors.NotFound("y").code is Code.NOT_FOUND


def test_repr_names_code_and_message():
    text = repr(errors.NotFound("no such key", {"key": "a"}))
    assert "NOT_FOUND" in text and "no such key" in text
