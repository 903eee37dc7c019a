"""The process runtime's sandbox: every container runs inside bubblewrap (`bwrap`, Debian's `bubblewrap`).

Why bubblewrap: it is built for exactly this (it is Flatpak's sandbox), small, needs no daemon, and
starts a sandbox in a few milliseconds, where a runc or crun bundle per container needs a root file
system assembled and costs tens of milliseconds more; and it works both as root and, in a user
namespace, without privilege. What it leaves to its caller, the agent does itself: cgroup limits
(cgroups.py), the pod's network namespace (podnet.py), and, as root, becoming the pod's own user,
which `setpriv` (util-linux) does as the sandbox's first command.

A container gets its own mount, PID, IPC, UTS and cgroup namespaces (and the pod's network namespace
when the pod has an address of its own). Its file system is the host's system directories read-only
(/usr, /bin, /lib*, /sbin, /etc with its secret files hidden), a private writable home (`/pod`, its
working directory), its own /tmp and /dev, and a /proc that shows only its own processes: nothing
else of the host, so not the platform's data directory, the agent's credentials, /root, /home, /run,
or another pod's directory. Its environment is only what the pod gives it. The sandbox dies with the
agent.

System calls that widen the kernel's attack surface (new user namespaces, the keyring, bpf, ...) are
refused by a seccomp filter (seccomp.py), as Docker's default profile does.

Two ways to sandbox, as the host allows:
- `root` (the agent runs as root): bwrap sets up the namespaces and mounts with the agent's privilege,
  and the command runs as the pod's own uid and gid (from a range the agent hands out: never 0, never
  the agent's), with no capabilities (the bounding set cleared) and no new privileges.
- `userns` (the agent is not root, but may make user namespaces): bwrap in a user namespace of its own;
  the container's processes are uid 1000 there, which is the agent's uid outside (a uid of its own per pod
  takes root), with no capabilities, no new privileges and no further user namespaces.
Where neither works, there is no sandbox, and the agent refuses to run the process runtime unless the
operator starts it with --insecure-unsandboxed-pods.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

ROOT, USERNS, NONE = "root", "userns", "none"
HOME = "/pod"  # where a container's private directory is, inside its sandbox
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
USERNS_UID = 1000
SYSTEM = ("/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32", "/etc", "/nix/store")
SECRET_FILES = ("/etc/shadow", "/etc/shadow-", "/etc/gshadow", "/etc/gshadow-", "/etc/security/opasswd")
SECRET_DIRS = ("/etc/ssl/private", "/etc/ssh", "/etc/sudoers.d", "/etc/credstore", "/etc/credstore.encrypted")
UID_BASE, UID_COUNT = 0x7FFF0000, 0x10000  # pods' uids: the top 65,536 below 2^31, above the usual subuid ranges


def detect() -> tuple[str, str]:
    """How this host can sandbox (root, userns or none), and why not when none."""
    bwrap = shutil.which("bwrap")
    if bwrap is None:
        return NONE, "bubblewrap (bwrap) is not installed"
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            return NONE, "setpriv (util-linux) is not installed"
        return ROOT, ""
    probe = subprocess.run([bwrap, "--unshare-user", "--ro-bind", "/", "/", "true"], capture_output=True, text=True,
                           timeout=10)
    if probe.returncode != 0:
        return NONE, f"the agent is not root and cannot make a user namespace: {probe.stderr.strip()}"
    return USERNS, ""


class Uids:
    """The uids the agent hands pods (each pod its own, also its gid), in [base, base + count)."""

    def __init__(self, base: int = UID_BASE, count: int = UID_COUNT):
        self.base, self.count = base, count
        self.held: dict[str, int] = {}  # pod uid -> its user id

    def take(self, pod_uid: str) -> int:
        """The pod's user id (the same for the pod's life); RuntimeError when none is left."""
        if pod_uid not in self.held:
            used = set(self.held.values())
            start = int.from_bytes(pod_uid.encode()[-4:].rjust(4, b"\0"), "big") % self.count  # spread, then probe
            free = next((self.base + (start + i) % self.count for i in range(self.count)
                         if self.base + (start + i) % self.count not in used), None)
            if free is None:
                raise RuntimeError(f"all {self.count} pod user ids are in use")
            self.held[pod_uid] = free
        return self.held[pod_uid]

    def release(self, pod_uid: str) -> None:
        """Give a pod's user id back (its processes and files are gone)."""
        self.held.pop(pod_uid, None)


class Sandbox:
    """The bwrap command line of a container's run, in one of the modes (root or userns)."""

    def __init__(self, mode: str, read_only: tuple[str, ...] = ()):
        if mode not in (ROOT, USERNS):
            raise ValueError(f"no sandbox in mode {mode!r}")
        self.mode = mode
        self.read_only = read_only  # more host paths the operator shows every container, read-only
        self.file_system = self._file_system()  # the host's paths are looked at once, not at every start

    def describe(self) -> str:
        """The sandbox as the node reports it."""
        return "bubblewrap" if self.mode == ROOT else "bubblewrap (user namespace; pods share the agent's uid)"

    def _file_system(self) -> list[str]:
        args: list[str] = []
        for path in (*SYSTEM, *self.read_only):
            if os.path.islink(path):
                args += ["--symlink", os.readlink(path), path]
            elif os.path.exists(path):
                args += ["--ro-bind", path, path]
        for path in SECRET_FILES:
            if os.path.exists(path):
                args += ["--ro-bind", "/dev/null", path]
        for path in SECRET_DIRS:
            if os.path.isdir(path):
                args += ["--tmpfs", path, "--remount-ro", path]
        return [*args, "--proc", "/proc", "--dev", "/dev", "--perms", "1777", "--tmpfs", "/tmp"]

    def argv(self, command: list[str], home: Path, workdir: str, hostname: str, uid: int,
             seccomp_fd: int | None = None) -> list[str]:
        """The command line running command in a sandbox: home is the container's own directory on the host
        (`/pod` inside), workdir a path inside it, uid the pod's user id (root mode), seccomp_fd a descriptor the
        child inherits holding the seccomp filter (seccomp.py)."""
        cwd = str(Path(HOME) / workdir) if workdir else HOME
        args = ["bwrap", "--die-with-parent", "--new-session", "--unshare-pid", "--unshare-ipc", "--unshare-uts",
                "--unshare-cgroup-try", "--hostname", hostname[:63] or "pod", *self.file_system,
                "--bind", str(home), HOME, "--chdir", cwd,
                *(["--seccomp", str(seccomp_fd)] if seccomp_fd is not None else [])]
        if self.mode == USERNS:
            return [*args, "--unshare-user", "--disable-userns", "--uid", str(USERNS_UID), "--gid", str(USERNS_UID),
                    "--cap-drop", "ALL", "--", *command]
        return [*args, "--", "setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--inh-caps=-all",
                "--bounding-set=-all", "--no-new-privs", "--", *command]
