"""Per-container cgroups for the process runtime: the limits of `resources.limits` (memory, cpu, pids),
how many times the kernel killed a container for memory, and every process a container left.

The agent keeps its groups under `<parent>/<pod uid>/<container>` at the top of the hierarchy: cgroup v2
(one unified tree, controllers enabled down the path) or v1 (the memory, pids and cpu hierarchies,
each a tree of its own). Container runtimes write these files themselves too (runc, crun, the
kubelet's cgroupfs driver); there is no library for it worth a dependency. Making groups takes root.
A new process joins its container's group before it runs anything (join_paths, written by the child).
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Set
from pathlib import Path

from .limits import Limits

log = logging.getLogger("photoncloud.k8shost.agent")

ROOT = Path("/sys/fs/cgroup")
CONTROLLERS = ("memory", "pids", "cpu")
CPU_PERIOD_US = 100_000


def _version(root: Path) -> int:
    """2 for the unified hierarchy, 1 for v1 with the memory, pids and cpu controllers, 0 for neither."""
    if (root / "cgroup.controllers").exists():
        available = (root / "cgroup.controllers").read_text().split()
        return 2 if all(c in available for c in CONTROLLERS) else 0
    return 1 if all((root / c / "cgroup.procs").exists() for c in CONTROLLERS) else 0


def _write(path: Path, value: str) -> None:
    with open(path, "w", encoding="ascii") as f:
        f.write(value)


class Cgroups:
    """The agent's cgroups: one group per container under `parent` (photoncloud-k8shost/<its data dir's tag>)."""

    def __init__(self, parent: str, root: Path = ROOT):
        self.parent = parent.strip("/")
        self.root = root
        self.version = _version(root) if root.exists() else 0
        self.writable = self.version and os.access(self._bases()[0], os.W_OK)

    def unsupported(self) -> str:
        """Why the agent cannot set limits here ("": it can)."""
        if not self.version:
            return f"no cgroup hierarchy with the memory, pids and cpu controllers at {self.root}"
        if not self.writable:
            return "the agent may not make cgroups (it runs as root where it enforces limits)"
        return ""

    def _bases(self) -> list[Path]:
        """The top of each hierarchy the agent writes to."""
        return [self.root] if self.version == 2 else [self.root / c for c in CONTROLLERS]

    def group(self, pod_uid: str, container: str) -> Group:
        """The group of one container of a pod (not made until create())."""
        return Group([base / self.parent / pod_uid / container for base in self._bases()], self.version, self.root)

    def prune(self, keep: Set[str] = frozenset()) -> list[str]:
        """Kill and remove the groups of every pod but those kept (an earlier agent's leftovers); their pod uids."""
        if self.unsupported():
            return []
        found = sorted({p.name for base in self._bases() if (base / self.parent).is_dir()
                        for p in (base / self.parent).iterdir() if p.is_dir() and p.name not in keep})
        for pod_uid in found:
            self.remove_pod(pod_uid)
        return found

    def remove_pod(self, pod_uid: str) -> None:
        """Kill whatever is left in a pod's groups, and remove them."""
        pods = [base / self.parent / pod_uid for base in self._bases()]
        for container in sorted({c.name for d in pods if d.is_dir() for c in d.iterdir() if c.is_dir()}):
            self.group(pod_uid, container).remove()
        for directory in pods:
            with contextlib.suppress(OSError):
                directory.rmdir()


class Group:
    """One container's cgroup (v2: one directory; v1: one in each of the memory, pids and cpu hierarchies)."""

    def __init__(self, directories: list[Path], version: int, top: Path = ROOT):
        self.dirs = directories
        self.version = version
        self.top = top  # cgroup v2: the top of the hierarchy

    def _file(self, controller: str, name: str) -> Path:
        directory = self.dirs[0] if self.version == 2 else self.dirs[CONTROLLERS.index(controller)]
        return directory / name

    def create(self, limits: Limits) -> None:
        """Make the group (OSError if the kernel refuses) with these limits."""
        if self.version == 2:
            self._enable_controllers()
        for directory in self.dirs:
            directory.mkdir(parents=True, exist_ok=True)
        quota = limits.cpu_millicores * CPU_PERIOD_US // 1000  # microseconds of CPU a period (0: no limit)
        if self.version == 2:
            _write(self.dirs[0] / "memory.oom.group", "1")  # a kill for memory takes the whole container
            memory = str(limits.memory_bytes or "max")
            _write(self.dirs[0] / "memory.max", memory)
            if (self.dirs[0] / "memory.swap.max").exists():
                _write(self.dirs[0] / "memory.swap.max", "0" if limits.memory_bytes else "max")
            _write(self.dirs[0] / "pids.max", str(limits.pids or "max"))
            _write(self.dirs[0] / "cpu.max", f"{quota or 'max'} {CPU_PERIOD_US}")
            return
        memory = str(limits.memory_bytes or -1)
        # Over the limit a container is killed, not swapped out: memory+swap is held to the same amount.
        memsw = self._file("memory", "memory.memsw.limit_in_bytes")
        if memsw.exists() and not limits.memory_bytes:
            _write(memsw, memory)  # raised first, so the memory limit may rise above its old value
        _write(self._file("memory", "memory.limit_in_bytes"), memory)
        if memsw.exists() and limits.memory_bytes:
            _write(memsw, memory)
        _write(self._file("pids", "pids.max"), str(limits.pids or "max"))
        _write(self._file("cpu", "cpu.cfs_period_us"), str(CPU_PERIOD_US))
        _write(self._file("cpu", "cpu.cfs_quota_us"), str(quota or -1))

    def _enable_controllers(self) -> None:
        """cgroup v2: hand memory, pids and cpu down every level from the top to the group's parent."""
        level = self.top
        for part in (None, *self.dirs[0].relative_to(self.top).parent.parts):
            if part is not None:
                level = level / part
                level.mkdir(exist_ok=True)
            _write(level / "cgroup.subtree_control", " ".join(f"+{c}" for c in CONTROLLERS))

    def join_paths(self) -> list[str]:
        """The files a process writes its pid to, to join the group (in every hierarchy)."""
        return [str(d / "cgroup.procs") for d in self.dirs]

    def oom_kills(self) -> int:
        """How many processes of the group the kernel killed for going over its memory limit."""
        name = "memory.events" if self.version == 2 else "memory.oom_control"
        try:
            text = self._file("memory", name).read_text()
        except OSError:
            return 0
        return next((int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")), 0)

    def pids(self) -> list[int]:
        """The processes in the group now."""
        try:
            return [int(p) for p in self._file("pids", "cgroup.procs").read_text().split()]
        except OSError:
            return []

    def kill(self) -> None:
        """SIGKILL every process of the group (again, until none is left, for at most a few seconds)."""
        deadline = time.monotonic() + 5
        while (pids := self.pids()) and time.monotonic() < deadline:
            for pid in pids:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, signal.SIGKILL)
            time.sleep(0.01)

    def remove(self) -> None:
        """Kill what is left in the group and remove it (gone already is fine)."""
        self.kill()
        for directory in self.dirs:
            if not directory.is_dir():
                continue
            for _ in range(50):  # a killed process leaves its group a moment after it died
                try:
                    directory.rmdir()
                    break
                except FileNotFoundError:
                    break
                except OSError:
                    time.sleep(0.01)
            else:
                log.warning("cannot remove cgroup %s", directory)

