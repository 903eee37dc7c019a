"""The `process` runtime (the embedded default): each container a supervised local process, run in a
sandbox (sandbox.py) with the limits of its `resources.limits` or the node's defaults (cgroups.py).

A pod's containers run as children of the agent, each a sandbox of its own over a private directory
(`<root>/<pod uid>/<container>`, its home `/pod` inside) under the pod's own uid; the agent reads
their output through a pipe into the container's log file (rotated at a size cap, and read at a
bounded rate, so a chatty container neither fills the disk nor keeps the agent busy). A pod whose
address k8shost assigned from a PrismNET subnet runs in a network namespace of its own holding that
address (podnet.py). Without the means to enforce a pod's limits or give it its address, the pod is
refused with the reason, never run without them. A container is killed if the agent dies, and a
pod's directory, cgroups and network namespace go when the pod is deleted.

Only with --insecure-unsandboxed-pods (hosts that cannot sandbox at all) does a container run as a
plain process of the agent's own user in its own session, which sees everything the agent sees.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import hashlib
import logging
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from photoncloud.common.netdev import DeviceNames

from . import limits as resource_limits
from . import seccomp
from .cgroups import Cgroups
from .limits import Limits
from .podnet import PodNetworks, VpcPort
from .runtime import (
    LOG_DRAIN_SECONDS,
    TERMINATED,
    Backoff,
    Container,
    LogFile,
    Pod,
    RefusedPod,
    RunFailure,
    expand,
    grace,
    pod_env,
    restart_policy,
)
from .sandbox import HOME, PATH, Sandbox, Uids

log = logging.getLogger("photoncloud.k8shost.agent")

PR_SET_PDEATHSIG = 1
CLONE_NEWNET = 0x40000000
LOG_RATE = 4 * 1024 * 1024  # bytes a second the agent takes from one container's output; the container waits past it
_LIBC = ctypes.CDLL(ctypes.util.find_library("c"), use_errno=True) if sys.platform.startswith("linux") else None


def _child_setup(cgroup_files: list[str], netns: str) -> None:
    """In the child, before exec: die with the agent, join the container's cgroups and the pod's network namespace."""
    if _LIBC is None:
        return
    _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    for path in cgroup_files:
        with open(path, "w", encoding="ascii") as f:
            f.write(str(os.getpid()))
    if netns:
        descriptor = os.open(netns, os.O_RDONLY)
        if _LIBC.setns(descriptor, CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), f"cannot join the pod's network namespace {netns}")
        os.close(descriptor)


def _descendants(pid: int, skip: int = 0) -> list[int]:
    """Every process below pid, from one read of /proc (children before grandchildren); the first `skip` levels
    left out."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            with contextlib.suppress(OSError, IndexError, ValueError):
                with open(f"/proc/{entry}/stat", "rb") as f:
                    ppid = int(f.read().rsplit(b")", 1)[1].split()[1])  # after the name, which may hold spaces
                children.setdefault(ppid, []).append(int(entry))
    found, queue = [], [(child, 1) for child in children.get(pid, ())]
    while queue:
        child, depth = queue.pop(0)
        if depth > skip:
            found.append(child)
        queue += [(grandchild, depth + 1) for grandchild in children.get(child, ())]
    return found


def _own(path: Path, uid: int) -> None:
    """Give path and everything under it to uid (as its group too), unless it is its already."""
    if path.stat().st_uid == uid:
        return
    os.chown(path, uid, uid)
    for directory, names, files in os.walk(path):
        for name in names + files:
            os.chown(os.path.join(directory, name), uid, uid, follow_symlinks=False)


def _make_inside(base: Path, relative: str, uid: int | None) -> None:
    """Make the directories of a relative path under base, never following a symlink: the container wrote what is
    there in an earlier run, and the agent must not be led to make a directory elsewhere on the host."""
    descriptor = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    try:
        for part in Path(relative).parts:
            with contextlib.suppress(FileExistsError):
                os.mkdir(part, 0o700, dir_fd=descriptor)
                if uid is not None:
                    os.chown(part, uid, uid, dir_fd=descriptor, follow_symlinks=False)
            try:
                inner = os.open(part, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=descriptor)
            except OSError as exc:  # ENOTDIR or ELOOP: a symlink, or a file
                raise ValueError(f"working_dir {relative}: {part} is not a directory in the container's own "
                                 f"(symlinks are not followed): {exc.strerror}") from None
            os.close(descriptor)
            descriptor = inner
    finally:
        os.close(descriptor)


class ProcessContainer(Container):
    """One container as a supervised local process, in its sandbox."""

    def __init__(self, spec: dict[str, Any], pod: ProcessPod, on_change: Callable[[], None]):
        self.pod = pod
        self.dir = pod.dir / spec["name"]
        runtime = pod.runtime
        home = HOME if runtime.sandbox is not None else str(self.dir)
        base_env = {"PATH": PATH if runtime.sandbox is not None else os.environ.get("PATH", os.defpath),
                    "LANG": "C.UTF-8", "HOME": home, **pod.env}
        super().__init__(spec, pod.dir, pod.policy, pod.grace, runtime.backoff, base_env, on_change)
        self.limits = resource_limits.of(spec, runtime.default_limits)
        self.group = runtime.cgroups.group(pod.uid, self.name) if pod.limited else None
        self.process: asyncio.subprocess.Process | None = None
        self._oom_before = 0

    def _argv_and_workdir(self, env: dict[str, str]) -> tuple[list[str], str]:
        argv = [expand(a, env) for a in [*self.spec.get("command", []), *self.spec.get("args", [])]]
        if not self.spec.get("command"):
            raise ValueError("the process runtime runs a container's command, and this one has none "
                             f"(image {self.spec.get('image') or '-'} is not run)")
        working = self.spec.get("working_dir") or ""
        if os.path.isabs(working) or ".." in Path(working).parts:
            raise ValueError("working_dir must be a relative path inside the container's directory")
        return argv, working

    def _prepare(self, working: str) -> None:
        """The container's directory and working directory, the pod's user's; its cgroup with its limits."""
        self.dir.mkdir(mode=0o700, exist_ok=True)
        if self.pod.user is not None:
            _own(self.dir, self.pod.user)
        _make_inside(self.dir, working, self.pod.user)
        if self.group is not None:
            self.group.create(self.limits)
            self._oom_before = self.group.oom_kills()

    async def _run_once(self) -> int:
        """Start the sandboxed process and wait for it; its exit code (negative: killed by that signal)."""
        env = self._env()
        argv, working = self._argv_and_workdir(env)
        await asyncio.to_thread(self._prepare, working)
        sandbox = self.pod.runtime.sandbox
        filter_fd = seccomp.descriptor() if sandbox is not None else None
        if sandbox is not None:
            argv = sandbox.argv(argv, self.dir, working, self.pod.meta["name"], self.pod.user or 0, filter_fd)
        setup = (self.group.join_paths() if self.group else [], str(self.pod.netns) if self.pod.netns else "")
        log_file = LogFile(self.log)
        try:
            try:
                self.process = await asyncio.create_subprocess_exec(
                    *argv, cwd=self.dir / working if sandbox is None else "/", env=env,
                    stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True,
                    pass_fds=() if filter_fd is None else (filter_fd,), preexec_fn=lambda: _child_setup(*setup))
            except subprocess.SubprocessError as exc:  # the child's setup failed (a cgroup, the network namespace)
                raise RunFailure(f"cannot start the container: {exc}") from None
            finally:
                if filter_fd is not None:
                    os.close(filter_fd)  # bwrap has its copy
            self._running()
            assert self.process.stdout is not None
            pump = asyncio.get_running_loop().create_task(self._pump(self.process.stdout, log_file))
            try:
                code = await self.process.wait()
                await asyncio.wait({pump}, timeout=LOG_DRAIN_SECONDS)  # output still in the pipe reaches the log
            finally:
                pump.cancel()
            return code
        finally:
            log_file.close()
            self.process = None
            if self.group is not None:
                await asyncio.to_thread(self.group.kill)  # nothing of a run outlives it

    @staticmethod
    async def _pump(output: asyncio.StreamReader, log_file: LogFile) -> None:
        """Copy the container's output into its log, at most LOG_RATE bytes a second."""
        window, taken = time.monotonic(), 0
        while chunk := await output.read(64 * 1024):
            log_file.write(chunk)
            taken += len(chunk)
            if taken >= LOG_RATE:
                await asyncio.sleep(max(0.0, window + 1 - time.monotonic()))
                window, taken = time.monotonic(), 0

    def _signal(self, process: asyncio.subprocess.Process, number: int) -> None:
        """Signal the run's processes: in a sandbox, the container's own (not bwrap's two, which would tear the
        sandbox down at once); without one, the process group."""
        if self.pod.runtime.sandbox is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, number)
            return
        for pid in _descendants(process.pid, skip=1):  # below bwrap's init of the sandbox's PID namespace
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)

    async def _terminate(self) -> None:
        """SIGTERM the container's processes, then SIGKILL the sandbox after the grace period."""
        process = self.process
        if process is None or process.returncode is not None:
            return
        await asyncio.to_thread(self._signal, process, signal.SIGTERM)
        try:
            await asyncio.wait_for(process.wait(), self.grace)
        except TimeoutError:
            if self.pod.runtime.sandbox is None:
                self._signal(process, signal.SIGKILL)
            else:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()  # bwrap dies, and its PID namespace with every process in it
            await process.wait()

    async def _oom_killed(self) -> bool:
        """Whether the kernel killed a process of the container for memory during the run."""
        return self.group is not None and self.group.oom_kills() > self._oom_before


class ProcessPod(Pod):
    """A pod whose containers are sandboxed local processes; with an address of its own, in its own network
    namespace, made before its containers start and deleted once they stopped."""

    def __init__(self, pod: dict[str, Any], pod_ip: str, runtime: ProcessRuntime, limited: bool):
        self.runtime = runtime
        self.meta = pod["metadata"]
        self.uid = self.meta["uid"]
        self.network: dict[str, Any] | None = (pod.get("status") or {}).get("network")
        self.user = runtime.uids.take(self.uid) if runtime.sandbox is not None and runtime.sandbox.mode == "root" \
            else None
        self.limited = limited  # the containers run in cgroups (with limits, or to be counted and killed)
        self.netns: Path | None = runtime.networks.path(self.uid) if self.network else None
        self.env = pod_env(pod, pod_ip)
        self.policy, self.grace = restart_policy(pod), grace(pod)
        self._setup: asyncio.Task[None] | None = None
        super().__init__(runtime.root / self.uid, pod_ip, [])
        self.containers = [ProcessContainer(c, self, runtime.on_change) for c in pod["spec"]["containers"]]

    def start(self) -> None:
        """Start supervising every container (once the pod's network namespace is made, if it needs one)."""
        if self.network is None:
            super().start()
        else:
            self._setup = asyncio.get_running_loop().create_task(self._start_in_namespace(self.network))

    async def _start_in_namespace(self, network: dict[str, Any]) -> None:
        try:
            await self.runtime.networks.add(self.uid, self.pod_ip, network.get("mac_address", ""), VpcPort.of(network))
        except Exception as exc:  # noqa: BLE001 - whatever netlink says, the pod fails with it
            now = time.time()
            for container in self.containers:
                container._set(state=TERMINATED, reason="PodAddressUnavailable", exit_code=128, started_at=now,
                               finished_at=now, done=True,
                               message=f"cannot give the pod its address {self.pod_ip}: {exc}")
            return
        super().start()

    async def stop(self) -> None:
        """Stop every container, then delete what the node held for the pod: cgroups, network namespace."""
        if self._setup is not None:
            await asyncio.gather(self._setup, return_exceptions=True)
        await super().stop()
        if self.limited:
            await asyncio.to_thread(self.runtime.cgroups.remove_pod, self.uid)
        if self.network is not None:
            try:
                await self.runtime.networks.remove(self.uid)
            except Exception as exc:  # noqa: BLE001 - the next start of the agent removes it
                log.warning("cannot delete the network namespace of pod %s: %s", self.uid, exc)

    def remove(self) -> None:
        """Forget the stopped pod: its directory goes, and its user id is free again."""
        super().remove()
        self.runtime.uids.release(self.uid)


class ProcessRuntime:
    """Pods as sandboxed local processes, under root (one directory per pod uid)."""

    name = "process"

    def __init__(self, root: Path, sandbox: Sandbox | None, backoff: Backoff = Backoff(),
                 on_change: Callable[[], None] = lambda: None, default_limits: Limits = Limits(),
                 cgroups: Cgroups | None = None, networks: PodNetworks | None = None, uids: Uids | None = None,
                 dataplane: DeviceNames | None = None):
        # sandbox None: containers run unsandboxed (--insecure-unsandboxed-pods), never by default.
        # dataplane: the device names of PrismNET's dataplane on this host, whose VPC bridges pods join (None: none).
        self.root = root
        self.sandbox = sandbox
        self.backoff = backoff
        self.on_change = on_change
        self.default_limits = default_limits
        # One agent's cgroups and namespaces are its own: named for its data directory, so agents sharing a
        # host (and tests) never prune each other's.
        tag = hashlib.sha256(str(root.absolute()).encode()).hexdigest()[:10]
        self.cgroups = cgroups if cgroups is not None else Cgroups(f"photoncloud-k8shost/{tag}")
        self.networks = networks if networks is not None else PodNetworks(f"k8s-{tag}-", dataplane=dataplane)
        self.uids = uids if uids is not None else Uids()

    @property
    def isolation(self) -> str:
        """How pods are isolated, as the node reports it."""
        return self.sandbox.describe() if self.sandbox is not None else "none"

    @property
    def pod_network(self) -> str:
        """How pods with a PrismNET address are wired, as the agent reports it."""
        why = self.networks.unsupported()
        return f"unavailable: {why}" if why else self.networks.mode()

    async def open(self) -> None:
        """Remove what an earlier run of the agent left (cgroups, network namespaces): no pod runs yet."""
        self.root.mkdir(mode=0o700, parents=True, exist_ok=True)
        for pod_uid in await asyncio.to_thread(self.cgroups.prune):
            log.info("removed the cgroups an earlier agent left for pod %s", pod_uid)
        if not self.networks.unsupported():
            for pod_uid in await self.networks.prune():
                log.info("removed the network namespace an earlier agent left for pod %s", pod_uid)

    async def close(self) -> None:
        """Nothing to let go of: each pod's cgroups and namespace went with it."""

    def pod(self, pod: dict[str, Any], pod_ip: str = "127.0.0.1") -> ProcessPod | RefusedPod:
        """The runtime of one pod at its address; refused, with the reason, if its limits cannot be enforced or its
        address (one k8shost assigned from a PrismNET subnet) cannot be given it."""
        wanted = [resource_limits.of(c, self.default_limits) for c in pod["spec"]["containers"]]
        why = self.cgroups.unsupported()
        if any(wanted) and why:
            described = "; ".join(f"{c['name']}: {w.describe()}" for c, w in zip(pod["spec"]["containers"], wanted))
            return RefusedPod(pod, "LimitsUnsupported",
                              f"the pod's containers have limits ({described}) and this node cannot enforce them: "
                              f"{why}; run the node's agent as root, or with --runtime docker")
        network = (pod.get("status") or {}).get("network")
        if not network:
            return ProcessPod(pod, pod_ip, self, limited=not why)
        assigned = pod["status"].get("pod_ip", "") or pod_ip
        why = self.networks.unsupported()
        if why:
            return RefusedPod(pod, "PodAddressUnsupported",
                              f"the pod's address {assigned} comes from a PrismNET subnet, which the process runtime "
                              f"gives a pod in a network namespace of its own: {why}; run the node's agent as root, "
                              "or with --runtime docker")
        return ProcessPod(pod, assigned, self, limited=not self.cgroups.unsupported())
