"""Messages to and from the REST API's JSON: every field written, 64-bit integers as numbers, strict reading."""

from __future__ import annotations

import pytest
from google.api import field_behavior_pb2
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory

from photoncloud.common import protojson
from photoncloud.common.errors import InvalidArgument

F = descriptor_pb2.FieldDescriptorProto


def _sample_types():
    """A message with a field of each kind, in a file of its own (no service's .proto needed)."""
    d = descriptor_pb2
    file = d.FileDescriptorProto(name="sample.proto", package="sample", syntax="proto3")
    inner = file.message_type.add(name="Inner")
    inner.field.add(name="start", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    inner.field[0].options.Extensions[field_behavior_pb2.field_behavior].append(field_behavior_pb2.REQUIRED)
    color = file.enum_type.add(name="Color")
    color.value.add(name="COLOR_UNSPECIFIED", number=0)
    color.value.add(name="RED", number=1)
    sample = file.message_type.add(name="Sample")
    entry = sample.nested_type.add(name="LabelsEntry")
    entry.options.map_entry = True
    entry.field.add(name="key", number=1, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    entry.field.add(name="value", number=2, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL)
    fields = [
        ("name", F.TYPE_STRING, F.LABEL_OPTIONAL, None), ("count", F.TYPE_INT64, F.LABEL_OPTIONAL, None),
        ("small", F.TYPE_INT32, F.LABEL_OPTIONAL, None), ("flag", F.TYPE_BOOL, F.LABEL_OPTIONAL, None),
        ("data", F.TYPE_BYTES, F.LABEL_OPTIONAL, None), ("color", F.TYPE_ENUM, F.LABEL_OPTIONAL, ".sample.Color"),
        ("tags", F.TYPE_STRING, F.LABEL_REPEATED, None), ("inner", F.TYPE_MESSAGE, F.LABEL_OPTIONAL, ".sample.Inner"),
        ("labels", F.TYPE_MESSAGE, F.LABEL_REPEATED, ".sample.Sample.LabelsEntry"),
        ("ratio", F.TYPE_DOUBLE, F.LABEL_OPTIONAL, None),
    ]
    for number, (name, kind, label, type_name) in enumerate(fields, 1):
        field = sample.field.add(name=name, number=number, type=kind, label=label)
        if type_name:
            field.type_name = type_name
    # An optional (proto3 presence) field: a synthetic oneof holds it.
    sample.oneof_decl.add(name="_note")
    sample.field.add(name="note", number=20, type=F.TYPE_STRING, label=F.LABEL_OPTIONAL, oneof_index=0,
                     proto3_optional=True)
    file.dependency.append("google/api/field_behavior.proto")
    pool = descriptor_pool.Default()
    pool.AddSerializedFile(file.SerializeToString())
    return (message_factory.GetMessageClass(pool.FindMessageTypeByName("sample.Sample")),
            message_factory.GetMessageClass(pool.FindMessageTypeByName("sample.Inner")))


Sample, Inner = None, None


@pytest.fixture(autouse=True, scope="module")
def types():
    global Sample, Inner
    Sample, Inner = _sample_types()


def test_every_field_is_written_with_its_default_and_64_bit_integers_are_numbers():
    data = protojson.to_json(Sample(count=2**40, data=b"\x00\xff", color=1, labels={"app": "web"}))
    assert data == {"name": "", "count": 2**40, "small": 0, "flag": False, "data": "AP8=", "color": "RED", "tags": [],
                    "inner": None, "labels": {"app": "web"}, "ratio": 0.0, "note": None}


def test_what_is_written_reads_back_the_same():
    original = Sample(name="a", count=-5, small=7, flag=True, data=b"xyz", color=1, tags=["t"],
                      inner=Inner(start="s"), labels={"k": "v"}, ratio=0.5, note="")
    assert protojson.from_json(protojson.to_json(original), Sample) == original


def test_strings_of_digits_and_booleans_are_read_as_a_query_string_gives_them():
    message = protojson.from_json({"count": "12", "flag": "true", "tags": ["a", "b"]}, Sample, "query parameter")
    assert (message.count, message.flag, list(message.tags)) == (12, True, ["a", "b"])


def test_null_leaves_a_field_unset():
    message = protojson.from_json({"note": None, "inner": None, "name": None}, Sample)
    assert not message.HasField("note") and not message.HasField("inner") and message.name == ""


@pytest.mark.parametrize(("data", "field", "message"), [
    ({"nmae": "x"}, "nmae", "Extra inputs are not permitted"),
    ({"name": 5}, "name", "Input should be a valid string"),
    ({"count": "five"}, "count", "Input should be a valid integer"),
    ({"count": True}, "count", "Input should be a valid integer"),
    ({"small": 2**31}, "small", "Input should be between"),
    ({"count": 2**63}, "count", "Input should be between"),
    ({"flag": "maybe"}, "flag", "Input should be a valid boolean"),
    ({"data": "not base64!"}, "data", "Input should be valid base64"),
    ({"color": "BLUE"}, "color", "Input should be one of"),
    ({"tags": "a"}, "tags", "Input should be a valid list"),
    ({"tags": ["a", 1]}, "tags.1", "Input should be a valid string"),
    ({"inner": {}}, "inner.start", "Field required"),
    ({"inner": {"start": "s", "x": 1}}, "inner.x", "Extra inputs are not permitted"),
    ({"labels": {"k": 1}}, "labels.k", "Input should be a valid string"),
])
def test_bad_input_is_invalid_argument_naming_the_field(data, field, message):
    with pytest.raises(InvalidArgument) as refused:
        protojson.from_json(data, Sample)
    assert refused.value.details["field"] == field
    assert message in refused.value.message and refused.value.message.startswith(f"invalid request body: {field}")


def test_every_bad_field_is_listed():
    with pytest.raises(InvalidArgument) as refused:
        protojson.from_json({"name": 1, "count": "x", "other": 0}, Sample)
    assert [e["field"] for e in refused.value.details["errors"]] == ["name", "count", "other"]


def test_a_body_that_is_not_an_object_is_refused():
    with pytest.raises(InvalidArgument):
        protojson.from_json(["name"], Sample)


def test_the_schema_describes_what_is_written():
    schemas: dict = {}
    ref = protojson.message_schema(Sample.DESCRIPTOR, schemas)
    schema = schemas["sample.Sample"]
    assert ref == {"$ref": "#/components/schemas/sample.Sample"}
    assert schema["additionalProperties"] is False
    assert schema["properties"]["count"]["format"] == "int64"
    assert schema["properties"]["color"]["enum"] == ["COLOR_UNSPECIFIED", "RED"]
    assert schema["properties"]["labels"] == {"type": "object", "additionalProperties": {"type": "string"}}
    assert {"type": "null"} in schema["properties"]["note"]["anyOf"]
    assert schemas["sample.Inner"]["required"] == ["start"]
