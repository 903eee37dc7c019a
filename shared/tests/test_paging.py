"""Page sizes (default, bounds) and opaque page tokens (round trip; anything else is INVALID_ARGUMENT)."""

from __future__ import annotations

import base64
import re

import pytest

from photoncloud.common import paging
from photoncloud.common.errors import Code, InvalidArgument


def b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


@pytest.mark.parametrize("requested", [None, 0])
def test_page_size_defaults_when_absent(requested):
    assert paging.page_size(requested) == paging.DEFAULT_PAGE_SIZE
    assert paging.page_size(requested, default=7) == 7


def test_default_is_within_the_bounds():
    assert 1 <= paging.DEFAULT_PAGE_SIZE <= paging.MAX_PAGE_SIZE


@pytest.mark.parametrize("requested", [1, 2, paging.MAX_PAGE_SIZE - 1, paging.MAX_PAGE_SIZE])
def test_page_size_within_bounds_is_kept(requested):
    assert paging.page_size(requested) == requested


@pytest.mark.parametrize("requested", [-1, -100, paging.MAX_PAGE_SIZE + 1, 10**9])
def test_page_size_out_of_bounds_is_invalid_argument(requested):
    with pytest.raises(InvalidArgument) as caught:
        paging.page_size(requested)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.details["field"] == "page_size"


def test_page_size_custom_maximum():
    assert paging.page_size(10, maximum=10) == 10
    with pytest.raises(InvalidArgument):
        paging.page_size(11, maximum=10)


@pytest.mark.parametrize(
    "position",
    [{}, {"after": "key/with/slashes"}, {"after": "ключ ✓", "revision": 42}, {"offset": 3, "nested": {"a": [1, None]}}],
)
def test_token_round_trip(position):
    token = paging.encode_token(position)
    assert isinstance(token, str)
    # opaque and safe to put in a URL query without escaping
    assert re.fullmatch(r"[A-Za-z0-9_-]*", token), token
    assert paging.decode_token(token) == position


def test_token_is_opaque():
    token = paging.encode_token({"after": "secret-looking-key"})
    assert "secret-looking-key" not in token


@pytest.mark.parametrize(
    "token",
    [
        "",                                   # empty
        "garbage!!",                          # not base64
        "%%%%",                               # not base64 at all
        "a",                                  # an impossible base64 length
        b64(b"not json"),                     # base64, not JSON
        b64(b"\xff\xfe\x00garbage"),          # base64, not text
        b64(b"[1, 2, 3]"),                    # JSON, not an object
        b64(b'"a string"'),
        b64(b"42"),
        b64(b"null"),
        b64(b"true"),
        b64(b"[" * 100_000),                  # deeply nested: must not escape as another error
    ],
)
def test_bad_token_is_invalid_argument(token):
    with pytest.raises(InvalidArgument) as caught:
        paging.decode_token(token)
    assert caught.value.code is Code.INVALID_ARGUMENT
    assert caught.value.details == {"field": "page_token"}
