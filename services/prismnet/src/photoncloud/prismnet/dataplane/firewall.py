"""Security groups and port anti-spoofing as nftables rules, applied as one transaction.

Ports are bridged, and this kernel family offers connection tracking only to IP hooks, so the
rules come in two tables that a packet's mark joins up (as Neutron's iptables driver does with
br_netfilter): the bridge table sees which port a frame came in on and goes out of, checks that a
port sends only from its own MAC and address (and no IPv6, which its IPv4 subnet does not carry),
and marks the packet with both ports; br_netfilter (`net.bridge.bridge-nf-call-iptables`) then
hands bridged IP packets to the inet table's forward hook, where connection tracking lets replies
through and each marked port's groups decide new flows: egress by the sending port's groups, then
ingress by the receiving one's. As in Neutron and AWS, a port with groups takes in only what a rule
allows (DHCP from its gateway aside) and sends what its groups' egress rules allow (a new group
allows all egress); a port without groups is not filtered beyond anti-spoofing. The rules match
devices by name (netdev.DeviceNames.port), so they hold from before a VM or pod plugs in.

Engines that drop forwarded traffic by default (Docker's FORWARD policy) would drop bridged tenant
traffic too, since br_netfilter shows it to every table: a packet that entered one of our bridges
carries MARK_BRIDGE (every port of those bridges is named with the agent's prefix), and an ACCEPT
for that mark goes into Docker's DOCKER-USER chain when there is one. Devices match by name prefix,
so no agent's prefix may begin another's.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Iterable

from photoncloud.common.netdev import DeviceNames

from .state import NetPort, NetRule, NetworkState

MARK_BRIDGE = 0x40000000  # entered one of this agent's bridges
MARK_FROM = 0x10000000  # sent by a port with security groups; the port's index in bits 0-13
MARK_TO = 0x20000000  # bound for a port with security groups; its index in bits 14-27
INDEX_BITS = 14
MAX_FILTERED = (1 << INDEX_BITS) - 1  # ports with groups one host's rules can tell apart
DHCP_CLIENT, DHCP_SERVER = 68, 67


class FirewallError(RuntimeError):
    """nft refused the rules (the message is nft's)."""


def table_name(names: DeviceNames) -> str:
    """The name of this agent's tables (one bridge and one inet table)."""
    return f"photoncloud_{names.prefix}"


def _match(rule: NetRule, state: NetworkState, remote_side: str) -> str | None:
    """The nft match of one rule's flow (remote_side saddr for ingress, daddr for egress); None if it can match
    nothing (a remote group with no member)."""
    family = "ip6" if rule.ethertype == "IPv6" else "ip"
    parts = ["meta nfproto " + ("ipv6" if family == "ip6" else "ipv4")]
    if rule.protocol in ("TCP", "UDP"):
        parts.append(f"meta l4proto {rule.protocol.lower()}")
        if rule.port_range_min or rule.port_range_max:
            low, high = rule.port_range_min, rule.port_range_max or rule.port_range_min
            parts.append(f"th dport {low}" if low == high else f"th dport {low}-{high}")
    elif rule.protocol == "ICMP":
        parts.append("meta l4proto " + ("icmpv6" if family == "ip6" else "icmp"))
    if rule.remote_cidr:
        parts.append(f"{family} {remote_side} {rule.remote_cidr}")
    elif rule.remote_group_id:
        version = 6 if family == "ip6" else 4
        members = [a for a in state.members(rule.remote_group_id) if (":" in a) == (version == 6)]
        if not members:
            return None
        parts.append(f"{family} {remote_side} {{ {', '.join(members)} }}")
    return " ".join(parts)


def _group_chain(port: NetPort, state: NetworkState, direction: str) -> list[str]:
    """The rules of a port's groups in one direction: a match each (deduplicated, in order)."""
    side = "saddr" if direction == "INGRESS" else "daddr"
    seen: list[str] = []
    for group_id in port.security_group_ids:
        for rule in state.groups.get(group_id, ()):
            match = _match(rule, state, side) if rule.direction == direction else None
            if match is not None and match not in seen:
                seen.append(match)
    return seen


def filtered_ports(state: NetworkState) -> list[NetPort]:
    """The ports whose groups decide their traffic, in the order that gives each its index (1, 2, ...)."""
    ports = sorted((p for p in state.ports.values() if p.security_group_ids), key=lambda p: p.id)
    if len(ports) > MAX_FILTERED:
        raise FirewallError(f"{len(ports)} ports with security groups: one host's rules tell at most "
                            f"{MAX_FILTERED} apart")
    return ports


def render(names: DeviceNames, state: NetworkState) -> str:
    """The nft script that replaces this agent's tables with the rules for state, in one transaction."""
    table = table_name(names)
    ports = sorted(state.ports.values(), key=lambda p: p.id)
    index = {p.id: i for i, p in enumerate(filtered_ports(state), start=1)}
    bridge: list[str] = []
    for port in ports:
        device = names.port(port.id)
        bridge += [f"  chain from_{device} {{",
                   f"    ether saddr != {port.mac_address} drop",
                   "    ether type ip6 drop",
                   f"    ether type arp arp saddr ether != {port.mac_address} drop",
                   f"    ether type arp arp saddr ip != {{ {port.ip_address}, 0.0.0.0 }} drop",
                   f"    ether type ip ip saddr != {{ {port.ip_address}, 0.0.0.0 }} drop"]
        if port.id in index:
            bridge.append(f"    meta mark set meta mark | {MARK_FROM | index[port.id]:#x}")
        bridge += ["    accept", "  }"]
        if port.id in index:
            mark = MARK_TO | index[port.id] << INDEX_BITS
            bridge += [f"  chain to_{device} {{", f"    meta mark set meta mark | {mark:#x}", "    accept", "  }"]
    devices = f"{names.prefix}p*"  # every port device of this agent's, known or not
    ingress_from = ", ".join(f'"{names.port(p.id)}" : jump from_{names.port(p.id)}' for p in ports)
    egress_to = ", ".join(f'"{names.port(p.id)}" : ' + (f"jump to_{names.port(p.id)}" if p.id in index else "accept")
                          for p in ports)
    # A device plugged in for a port this round's state does not have yet (or no longer has) carries nothing
    # until the agent knows its port: no frame of an unchecked MAC or address, none past a group not yet applied.
    bridge += ["  chain prerouting {", "    type filter hook prerouting priority -300; policy accept;",
               f'    iifname "{names.prefix}*" meta mark set meta mark | {MARK_BRIDGE:#x}']
    if ingress_from:
        bridge.append(f"    iifname vmap {{ {ingress_from} }}")
    bridge += [f'    iifname "{devices}" drop', "  }", "  chain forward {",
               "    type filter hook forward priority -300; policy accept;"]
    if egress_to:
        bridge.append(f"    oifname vmap {{ {egress_to} }}")
    bridge += [f'    oifname "{devices}" drop', "  }"]

    inet: list[str] = []
    for port in ports:
        if port.id not in index:
            continue
        number = index[port.id]
        inet += [f"  chain egress_{number} {{", f"    udp sport {DHCP_CLIENT} udp dport {DHCP_SERVER} return"]
        inet += [f"    {match} return" for match in _group_chain(port, state, "EGRESS")]
        inet += ["    drop", "  }", f"  chain ingress_{number} {{",
                 f"    udp sport {DHCP_SERVER} udp dport {DHCP_CLIENT} accept"]
        inet += [f"    {match} accept" for match in _group_chain(port, state, "INGRESS")]
        inet += ["    drop", "  }"]
    inet += ["  chain forward {", "    type filter hook forward priority -10; policy accept;",
             f"    meta mark & {MARK_BRIDGE:#x} == 0 return",
             "    ct state established,related accept", "    ct state invalid drop"]
    if index:
        egress = ", ".join(f"{MARK_FROM | n:#x} : jump egress_{n}" for n in index.values())
        ingress = ", ".join(f"{MARK_TO | n << INDEX_BITS:#x} : jump ingress_{n}" for n in index.values())
        inet += [f"    meta mark & {MARK_FROM | MAX_FILTERED:#x} vmap {{ {egress} }}",
                 f"    meta mark & {MARK_TO | MAX_FILTERED << INDEX_BITS:#x} vmap {{ {ingress} }}"]
    inet.append("  }")
    return "\n".join([*_replace("bridge", table), *bridge, "}", *_replace("inet", table), *inet, "}", ""])


def _replace(family: str, table: str) -> list[str]:
    # Adding an empty table first makes the delete succeed when there is none: the script is one transaction.
    return [f"table {family} {table}", f"delete table {family} {table}", f"table {family} {table} {{"]


def apply(script: str, namespace: str = "") -> None:
    """Load an nft script (in a network namespace when given) as one transaction."""
    command = ["nft", "-f", "-"]
    if namespace:
        command = ["ip", "netns", "exec", namespace, *command]
    result = subprocess.run(command, input=script, capture_output=True, text=True, timeout=30)
    if result.returncode:
        raise FirewallError(f"nft refused the rules: {result.stderr.strip()}")


def remove(names: DeviceNames) -> None:
    """Delete this agent's tables (gone already is fine)."""
    for family in ("bridge", "inet"):
        subprocess.run(["nft", "delete", "table", family, table_name(names)], capture_output=True, timeout=30)


def docker_rule(names: DeviceNames) -> list[str]:
    """This agent's DOCKER-USER rule, which lets traffic of the bridges past Docker's FORWARD policy (each agent has
    its own, named in a comment, so that one agent's going takes nothing from another)."""
    return ["DOCKER-USER", "-m", "mark", "--mark", f"{MARK_BRIDGE:#x}/{MARK_BRIDGE:#x}", "-m", "comment",
            "--comment", table_name(names), "-j", "ACCEPT"]


def allow_past_docker(names: DeviceNames) -> bool:
    """Put docker_rule() into Docker's DOCKER-USER chain if there is one and it lacks it; whether the chain is there."""
    iptables = shutil.which("iptables")
    if iptables is None or _iptables(iptables, ["-S", "DOCKER-USER"]) != 0:
        return False
    if _iptables(iptables, ["-C", *docker_rule(names)]) != 0:
        _iptables(iptables, ["-I", *docker_rule(names)], check=True)
    return True


def withdraw_from_docker(names: DeviceNames) -> None:
    """Take this agent's docker_rule() out of DOCKER-USER again (every copy)."""
    iptables = shutil.which("iptables")
    while iptables is not None and _iptables(iptables, ["-D", *docker_rule(names)]) == 0:
        pass


def _iptables(binary: str, args: Iterable[str], check: bool = False) -> int:
    result = subprocess.run([binary, "-w", "5", *args], capture_output=True, text=True, timeout=30)
    if check and result.returncode:
        raise FirewallError(f"iptables {' '.join(args)}: {result.stderr.strip()}")
    return result.returncode
