"""DHCP for a VPC: one dnsmasq in its router namespace, handing each port exactly its PrismNET address.

Every address is a static reservation (a port's MAC and address, `dhcp-host`), and a range is only
`static`, so a device that is not a port gets nothing. The offer carries the subnet's gateway and
its DNS servers; dnsmasq's own DNS is off (`port=0`). dnsmasq runs as a daemon of its own, so it
outlives an agent's restart: the agent finds it again by its pid file, sends it SIGHUP when the
reservations change (it reads the hosts file again) and restarts it when the ranges change, or when
a reservation went whose lease it still holds (without its lease, the address is free for the next
port that PrismNET gives it to).
"""

from __future__ import annotations

import ipaddress
import logging
import os
import shutil
import signal
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path

from .state import NetPort, NetSubnet

log = logging.getLogger("photoncloud.prismnet.dataplane")

LEASE = "12h"
STOP_TIMEOUT = 5.0


def dnsmasq_binary() -> str | None:
    """dnsmasq's path (Debian's dnsmasq-base), if installed."""
    return shutil.which("dnsmasq") or next((p for p in ("/usr/sbin/dnsmasq",) if os.path.exists(p)), None)


def config(directory: Path, interface: str, subnets: Sequence[NetSubnet]) -> str:
    """dnsmasq's configuration for a VPC's IPv4 subnets, its files under directory."""
    lines = ["# PrismNET dataplane: DHCP for one VPC, every address a port's reservation", "port=0", "no-resolv",
             "no-hosts", f"interface={interface}", "dhcp-authoritative", f"dhcp-hostsfile={directory / 'hosts'}",
             f"dhcp-leasefile={directory / 'leases'}", f"pid-file={directory / 'dnsmasq.pid'}",
             f"log-facility={directory / 'dnsmasq.log'}"]
    for number, subnet in enumerate(subnets):
        network = ipaddress.ip_network(subnet.cidr_block)
        if network.version != 4:
            continue
        tag = f"s{number}"
        lines.append(f"dhcp-range=set:{tag},{network.network_address},static,{network.netmask},{LEASE}")
        if subnet.gateway_ip:
            lines.append(f"dhcp-option=tag:{tag},option:router,{subnet.gateway_ip}")
        dns = [d for d in subnet.dns_servers if ":" not in d]
        if dns:
            lines.append(f"dhcp-option=tag:{tag},option:dns-server,{','.join(dns)}")
    return "\n".join(lines) + "\n"


def hosts(ports: Sequence[NetPort]) -> str:
    """The reservations: a port's MAC gets its address."""
    return "".join(f"{p.mac_address},{p.ip_address}\n" for p in sorted(ports, key=lambda p: p.id)
                   if ":" not in p.ip_address)


class Dhcp:
    """The dnsmasq of each VPC, its files under root/<router namespace>/."""

    def __init__(self, root: Path, interface: str):
        self.root = Path(root)
        self.interface = interface

    def ensure(self, router: str, subnets: Sequence[NetSubnet], ports: Sequence[NetPort]) -> None:
        """Run (or update) the VPC's dnsmasq with these subnets and reservations; stop it if it has no IPv4 subnet."""
        if not any(ipaddress.ip_network(s.cidr_block).version == 4 for s in subnets):
            self.stop(router)
            return
        directory = self.root / router
        # dnsmasq reads the hosts file again as its unprivileged user: every directory on the way must let it pass,
        # whatever the process's umask (the ones made here are opened explicitly).
        for path in (*reversed(directory.parents), directory):
            if not path.exists():
                path.mkdir()
                path.chmod(0o755)
        directory.chmod(0o755)
        closed = [p for p in directory.parents if p.stat().st_mode & 0o001 == 0]
        if closed:
            raise RuntimeError(f"dnsmasq, which drops its privileges, cannot reach its files under {closed[0]}: "
                               "put the agent's state directory where every user may pass (its default is under /run)")
        conf_changed = _write(directory / "dnsmasq.conf", config(directory, self.interface, subnets))
        hosts_changed = _write(directory / "hosts", hosts(ports))
        pid = self.pid(router)
        # A lease that is no port's reservation any more (a deleted port's, whose address PrismNET may give the
        # next port) would keep that address from its new MAC until it expired: dnsmasq forgets it only stopped.
        stale = hosts_changed and _drop_stale_leases(directory / "leases", ports, dry_run=True)
        if pid is not None and (conf_changed or stale):
            self.stop(router, keep_files=True)
            pid = None
        if stale:
            _drop_stale_leases(directory / "leases", ports)
        if pid is None:
            binary = dnsmasq_binary()
            if binary is None:
                raise RuntimeError("dnsmasq is not installed (Debian's dnsmasq-base)")
            subprocess.run(["ip", "netns", "exec", router, binary, f"--conf-file={directory / 'dnsmasq.conf'}"],
                           check=True, capture_output=True, timeout=30)  # it forks, writes its pid file and returns
            log.info("started DHCP for %s (%d subnets, %d ports)", router, len(subnets), len(ports))
        elif hosts_changed:
            os.kill(pid, signal.SIGHUP)

    def pid(self, router: str) -> int | None:
        """The pid of the VPC's dnsmasq if it runs (the pid file's process, running our configuration)."""
        directory = self.root / router
        try:
            pid = int((directory / "dnsmasq.pid").read_text().strip())
            command = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return None
        return pid if str(directory / "dnsmasq.conf").encode() in command else None

    def stop(self, router: str, keep_files: bool = False) -> None:
        """Stop the VPC's dnsmasq (and forget its files unless keep_files)."""
        pid = self.pid(router)
        if pid is not None:
            os.kill(pid, signal.SIGTERM)
            deadline = time.monotonic() + STOP_TIMEOUT
            while self.pid(router) is not None and time.monotonic() < deadline:
                time.sleep(0.05)
            if self.pid(router) is not None:
                os.kill(pid, signal.SIGKILL)
        if not keep_files:
            shutil.rmtree(self.root / router, ignore_errors=True)

    def held(self) -> list[str]:
        """The router namespaces that have DHCP files here."""
        return sorted(p.name for p in self.root.iterdir() if p.is_dir()) if self.root.is_dir() else []


def _drop_stale_leases(path: Path, ports: Sequence[NetPort], dry_run: bool = False) -> bool:
    """Drop the leases (`<expiry> <mac> <ip> ...` lines) that are no port's reservation; whether there were any."""
    try:
        lines = path.read_text().splitlines()
    except FileNotFoundError:
        return False
    reserved = {(p.mac_address.lower(), p.ip_address) for p in ports}
    kept = [line for line in lines if tuple(line.split()[1:3]) in reserved]
    if len(kept) == len(lines):
        return False
    if not dry_run:
        path.write_text("".join(line + "\n" for line in kept))
    return True


def _write(path: Path, text: str) -> bool:
    """Write text unless the file holds it already; whether it changed."""
    try:
        if path.read_text() == text:
            return False
    except FileNotFoundError:
        pass
    temporary = path.with_suffix(".new")
    temporary.write_text(text)
    temporary.chmod(0o644)
    temporary.replace(path)
    return True
