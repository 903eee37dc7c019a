"""Faults for members of a cluster running as local processes: SIGKILL and restart, SIGSTOP and
SIGCONT, and a network partition that cuts a member off from its peers while every client still
reaches every member.

The partition needs root, nftables (`nft`) and cgroup v2. All members bind 127.0.0.1, so an address
cannot tell them apart, and neither can a port: a Raft connection between two members runs from an
ephemeral port of one to the peer port of the other, so B's connection to C looks like A's. So each
member runs in a cgroup of its own, and the rules match the member's sockets by that cgroup
(`socket cgroupv2`): in the output hook the socket that sends, in the input hook the socket that
receives. An isolated member's packets to any port of another member, and the other members'
packets to it, are dropped both ways; its client ports stay open to everyone else. The rules live
in a table of their own, deleted when the partition heals.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from photoncloud.common import needs
from photoncloud.common.testing import ServiceProcess, free_ports

NFT_CGROUP_ROOT = Path("/sys/fs/cgroup")  # nft resolves a cgroupv2 path relative to this directory


def kill(member: ServiceProcess) -> None:
    """SIGKILL: no shutdown code runs (restart() brings it back with its data)."""
    member.kill()


def restart(member: ServiceProcess, attempts: int = 5) -> None:
    """Start a killed member again with its data and peer port. Its client ports were free while it
    was down, so another process may hold one now (an outgoing connection's ephemeral port, on a busy
    machine): then it gets new ones."""
    for attempt in range(attempts):
        try:
            member.start()
            return
        except RuntimeError:
            last_start = "\n".join(member.log().splitlines()[-30:])
            if attempt == attempts - 1 or "already in use" not in last_start:
                raise
            member.rest_port, member.grpc_port = free_ports(2)
            time.sleep(0.5)  # a peer port held by a passing connection is free again soon


def pause(member: ServiceProcess) -> None:
    """SIGSTOP: the process stops where it is, its sockets open, until resume()."""
    assert member.process is not None
    os.kill(member.process.pid, signal.SIGSTOP)


def resume(member: ServiceProcess) -> None:
    """SIGCONT after pause()."""
    assert member.process is not None
    os.kill(member.process.pid, signal.SIGCONT)


def cgroup2_mount() -> Path:
    """Where the cgroup v2 hierarchy is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on a hybrid host)."""
    with open("/proc/self/mountinfo") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[fields.index("-") + 1] == "cgroup2":
                return Path(fields[4])
    raise RuntimeError("cgroup v2 is not mounted")


def unavailable() -> str | None:
    """Why a partition cannot be made here (None: it can)."""
    if os.geteuid() != 0:
        return "a partition needs root (nftables rules, cgroups)"
    if shutil.which("nft") is None:
        return "a partition needs nft (Debian: apt-get install nftables)"
    try:
        cgroup2_mount()
    except RuntimeError as error:
        return str(error)
    return None


@dataclass
class _Member:
    process: ServiceProcess
    peer_port: int
    cgroup: Path


class Network:
    """The members' network: each enrolled member runs in its own cgroup; isolate() cuts one off."""

    def __init__(self) -> None:
        reason = unavailable()
        if reason:
            needs.missing(reason)  # skipped (failed in CI) where partitions cannot be made
        self.mount = cgroup2_mount()
        self.name = f"photoncloud_partition_{secrets.token_hex(4)}"
        self.members: list[_Member] = []
        self.isolated: ServiceProcess | None = None

    def enroll(self, process: ServiceProcess, peer_port: int) -> None:
        """Run process (when it is next started) in a cgroup of its own; peer_port is its Raft port."""
        cgroup = self.mount / f"{self.name}_{len(self.members)}"
        cgroup.mkdir()
        # The shell moves itself into the cgroup, then becomes the service: every socket is made inside.
        process.launcher = ("sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup))
        self.members.append(_Member(process, peer_port, cgroup))

    def isolate(self, process: ServiceProcess) -> None:
        """Drop every packet between process and the other members (any of their ports), both ways."""
        assert self.isolated is None, "one partition at a time"
        member = next(m for m in self.members if m.process is process)
        others = sorted({port for m in self.members if m is not member
                         for port in (m.peer_port, m.process.rest_port, m.process.grpc_port)})
        path = os.path.relpath(member.cgroup, NFT_CGROUP_ROOT)
        level = len(member.cgroup.relative_to(self.mount).parts)
        mine = f'socket cgroupv2 level {level} "{path}"'
        ports = ", ".join(map(str, others))
        rules = f"""
table inet {self.name} {{
    set others {{ type inet_service; elements = {{ {ports} }}; }}
    chain output {{
        type filter hook output priority filter; policy accept;
        {mine} tcp dport @others counter drop
        {mine} tcp sport {member.peer_port} counter drop
    }}
    chain input {{
        type filter hook input priority filter; policy accept;
        {mine} tcp sport @others counter drop
        {mine} tcp dport {member.peer_port} counter drop
    }}
}}
"""
        subprocess.run(["nft", "-f", "-"], input=rules, text=True, check=True, capture_output=True)
        self.isolated = process

    def heal(self) -> None:
        """Delete the partition's table (nothing else is touched)."""
        if self.isolated is None:
            return
        subprocess.run(["nft", "delete", "table", "inet", self.name], check=True, capture_output=True)
        self.isolated = None

    def dropped(self) -> int:
        """Packets the current partition dropped so far."""
        listing = subprocess.run(["nft", "list", "table", "inet", self.name], text=True, check=True,
                                 capture_output=True).stdout
        return sum(int(line.split("packets")[1].split()[0]) for line in listing.splitlines() if "packets" in line)

    def close(self) -> None:
        """Heal, and remove the cgroups (their members must have exited)."""
        if self.isolated is not None:
            self.heal()
        for member in self.members:
            if member.cgroup.exists():
                member.cgroup.rmdir()
