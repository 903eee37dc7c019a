"""The request models' shared rules: unknown fields refused, integers within 64 bits."""

from __future__ import annotations

import pytest
from pydantic import BaseModel

from photoncloud.common.errors import InvalidArgument
from photoncloud.common.models import INT64_MAX, INT64_MIN, Body, Query, from_base64
from photoncloud.common.rest import parse_model


class Inner(Body):
    n: int = 0


class Plain(BaseModel):
    m: int = 0


class Thing(Body):
    count: int = 0
    maybe: int | None = None
    numbers: list[int] = []
    by_name: dict[str, int] = {}
    inner: list[Inner] = []
    plain: Plain | None = None
    anything: list = []
    flag: bool = False


class Listing(Query):
    page_size: int = 0


@pytest.mark.parametrize("data", [
    {"count": INT64_MAX + 1},
    {"count": INT64_MIN - 1},
    {"maybe": 2**70},
    {"numbers": [1, 2**64]},
    {"by_name": {"x": -(2**64)}},
    {"inner": [{"n": 2**63}]},
    {"plain": {"m": 2**63}},
    {"anything": [[1, 2**80]]},
])
def test_an_integer_past_64_bits_is_invalid_argument_naming_its_field(data):
    with pytest.raises(InvalidArgument) as refused:
        parse_model(Thing, data, "request body")
    assert "between" in refused.value.message
    assert refused.value.details["field"].split(".")[0] == next(iter(data))


def test_integers_at_the_64_bit_limits_and_booleans_pass():
    thing = parse_model(Thing, {"count": INT64_MAX, "maybe": INT64_MIN, "numbers": [INT64_MAX], "flag": True},
                        "request body")
    assert (thing.count, thing.maybe, thing.flag) == (INT64_MAX, INT64_MIN, True)


def test_a_query_parameter_past_64_bits_is_invalid_argument():
    with pytest.raises(InvalidArgument):
        parse_model(Listing, {"page_size": str(2**63)}, "query parameter")


def test_request_integers_are_documented_as_int64():
    schema = Thing.model_json_schema()
    assert schema["properties"]["count"]["format"] == "int64"
    assert {"type": "integer", "format": "int64"} in schema["properties"]["maybe"]["anyOf"]
    assert schema["properties"]["numbers"]["items"]["format"] == "int64"
    assert schema["$defs"]["Inner"]["properties"]["n"]["format"] == "int64"


@pytest.mark.parametrize("text", ["not base64!", "YQ", "\u00b6", "YWJj\u00e9"])
def test_from_base64_refuses_what_is_not_base64_naming_the_field(text):
    with pytest.raises(InvalidArgument) as refused:
        from_base64(text, "value_base64")
    assert refused.value.details == {"field": "value_base64"}


def test_from_base64_decodes_standard_base64():
    assert from_base64("aGVsbG8=", "value_base64") == b"hello"
