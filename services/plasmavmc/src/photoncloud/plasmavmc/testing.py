"""Test support: a bootable guest (the host's Linux kernel and a tiny busybox initramfs).

The initramfs is written directly in the kernel's `newc` cpio format, so building it needs
neither root (for /dev/console) nor the cpio tool: only a statically linked busybox
(Debian's busybox-static) and a Linux kernel image with its modules (Debian's linux-image-amd64:
the kernel under /boot, the modules under /lib/modules).

Its /init mounts /proc, prints a marker line to the console (ttyS0), then waits forever (or
powers the machine off, to play a guest that shuts itself down). With `power_button`, it loads
the kernel's ACPI button and evdev modules and powers off when the power button is pressed, as
a real distribution does, so that a graceful stop (QMP system_powerdown) really ends the guest.
"""

from __future__ import annotations

import glob
import lzma
import shutil
import stat
from pathlib import Path

BUSYBOX_PATHS = ("/bin/busybox", "/usr/bin/busybox")
KERNEL_GLOBS = ("/boot/vmlinuz-*", "/boot/vmlinuz")
MODULES_ROOT = Path("/lib/modules")
# What the power button takes: its ACPI driver, and evdev for the /dev/input device it presses.
BUTTON_MODULES = ("drivers/input/evdev.ko", "drivers/acpi/button.ko")
WAIT = "while :; do /bin/busybox sleep 3600; done"
POWER_OFF = "/bin/busybox poweroff -f"  # the kernel powers the machine off through ACPI
# Wait (up to 5 s) for the button's input device, then power off on its first event.
WATCH_BUTTON = """/bin/busybox mount -t devtmpfs dev /dev
for m in /lib/modules/*.ko; do /bin/busybox insmod "$m"; done
i=0
while [ ! -e /dev/input/event0 ] && [ $i -lt 50 ]; do /bin/busybox sleep 0.1; i=$((i + 1)); done
for e in /dev/input/event*; do
  (/bin/busybox dd if="$e" of=/dev/null bs=24 count=1 2>/dev/null && /bin/busybox poweroff -f) &
done
/bin/busybox echo 'power button armed'"""
ARMED = "power button armed"  # printed once a press of the power button powers the guest off


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


def _entry(name: str, mode: int, data: bytes = b"", rdev: tuple[int, int] = (0, 0), ino: int = 0) -> bytes:
    fields = [ino, mode, 0, 0, 1, 0, len(data), 0, 0, rdev[0], rdev[1], len(name) + 1, 0]
    header = b"070701" + "".join(f"{v:08X}" for v in fields).encode() + name.encode() + b"\0"
    header += b"\0" * (-len(header) % 4)
    return header + data + b"\0" * (-len(data) % 4)


def init_script(marker: str, then: str = WAIT, power_button: bool = False) -> str:
    """The guest's /init: mount /proc, maybe watch the power button, print the marker, run `then`."""
    return ("#!/bin/busybox sh\n"
            "/bin/busybox mount -t proc proc /proc\n"
            + (WATCH_BUTTON + "\n" if power_button else "")
            + f"/bin/busybox echo '{marker}'\n"
            f"{then}\n")


def build_initramfs(target: Path, marker: str, busybox: Path | None = None, then: str = WAIT,
                    power_button: bool = False, kernel: Path | None = None) -> Path:
    """Write a newc cpio initramfs with busybox and an /init that prints marker, then runs `then`;
    with power_button, the guest powers off when its ACPI power button is pressed (the modules
    come from kernel's, the newest under /boot unless given)."""
    busybox = busybox or static_busybox()
    entries = [("bin", stat.S_IFDIR | 0o755, b"", (0, 0)), ("proc", stat.S_IFDIR | 0o755, b"", (0, 0)),
               ("dev", stat.S_IFDIR | 0o755, b"", (0, 0)),
               ("dev/console", stat.S_IFCHR | 0o600, b"", (5, 1)),  # the kernel opens it for /init's stdio
               ("bin/busybox", stat.S_IFREG | 0o755, busybox.read_bytes(), (0, 0)),
               ("init", stat.S_IFREG | 0o755, init_script(marker, then, power_button).encode(), (0, 0))]
    if power_button:
        entries += [("lib", stat.S_IFDIR | 0o755, b"", (0, 0)), ("lib/modules", stat.S_IFDIR | 0o755, b"", (0, 0))]
        entries += [(f"lib/modules/{name}", stat.S_IFREG | 0o644, data, (0, 0))
                    for name, data in button_modules(kernel or guest_kernel())]
    archive = b"".join(_entry(name, mode, data, rdev, ino) for ino, (name, mode, data, rdev)
                       in enumerate(entries, start=1))
    archive += _entry("TRAILER!!!", 0)
    archive += b"\0" * (-len(archive) % 512)
    target.write_bytes(archive)
    return target
