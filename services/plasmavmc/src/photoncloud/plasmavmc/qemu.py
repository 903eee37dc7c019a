"""QemuDriver: one `qemu-system-x86_64` process per VM, controlled over QMP.

Each VM has a directory (`<data_dir>/vms/<id>/`) holding what finds it again after PlasmaVMC
restarts: `qemu.pid` (QEMU's pid file), `qmp.sock` (the QMP server socket) and `console.log`
(the serial console, appended to across boots). QEMU runs daemonized (`-daemonize`), in a session
of its own: it is no child of PlasmaVMC, so stopping or killing PlasmaVMC leaves the guests running
and a restarted PlasmaVMC reattaches to them through the socket.

`-no-shutdown` keeps QEMU alive when the guest powers off, in the `shutdown` run state, so that a
guest that powered itself off is told apart from a process that died (which is an ERROR).

Networking: each NIC is a virtio-net device with its PrismNET port's MAC. Without a dataplane, it is
on a user-mode (slirp) network restricted to the guest (`restrict=on`: no traffic leaves the host)
whose DHCP server hands the guest exactly its port's address and the subnet's gateway. With one
(taps.py), it is a TAP device on its VPC's bridge, made before QEMU starts and deleted once QEMU has
exited; the VM's directory lists its TAPs (`taps`), so that they are deleted after a restart too,
and PrismNET's router namespace behind the bridge answers the guest's DHCP. Disks boot with `snapshot=on`: the
image is shared by every VM booting it, so a guest's writes go to a temporary overlay and are gone
when it stops.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qemu.qmp import QMPClient, QMPError

from .accel import KVM_DEVICE, configured
from .driver import HypervisorError, Power, VmSpec
from .taps import Taps, delete_taps

log = logging.getLogger("photoncloud.plasmavmc.qemu")

LAUNCH_TIMEOUT = 30.0  # seconds QEMU gets to set the VM up and daemonize
QMP_TIMEOUT = 10.0
EXIT_TIMEOUT = 5.0  # seconds a process gets to exit after `quit` before SIGKILL
POLL = 0.2


def qemu_version(binary: str) -> str:
    """The first line of `qemu-system-x86_64 --version`, or "" when QEMU cannot run."""
    try:
        out = subprocess.run([binary, "--version"], capture_output=True, text=True, timeout=10, check=True).stdout
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.splitlines()[0] if out else ""


def alive(pid: int, vm_id: str) -> bool:
    """Whether pid is a live QEMU of this VM (not a zombie, not a reused pid)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            state = f.read().rsplit(b")", 1)[1].split()[0]
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read().split(b"\0")
    except (OSError, IndexError):
        return False
    # A zombie waits for a parent that may never reap it (QEMU's parent is init, or whatever
    # PID 1 a container has): it is dead to us.
    return state not in (b"Z", b"X") and f"guest={vm_id}".encode() in cmdline


@contextmanager
def short_path(directory: Path, name: str) -> Iterator[str]:
    """A short path to directory/name, through an open descriptor of the directory.

    A unix socket's path may not exceed 107 bytes, and data directories can be deeper than that;
    /proc/self/fd/<n>/name reaches the same file within the limit.
    """
    fd = os.open(directory, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        yield f"/proc/self/fd/{fd}/{name}"
    finally:
        os.close(fd)


def _nic_args(index: int, nic: Any, tap: str = "") -> list[str]:
    # romfile= : no option ROM (network boot is never wanted, and the ROM files are a separate package).
    device = ["-device", f"virtio-net-pci,netdev=net{index},mac={nic.mac_address},romfile="]
    if tap:  # made and plugged into the bridge beforehand: QEMU runs no script on it
        return ["-netdev", f"tap,id=net{index},ifname={tap},script=no,downscript=no", *device]
    netdev = f"user,id=net{index},restrict=on"
    try:
        network = ipaddress.ip_network(nic.cidr_block)
        address, gateway = ipaddress.ip_address(nic.ip_address), ipaddress.ip_address(nic.gateway_ip)
    except ValueError:
        network = None
    if network is not None and network.version == 4 and address in network and gateway in network:
        # slirp's DNS address must differ from the gateway and the guest's: the first other host.
        dns = next(h for h in network.hosts() if h not in (address, gateway)) if network.num_addresses > 4 else None
        if dns is not None:
            netdev += f",net={network},host={gateway},dhcpstart={address},dns={dns}"
    return ["-netdev", netdev, *device]


class QemuDriver:
    """VMs as daemonized QEMU processes, one per VM, under root/<vm id>/; with taps, NICs on PrismNET's bridges."""

    name = "qemu"

    def __init__(self, root: Path, binary: str = "qemu-system-x86_64", accel: str = "auto",
                 taps: Taps | None = None, kvm_device: str = KVM_DEVICE):
        self.taps = taps  # None: user-mode networking
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.binary = shutil.which(binary) or binary
        self.version = qemu_version(self.binary)
        # auto: KVM only once a test guest has run on it (cached per process), else TCG, saying why.
        self.choice = configured(accel, self.binary, kvm_device)
        self.kvm = self.choice.kvm
        self.accel = self.choice.accel
        self._clients: dict[str, QMPClient] = {}
        self._locks: dict[str, asyncio.Lock] = {}

    def describe(self) -> dict[str, Any]:
        """The driver, QEMU's version, and whether guests run on KVM or are emulated (TCG), and why."""
        return {"driver": self.name, "accel": self.accel, "kvm": self.kvm, "accel_reason": self.choice.reason,
                "qemu": self.version or "not found"}

    def directory(self, vm_id: str) -> Path:
        """Where a VM's pid file, QMP socket and console log live."""
        return self.root / vm_id

    def pid(self, vm_id: str) -> int | None:
        """The pid of the VM's live QEMU, if there is one."""
        try:
            pid = int((self.directory(vm_id) / "qemu.pid").read_text().strip())
        except (OSError, ValueError):
            return None
        return pid if alive(pid, vm_id) else None

    def command(self, spec: VmSpec, qmp_fd: int, taps: list[str] | None = None) -> list[str]:
        """The QEMU command line that boots spec, serving QMP on the listening socket qmp_fd (its NICs on
        the TAPs named in taps, one per NIC, when given)."""
        d = self.directory(spec.id)
        args = [self.binary, "-name", f"guest={spec.id}", "-machine", "pc", "-accel", self.accel,
                "-smp", str(spec.vcpus), "-m", f"{spec.memory_mib}M",
                "-nodefaults", "-no-user-config", "-display", "none", "-no-shutdown",
                "-daemonize", "-pidfile", str(d / "qemu.pid"),
                "-chardev", f"socket,id=qmp,fd={qmp_fd},server=on,wait=off", "-mon", "chardev=qmp,mode=control",
                "-chardev", f"file,id=console,path={d / 'console.log'},append=on", "-serial", "chardev:console"]
        if spec.kernel is not None:
            args += ["-kernel", str(spec.kernel), "-append", spec.cmdline]
            if spec.initrd is not None:
                args += ["-initrd", str(spec.initrd)]
        if spec.disk is not None:
            args += ["-drive", f"file={spec.disk},if=virtio,format={spec.disk_format},snapshot=on"]
        for index, nic in enumerate(spec.nics):
            args += _nic_args(index, nic, taps[index] if taps else "")
        return args

    async def start(self, spec: VmSpec) -> None:
        """Launch QEMU daemonized and wait until QMP says the guest runs."""
        d = self.directory(spec.id)
        d.mkdir(mode=0o700, parents=True, exist_ok=True)  # only PlasmaVMC's user may talk QMP to the VM
        if self.pid(spec.id) is not None:
            raise HypervisorError("the VM's QEMU process is running already", {"vm_id": spec.id})
        for stale in ("qemu.pid", "qmp.sock"):
            (d / stale).unlink(missing_ok=True)
        await self._forget(spec.id)
        await self._unplug(spec.id)  # a crash may have left them
        taps = await self._plug(spec)
        try:
            await self._launch(spec, taps)
        except BaseException:
            await asyncio.shield(self._unplug(spec.id))
            raise

    async def _plug(self, spec: VmSpec) -> list[str]:
        """Each NIC's TAP on its VPC's bridge (none without a dataplane), listed in the VM's directory first."""
        if self.taps is None or not spec.nics:
            return []
        taps = self.taps
        listed = self.directory(spec.id) / "taps"
        # Listed before they exist: whatever a failure or a crash leaves is found and deleted.
        listed.write_text("".join(taps.name(nic.port_id) + "\n" for nic in spec.nics))
        try:
            return [await taps.plug(nic.port_id, nic.vpc_id, nic.mac_address) for nic in spec.nics]
        except BaseException:
            await asyncio.shield(self._unplug(spec.id))
            raise

    async def _unplug(self, vm_id: str) -> None:
        """Delete the TAPs the VM's directory lists, then the list."""
        listed = self.directory(vm_id) / "taps"
        try:
            names = listed.read_text().split()
        except FileNotFoundError:
            return
        await delete_taps(names)
        listed.unlink(missing_ok=True)

    async def _launch(self, spec: VmSpec, taps: list[str]) -> None:
        d = self.directory(spec.id)
        with open(d / "console.log", "ab") as console:
            console.write(f"\n--- plasmavmc: starting {spec.id} ({self.accel}) ---\n".encode())
        # PlasmaVMC binds the QMP socket and hands QEMU the listening descriptor (as libvirt does),
        # so that the socket's path length never matters.
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with short_path(d, "qmp.sock") as path:
                listener.bind(path)
            listener.listen(4)
            process = await asyncio.create_subprocess_exec(
                *self.command(spec, listener.fileno(), taps), stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE, pass_fds=(listener.fileno(),),
                start_new_session=True)  # its own session: signals to PlasmaVMC's group never reach it
        except OSError as exc:
            raise HypervisorError(f"cannot run {self.binary}: {exc.strerror}") from None
        finally:
            listener.close()
        try:
            _, err = await asyncio.wait_for(process.communicate(), LAUNCH_TIMEOUT)
        except TimeoutError:
            process.kill()
            await process.wait()
            await self.kill(spec.id)
            raise HypervisorError(f"QEMU did not start within {LAUNCH_TIMEOUT:.0f}s") from None
        if process.returncode != 0:
            message = err.decode(errors="replace").strip().splitlines()
            raise HypervisorError(f"QEMU failed to start: {message[-1] if message else process.returncode}")
        try:
            status = await self._execute(spec.id, "query-status")
        except HypervisorError:
            await self.kill(spec.id)
            raise
        if status.get("status") != "running":
            await self.kill(spec.id)
            raise HypervisorError(f"QEMU started but the guest is {status.get('status')}")

    async def _client(self, vm_id: str) -> QMPClient:
        lock = self._locks.setdefault(vm_id, asyncio.Lock())
        async with lock:
            client = self._clients.get(vm_id)
            if client is not None and client.runstate.name == "RUNNING":
                return client
            if client is not None:
                await client.disconnect()
            client = QMPClient(f"plasmavmc-{vm_id}")
            try:
                with short_path(self.directory(vm_id), "qmp.sock") as path:
                    await asyncio.wait_for(client.connect(path), QMP_TIMEOUT)
            except (TimeoutError, QMPError, OSError) as exc:
                raise HypervisorError(f"cannot reach the VM's QMP socket: {type(exc).__name__}",
                                      {"vm_id": vm_id}) from None
            self._clients[vm_id] = client
            return client

    async def _execute(self, vm_id: str, command: str, **arguments: Any) -> dict[str, Any]:
        client = await self._client(vm_id)
        try:
            result = await asyncio.wait_for(client.execute(command, arguments or None), QMP_TIMEOUT)
        except (TimeoutError, QMPError, OSError, EOFError) as exc:
            await self._forget(vm_id)
            raise HypervisorError(f"QMP {command} failed: {exc or type(exc).__name__}", {"vm_id": vm_id}) from None
        return result if isinstance(result, dict) else {}

    async def _forget(self, vm_id: str) -> None:
        client = self._clients.pop(vm_id, None)
        if client is not None:
            try:
                await client.disconnect()
            except (QMPError, OSError, EOFError):
                pass  # the process is gone; nothing to say goodbye to

    async def power(self, vm_id: str) -> Power:
        """ABSENT without a live process; else what QMP's query-status says."""
        if self.pid(vm_id) is None:
            await self._forget(vm_id)
            return Power.ABSENT
        try:
            status = (await self._execute(vm_id, "query-status")).get("status")
        except HypervisorError:
            return Power.ABSENT if self.pid(vm_id) is None else Power.FAILED
        return {"running": Power.RUNNING, "paused": Power.PAUSED, "suspended": Power.PAUSED,
                "shutdown": Power.SHUTDOWN, "prelaunch": Power.PAUSED, "inmigrate": Power.PAUSED,
                "debug": Power.PAUSED}.get(str(status), Power.FAILED)

    async def stop(self, vm_id: str, timeout: float) -> bool:
        """system_powerdown (ACPI), wait for the guest to power off, then quit or kill QEMU."""
        graceful = False
        if self.pid(vm_id) is not None and timeout > 0:
            try:
                if (await self.power(vm_id)) == Power.PAUSED:
                    await self._execute(vm_id, "cont")  # a frozen guest cannot react to the button
                await self._execute(vm_id, "system_powerdown")
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    if await self.power(vm_id) in (Power.SHUTDOWN, Power.ABSENT):
                        graceful = True
                        break
                    await asyncio.sleep(POLL)
            except HypervisorError:
                pass  # QMP is gone: kill below
        await self.kill(vm_id)
        return graceful

    async def kill(self, vm_id: str) -> None:
        """QMP quit, then SIGKILL if the process lingers; waits until it is gone, then deletes its TAPs."""
        pid = self.pid(vm_id)
        if pid is None:
            await self._forget(vm_id)
            await self._unplug(vm_id)
            return
        try:
            await self._execute(vm_id, "quit")
        except HypervisorError:
            pass  # SIGKILL below
        await self._forget(vm_id)
        if not await self._gone(pid, vm_id, EXIT_TIMEOUT):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            if not await self._gone(pid, vm_id, EXIT_TIMEOUT):
                raise HypervisorError("the VM's QEMU process does not exit", {"pid": pid})
        await self._unplug(vm_id)

    @staticmethod
    async def _gone(pid: int, vm_id: str, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while alive(pid, vm_id):
            if time.monotonic() > deadline:
                return False
            await asyncio.sleep(0.05)
        return True

    async def reboot(self, vm_id: str) -> None:
        """system_reset: a hard reset, as the reset button."""
        await self._execute(vm_id, "system_reset")

    async def pause(self, vm_id: str) -> None:
        """QMP stop: the vCPUs stop, memory stays."""
        await self._execute(vm_id, "stop")

    async def resume(self, vm_id: str) -> None:
        """QMP cont."""
        await self._execute(vm_id, "cont")

    async def console(self, vm_id: str, tail_bytes: int) -> tuple[bytes, int]:
        """The end of console.log."""
        path = self.directory(vm_id) / "console.log"

        def read() -> tuple[bytes, int]:
            try:
                with open(path, "rb") as f:
                    size = f.seek(0, os.SEEK_END)
                    f.seek(max(0, size - tail_bytes))
                    return f.read(tail_bytes), size
            except FileNotFoundError:
                return b"", 0

        return await asyncio.to_thread(read)

    async def remove(self, vm_id: str) -> None:
        """Kill the VM and delete its directory."""
        await self.kill(vm_id)
        self._locks.pop(vm_id, None)
        await asyncio.to_thread(shutil.rmtree, self.directory(vm_id), True)

    async def close(self) -> None:
        """Disconnect from every VM's QMP socket; the VMs keep running."""
        for vm_id in list(self._clients):
            await self._forget(vm_id)
