"""Building protobuf messages from a view's plain data."""

from __future__ import annotations

import pytest
from google.protobuf import descriptor_pb2, json_format

from photoncloud.common.messages import to_message


def test_to_message_fills_a_new_message_of_the_class():
    data = {"name": "a.proto", "package": "a.v1", "message_type": [{"name": "Thing"}]}
    message = to_message(data, descriptor_pb2.FileDescriptorProto)
    assert isinstance(message, descriptor_pb2.FileDescriptorProto)
    assert (message.name, message.package, message.message_type[0].name) == ("a.proto", "a.v1", "Thing")


def test_to_message_makes_a_new_message_each_call():
    first = to_message({"name": "a.proto"}, descriptor_pb2.FileDescriptorProto)
    second = to_message({}, descriptor_pb2.FileDescriptorProto)
    assert first.name == "a.proto" and second.name == ""


def test_to_message_refuses_an_unknown_field():
    with pytest.raises(json_format.ParseError):
        to_message({"no_such_field": 1}, descriptor_pb2.FileDescriptorProto)
