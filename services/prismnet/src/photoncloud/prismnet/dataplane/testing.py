"""Test support: a network namespace plugged into a VPC's bridge as a port's device, as a VM or pod
would be, with busybox's DHCP client and ping and small TCP probes to see what gets through.

Every probe is bounded (a count and a timeout) and goes only to addresses inside namespaces and
bridges the test made.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from photoncloud.common.netdev import DeviceNames

from . import firewall
from .dhcp import Dhcp
from .guard import Guard
from .links import GATEWAY_INSIDE, IPRoute, netns
from .state import NetPort

# udhcpc runs this on a lease: the address with its prefix, the default route, and the lease kept in a file.
LEASE_SCRIPT = """#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/$mask" dev "$interface"
    for r in $router; do ip route add default via "$r" dev "$interface"; break; done
    echo "$ip/$mask $router $dns" > "$LEASE_FILE"
    ;;
esac
"""
# A TCP server on the given ports that reads a request (at most a second's wait), then answers "hello".
SERVER = """
import selectors, socket, sys
selector = selectors.DefaultSelector()
for port in sys.argv[1:]:
    s = socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind(("0.0.0.0", int(port))); s.listen(16); selector.register(s, selectors.EVENT_READ)
print("listening", flush=True)
while True:
    for key, _ in selector.select():
        connection, _ = key.fileobj.accept(); connection.settimeout(1)
        try:
            connection.recv(4096); connection.sendall(b"hello")
        except OSError:
            pass
        connection.close()
"""
# Connect, ask as HTTP would (an HTTP server answers only then; the server above ignores it), read to the end.
CONNECT = """
import socket, sys
try:
    with socket.create_connection((sys.argv[1], int(sys.argv[2])), timeout=float(sys.argv[3])) as s:
        s.sendall(b"GET / HTTP/1.0\\r\\n\\r\\n")
        data = b""
        while chunk := s.recv(4096):
            data += chunk
        sys.exit(0 if b"hello" in data else 1)
except OSError:
    sys.exit(1)
"""


def run_in(namespace: str, *command: str, timeout: float = 20) -> subprocess.CompletedProcess[str]:
    """Run a command in a network namespace."""
    return subprocess.run(["ip", "netns", "exec", namespace, *command], capture_output=True, text=True,
                          timeout=timeout)


def plug(names: DeviceNames, port: NetPort, namespace: str) -> None:
    """A namespace as the port's device: `eth0` with the port's MAC, its peer on the VPC's bridge."""
    netns.create(namespace)
    with IPRoute() as ipr:
        device = names.port(port.id)
        ipr.link("add", ifname=device, kind="veth", peer={"ifname": "eth0", "net_ns_fd": namespace})
        (index,) = ipr.link_lookup(ifname=device)
        (bridge,) = ipr.link_lookup(ifname=names.bridge(port.vpc_id))
        ipr.link("set", index=index, master=bridge, state="up")
    run_in(namespace, "ip", "link", "set", "lo", "up")
    run_in(namespace, "ip", "link", "set", "eth0", "address", port.mac_address, "up")


def unplug(names: DeviceNames, port_id: str, namespace: str) -> None:
    """Delete the port's device and the namespace (gone already is fine); the device first, since a namespace's
    devices go only once the kernel has cleaned it up, which it does in the background."""
    with IPRoute() as ipr:
        for index in ipr.link_lookup(ifname=names.port(port_id)):
            ipr.link("del", index=index)
    if namespace in netns.listnetns():
        netns.remove(namespace)


def dhcp(namespace: str, directory: Path, timeout: int = 10) -> str:
    """Ask for an address by DHCP on eth0 (busybox udhcpc); the lease "<ip>/<prefix> <routers> <dns>", or ""."""
    script, lease = directory / f"{namespace}.udhcpc", directory / f"{namespace}.lease"
    script.write_text(LEASE_SCRIPT)
    script.chmod(0o755)
    lease.unlink(missing_ok=True)
    subprocess.run(["ip", "netns", "exec", namespace, "env", f"LEASE_FILE={lease}", "busybox", "udhcpc", "-i", "eth0",
                    "-n", "-q", "-f", "-t", str(timeout), "-T", "1", "-s", str(script)],
                   capture_output=True, timeout=timeout * 2 + 10)
    return lease.read_text().strip() if lease.exists() else ""


def ping(namespace: str, address: str, count: int = 2, wait: int = 1, source: str = "") -> bool:
    """Whether the address answers busybox's ping from the namespace."""
    extra = ["-I", source] if source else []
    return run_in(namespace, "busybox", "ping", "-c", str(count), "-W", str(wait), *extra, address,
                  timeout=count * wait + 10).returncode == 0


def serve(namespace: str, *ports: int) -> subprocess.Popen[str]:
    """A TCP server in the namespace answering "hello" on each port (the caller terminates it)."""
    process = subprocess.Popen(["ip", "netns", "exec", namespace, sys.executable, "-c", SERVER,
                                *map(str, ports)], stdout=subprocess.PIPE, text=True)
    assert process.stdout is not None and process.stdout.readline().strip() == "listening"
    return process


def connects(namespace: str, address: str, port: int, timeout: float = 1.5) -> bool:
    """Whether a TCP connection from the namespace gets "hello" (from serve(), or an HTTP server's page)."""
    return run_in(namespace, sys.executable, "-c", CONNECT, address, str(port), str(timeout),
                  timeout=timeout + 15).returncode == 0


def host_view(names: DeviceNames, state_dir: Path) -> dict[str, object]:
    """What of an agent's prefix is on the host: devices (by name, with ifindex), router namespaces, the text of its
    nft tables, its guard's routes and policy rules, and its running DHCP servers (router: pid). EMPTY when none."""
    with IPRoute() as ipr:
        devices = {link.get_attr("IFLA_IFNAME"): link["index"] for link in ipr.get_links()
                   if link.get_attr("IFLA_IFNAME").startswith(names.prefix)}
    ruleset = subprocess.run(["nft", "list", "ruleset"], capture_output=True, text=True, timeout=30).stdout
    tables = [t for t in ruleset.split("table ") if t.split(" {", 1)[0].split()[-1:] == [firewall.table_name(names)]]
    guard = Guard(names)
    routes = subprocess.run(["ip", "route", "show", "table", str(guard.table)], capture_output=True, text=True,
                            timeout=30).stdout
    rules = subprocess.run(["ip", "rule"], capture_output=True, text=True, timeout=30).stdout
    dhcp = Dhcp(state_dir / "dhcp", GATEWAY_INSIDE)
    return {"devices": devices,
            "namespaces": sorted(n for n in netns.listnetns() if n.startswith(f"{names.prefix}r-")),
            "tables": tables,
            "guard": [line for line in routes.splitlines() if line]
            + [r for r in rules.splitlines() if str(guard.table) in r or r.startswith(f"{guard.priority}:")],
            "dhcp": {router: dhcp.pid(router) for router in dhcp.held() if dhcp.pid(router) is not None}}


EMPTY: dict[str, object] = {"devices": {}, "namespaces": [], "tables": [], "guard": [], "dhcp": {}}
