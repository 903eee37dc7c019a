"""The `docker` runtime: a pod's containers as containers of a Docker engine, driven through the
engine's HTTP API on its unix socket.

As in Kubernetes' dockershim, a pod is first a sandbox: a container whose only process sleeps
(`pause`) and holds the pod's network namespace on a bridge network. Its address is the pod's
IP, the same across container restarts, and the pod's containers join its namespace, so they
reach each other on localhost. The sandbox image is made on the node from a few bytes of machine
code, since the engine may have no registry to pull one from. Each run of a container is a new
engine container (as the kubelet makes one per restart); its output comes through the API, attached
before it starts, into the container's log file, the one the daemon port serves; supervision (restart policy,
back-off) is the one every runtime shares. Engine containers are labelled with their node, pod and
container, so the agent finds what it left behind: a pod's when it stops, and its node's when it
starts (what an agent that died left running; its pods are started afresh, as with processes).

Pods are tenants' code, so each container runs with fewer capabilities than Docker's default, no way
to gain privileges (no-new-privileges), and limits of memory (without swap), CPU and processes: its
own resources.limits, else the node's defaults. A run the kernel killed at its memory limit reports
OOMKilled, as in Kubernetes.

The bridge network is a namespace's own, so that a pod cannot reach another tenant's pods (a
namespace is one project's, and the engine drops traffic between its bridge networks) while the
host, and the service proxy on it, reaches every pod. A pod whose address k8shost took from a
PrismNET subnet (status.network) has its sandbox on a bridge network of that subnet instead, made
with the subnet's range and gateway and the sandbox at the assigned address. Either network is made
on demand with a range the host routes to, removed once its last pod on the host is gone, and
labelled, so that a starting agent removes those an earlier one left unused.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

from photoncloud.common.errors import ServiceError

from . import limits
from .engine import DEFAULT_HOST, Engine, EngineError, image_tar
from .limits import Limits
from .runtime import (
    LOG_DRAIN_SECONDS,
    RUNNING,
    Backoff,
    Container,
    LogFile,
    Pod,
    RunFailure,
    expand,
    grace,
    pod_env,
    restart_policy,
)

log = logging.getLogger("photoncloud.k8shost.agent")

PAUSE_IMAGE = "photoncloud/k8shost-pause:1"
LABEL = "io.photoncloud.k8shost."
NODE, UID, NAMESPACE, NAME, CONTAINER = (LABEL + k for k in ("node", "pod.uid", "pod.namespace", "pod.name",
                                                             "container"))
SUBNET = LABEL + "subnet"  # on the network of a PrismNET subnet: the subnet's id
NAMESPACE_NETWORK = LABEL + "namespace"  # on the network of a namespace's pods: the namespace
NETWORK_PREFIX = "k8shost-"  # a PrismNET subnet's network is named this and the subnet's id
NAMESPACE_PREFIX = NETWORK_PREFIX + "ns-"  # a namespace's network is named this and the namespace
# Docker's default capabilities less NET_RAW (raw sockets: forged packets, ARP spoofing on the bridge), MKNOD
# (device nodes), SYS_CHROOT, AUDIT_WRITE, SETFCAP and SETPCAP (granting capabilities to files or processes): what
# a usual image needs to start as root, own files, switch to its user, signal its processes, listen on a low port.
CAPABILITIES = ["CHOWN", "DAC_OVERRIDE", "FOWNER", "FSETID", "SETGID", "SETUID", "NET_BIND_SERVICE", "KILL"]
# For the pause process alone; but runc's init (a Go program: about 4 MB and 7 threads here) starts it under these
# limits, and now and then fails to start with too few tasks allowed (4 did).
SANDBOX_LIMITS = Limits(memory_bytes=16 * 1024 * 1024, pids=32)


def pause_program() -> bytes:
    """A static x86-64 Linux program that sleeps in pause(2) until it is killed: a sandbox's process."""
    code = bytes([0xB8, 34, 0, 0, 0,  # mov eax, 34 (pause)
                  0x0F, 0x05,  # syscall
                  0xEB, 0xF7])  # jmp back to the mov
    base, header, segment_header = 0x400000, 64, 56
    size = header + segment_header + len(code)
    elf = struct.pack("<4s5B7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,  # 64-bit, little-endian, System V
                      2, 0x3E, 1, base + header + segment_header,  # an executable for x86-64, its entry point
                      header, 0, 0, header, segment_header, 1, 0, 0, 0)  # one segment header, no sections
    segment = struct.pack("<IIQQQQQQ", 1, 5, 0, base, base, size, size, 0x1000)  # the file, loaded read+execute
    return elf + segment + code


def host_limits(bounds: Limits) -> dict[str, int]:
    """The engine's HostConfig fields of limits (none for a 0): memory with no swap beyond it, CPU, processes."""
    config = {}
    if bounds.memory_bytes:
        config["Memory"] = config["MemorySwap"] = bounds.memory_bytes  # MemorySwap is memory and swap together
    if bounds.cpu_millicores:
        config["NanoCpus"] = bounds.cpu_millicores * 10**6
    if bounds.pids:
        config["PidsLimit"] = bounds.pids
    return config


def _address(details: dict[str, Any]) -> str:
    networks = (details.get("NetworkSettings") or {}).get("Networks") or {}
    return next((n["IPAddress"] for n in networks.values() if n.get("IPAddress")), "")


class DockerContainer(Container):
    """One container of a pod: each run a new engine container in the pod's sandbox."""

    def __init__(self, spec: dict[str, Any], pod: DockerPod, policy: str, grace_seconds: float, backoff: Backoff,
                 on_change: Callable[[], None]):
        super().__init__(spec, pod.dir, policy, grace_seconds, backoff, pod.env, on_change)
        self.pod = pod
        self.engine = pod.runtime.engine
        self.id = ""
        self.runs = 0

    def _config(self, sandbox: str) -> dict[str, Any]:
        env = self._env()
        try:
            bounds = limits.of(self.spec, self.pod.runtime.default_limits)
        except ServiceError as exc:  # the API server checks them: one that got through fails the container alone
            raise RunFailure(f"bad resource limits: {exc}", "CreateContainerConfigError") from None
        config: dict[str, Any] = {
            "Image": self.spec["image"], "Env": [f"{k}={v}" for k, v in env.items()],
            "Labels": self.pod.labels(self.name), "WorkingDir": self.spec.get("working_dir") or "",
            "HostConfig": {
                "NetworkMode": f"container:{sandbox}", "IpcMode": f"container:{sandbox}",
                # An init as PID 1 passes SIGTERM on (PID 1 itself ignores signals it has no handler for)
                # and reaps orphans, so a container stops as a process does.
                "Init": True,
                # The output comes through an attached stream into the kept log, ours: the engine keeps no copy.
                "LogConfig": {"Type": "none"},
                "CapDrop": ["ALL"], "CapAdd": CAPABILITIES, "SecurityOpt": ["no-new-privileges"],
                **host_limits(bounds)}}
        command = [expand(a, env) for a in self.spec.get("command", [])]
        args = [expand(a, env) for a in self.spec.get("args", [])]
        if command:
            config["Entrypoint"], config["Cmd"] = command, args  # the image's entrypoint and cmd both give way
        elif args:
            config["Cmd"] = args  # after the image's entrypoint, instead of its cmd
        return config

    async def _create(self, sandbox: str) -> str:
        name = self.pod.engine_name(self.name, self.runs)
        self.runs += 1
        config = self._config(sandbox)
        try:
            return await self.engine.create(config, name)
        except EngineError as exc:
            if exc.status != 404 or "image" not in str(exc).lower():
                raise
        try:
            await self.engine.pull(config["Image"])
        except EngineError as exc:
            raise RunFailure(f"cannot pull image {config['Image']}: {exc}", "ErrImagePull") from None
        return await self.engine.create(config, name)

    async def _run_once(self) -> int:
        """Create and start this run's engine container, follow its output, wait for it; its exit code."""
        if not self.spec.get("image"):
            raise RunFailure("the docker runtime runs a container's image, and this one has none")
        started = False
        try:
            sandbox = await self.pod.sandbox()
            if self.id:
                await self.engine.remove(self.id)  # the last run's: its output is in the log already
                self.id = ""
            self.id = await self._create(sandbox)
            async with self.engine.attach(self.id) as output:  # before the start, so that no output is missed
                await self.engine.start(self.id)
                started = True
                self._running()
                follower = asyncio.get_running_loop().create_task(self._follow(output))
                try:
                    code = await self.engine.wait(self.id)
                except BaseException:
                    follower.cancel()
                    raise
                await asyncio.wait({follower}, timeout=LOG_DRAIN_SECONDS)  # the stream ends once the output is drained
                follower.cancel()
                return code
        except EngineError as exc:
            if started:
                raise RunFailure(f"lost the container: {exc}", "Error") from None
            raise RunFailure(str(exc)) from None

    async def _follow(self, output: AsyncIterator[bytes]) -> None:
        out = LogFile(self.log)  # flushed as it grows (the daemon port serves it), rotated at its cap
        try:
            async for chunk in output:
                out.write(chunk)
        except OSError as exc:  # the node's disk, not the container: the run goes on without its log
            log.warning("cannot write the log of container %s: %s", self.name, exc)
        finally:
            out.close()

    async def _oom_killed(self) -> bool:
        """Whether the engine saw the last run's container killed at its memory limit."""
        if not self.id:
            return False
        try:
            return bool((await self.engine.inspect(self.id)).get("State", {}).get("OOMKilled"))
        except EngineError:
            return False

    async def _terminate(self) -> None:
        """Stop the running engine container: SIGTERM, then SIGKILL after the grace period."""
        if self.id and self.state.state == RUNNING:
            with contextlib.suppress(EngineError):
                await self.engine.stop(self.id, self.grace)


class DockerPod(Pod):
    """A pod as a sandbox holding its network, and its containers in it."""

    def __init__(self, pod: dict[str, Any], runtime: DockerRuntime):
        self.runtime = runtime
        self.meta = pod["metadata"]
        self.subnet = pod.get("status", {}).get("network")  # a PrismNET port's subnet, or None
        self.assigned = pod["status"]["pod_ip"] if self.subnet else ""
        namespace = self.meta["namespace"]
        if self.subnet is None:  # a pod names no project, but its namespace is one project's: a network per tenant
            self.network, self.network_labels = NAMESPACE_PREFIX + namespace, {NAMESPACE_NETWORK: namespace}
        else:
            subnet_id = self.subnet["subnet_id"]
            self.network, self.network_labels = NETWORK_PREFIX + subnet_id, {SUBNET: subnet_id}
        self.env = pod_env(pod, self.assigned)  # POD_IP once the sandbox has its address
        self.sandbox_id = ""
        self.attempts = 0
        self._lock = asyncio.Lock()
        super().__init__(runtime.root / self.meta["uid"], self.assigned, [])
        self.containers = [DockerContainer(c, self, restart_policy(pod), grace(pod), runtime.backoff, runtime.on_change)
                           for c in pod["spec"]["containers"]]

    def labels(self, container: str) -> dict[str, str]:
        """The labels of the pod's engine containers (the sandbox's container is POD, as in Kubernetes)."""
        return {NODE: self.runtime.node_name, UID: self.meta["uid"], NAMESPACE: self.meta["namespace"],
                NAME: self.meta["name"], CONTAINER: container}

    def engine_name(self, container: str, attempt: int) -> str:
        """An engine container's name, for people reading `docker ps`."""
        return f"k8shost_{container}_{self.meta['name']}_{self.meta['namespace']}_{self.meta['uid'][:8]}_{attempt}"

    async def sandbox(self) -> str:
        """The sandbox's container id, made and started on first use; the pod then has its address."""
        async with self._lock:
            if self.sandbox_id:
                return self.sandbox_id
            await self.runtime.pause_image()
            subnet = self.subnet or {}
            endpoint = {"IPAMConfig": {"IPv4Address": self.assigned}} if self.subnet else {}
            # Held from making the network to starting on it: no pod stopping meanwhile removes it.
            async with self.runtime.network_lock(self.network):
                await self.runtime.make_network(self.network, self.network_labels, subnet.get("cidr_block", ""),
                                                subnet.get("gateway_ip", ""))
                return await self._sandbox(self.network, endpoint)

    async def _sandbox(self, network: str, endpoint: dict[str, Any]) -> str:
        """Create and start the sandbox on the network (at the endpoint's address, if it names one)."""
        engine = self.runtime.engine
        config = {"Image": PAUSE_IMAGE, "Cmd": ["/pause"], "Hostname": self.meta["name"][:63],
                  "Labels": self.labels("POD"),
                  # The pause process needs no privilege, no writes, and little memory and few processes.
                  "HostConfig": {"NetworkMode": network, "IpcMode": "shareable", "ReadonlyRootfs": True,
                                 "CapDrop": ["ALL"], "SecurityOpt": ["no-new-privileges"],
                                 **host_limits(SANDBOX_LIMITS)}}
        if endpoint:
            config["NetworkingConfig"] = {"EndpointsConfig": {network: endpoint}}
        sandbox = await engine.create(config, self.engine_name("POD", self.attempts))
        self.attempts += 1
        try:
            await engine.start(sandbox)
            address = _address(await engine.inspect(sandbox))
            if not address:
                raise RunFailure(f"the pod's sandbox got no address on network {network}")
        except BaseException:
            with contextlib.suppress(EngineError):
                await engine.remove(sandbox)
            raise
        self.sandbox_id, self.pod_ip, self.env["POD_IP"] = sandbox, address, address
        log.info("pod %s/%s has address %s", self.meta["namespace"], self.meta["name"], address)
        return sandbox

    async def stop(self) -> None:
        """Stop every container, then remove what the engine holds of the pod (runs, starts cut short, sandbox)."""
        await super().stop()
        await self.runtime.remove_all({UID: self.meta["uid"]})
        await self.runtime.release_network(self.network)


class DockerRuntime:
    """Pods as containers of the Docker engine at host; their logs under root (one directory per pod uid); a
    container's limits are default_limits where its pod gives none."""

    name = "docker"
    isolation = "docker (reduced capabilities, no-new-privileges, limits, a network per namespace)"
    # The engine's bridge networks carry pods' PrismNET addresses: a PrismNET dataplane's bridges are not joined.
    pod_network = "docker: a bridge network of the engine per PrismNET subnet (no PrismNET dataplane)"

    def __init__(self, host: str = DEFAULT_HOST, root: Path = Path("pods"), backoff: Backoff = Backoff(),
                 on_change: Callable[[], None] = lambda: None, node_name: str = "",
                 default_limits: Limits = Limits()):
        self.engine = Engine(host)
        self.root = root
        self.backoff = backoff
        self.on_change = on_change
        self.node_name = node_name
        self.default_limits = default_limits
        self._pause_ready = False
        self._pause_lock = asyncio.Lock()
        self._network_locks: dict[str, asyncio.Lock] = {}

    async def open(self) -> None:
        """Reach the engine (EngineError if it does not answer) and remove what an earlier agent of this node left."""
        await self.engine.open()
        try:
            await self.engine.ping()
            if self.node_name:
                await self.remove_all({NODE: self.node_name})
            await self.prune_networks()
        except BaseException:
            await self.engine.close()
            raise

    async def close(self) -> None:
        """Close the engine's session."""
        await self.engine.close()

    def pod(self, pod: dict[str, Any], pod_ip: str = "") -> DockerPod:
        """The runtime of one pod (its address is the one k8shost assigned it, or one the engine's network gives
        it; never pod_ip)."""
        return DockerPod(pod, self)

    def network_lock(self, name: str) -> asyncio.Lock:
        """The lock held on a network from making it to starting a sandbox on it, and while removing it."""
        return self._network_locks.setdefault(name, asyncio.Lock())

    async def make_network(self, name: str, labels: dict[str, str], cidr: str = "", gateway: str = "") -> None:
        """Make a pods' bridge network with these labels (on this range, else on one of the engine's), unless the
        engine has it; hold network_lock(name) while calling."""
        try:
            await self.engine.create_network(name, labels, cidr, gateway)
        except EngineError as exc:
            raise RunFailure(f"cannot make network {name}{' for ' + cidr if cidr else ''}: {exc}") from None

    async def release_network(self, name: str) -> None:
        """Remove a pods' network unless pods still use it."""
        async with self.network_lock(name):
            try:
                await self.engine.remove_network(name)
            except EngineError as exc:
                log.warning("cannot remove network %s: %s", name, exc)

    async def prune_networks(self) -> None:
        """Remove the pods' networks no container uses (another node's pods on this engine keep theirs)."""
        for label in (SUBNET, NAMESPACE_NETWORK):
            for network in await self.engine.networks(label):
                async with self.network_lock(network["Name"]):
                    await self.engine.remove_network(network["Id"])

    async def pause_image(self) -> None:
        """Make the sandbox image, unless the engine has it."""
        async with self._pause_lock:
            if self._pause_ready or await self.engine.has_image(PAUSE_IMAGE):
                self._pause_ready = True
                return
            arch = (await self.engine.call("GET", "/version")).get("Arch", "")
            if arch != "amd64":
                raise RunFailure(f"the sandbox's pause program is built for amd64, and this engine runs {arch}: "
                                 f"tag a pause image (its program at /pause) as {PAUSE_IMAGE}")
            await self.engine.import_image(image_tar({"pause": pause_program()}), PAUSE_IMAGE)
            self._pause_ready = True

    async def remove_all(self, labels: dict[str, str]) -> None:
        """Remove every engine container with these labels, running or not."""
        try:
            found = await self.engine.containers(labels)
        except EngineError as exc:
            log.warning("cannot list the engine's containers: %s", exc)
            return
        for container in found:
            try:
                await self.engine.remove(container["Id"])
            except EngineError as exc:
                log.warning("cannot remove container %s: %s", container["Id"][:12], exc)
