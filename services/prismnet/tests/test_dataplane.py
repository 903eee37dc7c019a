"""The dataplane on this host, for real: bridges, router namespaces, DHCP, security groups and the guard
against tenant ranges leaving by the default route, with namespaces plugged in as ports' devices.

Everything runs under a prefix of this test's own and is removed at the end (and checked to be)."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.common.netdev import DeviceNames
from photoncloud.prismnet.dataplane import firewall
from photoncloud.prismnet.dataplane.agent import Dataplane, unsupported
from photoncloud.prismnet.dataplane.guard import Guard
from photoncloud.prismnet.dataplane.links import IPRoute, netns
from photoncloud.prismnet.dataplane.state import NetPort, NetRule, NetSubnet, NetVpc, NetworkState
from photoncloud.prismnet.dataplane.testing import EMPTY, connects, dhcp, host_view, ping, plug, run_in, serve, unplug

# Bridges, namespaces and nftables take root. CI runs the tests as root, so these run there.
needs.root("the dataplane makes bridges, namespaces and nftables rules")

ALLOW_EGRESS = (NetRule("EGRESS", "ANY", 0, 0, "", "", "IPv4"), NetRule("EGRESS", "ANY", 0, 0, "", "", "IPv6"))
WEB_ONLY = (NetRule("INGRESS", "TCP", 8080, 8080, "", "", "IPv4"), *ALLOW_EGRESS)


def base_state() -> NetworkState:
    """Two tenants' VPCs over the same range: the first with two subnets and three ports, the second with one."""
    return NetworkState(
        vpcs={"vpc-a": NetVpc("vpc-a", "10.71.0.0/16", 4101), "vpc-b": NetVpc("vpc-b", "10.71.0.0/16", 4102)},
        subnets={"sa1": NetSubnet("sa1", "vpc-a", "10.71.1.0/24", "10.71.1.1", ("192.0.2.53",)),
                 "sa2": NetSubnet("sa2", "vpc-a", "10.71.2.0/24", "10.71.2.1", ()),
                 "sb1": NetSubnet("sb1", "vpc-b", "10.71.1.0/24", "10.71.1.1", ())},
        ports={"pa1": NetPort("pa1", "vpc-a", "sa1", "10.71.1.5", "fa:16:3e:71:00:01", ()),
               "pa2": NetPort("pa2", "vpc-a", "sa2", "10.71.2.7", "fa:16:3e:71:00:02", ()),
               "pa3": NetPort("pa3", "vpc-a", "sa1", "10.71.1.9", "fa:16:3e:71:00:03", ()),
               "pb1": NetPort("pb1", "vpc-b", "sb1", "10.71.1.6", "fa:16:3e:71:00:04", ())},
        groups={})


def with_groups(state: NetworkState, groups: dict[str, tuple[NetRule, ...]], **ports: tuple[str, ...]) -> NetworkState:
    """The state with these groups, and these ports in these groups."""
    changed = {p: replace(state.ports[p], security_group_ids=g) for p, g in ports.items()}
    return replace(state, ports={**state.ports, **changed}, groups=groups)


@pytest.fixture
def plane(tmp_path):
    """A Dataplane under a prefix of this test's own; everything it made is torn down afterwards."""
    assert unsupported() == ""
    names = DeviceNames("t" + secrets.token_hex(2)[:3])
    # Under /run as the agent's own default: dnsmasq reads its files again as an unprivileged user.
    dataplane = Dataplane(names, Path(f"/run/photoncloud/test-dataplane-{names.prefix}"))
    plugged: list[tuple[str, str]] = []

    def plug_port(state: NetworkState, port_id: str) -> str:
        namespace = f"{names.prefix}-ns-{port_id}"
        plug(names, state.ports[port_id], namespace)
        plugged.append((port_id, namespace))
        return namespace

    dataplane.plug = plug_port
    yield dataplane
    for port_id, namespace in plugged:
        unplug(names, port_id, namespace)
    dataplane.teardown()
    assert host_view(names, dataplane.state_dir) == EMPTY
    assert not dataplane.state_dir.exists()


def test_ports_get_their_address_by_dhcp_and_reach_their_vpc_only(plane, tmp_path):
    state = base_state()
    plane.reconcile(state)
    a1, a2, b1 = (plane.plug(state, p) for p in ("pa1", "pa2", "pb1"))
    # Each gets exactly its port's address, its subnet's gateway and DNS servers.
    assert dhcp(a1, tmp_path) == "10.71.1.5/24 10.71.1.1 192.0.2.53"
    assert dhcp(a2, tmp_path) == "10.71.2.7/24 10.71.2.1"
    assert dhcp(b1, tmp_path) == "10.71.1.6/24 10.71.1.1"
    # Within a VPC: the gateway, and another subnet through the router.
    assert ping(a1, "10.71.1.1") and ping(a1, "10.71.2.7") and ping(a2, "10.71.1.5")
    # The other tenant's VPC has the same range and gateway address, and reaches none of the first one's.
    assert ping(b1, "10.71.1.1")
    assert not ping(b1, "10.71.1.5") and not ping(b1, "10.71.2.7") and not ping(a1, "10.71.1.6")
    # Nothing beyond the VPC: the router has no route off it, the host no address on it.
    routes = run_in(plane.names.router("vpc-a"), "ip", "route").stdout
    assert "default" not in routes and "10.71.1.0/24" in routes and "10.71.2.0/24" in routes
    with IPRoute() as ipr:
        host_addresses = [a.get_attr("IFA_ADDRESS") for a in ipr.get_addr(family=2)
                          if not a.get_attr("IFA_ADDRESS").startswith("127.")]
        (bridge,) = ipr.link_lookup(ifname=plane.names.bridge("vpc-a"))
        assert list(ipr.get_addr(index=bridge)) == []
    for address in host_addresses[:3]:
        assert not ping(a1, address, count=1)
    # A port that claims another address is not let through (anti-spoofing).
    run_in(a1, "ip", "addr", "add", "10.71.1.99/24", "dev", "eth0")
    assert not ping(a1, "10.71.2.7", source="10.71.1.99") and ping(a1, "10.71.2.7", source="10.71.1.5")


def test_security_groups_allow_what_their_rules_say_and_changes_take_effect(plane, tmp_path):
    state = with_groups(base_state(), {"web": WEB_ONLY}, pa2=("web",))
    plane.reconcile(state)
    a1, a2, a3 = (plane.plug(state, p) for p in ("pa1", "pa2", "pa3"))
    for namespace in (a1, a2, a3):
        assert dhcp(namespace, tmp_path)  # DHCP gets through whatever the groups say
    server = serve(a2, 8080, 9090)
    try:
        # Into the grouped port: TCP 8080 only; ICMP and other ports are dropped.
        assert connects(a1, "10.71.2.7", 8080)
        assert not connects(a1, "10.71.2.7", 9090) and not ping(a1, "10.71.2.7", count=1)
        # Out of it, everything (a new group's egress rules), and the replies come back.
        assert ping(a2, "10.71.1.5")
        # Removing the rule takes effect; so does adding one for ICMP from members of a group.
        plane.reconcile(with_groups(base_state(), {"web": ALLOW_EGRESS}, pa2=("web",)))
        assert not connects(a1, "10.71.2.7", 8080)
        icmp_from_peers = (NetRule("INGRESS", "ICMP", 0, 0, "", "peers", "IPv4"), *ALLOW_EGRESS)
        state = with_groups(base_state(), {"web": icmp_from_peers, "peers": ALLOW_EGRESS}, pa2=("web",),
                            pa1=("peers",))
        plane.reconcile(state)
        assert ping(a1, "10.71.2.7") and not ping(a3, "10.71.2.7", count=1)
        # Egress restricted: with no egress rule left, the grouped port sends nothing new.
        plane.reconcile(with_groups(base_state(), {"web": icmp_from_peers[:1], "peers": ALLOW_EGRESS},
                                    pa2=("web",), pa1=("peers",)))
        assert not ping(a2, "10.71.1.9", count=1) and ping(a1, "10.71.2.7")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_a_device_plugged_before_its_port_is_known_carries_nothing_and_a_freed_address_is_leased_again(plane,
                                                                                                         tmp_path):
    state = base_state()
    plane.reconcile(state)
    first = plane.plug(state, "pa1")
    assert dhcp(first, tmp_path).startswith("10.71.1.5/24")
    # The port goes, and PrismNET gives its address to a new port, with another MAC. Plugged in before the agent's
    # round has the new port, its device carries nothing (no checks of its MAC and address, no groups yet).
    unplug(plane.names, "pa1", first)
    ports = {k: v for k, v in state.ports.items() if k != "pa1"}
    ports["pn1"] = replace(state.ports["pa1"], id="pn1", mac_address="fa:16:3e:71:00:99")
    state = replace(state, ports=ports)
    early = plane.plug(state, "pn1")
    run_in(early, "ip", "addr", "add", "10.71.1.5/24", "dev", "eth0")
    assert not ping(early, "10.71.1.1", count=1)
    # Once the round has it, it gets the address by DHCP at once: the old port's lease went with its reservation.
    plane.reconcile(state)
    run_in(early, "ip", "addr", "flush", "dev", "eth0")
    assert dhcp(early, tmp_path).startswith("10.71.1.5/24 10.71.1.1")
    assert ping(early, "10.71.1.1")


def test_a_restarted_agent_changes_nothing_and_a_deleted_vpc_leaves_nothing(plane, tmp_path):
    state = with_groups(base_state(), {"web": WEB_ONLY}, pa2=("web",))
    plane.reconcile(state)
    a1, a2 = plane.plug(state, "pa1"), plane.plug(state, "pa2")
    assert dhcp(a1, tmp_path) and dhcp(a2, tmp_path)
    before = host_view(plane.names, plane.state_dir)
    rules_before = subprocess.run(["nft", "list", "table", "inet", firewall.table_name(plane.names)],
                                  capture_output=True, text=True).stdout
    dhcp_before = plane.dhcp.pid(plane.names.router("vpc-a"))
    restarted = Dataplane(plane.names, plane.state_dir)
    restarted.reconcile(state)
    restarted.reconcile(state)
    # The same devices (same ifindex), namespaces, tables, guard and DHCP.
    assert host_view(plane.names, plane.state_dir) == before
    assert subprocess.run(["nft", "list", "table", "inet", firewall.table_name(plane.names)],
                          capture_output=True, text=True).stdout == rules_before
    assert plane.dhcp.pid(plane.names.router("vpc-a")) == dhcp_before is not None
    assert ping(a2, "10.71.1.5")
    # VPC a goes (its ports first): its bridge, VXLAN, router namespace, DHCP and rules go with it.
    remaining = NetworkState(vpcs={"vpc-b": state.vpcs["vpc-b"]}, subnets={"sb1": state.subnets["sb1"]},
                             ports={"pb1": state.ports["pb1"]})
    for _ in range(2):  # a port device goes once its port has been gone two rounds
        restarted.reconcile(remaining)
    view = host_view(plane.names, plane.state_dir)
    gone = [plane.names.bridge("vpc-a"), plane.names.gateway("vpc-a"), plane.names.port("pa1"),
            plane.names.port("pa2")]
    assert not set(gone) & set(view["devices"]), view
    assert plane.names.bridge("vpc-b") in view["devices"]
    assert view["namespaces"] == [plane.names.router("vpc-b")]
    assert plane.dhcp.pid(plane.names.router("vpc-a")) is None
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True).stdout
    assert plane.names.port("pa2") not in ruleset and plane.names.port("pb1") in ruleset


def test_tenant_ranges_never_leave_by_the_default_route(tmp_path):
    """In a namespace playing the host, with a default route to a namespace playing its gateway: a packet for a
    tenant range goes nowhere with the guard, and reaches the gateway without it; the host's own network still
    works when a range overlaps it."""
    names = DeviceNames("t" + secrets.token_hex(2)[:3])
    host, gateway = f"{names.prefix}-host", f"{names.prefix}-gw"
    for namespace in (host, gateway):
        netns.create(namespace)
    try:
        subprocess.run(["ip", "-n", host, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
                        gateway], check=True)
        for namespace, address in ((host, "192.168.77.2/24"), (gateway, "192.168.77.1/24")):
            run_in(namespace, "ip", "addr", "add", address, "dev", "eth0")
            run_in(namespace, "ip", "link", "set", "eth0", "up")
            run_in(namespace, "ip", "link", "set", "lo", "up")
        run_in(host, "ip", "route", "add", "default", "via", "192.168.77.1")
        counting = "table inet count {\n chain seen {\n type filter hook prerouting priority 0\n" \
                   " ip daddr 10.72.0.0/16 counter\n }\n}\n"
        loaded = subprocess.run(["ip", "netns", "exec", gateway, "nft", "-f", "-"], input=counting, text=True)
        assert loaded.returncode == 0

        def reached_gateway() -> int:
            listing = run_in(gateway, "nft", "list", "table", "inet", "count").stdout
            return int(listing.split("packets ")[1].split()[0])

        guard = Guard(names, namespace=host)
        guard.ensure(["10.72.0.0/16", "192.168.77.0/25"])
        guard.ensure(["10.72.0.0/16", "192.168.77.0/25"])  # twice: nothing doubles
        assert not ping(host, "10.72.1.5", count=1) and reached_gateway() == 0
        assert run_in(host, "ip", "route", "get", "10.72.1.5").returncode != 0  # no route: unreachable
        assert ping(host, "192.168.77.1")  # the host's own network, inside an overlapping range, still works
        assert len([r for r in run_in(host, "ip", "rule").stdout.splitlines() if str(guard.table) in r]) == 1
        guard.remove()
        ping(host, "10.72.1.5", count=1)
        assert reached_gateway() >= 1  # without the guard, the same packet goes to the gateway
    finally:
        for namespace in (host, gateway):
            netns.remove(namespace)


HOST_ROUND = """
import json, sys
from pathlib import Path
from photoncloud.common.netdev import DeviceNames
from photoncloud.prismnet.dataplane.agent import Dataplane
from photoncloud.prismnet.dataplane.state import parse
from photoncloud.prismnet.dataplane.testing import plug
prefix, underlay, peer, answer, action = sys.argv[1:6]
names, state = DeviceNames(prefix), parse(json.loads(answer))
dataplane = Dataplane(names, Path(f"/run/photoncloud/test-vxlan-{prefix}"), underlay, [peer])
if action == "teardown":
    dataplane.teardown()
elif action.startswith("plug:"):
    port_id = action[5:]
    plug(names, state.ports[port_id], f"{prefix}-ns-{port_id}")
else:
    dataplane.reconcile(state)
"""


def test_a_vpc_spans_two_hosts_over_vxlan(tmp_path):
    """Two namespaces play two hosts joined by an underlay link, each with its own agent (prefix): a port on each
    host, in one VPC, gets its address and reaches the other through the VPC's VXLAN."""
    tag = secrets.token_hex(1)
    hosts = {f"h{tag}a": "192.168.90.1", f"h{tag}b": "192.168.90.2"}
    (host_a, underlay_a), (host_b, underlay_b) = hosts.items()
    answer = {"vpcs": [{"id": "vpc-x", "cidr_block": "10.73.0.0/16", "vni": 7301}],
              "subnets": [{"id": "sx", "vpc_id": "vpc-x", "cidr_block": "10.73.1.0/24", "gateway_ip": "10.73.1.1"}],
              "ports": [{"id": "px1", "vpc_id": "vpc-x", "subnet_id": "sx", "ip_address": "10.73.1.5",
                         "mac_address": "fa:16:3e:73:00:01"},
                        {"id": "px2", "vpc_id": "vpc-x", "subnet_id": "sx", "ip_address": "10.73.1.6",
                         "mac_address": "fa:16:3e:73:00:02"}]}

    def on(host: str, action: str) -> None:
        underlay, peer = hosts[host], next(a for h, a in hosts.items() if h != host)
        # nsenter, not `ip netns exec`: that one runs in a mount namespace of its own, and the namespaces the agent
        # makes there would be gone with it.
        done = subprocess.run(["nsenter", f"--net=/run/netns/{host}", sys.executable, "-c", HOST_ROUND, host, underlay,
                               peer, json.dumps(answer), action], capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, done.stderr

    for host in hosts:
        netns.create(host)
    try:
        subprocess.run(["ip", "-n", host_a, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns",
                        host_b], check=True)
        for host, address in hosts.items():
            run_in(host, "ip", "addr", "add", f"{address}/24", "dev", "eth0")
            run_in(host, "ip", "link", "set", "eth0", "up")
            run_in(host, "ip", "link", "set", "lo", "up")
        for host in hosts:
            on(host, "reconcile")
        on(host_a, "plug:px1")
        on(host_b, "plug:px2")
        names_a = DeviceNames(host_a)
        vxlan = run_in(host_a, "ip", "-d", "link", "show", names_a.vxlan("vpc-x")).stdout
        assert "vxlan id 7301" in vxlan and f"local {underlay_a}" in vxlan and names_a.bridge("vpc-x") in vxlan
        assert underlay_b in run_in(host_a, "bridge", "fdb", "show", "dev", names_a.vxlan("vpc-x")).stdout
        port_a, port_b = f"{host_a}-ns-px1", f"{host_b}-ns-px2"
        assert dhcp(port_a, tmp_path).startswith("10.73.1.5/24 10.73.1.1")
        assert dhcp(port_b, tmp_path).startswith("10.73.1.6/24 10.73.1.1")
        assert ping(port_a, "10.73.1.6") and ping(port_b, "10.73.1.5")  # across the underlay
    finally:
        for host, port_id in ((host_a, "px1"), (host_b, "px2")):
            if f"{host}-ns-{port_id}" in netns.listnetns():
                netns.remove(f"{host}-ns-{port_id}")
            if host in netns.listnetns():
                on(host, "teardown")
                netns.remove(host)
