"""What every container runtime shares, behind one interface: a container's supervision (Kubernetes'
restart policy, Always, OnFailure, Never, with an exponential back-off between restarts
(CrashLoopBackOff) that resets once a container has run long enough), one log file per container
kept across restarts and rotated at a size cap, a container killed for memory reported as
OOMKilled, and a pod as its containers together. A runtime (process.py, docker.py) says only how one
run of a container starts, how it is waited for and how it is ended.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Protocol

from photoncloud.common.times import rfc3339

log = logging.getLogger("photoncloud.k8shost.agent")

WAITING, RUNNING, TERMINATED = "WAITING", "RUNNING", "TERMINATED"
LOG_DRAIN_SECONDS = 5.0  # after a run ends, how long its last output may take to reach the log
MAX_LOG_BYTES = 10 * 1024 * 1024  # a log about to grow past this is rotated to <name>.log.1 (the one before goes)


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

    def remove(self) -> None:
        """Forget the stopped pod, which was deleted: its directory and whatever the node held for it."""


class Runtime(Protocol):
    """A way of running pods: `process` (local processes) or `docker` (containers of a Docker engine)."""

    name: str
    root: Path  # one directory per pod uid
    on_change: Callable[[], None]  # called whenever a container's state moves

    @property
    def isolation(self) -> str:
        """How pods are isolated from the node, as the node reports it ("none": not at all)."""

    @property
    def pod_network(self) -> str:
        """How pods with a PrismNET address are wired to its network, as the agent reports it."""

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


class LogFile:
    """A container's log file, appended to as its output comes and rotated to <name>.log.1 whenever it would grow
    past its cap, while the container runs (so no container fills the node's disk). Created 0600: the agent's
    files are no one else's."""

    def __init__(self, path: Path, cap: int = 0):
        self.path = path
        self.cap = cap or MAX_LOG_BYTES
        self._file: Any = None
        self._size = 0

    def write(self, data: bytes) -> None:
        """Append data (rotating first if it would pass the cap) and flush it, so readers see it at once."""
        if self._file is None:
            self._open()
        if self._size and self._size + len(data) > self.cap:
            self._file.close()
            self.path.replace(self.path.with_name(self.path.name + ".1"))
            self._open()
        self._file.write(data[-self.cap:])
        self._file.flush()
        self._size += min(len(data), self.cap)

    def _open(self) -> None:
        self._file = os.fdopen(os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600), "ab")
        self._size = self._file.tell()

    def close(self) -> None:
        """Close the file (the next write opens it again)."""
        if self._file is not None:
            self._file.close()
            self._file = None


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
        self.task: asyncio.Task[None] | None = None
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

    async def _run_once(self) -> int:
        """Start a run and wait for it to end; its exit code (negative: killed by that signal). Raises
        RunFailure (or OSError, ValueError) when it cannot start."""
        raise NotImplementedError

    async def _terminate(self) -> None:
        """End the current run, if any: SIGTERM, then SIGKILL after the grace period."""
        raise NotImplementedError

    async def _oom_killed(self) -> bool:
        """Whether the run that just ended with an error was killed for going over its memory limit."""
        return False

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
                if code != 0 and await self._oom_killed():
                    reason, message = "OOMKilled", f"the container reached its memory limit ({message or code})"
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
        was_running = self.state.state == RUNNING
        await self._terminate()
        if self.task is not None:
            if was_running:  # the run ended: let the supervision note so (its last output reaching the log first)
                await asyncio.wait({self.task}, timeout=LOG_DRAIN_SECONDS)
            self.task.cancel()
            await asyncio.gather(self.task, return_exceptions=True)


class Pod:
    """A pod as its containers, supervised together."""

    def __init__(self, directory: Path, pod_ip: str, containers: list[Container]):
        self.dir = directory
        self.pod_ip = pod_ip
        self.containers = containers

    def start(self) -> None:
        """Start supervising every container."""
        self.dir.mkdir(mode=0o700, parents=True, exist_ok=True)
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

    def remove(self) -> None:
        """Forget the stopped pod: its directory (logs and files) goes."""
        shutil.rmtree(self.dir, ignore_errors=True)


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

    def remove(self) -> None:
        """Nothing to forget."""


def phase(states: list[ContainerState]) -> str:
    """A pod's phase from its containers' states, as the kubelet computes it."""
    if all(s.done for s in states):
        return "Succeeded" if all(s.exit_code == 0 for s in states) else "Failed"
    if not any(s.ever_started for s in states):
        return "Pending"
    return "Running"
