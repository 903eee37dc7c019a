"""Messages built from a service's records: fields copied by name, epoch times as RFC 3339, nested records."""

from __future__ import annotations

from dataclasses import dataclass

from photoncloud.common.messages import from_record, optional
from photoncloud.prismnet.v1 import prismnet_pb2 as pb


@dataclass(frozen=True)
class Pool:
    start: str
    end: str


@dataclass(frozen=True)
class Subnet:
    id: str
    name: str
    allocation_pools: tuple[Pool, ...]
    dns_servers: tuple[str, ...]
    created_at: float
    secret: str  # not in the message: left out


def test_fields_are_copied_by_name_times_as_rfc3339_and_nested_records_as_messages():
    record = Subnet("s1", "web", (Pool("10.0.0.2", "10.0.0.9"),), ("10.0.0.1",), 1767225600.5, "hidden")
    message = from_record(pb.Subnet, record, capacity=8)
    assert message == pb.Subnet(id="s1", name="web", allocation_pools=[pb.Pool(start="10.0.0.2", end="10.0.0.9")],
                                dns_servers=["10.0.0.1"], created_at="2026-01-01T00:00:00.500Z", capacity=8)


def test_an_override_wins_over_the_records_field_and_zero_time_is_never():
    record = Subnet("s1", "web", (), (), 0, "")
    message = from_record(pb.Subnet, record, name="renamed")
    assert (message.name, message.created_at) == ("renamed", "")


def test_an_unset_field_with_presence_is_the_default_and_a_set_one_its_value_even_empty():
    unset, empty = pb.UpdateVpcRequest(id="v"), pb.UpdateVpcRequest(id="v", name="")
    assert (optional(unset, "name"), optional(unset, "name", "kept"), optional(empty, "name")) == (None, "kept", "")
