"""The node agent's loop: register, heartbeat, run the pods bound to the node, report them.

Like the kubelet it reconciles: every sync it lists the pods bound to its node, starts those it
does not run yet (unless they already finished), stops those that are gone, reports each pod's
status when it changed, and points its service proxy at the current services and endpoints.
Watches of pods, services and endpoints wake the sync at every change, and so does a container's
state moving, so the agent acts within moments; the sync period is only the resync.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import itertools
import logging
import secrets
import shutil
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.times import rfc3339

from . import daemon
from .api import ApiServer
from .proxy import ServiceProxy
from .runtime import PodRuntime, Runtime, phase

log = logging.getLogger("photoncloud.k8shost.agent")

FINISHED = ("Succeeded", "Failed")


@dataclass
class NodeConfig:
    """What the agent says about its node, and how often it talks to the API server."""

    name: str
    address: str  # where the API server reaches the daemon port (the node's InternalIP)
    bind: str
    daemon_port: int
    capacity: dict[str, str]
    labels: dict[str, str] = field(default_factory=dict)
    heartbeat_seconds: float = 5.0
    sync_seconds: float = 10.0
    version: str = ""


@dataclass
class Running:
    """A pod the agent runs."""

    pod: dict[str, Any]
    runtime: PodRuntime
    started_at: float
    pod_ip: str
    reported: dict[str, Any] | None = None


class PodAddresses:
    """The node's pod CIDR, handed out one address per pod (the first host is the node's own)."""

    def __init__(self, cidr: str, fallback: str):
        self.network = ipaddress.ip_network(cidr) if cidr else None
        self.fallback = fallback  # no CIDR: every pod shares the node's address
        self.held: dict[str, str] = {}  # pod uid -> address

    def take(self, uid: str) -> str:
        """The pod's address (the lowest free one)."""
        if self.network is None:
            return self.fallback
        if uid not in self.held:
            used = set(self.held.values())
            hosts = itertools.islice(self.network.hosts(), 1, None)
            free = next((str(h) for h in hosts if str(h) not in used), None)
            if free is None:
                raise RuntimeError(f"the pod CIDR {self.network} has no address left")
            self.held[uid] = free
        return self.held[uid]

    def release(self, uid: str) -> None:
        """Give a deleted pod's address back."""
        self.held.pop(uid, None)


def _ready(status: dict[str, Any]) -> str:
    return next((c["status"] for c in status.get("conditions", ()) if c["type"] == "Ready"), "")


def _same_state(server: dict[str, Any], ours: dict[str, Any]) -> bool:
    """Whether the API server shows a pod in the phase and readiness the agent reported."""
    return server.get("phase") == ours["phase"] and _ready(server) == _ready(ours)


class Agent:
    """One node's agent over an API server and a runtime."""

    def __init__(self, config: NodeConfig, api: ApiServer, runtime: Runtime):
        self.config = config
        self.api = api
        self.runtime = runtime
        self.daemon_token = secrets.token_urlsafe(32)  # fresh per start: registration hands it to the API server
        self.pods: dict[str, Running] = {}  # by uid
        self.finished: set[str] = set()  # uids of pods that ran to completion here: never started again
        self.wake = asyncio.Event()
        self.synced = False  # whether a sync ran since the agent started
        self.daemon_port = 0
        self._runner: web.AppRunner | None = None
        self.addresses = PodAddresses("", config.address)
        self.proxy = ServiceProxy(config.address)

    def changed(self) -> None:
        """A container's state moved: report soon."""
        self.wake.set()

    def _log_path(self, uid: str, container: str) -> Any:
        running = self.pods.get(uid)
        return None if running is None else running.runtime.log_path(container)

    async def start_daemon(self) -> int:
        """Serve logs on the daemon port; the port bound."""
        self._runner = web.AppRunner(daemon.app(self.daemon_token, self._log_path, {
            "runtime": self.runtime.name, "pod_network": self.runtime.pod_network}), access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.config.bind, self.config.daemon_port)
        await site.start()
        self.daemon_port = self._runner.addresses[0][1]
        return self.daemon_port

    async def register(self) -> None:
        """Register the node, retrying (with a growing pause) until the API server takes it."""
        body = {"name": self.config.name, "labels": self.config.labels, "capacity": self.config.capacity,
                "addresses": [{"type": "InternalIP", "address": self.config.address}],
                "daemon_port": self.daemon_port, "daemon_token": self.daemon_token, "runtime": self.runtime.name,
                "sandbox": self.runtime.isolation, "agent_version": self.config.version}
        pause = 0.5
        while True:
            try:
                node = await self.api.register(body)
                cidr = node["spec"].get("pod_cidr", "")
                if self.addresses.network is None or str(self.addresses.network) != cidr:
                    self.addresses = PodAddresses(cidr, self.config.address)
                log.info("registered node %s (daemon port %d, pod CIDR %s)", self.config.name, self.daemon_port,
                         cidr or "none")
                return
            except ServiceError as exc:
                log.warning("cannot register node %s yet: %s %s", self.config.name, exc.code.name, exc.message)
            await asyncio.sleep(pause)
            pause = min(pause * 2, 10.0)

    async def heartbeats(self) -> None:
        """Post a heartbeat every period; register again if the node was deleted."""
        while True:
            await asyncio.sleep(self.config.heartbeat_seconds)
            try:
                await self.api.heartbeat(self.config.name)
            except ServiceError as exc:
                if exc.code is Code.NOT_FOUND:
                    await self.register()
                else:
                    log.warning("heartbeat failed: %s %s", exc.code.name, exc.message)

    async def watch(self, kind: str, **filters: str) -> None:
        """Wake the sync at every change of a kind; open the watch again when it ends or breaks."""
        while True:
            try:
                async for _ in self.api.changes(kind, **filters):
                    self.wake.set()
            except ServiceError as exc:
                log.info("watch of %s ended: %s", kind, exc.message)
            await asyncio.sleep(1.0)
            self.wake.set()  # changes may have been missed meanwhile: look at everything again

    async def syncs(self) -> None:
        """Reconcile every period, or at once when a container's state moves."""
        while True:
            try:
                await self.sync()
            except ServiceError as exc:
                log.warning("sync failed: %s %s", exc.code.name, exc.message)
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self.wake.wait(), self.config.sync_seconds)
            self.wake.clear()

    async def sync(self) -> None:
        """Start what is bound here and not running, stop what is gone, report what changed."""
        bound = {p["metadata"]["uid"]: p for p in await self.api.pods(self.config.name)}
        if not self.synced:
            # What an earlier run of the agent kept of pods deleted meanwhile (logs, files) goes.
            for directory in self.runtime.root.iterdir() if self.runtime.root.is_dir() else ():
                if directory.name not in bound:
                    await asyncio.to_thread(shutil.rmtree, directory, True)
            self.synced = True
        for uid in [u for u in self.pods if u not in bound]:
            running = self.pods.pop(uid)
            log.info("stopping pod %s/%s", running.pod["metadata"]["namespace"], running.pod["metadata"]["name"])
            await running.runtime.stop()
            await asyncio.to_thread(running.runtime.remove)  # it was deleted: its directory and files go
            self.finished.discard(uid)
            self.addresses.release(uid)
        for uid, pod in bound.items():
            if uid in self.pods or uid in self.finished or pod["status"]["phase"] in FINISHED:
                continue
            # An address k8shost assigned (a PrismNET port's) is the pod's; otherwise the node's pod CIDR gives one.
            assigned = pod["status"].get("pod_ip", "") if pod["status"].get("network") else ""
            pod_ip = assigned or self.addresses.take(uid)
            runtime = self.runtime.pod(pod, pod_ip)
            log.info("starting pod %s/%s at %s", pod["metadata"]["namespace"], pod["metadata"]["name"],
                     runtime.pod_ip or "the address its runtime gives it")
            self.pods[uid] = Running(pod, runtime, time.time(), pod_ip)
            runtime.start()
        for uid, running in list(self.pods.items()):
            status = self.status(running)
            # Report what changed here, and what the API server sees otherwise (e.g. Unknown after the node
            # was cut off for a while): the agent's view of its pods is the one that counts.
            if status == running.reported and uid in bound and _same_state(bound[uid]["status"], status):
                continue
            meta = running.pod["metadata"]
            try:
                await self.api.report(meta["namespace"], meta["name"], uid, status)
                running.reported = status
            except ServiceError as exc:
                log.warning("cannot report pod %s/%s: %s %s", meta["namespace"], meta["name"], exc.code.name,
                            exc.message)
            if status["phase"] in FINISHED and running.reported == status:
                self.finished.add(uid)  # its processes are gone; keep it (and its logs) until the pod is deleted
        await self.proxy.update(await self.api.list_all("/api/v1/services"),
                                await self.api.list_all("/api/v1/endpoints"))

    def status(self, running: Running) -> dict[str, Any]:
        """A pod's status as the API server takes it."""
        states = running.runtime.states()
        current = phase(states)
        ready = current == "Running" and all(s.state == "RUNNING" for s in states)
        condition = {"type": "Ready", "status": "True" if ready else "False",
                     "reason": "" if ready else "ContainersNotReady",
                     "message": "" if ready else "not every container is running"}
        # The runtime's address for the pod: the one offered, from the pod CIDR or assigned (process), or the
        # one the runtime's own network gave it (docker).
        return {"phase": current, "conditions": [condition], "host_ip": self.config.address,
                "pod_ip": running.runtime.pod_ip,
                "start_time": rfc3339(running.started_at),
                "container_statuses": [s.wire() for s in states]}

    async def run(self) -> None:
        """Serve logs, register, then heartbeat and sync until cancelled (then stop every pod)."""
        await self.api.open()
        try:
            await self.start_daemon()
            await self.register()
            await asyncio.gather(self.heartbeats(), self.syncs(), self.watch("pods", node_name=self.config.name),
                                 self.watch("services"), self.watch("endpoints"))
        finally:
            await self.proxy.close()
            await asyncio.gather(*(r.runtime.stop() for r in self.pods.values()), return_exceptions=True)
            if self._runner is not None:
                await self._runner.cleanup()
            await self.api.close()
