"""The address rules of PrismNET, on Python's `ipaddress`: CIDR bounds, containment, usable ranges.

IPv4 and IPv6 are both served. A VPC's prefix length lies within VPC_PREFIX, a subnet's within
SUBNET_PREFIX (per IP version). In an IPv4 subnet the network and broadcast addresses are never
usable; in an IPv6 subnet the network address (the subnet-router anycast address) is not.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Callable
from ipaddress import IPv4Network, IPv6Network, ip_address, ip_network

from photoncloud.common.errors import InvalidArgument

from .records import Pool

Network = IPv4Network | IPv6Network
# (shortest, longest) prefix length, by IP version: AWS's /16-/28 for IPv4 VPCs, widened to /8.
VPC_PREFIX = {4: (8, 28), 6: (44, 64)}
SUBNET_PREFIX = {4: (8, 30), 6: (48, 124)}


def parse_cidr(value: str, field: str, bounds: dict[int, tuple[int, int]]) -> Network:
    """value as a network in canonical form; INVALID_ARGUMENT if malformed, not a network address
    (host bits set), or with a prefix length outside bounds."""
    try:
        network = ip_network(value.strip(), strict=False)
    except ValueError:
        raise InvalidArgument(f"{field} {value!r} is not a CIDR block such as 10.0.0.0/16", {"field": field}) from None
    if "/" not in value:
        raise InvalidArgument(f"{field} {value!r} needs a prefix length, such as /16", {"field": field})
    if network.network_address != ip_interface(value).ip:
        raise InvalidArgument(f"{field} {value!r} has host bits set: the network address is "
                              f"{network.network_address}", {"field": field})
    low, high = bounds[network.version]
    if not low <= network.prefixlen <= high:
        raise InvalidArgument(f"{field} prefix length must be between /{low} and /{high} for IPv{network.version}",
                              {"field": field})
    return network


def ip_interface(value: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    """value (address/prefix) as an interface."""
    return ipaddress.ip_interface(value.strip())


def parse_address(value: str, field: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    """value as an IP address; INVALID_ARGUMENT otherwise."""
    try:
        return ip_address(value.strip())
    except ValueError:
        raise InvalidArgument(f"{field} {value!r} is not an IP address", {"field": field}) from None


def inside(network: Network, outer: Network) -> bool:
    """Whether network lies within outer (False when their IP versions differ)."""
    if isinstance(network, IPv4Network) and isinstance(outer, IPv4Network):
        return network.subnet_of(outer)
    if isinstance(network, IPv6Network) and isinstance(outer, IPv6Network):
        return network.subnet_of(outer)
    return False


def usable(network: Network) -> tuple[int, int]:
    """The first and last address (as integers) a host in network may have."""
    first, last = int(network.network_address) + 1, int(network.broadcast_address)
    if network.version == 4:
        last -= 1
    return first, last


def check_inside(network: Network, value: str, field: str) -> int:
    """The address value as an integer if it is a usable host address of network; INVALID_ARGUMENT otherwise."""
    address = parse_address(value, field)
    if address.version != network.version or address not in network:
        raise InvalidArgument(f"{field} {value} is outside {network}", {"field": field})
    first, last = usable(network)
    if not first <= int(address) <= last:
        raise InvalidArgument(f"{field} {value} is {network}'s network or broadcast address", {"field": field})
    return int(address)


def default_pools(network: Network, gateway: int) -> tuple[Pool, ...]:
    """Every usable address but the gateway, as one or two pools."""
    first, last = usable(network)
    ranges = [(first, gateway - 1), (gateway + 1, last)]
    make = type(network.network_address)
    return tuple(Pool(str(make(a)), str(make(b))) for a, b in ranges if a <= b)


def check_pools(network: Network, pools: list[dict[str, str]]) -> tuple[Pool, ...]:
    """Validated, sorted, non-overlapping allocation pools of usable addresses of network."""
    parsed = []
    for i, pool in enumerate(pools):
        start = check_inside(network, pool.get("start", ""), f"allocation_pools[{i}].start")
        end = check_inside(network, pool.get("end", ""), f"allocation_pools[{i}].end")
        if start > end:
            raise InvalidArgument(f"allocation_pools[{i}] starts after it ends", {"field": f"allocation_pools[{i}]"})
        parsed.append((start, end))
    parsed.sort()
    for (_, end), (start, _) in zip(parsed, parsed[1:]):
        if start <= end:
            raise InvalidArgument("allocation pools overlap", {"field": "allocation_pools"})
    make = type(network.network_address)
    return tuple(Pool(str(make(a)), str(make(b))) for a, b in parsed)


def capacity(pools: tuple[Pool, ...], gateway: str) -> int:
    """How many ports the pools can hold (the gateway, if inside one, is never allocated)."""
    gw = int(ip_address(gateway))
    total = 0
    for pool in pools:
        start, end = int(ip_address(pool.start)), int(ip_address(pool.end))
        total += end - start + 1 - (start <= gw <= end)
    return total


def first_free(pools: tuple[Pool, ...], taken: Callable[[int, int], list[int]]) -> int | None:
    """The lowest address of the pools that taken(start, end) (sorted allocated addresses) does not list."""
    for pool in pools:
        candidate, end = int(ip_address(pool.start)), int(ip_address(pool.end))
        for address in taken(candidate, end):
            if address != candidate:
                break
            candidate += 1
        if candidate <= end:
            return candidate
    return None


def in_pools(pools: tuple[Pool, ...], address: int) -> bool:
    """Whether an address lies in one of the pools."""
    return any(int(ip_address(p.start)) <= address <= int(ip_address(p.end)) for p in pools)
