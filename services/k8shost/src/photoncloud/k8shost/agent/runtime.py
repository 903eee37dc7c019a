"""Container runtimes behind one interface, and the `process` runtime: each container a supervised
local process (the embedded default).

What every runtime shares lives here: a container's supervision (Kubernetes' restart policy,
Always, OnFailure, Never, with an exponential back-off between restarts (CrashLoopBackOff) that
resets once a container has run long enough), one log file per container kept across restarts,
and a pod as its containers together. A runtime says only how one run of a container starts, how
it is waited for and how it is ended.

In the process runtime a pod's containers run as children of the agent, each in a session of its
own (so a stop reaches the whole process group), in a working directory under the agent's data
directory, with stdout and stderr appended to the container's log file. On Linux a container is
killed if the agent dies (PR_SET_PDEATHSIG), so no pod outlives the supervisor that reports it.
A pod whose address k8shost assigned from a PrismNET subnet gets that address on the host for its
lifetime (hostnet.py), which takes root or CAP_NET_ADMIN; without it such a pod is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import re
import signal
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from photoncloud.common.times import rfc3339

from .hostnet import HostAddresses

log = logging.getLogger("photoncloud.k8shost.agent")

WAITING, RUNNING, TERMINATED = "WAITING", "RUNNING", "TERMINATED"
MAX_LOG_BYTES = 10 * 1024 * 1024  # a log larger than this is rotated to <name>.log.1 on the next start
PR_SET_PDEATHSIG = 1


@dataclass(frozen=True)
class ContainerState:
    """A container's state as the agent reports it."""

    name: str
    state: str = WAITING
    reason: str = "ContainerCreating"
    message: str = ""
    exit_code: int = 0
    started_at: float = 0.0
    finished_at: float = 0.0
    restart_count: int = 0
    ever_started: bool = False
    done: bool = False  # terminated and will not be restarted

    def wire(self) -> dict[str, Any]:
        """The container status the API server takes."""
        return {"name": self.name, "state": self.state, "reason": self.reason, "message": self.message,
                "exit_code": self.exit_code, "started_at": rfc3339(self.started_at),
                "finished_at": rfc3339(self.finished_at), "restart_count": self.restart_count,
                "ready": self.state == RUNNING}


class PodRuntime(Protocol):
    """What the agent needs of a runtime for one pod: start it, its containers' states, a log, stop it."""

    pod_ip: str  # the pod's address, as the runtime gives it ("" until it has one)

    def start(self) -> None:
        """Start the pod's containers (and supervise them)."""

    def states(self) -> list[ContainerState]:
        """Each container's current state."""

    def log_path(self, container: str) -> Path | None:
        """Where a container's log is kept (None: no such container)."""

    async def stop(self) -> None:
        """Stop every container (SIGTERM, then SIGKILL after the grace period)."""


class Runtime(Protocol):
    """A way of running pods: `process` (local processes) or `docker` (containers of a Docker engine)."""

    name: str
    on_change: Callable[[], None]  # called whenever a container's state moves

    def pod(self, pod: dict[str, Any], pod_ip: str) -> PodRuntime:
        """The runtime of one pod (as the API server sends it); pod_ip is the address the agent offers it."""

    async def open(self) -> None:
        """Get ready to run pods (before the agent registers its node)."""

    async def close(self) -> None:
        """Let go of what open() took (after every pod stopped)."""


_REFERENCE = re.compile(r"\$\$|\$\(([-._a-zA-Z][-._a-zA-Z0-9]*)\)")


def expand(text: str, env: dict[str, str]) -> str:
    """Kubernetes' $(VAR) expansion of a command or argument: a defined variable is replaced, an
    undefined reference stays as written, and $$ is a literal $."""
    return _REFERENCE.sub(lambda m: "$" if m.group(0) == "$$" else env.get(m.group(1), m.group(0)), text)


def _die_with_parent() -> None:
    """In the child, before exec: be killed when the agent dies (Linux only)."""
    libc_name = ctypes.util.find_library("c")
    if sys.platform.startswith("linux") and libc_name:
        ctypes.CDLL(libc_name, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


@dataclass(frozen=True)
class Backoff:
    """Kubernetes' restart back-off: doubling from initial up to maximum; reset after `reset` seconds of running."""

    initial: float = 1.0
    maximum: float = 60.0
    reset: float = 60.0


class RunFailure(Exception):
    """A container's run could not start, or was lost; reason is what its state reports (StartError,
    ErrImagePull, ...)."""

    def __init__(self, message: str, reason: str = "StartError"):
        super().__init__(message)
        self.reason = reason


class Container:
    """One container of a pod, supervised the same way in every runtime: run it, restart it as the pod's
    policy says (with back-off), stop it. A runtime gives how one run goes (_run_once, _terminate)."""

    def __init__(self, spec: dict[str, Any], pod_dir: Path, restart_policy: str, grace: float, backoff: Backoff,
                 base_env: dict[str, str], on_change: Callable[[], None]):
        self.spec = spec
        self.name = spec["name"]
        self.restart_policy = restart_policy
        self.grace = grace
        self.backoff = backoff
        self.base_env = base_env
        self.on_change = on_change
        self.log = pod_dir / f"{self.name}.log"
        self.state = ContainerState(self.name)
        self.task: asyncio.Task | None = None
        self.stopping = False

    def _set(self, **changes: Any) -> None:
        self.state = replace(self.state, **changes)
        self.on_change()

    def _running(self) -> None:
        """A run has started: the runtime says so as soon as it has."""
        self._set(state=RUNNING, reason="", message="", exit_code=0, started_at=time.time(), finished_at=0.0,
                  ever_started=True)

    def _env(self) -> dict[str, str]:
        """The container's environment: the pod's own (POD_IP, ...) and its variables, expanded in order."""
        env = dict(self.base_env)
        for e in self.spec.get("env", []):
            env[e["name"]] = expand(e.get("value", ""), env)
        return env

    def _rotate(self) -> None:
        if self.log.exists() and self.log.stat().st_size > MAX_LOG_BYTES:
            self.log.replace(self.log.with_name(self.log.name + ".1"))

    async def _run_once(self) -> int:
        """Start a run and wait for it to end; its exit code (negative: killed by that signal). Raises
        RunFailure (or OSError, ValueError) when it cannot start."""
        raise NotImplementedError

    async def _terminate(self) -> None:
        """End the current run, if any: SIGTERM, then SIGKILL after the grace period."""
        raise NotImplementedError

    async def supervise(self) -> None:
        """Run the container, restarting it as its policy says, until it is done or stopped."""
        delay = self.backoff.initial
        while not self.stopping:
            began = time.monotonic()
            try:
                code = await self._run_once()
                reason = "Completed" if code == 0 else "Error"
                message = "" if code >= 0 else f"killed by signal {-code}"
                code = code if code >= 0 else 128 - code  # as a shell reports a signal
            except (OSError, ValueError, RunFailure) as exc:
                code, reason, message = 128, getattr(exc, "reason", "StartError"), str(exc)
            if self.stopping:
                self._set(state=TERMINATED, reason=reason if code == 0 else "Killed", exit_code=code,
                          finished_at=time.time(), done=True)
                return
            restart = self.restart_policy == "Always" or (self.restart_policy == "OnFailure" and code != 0)
            self._set(state=TERMINATED, reason=reason, message=message, exit_code=code, finished_at=time.time(),
                      done=not restart)
            if not restart:
                return
            if time.monotonic() - began >= self.backoff.reset:
                delay = self.backoff.initial  # it ran long enough: start the back-off over
            self._set(state=WAITING, reason="CrashLoopBackOff",
                      message=f"back-off {delay:g}s restarting the exited container (exit code {code})")
            await asyncio.sleep(delay)
            delay = min(delay * 2, self.backoff.maximum)
            self._set(restart_count=self.state.restart_count + 1)

    async def stop(self) -> None:
        """End the current run (SIGTERM, then SIGKILL after the grace period) and the supervision."""
        self.stopping = True
        await self._terminate()
        if self.task is not None:
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class ProcessContainer(Container):
    """One container as a supervised local process."""

    def __init__(self, spec: dict[str, Any], pod_dir: Path, restart_policy: str, grace: float, backoff: Backoff,
                 base_env: dict[str, str], on_change: Callable[[], None]):
        self.dir = pod_dir / spec["name"]
        super().__init__(spec, pod_dir, restart_policy, grace, backoff, {**base_env, "HOME": str(self.dir)},
                         on_change)
        self.process: asyncio.subprocess.Process | None = None

    def _argv_and_cwd(self) -> tuple[list[str], Path]:
        env = self._env()
        argv = [expand(a, env) for a in [*self.spec.get("command", []), *self.spec.get("args", [])]]
        if not self.spec.get("command"):
            raise ValueError("the process runtime runs a container's command, and this one has none "
                             f"(image {self.spec.get('image') or '-'} is not run)")
        working = self.spec.get("working_dir") or ""
        if os.path.isabs(working) or ".." in Path(working).parts:
            raise ValueError("working_dir must be a relative path inside the container's directory")
        return argv, self.dir / working

    async def _run_once(self) -> int:
        """Start the process and wait for it; its exit code (negative: killed by that signal)."""
        argv, cwd = self._argv_and_cwd()
        cwd.mkdir(parents=True, exist_ok=True)
        self._rotate()
        env = self._env()
        try:
            with open(self.log, "ab") as out:  # noqa: ASYNC230 - opening a local file to append does not wait
                self.process = await asyncio.create_subprocess_exec(
                    *argv, cwd=cwd, env=env, stdin=asyncio.subprocess.DEVNULL, stdout=out,
                    stderr=asyncio.subprocess.STDOUT, start_new_session=True, preexec_fn=_die_with_parent)
            self._running()
            return await self.process.wait()
        finally:
            self.process = None

    async def _terminate(self) -> None:
        """SIGTERM the process group, then SIGKILL it after the grace period."""
        process = self.process
        if process is not None and process.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), self.grace)
            except TimeoutError:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                await process.wait()


class Pod:
    """A pod as its containers, supervised together."""

    def __init__(self, directory: Path, pod_ip: str, containers: list[Container]):
        self.dir = directory
        self.pod_ip = pod_ip
        self.containers = containers

    def start(self) -> None:
        """Start supervising every container."""
        self.dir.mkdir(parents=True, exist_ok=True)
        for container in self.containers:
            container.task = asyncio.get_running_loop().create_task(container.supervise())

    def states(self) -> list[ContainerState]:
        """Each container's current state."""
        return [c.state for c in self.containers]

    def log_path(self, container: str) -> Path | None:
        """Where a container's log is kept."""
        return next((c.log for c in self.containers if c.name == container), None)

    async def stop(self) -> None:
        """Stop every container at once."""
        await asyncio.gather(*(c.stop() for c in self.containers))


def pod_env(pod: dict[str, Any], pod_ip: str) -> dict[str, str]:
    """What every container of a pod finds in its environment, as the downward API would hand it over."""
    meta = pod["metadata"]
    return {"HOSTNAME": meta["name"], "POD_IP": pod_ip, "POD_NAME": meta["name"], "POD_NAMESPACE": meta["namespace"],
            "NODE_NAME": pod["spec"].get("node_name", "")}


def restart_policy(pod: dict[str, Any]) -> str:
    """The pod's restart policy (Always unless it says otherwise)."""
    return pod["spec"].get("restart_policy") or "Always"


def grace(pod: dict[str, Any]) -> float:
    """The seconds a pod's containers get between SIGTERM and SIGKILL."""
    return float(pod["spec"].get("termination_grace_period_seconds") or 10)


class ProcessPod(Pod):
    """A pod whose containers are local processes; with host addresses, its address is added to the host
    before its containers start and removed once they stopped."""

    def __init__(self, pod: dict[str, Any], pod_ip: str, root: Path, backoff: Backoff,
                 on_change: Callable[[], None], host: HostAddresses | None = None):
        directory = root / pod["metadata"]["uid"]
        # Processes share the host's network: each pod gets an address of its own to listen on, POD_IP.
        base_env = {"PATH": os.environ.get("PATH", os.defpath), "LANG": os.environ.get("LANG", "C.UTF-8"),
                    **pod_env(pod, pod_ip)}
        super().__init__(directory, pod_ip, [
            ProcessContainer(c, directory, restart_policy(pod), grace(pod), backoff, base_env, on_change)
            for c in pod["spec"]["containers"]])
        self.host = host
        self.added = False
        self._setup: asyncio.Task | None = None

    def start(self) -> None:
        """Start supervising every container (once the pod's address is on the host, if it needs one)."""
        if self.host is None:
            super().start()
        else:
            self._setup = asyncio.get_running_loop().create_task(self._start_at_address(self.host))

    async def _start_at_address(self, host: HostAddresses) -> None:
        try:
            await host.add(self.pod_ip)
        except Exception as exc:  # noqa: BLE001 - whatever netlink says, the pod fails with it
            now = time.time()
            for container in self.containers:
                container._set(state=TERMINATED, reason="PodAddressUnavailable", exit_code=128, started_at=now,
                               finished_at=now, done=True,
                               message=f"cannot add the pod's address {self.pod_ip} to {host.interface}: {exc}")
            return
        self.added = True
        super().start()

    async def stop(self) -> None:
        """Stop every container, then take the pod's address off the host."""
        if self._setup is not None:
            await asyncio.gather(self._setup, return_exceptions=True)
        await super().stop()
        if self.added and self.host is not None:
            try:
                await self.host.remove(self.pod_ip)
                self.added = False
            except Exception as exc:  # noqa: BLE001 - the next start of the agent removes it
                log.warning("cannot remove the pod address %s from %s: %s", self.pod_ip, self.host.interface, exc)


class ProcessRuntime:
    """Pods as supervised local processes, under root (one directory per pod uid)."""

    name = "process"

    def __init__(self, root: Path, backoff: Backoff = Backoff(), on_change: Callable[[], None] = lambda: None,
                 host: HostAddresses | None = None):
        self.root = root
        self.backoff = backoff
        self.on_change = on_change
        self.host = host if host is not None else HostAddresses()

    async def open(self) -> None:
        """Remove the pod addresses an earlier run of the agent left on the host (no pod runs yet)."""
        if not self.host.unsupported():
            for address in await self.host.prune():
                log.info("removed the stale pod address %s from %s", address, self.host.interface)

    async def close(self) -> None:
        """Nothing to let go of: each pod's address went with it."""

    def pod(self, pod: dict[str, Any], pod_ip: str = "127.0.0.1") -> ProcessPod | RefusedPod:
        """The runtime of one pod at its address. An address k8shost assigned from a PrismNET subnet is
        added to the host for the pod's time (see hostnet); without the privilege to, the pod is refused."""
        if not pod.get("status", {}).get("network"):
            return ProcessPod(pod, pod_ip, self.root, self.backoff, self.on_change)
        assigned = pod["status"].get("pod_ip", "") or pod_ip
        why = self.host.unsupported()
        if why:
            return RefusedPod(pod, "PodAddressUnsupported",
                              f"the pod's address {assigned} comes from a PrismNET subnet, which the process "
                              f"runtime gives its processes only on the host: {why}; run the node's agent as "
                              "root, or with --runtime docker")
        return ProcessPod(pod, assigned, self.root, self.backoff, self.on_change, self.host)


class RefusedPod:
    """A pod the runtime cannot run: Failed at once, every container terminated with the reason."""

    def __init__(self, pod: dict[str, Any], reason: str, message: str):
        self.pod_ip = ""
        now = time.time()
        self._states = [ContainerState(c["name"], TERMINATED, reason, message, 128, now, now, done=True)
                        for c in pod["spec"]["containers"]]

    def start(self) -> None:
        """Nothing starts."""

    def states(self) -> list[ContainerState]:
        """Each container terminated with the reason."""
        return list(self._states)

    def log_path(self, container: str) -> Path | None:
        """No logs: nothing ran."""
        return None

    async def stop(self) -> None:
        """Nothing to stop."""


def phase(states: list[ContainerState]) -> str:
    """A pod's phase from its containers' states, as the kubelet computes it."""
    if all(s.done for s in states):
        return "Succeeded" if all(s.exit_code == 0 for s in states) else "Failed"
    if not any(s.ever_started for s in states):
        return "Pending"
    return "Running"
