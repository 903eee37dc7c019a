"""Test support: a bootable guest (the host's Linux kernel and a tiny busybox initramfs).

The initramfs is written directly in the kernel's `newc` cpio format, so building it needs
neither root (for /dev/console) nor the cpio tool: only a statically linked busybox
(Debian's busybox-static) and a Linux kernel image with its modules (Debian's linux-image-amd64:
the kernel under /boot, the modules under /lib/modules).

Its /init mounts /proc, prints a marker line to the console (ttyS0), then waits forever (or
powers the machine off, to play a guest that shuts itself down). With `power_button`, it loads
the kernel's ACPI button and evdev modules and powers off when the power button is pressed, as
a real distribution does, so that a graceful stop (QMP system_powerdown) really ends the guest.

With `network`, it brings its first NIC up as a guest on a real network would: it loads the
kernel's virtio_net (with virtio_pci and their dependencies), asks for a lease with busybox's
udhcpc, applies it (address, default route via the lease's router) and prints
`NET <ip>/<prefix len> via <router>` (or `NET FAIL`). Then, if the kernel command line holds
`peer=<ip>`, it pings that address three times and prints `PEER <ip> OK` or `PEER <ip> FAIL`; and
it serves HTTP on port 8080 (GET / answers `hello`), printing `LISTEN 8080`, so that a test can
reach a TCP port of the guest (through a security group, say). All of that comes before the marker.
"""

from __future__ import annotations

import asyncio
import glob
import lzma
import shutil
import stat
import time
from pathlib import Path
from typing import Any

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
KERNEL_GLOBS = ("/boot/vmlinuz-*", "/boot/vmlinuz")
MODULES_ROOT = Path("/lib/modules")
# What the power button takes: its ACPI driver, and evdev for the /dev/input device it presses.
BUTTON_MODULES = ("drivers/input/evdev.ko", "drivers/acpi/button.ko")
WAIT = "while :; do /bin/busybox sleep 3600; done"
POWER_OFF = "/bin/busybox poweroff -f"  # the kernel powers the machine off through ACPI
# Wait (up to 30 s: an emulated guest on a loaded machine can be that slow) for the button's input device,
# then power off on its first event.
WATCH_BUTTON = """/bin/busybox mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do /bin/busybox insmod "$m"; done
i=0
while [ ! -e /dev/input/event0 ] && [ $i -lt 300 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
for e in /dev/input/event*; do
  (/bin/busybox dd if="$e" of=/dev/null bs=24 count=1 2>/dev/null && /bin/busybox poweroff -f) &
done
/bin/busybox echo 'power button armed'"""
ARMED = "power button armed"  # printed once a press of the power button powers the guest off
# What a virtio NIC takes (their dependencies follow from modules.dep): the PCI transport and the driver.
NET_MODULES = ("virtio_pci", "virtio_net")
HTTP_PORT = 8080
HTTP_BODY = "hello"
# udhcpc's hook (-s): on a lease, set the address ($mask is its prefix length) and the default route.
DHCP_SCRIPT = """#!/bin/busybox sh
case "$1" in
  deconfig) /bin/busybox ip addr flush dev "$interface"; /bin/busybox ip link set "$interface" up ;;
  bound|renew)
    /bin/busybox ip addr flush dev "$interface"
    /bin/busybox ip addr add "$ip/$mask" dev "$interface"
    gw="${router%% *}"
    [ -n "$gw" ] && /bin/busybox ip route replace default via "$gw" dev "$interface"
    /bin/busybox echo "NET $ip/$mask via ${gw:-none}" ;;
esac
"""
# Load the NIC's modules in order (dependencies first), wait (up to 10 s) for eth0, ask for a lease
# (60 tries a second apart: the dataplane agent may not have reserved the port's address yet), ping
# the peer the command line names, then serve HTTP.
NET_SETUP = """[ -e /dev/null ] || /bin/busybox mount -t devtmpfs dev /dev
/bin/busybox mount -t sysfs sys /sys
for m in {modules}; do /bin/busybox insmod "/lib/net/$m.ko"; done
i=0
while [ ! -e /sys/class/net/eth0 ] && [ $i -lt 100 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
/bin/busybox ip link set lo up
/bin/busybox ip link set eth0 up
/bin/busybox udhcpc -i eth0 -q -n -t 60 -T 1 -s /bin/dhcp-lease || /bin/busybox echo 'NET FAIL'
for arg in $(/bin/busybox cat /proc/cmdline); do case "$arg" in peer=*) peer="${{arg#peer=}}" ;; esac; done
if [ -n "$peer" ]; then
  if /bin/busybox ping -c 3 -W 2 "$peer" >/dev/null 2>&1; then /bin/busybox echo "PEER $peer OK"
  else /bin/busybox echo "PEER $peer FAIL"; fi
fi
/bin/busybox httpd -p {port} -h /www && /bin/busybox echo 'LISTEN {port}'"""


BOOT_TIMEOUT = 120  # seconds; an emulated boot takes a few seconds, a loaded CI machine more


async def wait_for_console(driver: Any, vm_id: str, text: str, timeout: float = BOOT_TIMEOUT, after: int = 0) -> str:
    """The VM's console once text appears on it more than `after` times (AssertionError after timeout)."""
    deadline = time.monotonic() + timeout
    output = ""
    while time.monotonic() < deadline:
        data, _ = await driver.console(vm_id, 1 << 20)
        output = data.decode(errors="replace")
        if output.count(text) > after:
            return output
        await asyncio.sleep(0.2)
    raise AssertionError(f"{text!r} not on the console after {timeout}s:\n{output[-3000:]}")


def guest_kernel() -> Path:
    """The newest kernel image under /boot (FileNotFoundError if there is none)."""
    found = sorted(p for pattern in KERNEL_GLOBS for p in glob.glob(pattern) if Path(p).is_file())
    if not found:
        raise FileNotFoundError("no kernel under /boot: install linux-image-amd64")
    return Path(found[-1])


def static_busybox() -> Path:
    """A statically linked busybox (dynamic ones cannot run in an initramfs without their libraries)."""
    for candidate in (shutil.which("busybox"), *BUSYBOX_PATHS):
        if candidate and Path(candidate).is_file() and b"libc.so" not in Path(candidate).read_bytes()[:1 << 16]:
            return Path(candidate)
    raise FileNotFoundError("no static busybox: install busybox-static")


def button_modules(kernel: Path) -> list[tuple[str, bytes]]:
    """The power button's modules for kernel (vmlinuz-<version>), uncompressed: [(name, content)]."""
    base = MODULES_ROOT / kernel.name.removeprefix("vmlinuz-") / "kernel"
    modules = []
    for relative in BUTTON_MODULES:
        path = base / relative
        if path.is_file():
            modules.append((path.name, path.read_bytes()))
        elif path.with_suffix(".ko.xz").is_file():  # busybox's insmod takes them uncompressed
            modules.append((path.name, lzma.decompress(path.with_suffix(".ko.xz").read_bytes())))
        else:
            raise FileNotFoundError(f"no {path.name} for {kernel.name} under {base}: install its linux-image package")
    return modules


def kernel_modules(kernel: Path, names: tuple[str, ...]) -> list[tuple[str, bytes]]:
    """The modules named (and what they depend on, by modules.dep) for kernel (vmlinuz-<version>),
    uncompressed and in the order they load (dependencies first): [(module name, content)].
    A module built into the kernel is left out."""
    root = MODULES_ROOT / kernel.name.removeprefix("vmlinuz-")
    try:
        lines = (root / "modules.dep").read_text().splitlines()
    except FileNotFoundError:
        raise FileNotFoundError(f"no modules.dep for {kernel.name} under {root}: install its linux-image package") \
            from None
    builtin_file = root / "modules.builtin"
    builtin = {_module_name(line) for line in builtin_file.read_text().split()} if builtin_file.is_file() else set()
    depends: dict[str, list[str]] = {}
    paths: dict[str, str] = {}
    for line in lines:
        path, _, deps = line.partition(":")
        paths[_module_name(path)] = path
        depends[_module_name(path)] = [_module_name(d) for d in deps.split()]
    order: list[str] = []

    def visit(name: str) -> None:
        if name in order or name in builtin:
            return
        if name not in paths:
            raise FileNotFoundError(f"no module {name} for {kernel.name} under {root}")
        for dependency in reversed(depends[name]):  # modules.dep lists the deepest last
            visit(dependency)
        order.append(name)

    for name in names:
        visit(name)
    modules = []
    for name in order:
        data = (root / paths[name]).read_bytes()
        modules.append((name, lzma.decompress(data) if paths[name].endswith(".xz") else data))
    return modules


def _module_name(path: str) -> str:
    return Path(path).name.split(".ko")[0].replace("-", "_")


def _entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 0) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + "".join(f"{v:08X}" for v in fields).encode() + name.encode() + b"\0"
    header += b"\0" * (-len(header) % 4)
    return header + data + b"\0" * (-len(data) % 4)


def init_script(marker: str, then: str = WAIT, power_button: bool = False,
                net_modules: tuple[str, ...] = ()) -> str:
    """The guest's /init: mount /proc, maybe watch the power button, maybe bring eth0 up (loading
    net_modules in order), print the marker, run `then`."""
    network = NET_SETUP.format(modules=" ".join(net_modules), port=HTTP_PORT) + "\n" if net_modules else ""
    return ("#!/bin/busybox sh\n"
            "/bin/busybox mount -t proc proc /proc\n"
            + (WATCH_BUTTON + "\n" if power_button else "")
            + network
            + f"/bin/busybox echo '{marker}'\n"
            f"{then}\n")


def build_initramfs(target: Path, marker: str, busybox: Path | None = None, then: str = WAIT,
                    power_button: bool = False, kernel: Path | None = None, network: bool = False) -> Path:
    """Write a newc cpio initramfs with busybox and an /init that prints marker, then runs `then`;
    with power_button, the guest powers off when its ACPI power button is pressed; with network,
    it first brings eth0 up by DHCP (see the module's docstring). The modules come from kernel's,
    the newest under /boot unless given."""
    busybox = busybox or static_busybox()
    net = kernel_modules(kernel or guest_kernel(), NET_MODULES) if network else []
    directory = stat.S_IFDIR | 0o755
    entries = [("bin", directory, b"", (0, 0)), ("proc", directory, b"", (0, 0)),
               ("dev", directory, b"", (0, 0)),
               ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),  # the kernel opens it for /init's stdio
               ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), (0, 0)),
               ("init", stat.S_IFREG | 0o755,
                init_script(marker, then, power_button, tuple(name for name, _ in net)).encode(), (0, 0))]
    if network:
        entries += [("sys", directory, b"", (0, 0)), ("www", directory, b"", (0, 0)),
                    ("www/index.html", stat.S_IFREG | 0o644, f"{HTTP_BODY}\n".encode(), (0, 0)),
                    ("bin/dhcp-lease", stat.S_IFREG | 0o755, DHCP_SCRIPT.encode(), (0, 0)),
                    ("lib", directory, b"", (0, 0)), ("lib/net", directory, b"", (0, 0))]
        entries += [(f"lib/net/{name}.ko", stat.S_IFREG | 0o644, data, (0, 0)) for name, data in net]
    if power_button:
        entries += [("lib", directory, b"", (0, 0))] if not network else []
        entries += [("lib/modules", directory, b"", (0, 0))]
        entries += [(f"lib/modules/{name}", stat.S_IFREG | 0o644, data, (0, 0))
                    for name, data in button_modules(kernel or guest_kernel())]
    archive = b"".join(_entry(name, mode, data, rdev, ino) for ino, (name, mode, data, rdev)
                       in enumerate(entries, start=1))
    archive += _entry("TRAILER!!!", 0)
    archive += b"\0" * (-len(archive) % 512)
    target.write_bytes(archive)
    return target
