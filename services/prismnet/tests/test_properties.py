"""Property tests: subnet containment and overlap, and address allocation, against `ipaddress`."""

from __future__ import annotations

import ipaddress

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photoncloud.common.errors import FailedPrecondition, InvalidArgument, ResourceExhausted
from photoncloud.common.replication import LocalLog
from photoncloud.prismnet.core import NetworkCore
from photoncloud.prismnet.machine import NetworkStateMachine
from photoncloud.prismnet.store import SqliteNetworkStore

SETTINGS = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])


async def fresh_core() -> NetworkCore:
    store = SqliteNetworkStore(":memory:")
    machine = NetworkStateMachine(store)
    return NetworkCore(machine, LocalLog(machine))


# Subnets drawn around 10.0.0.0/16 (from a /16 before it to a /16 after it): some inside, some
# across its edges, some overlapping each other.
subnets = st.lists(st.tuples(st.integers(14, 30), st.integers(0, 3 * 2**16 - 1)), min_size=1, max_size=12)


@SETTINGS
@given(subnets)
async def test_subnets_are_accepted_exactly_when_inside_and_disjoint(drawn):
    net = await fresh_core()
    vpc_network = ipaddress.ip_network("10.0.0.0/16")
    vpc = await net.create_vpc("v", "o", "p", str(vpc_network))
    accepted: list[ipaddress.IPv4Network] = []
    for prefix, offset in drawn:
        start = int(vpc_network.network_address) - 2**16 + offset
        candidate = ipaddress.ip_network((start, prefix), strict=False)
        expected = candidate.subnet_of(vpc_network) and not any(candidate.overlaps(a) for a in accepted)
        try:
            await net.create_subnet(vpc.id, "s", str(candidate))
        except (InvalidArgument, FailedPrecondition):
            assert not expected, candidate
        else:
            assert expected, candidate
            accepted.append(candidate)
    await net.close()


@SETTINGS
@given(st.integers(24, 29), st.lists(st.sampled_from(["next", "pick", "free"]), max_size=60), st.randoms())
async def test_allocation_matches_a_model_of_the_usable_addresses(prefix, ops, rnd):
    net = await fresh_core()
    network = ipaddress.ip_network(f"192.168.4.0/{prefix}")
    vpc = await net.create_vpc("v", "o", "p", "192.168.0.0/16")
    subnet = await net.create_subnet(vpc.id, "s", str(network))
    usable = set(network.hosts()) - {ipaddress.ip_address(subnet.gateway_ip)}
    held: dict[ipaddress.IPv4Address, str] = {}
    for op in ops:
        free = sorted(usable - set(held))
        if op == "free" and held:
            address = rnd.choice(sorted(held))
            await net.delete_port(held.pop(address))
        elif op == "pick":
            address = rnd.choice(sorted(usable))
            try:
                port = await net.create_port(subnet.id, ip_address=str(address))
            except Exception:  # noqa: BLE001 - must be because the address is held
                assert address in held
            else:
                assert address not in held
                held[address] = port.id
        else:
            try:
                port = await net.create_port(subnet.id)
            except ResourceExhausted:
                assert not free
            else:
                assert ipaddress.ip_address(port.ip_address) == free[0]  # the lowest free usable address
                held[free[0]] = port.id
    assert len(held) <= len(usable)
    await net.close()
