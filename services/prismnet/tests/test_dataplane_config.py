"""The dataplane agent's inputs and refusals, without root: its flags, the state it reads, its DHCP
configuration, the limit of its rules, and a host that cannot run it."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from photoncloud.prismnet.dataplane import __main__ as cli
from photoncloud.prismnet.dataplane import dhcp, firewall
from photoncloud.prismnet.dataplane.state import NetPort, NetSubnet, NetworkState, parse

ANSWER = {  # GetNetworkState's REST answer, as the REST guide shows it
    "applied_index": "12",
    "vpcs": [{"id": "v1", "name": "shop", "project_id": "p1", "cidr_block": "10.0.0.0/16", "vni": 4096}],
    "subnets": [{"id": "s1", "vpc_id": "v1", "name": "web", "cidr_block": "10.0.1.0/24", "gateway_ip": "10.0.1.1",
                 "allocation_pools": [{"start": "10.0.1.2", "end": "10.0.1.254"}], "dns_servers": ["192.0.2.53"]}],
    "ports": [{"id": "p1", "subnet_id": "s1", "vpc_id": "v1", "name": "web-1", "ip_address": "10.0.1.2",
               "mac_address": "fa:16:3e:00:00:01", "device_id": "vm1", "device_type": "VM",
               "security_group_ids": ["g1"]}],
    "security_groups": [{"id": "g1", "name": "web", "project_id": "p1", "rules": [
        {"id": "r1", "direction": "INGRESS", "protocol": "TCP", "port_range_min": 443, "port_range_max": 443,
         "remote_cidr": "", "remote_group_id": "", "ethertype": "IPv4"}]}],
}


def test_the_state_is_read_from_the_answer():
    state = parse(ANSWER)
    assert state.vpcs["v1"].vni == 4096 and state.vpcs["v1"].cidr_block == "10.0.0.0/16"
    assert state.subnets["s1"].gateway_interface == "10.0.1.1/24" and state.subnets["s1"].dns_servers == ("192.0.2.53",)
    assert state.ports["p1"].security_group_ids == ("g1",) and state.members("g1") == ["10.0.1.2"]
    (rule,) = state.groups["g1"]
    assert (rule.direction, rule.protocol, rule.port_range_min, rule.port_range_max) == ("INGRESS", "TCP", 443, 443)


def test_dhcp_gives_only_reservations_with_the_subnets_gateway_and_dns(tmp_path):
    subnets = [NetSubnet("s1", "v1", "10.0.1.0/24", "10.0.1.1", ("192.0.2.53", "2001:db8::53")),
               NetSubnet("s2", "v1", "10.0.2.0/28", "10.0.2.1", ()),
               NetSubnet("s6", "v1", "fd00:1::/64", "fd00:1::1", ())]
    lines = dhcp.config(tmp_path, "gw0", subnets).splitlines()
    assert "port=0" in lines and "interface=gw0" in lines  # no DNS server of its own, only the router's end
    ranges = [line for line in lines if line.startswith("dhcp-range=")]
    assert ranges == ["dhcp-range=set:s0,10.0.1.0,static,255.255.255.0,12h",
                      "dhcp-range=set:s1,10.0.2.0,static,255.255.255.240,12h"]  # static only; no IPv6 range
    assert "dhcp-option=tag:s0,option:router,10.0.1.1" in lines
    assert "dhcp-option=tag:s0,option:dns-server,192.0.2.53" in lines
    assert not any(line.startswith("dhcp-option=tag:s1,option:dns-server") for line in lines)
    ports = [NetPort("b", "v1", "s1", "10.0.1.3", "fa:16:3e:00:00:02", ()),
             NetPort("a", "v1", "s1", "10.0.1.2", "fa:16:3e:00:00:01", ())]
    assert dhcp.hosts(ports) == "fa:16:3e:00:00:01,10.0.1.2\nfa:16:3e:00:00:02,10.0.1.3\n"


def test_more_filtered_ports_than_the_marks_can_tell_apart_is_refused_clearly():
    ports = {f"p{n}": NetPort(f"p{n}", "v1", "s1", "10.0.0.1", "fa:16:3e:00:00:01", ("g",))
             for n in range(firewall.MAX_FILTERED + 1)}
    with pytest.raises(firewall.FirewallError, match="at most 16383"):
        firewall.filtered_ports(NetworkState(ports=ports))
    ports.popitem()
    assert len(firewall.filtered_ports(NetworkState(ports=ports))) == firewall.MAX_FILTERED


def test_flags_are_checked_and_the_state_directory_follows_the_prefix():
    args = cli.parse(["--prefix", "pz", "--underlay", "192.0.2.1", "--peer", "192.0.2.2", "--guard-range",
                      "10.96.0.0/12"], environ={})
    assert args.state_dir == Path("/run/photoncloud/dataplane-pz") and args.peer == ["192.0.2.2"]
    for bad in (["--prefix", "PC"], ["--prefix", "toolong"], ["--underlay", "not-an-address"],
                ["--guard-range", "10.0.0.0/33"]):
        with pytest.raises(SystemExit) as exited:
            cli.parse(bad, environ={})
        assert exited.value.code == 2
    assert cli.parse([], environ={"PRISMNET_DATAPLANE_PEERS": "192.0.2.7,192.0.2.8"}).peer == ["192.0.2.7", "192.0.2.8"]


def test_a_host_that_cannot_run_it_is_told_why(monkeypatch, capsys):
    monkeypatch.setattr(cli, "unsupported", lambda: "the agent is not root (...)")
    umask = os.umask(0o077)
    try:
        with pytest.raises(SystemExit) as exited:
            cli.main(["--prefix", "pz", "--token-file", "/nonexistent"])
        assert os.umask(umask) == 0o022  # it opens its files to dnsmasq's unprivileged user, whatever it was given
    finally:
        os.umask(umask)
    assert exited.value.code == cli.EXIT_UNSUPPORTED
    assert "cannot run here: the agent is not root" in capsys.readouterr().err
