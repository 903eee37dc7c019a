"""PrismNET's rules on an in-memory store: VPCs, subnets, ports and addresses, security groups."""

from __future__ import annotations

import asyncio
import ipaddress

import pytest

from photoncloud.common.errors import (AlreadyExists, FailedPrecondition, InvalidArgument, NotFound,
                                      ResourceExhausted)
from photoncloud.prismnet.machine import MAX_RULES


async def vpc_and_subnet(net, vpc_cidr="10.0.0.0/16", subnet_cidr="10.0.1.0/24", **subnet):
    vpc = await net.create_vpc("main", "o1", "p1", vpc_cidr)
    return vpc, await net.create_subnet(vpc.id, "web", subnet_cidr, **subnet)


@pytest.mark.parametrize("cidr, message", [
    ("10.0.0.0", "prefix length"),
    ("10.0.0.1/16", "host bits"),
    ("10.0.0.0/33", "not a CIDR"),
    ("banana/16", "not a CIDR"),
    ("10.0.0.0/7", "between /8 and /28"),
    ("10.0.0.0/29", "between /8 and /28"),
    ("fd00::/65", "between /44 and /64"),
])
async def test_a_vpc_cidr_must_be_a_network_within_bounds(net, cidr, message):
    with pytest.raises(InvalidArgument, match=message) as error:
        await net.create_vpc("main", "o1", "p1", cidr)
    assert error.value.details == {"field": "cidr_block"}


async def test_subnets_lie_inside_their_vpc_and_never_overlap(net):
    vpc, web = await vpc_and_subnet(net)
    assert (web.gateway_ip, web.ip_version) == ("10.0.1.1", 4)
    assert [(p.start, p.end) for p in web.allocation_pools] == [("10.0.1.2", "10.0.1.254")]
    with pytest.raises(InvalidArgument, match="outside the VPC"):
        await net.create_subnet(vpc.id, "out", "10.1.0.0/24")
    with pytest.raises(FailedPrecondition) as overlap:
        await net.create_subnet(vpc.id, "wide", "10.0.0.0/23")
    assert overlap.value.details["reason"] == "SUBNET_OVERLAPS" and overlap.value.details["subnet_id"] == web.id
    db = await net.create_subnet(vpc.id, "db", "10.0.2.0/24", gateway_ip="10.0.2.254")
    assert [(p.start, p.end) for p in db.allocation_pools] == [("10.0.2.1", "10.0.2.253")]
    with pytest.raises(InvalidArgument, match="network or broadcast"):
        await net.create_subnet(vpc.id, "x", "10.0.3.0/24", gateway_ip="10.0.3.255")
    with pytest.raises(InvalidArgument, match="outside"):
        await net.create_subnet(vpc.id, "x", "10.0.3.0/24", gateway_ip="10.0.4.1")


async def test_a_vpc_with_subnets_cannot_be_deleted(net):
    vpc, web = await vpc_and_subnet(net)
    with pytest.raises(FailedPrecondition) as refused:
        await net.delete_vpc(vpc.id)
    assert refused.value.details == {"reason": "VPC_HAS_SUBNETS", "subnet_ids": [web.id]}
    await net.delete_subnet(web.id)
    await net.delete_vpc(vpc.id)
    with pytest.raises(NotFound):
        await net.vpc(vpc.id)


async def test_ports_get_the_next_free_address_or_the_one_asked_for(net):
    _, web = await vpc_and_subnet(net)
    first = await net.create_port(web.id, "a")
    chosen = await net.create_port(web.id, "b", ip_address="10.0.1.3")
    after = await net.create_port(web.id, "c")
    assert (first.ip_address, chosen.ip_address, after.ip_address) == ("10.0.1.2", "10.0.1.3", "10.0.1.4")
    assert len({first.mac_address, chosen.mac_address, after.mac_address}) == 3
    assert all(p.mac_address.startswith("fa:16:3e:") for p in (first, chosen, after))
    with pytest.raises(AlreadyExists):
        await net.create_port(web.id, ip_address="10.0.1.3")
    with pytest.raises(InvalidArgument, match="gateway"):
        await net.create_port(web.id, ip_address="10.0.1.1")
    with pytest.raises(InvalidArgument, match="outside"):
        await net.create_port(web.id, ip_address="10.0.2.9")
    with pytest.raises(InvalidArgument, match="broadcast"):
        await net.create_port(web.id, ip_address="10.0.1.255")
    await net.delete_port(chosen.id)  # its address is free again, and the lowest
    assert (await net.create_port(web.id)).ip_address == "10.0.1.3"


async def test_a_full_subnet_is_resource_exhausted_and_concurrent_ports_never_share(net):
    _, tiny = await vpc_and_subnet(net, subnet_cidr="10.0.9.0/28")  # 14 usable, one the gateway
    ports = await asyncio.gather(*(net.create_port(tiny.id) for _ in range(20)), return_exceptions=True)
    made = [p for p in ports if not isinstance(p, Exception)]
    assert len(made) == 13 and len({p.ip_address for p in made}) == 13
    assert all(isinstance(p, ResourceExhausted) for p in ports if isinstance(p, Exception))
    assert await net.capacity(tiny) == (13, 13)


async def test_attach_detach_and_a_device_that_holds_a_port(net):
    _, web = await vpc_and_subnet(net)
    port = await net.create_port(web.id)
    assert port.status == "DOWN"
    attached = await net.attach_port(port.id, "vm-1", "vm")
    assert (attached.device_id, attached.device_type, attached.status) == ("vm-1", "VM", "ACTIVE")
    assert (await net.attach_port(port.id, "vm-1", "VM")).device_id == "vm-1"  # again: no change
    with pytest.raises(FailedPrecondition) as busy:
        await net.attach_port(port.id, "vm-2", "VM")
    assert busy.value.details["reason"] == "PORT_IN_USE"
    assert (await net.detach_port(port.id)).status == "DOWN"
    assert (await net.ports(device_id="vm-1", subnet_id=web.id)).items == []


async def test_another_projects_group_is_neither_a_rules_remote_nor_a_ports_group(net):
    # The dataplane turns a remote group into its members' addresses, and a port's groups into its rules: a
    # project must not name another's group in either.
    _, web = await vpc_and_subnet(net)  # project p1
    mine = await net.create_group("mine", "o1", "p1")
    theirs = await net.create_group("theirs", "o2", "p2")
    with pytest.raises(InvalidArgument) as remote:
        await net.add_rule(mine.id, protocol="icmp", remote_group_id=theirs.id)
    assert remote.value.details["field"] == "remote_group_id"
    with pytest.raises(InvalidArgument) as attached:
        await net.create_port(web.id, security_group_ids=[theirs.id])
    assert attached.value.details["field"] == "security_group_ids"
    port = await net.create_port(web.id, security_group_ids=[mine.id])
    with pytest.raises(InvalidArgument):
        await net.update_port(port.id, security_group_ids=[mine.id, theirs.id])
    assert (await net.port(port.id)).security_group_ids == (mine.id,)


async def test_security_groups_validate_rules_and_refuse_deletion_in_use(net):
    _, web = await vpc_and_subnet(net)
    group = await net.create_group("web", "o1", "p1", rules=[
        {"direction": "ingress", "protocol": "tcp", "port_range_min": 443, "port_range_max": 443,
         "remote_cidr": "0.0.0.0/0"}])
    assert [(r.direction, r.protocol, r.port_range_min, r.ethertype) for r in group.rules] == [
        ("EGRESS", "ANY", 0, "IPv4"), ("EGRESS", "ANY", 0, "IPv6"), ("INGRESS", "TCP", 443, "IPv4")]
    for bad in ({"protocol": "tcp", "port_range_min": 90, "port_range_max": 80},
                {"protocol": "icmp", "port_range_min": 1, "port_range_max": 1},
                {"protocol": "gre"}, {"remote_cidr": "10.0.0.1/8"}, {"remote_cidr": "fd00::/8"},
                {"remote_cidr": "10.0.0.0/8", "remote_group_id": group.id}, {"color": "red"}):
        with pytest.raises(InvalidArgument):
            await net.add_rule(group.id, **bad)
    with pytest.raises(AlreadyExists):
        await net.add_rule(group.id, direction="INGRESS", protocol="TCP", port_range_min=443, port_range_max=443,
                           remote_cidr="0.0.0.0/0")
    db = await net.create_group("db", "o1", "p1")
    _, rule = await net.add_rule(db.id, protocol="tcp", port_range_min=5432, port_range_max=5432,
                                 remote_group_id=group.id)
    port = await net.create_port(web.id, security_group_ids=[group.id])
    with pytest.raises(FailedPrecondition) as in_use:
        await net.delete_group(group.id)
    assert in_use.value.details["reason"] == "GROUP_IN_USE"
    await net.update_port(port.id, security_group_ids=[])
    with pytest.raises(FailedPrecondition) as referenced:
        await net.delete_group(group.id)
    assert referenced.value.details["reason"] == "GROUP_REFERENCED"
    await net.delete_rule(db.id, rule.id)
    await net.delete_group(group.id)
    other = await net.create_group("other", "o1", "p2")
    with pytest.raises(InvalidArgument):
        await net.create_port(web.id, security_group_ids=[other.id])


async def test_a_new_group_allows_all_egress_until_those_rules_are_deleted(net):
    group = await net.create_group("web", "o1", "p1")
    assert [(r.direction, r.protocol, r.port_range_min, r.port_range_max, r.remote_cidr, r.remote_group_id,
             r.ethertype) for r in group.rules] == [("EGRESS", "ANY", 0, 0, "", "", "IPv4"),
                                                    ("EGRESS", "ANY", 0, 0, "", "", "IPv6")]
    assert len({r.id for r in group.rules}) == 2 and all(r.id for r in group.rules)
    assert (await net.group(group.id)).rules == group.rules  # stored as answered: the ids came with the command
    with pytest.raises(AlreadyExists):
        await net.add_rule(group.id, direction="EGRESS", protocol="ANY", ethertype="IPv6")
    for rule in group.rules:
        await net.delete_rule(group.id, rule.id)
    assert (await net.group(group.id)).rules == ()
    # Restricting egress at creation: a default the caller gives is kept once, as given.
    given = await net.create_group("db", "o1", "p1", rules=[
        {"direction": "EGRESS", "protocol": "ANY", "ethertype": "IPv4", "description": "mine"}])
    assert [(r.direction, r.ethertype, r.description) for r in given.rules] == [("EGRESS", "IPv6", ""),
                                                                                ("EGRESS", "IPv4", "mine")]
    # A group holds MAX_RULES rules, the defaults included.
    many = [{"protocol": "TCP", "port_range_min": p, "port_range_max": p} for p in range(1, MAX_RULES - 1)]
    assert len((await net.create_group("many", "o1", "p1", rules=many)).rules) == MAX_RULES
    with pytest.raises(InvalidArgument) as refused:
        await net.create_group("more", "o1", "p1", rules=many + [{"protocol": "UDP"}])
    assert refused.value.details == {"field": "rules"}


async def test_ipv6_subnets_allocate_too(net):
    vpc = await net.create_vpc("v6", "o1", "p1", "fd00:1::/56")
    subnet = await net.create_subnet(vpc.id, "a", "fd00:1:0:1::/64")
    assert (subnet.ip_version, subnet.gateway_ip) == (6, "fd00:1:0:1::1")
    port = await net.create_port(subnet.id)
    assert port.ip_address == "fd00:1:0:1::2"
    assert ipaddress.ip_address(port.ip_address) in ipaddress.ip_network(subnet.cidr_block)
