"""Which accelerator `auto` means: KVM only once a tiny guest has really run on it, else TCG, saying why.

A /dev/kvm that opens and creates a VM is not enough: under nested virtualisation it can do both and
still hang every guest. So before choosing KVM, QEMU boots a guest of a few instructions under it
(`-accel kvm`, which never falls back to emulation by itself): a firmware image whose reset vector
writes one byte to an `isa-debug-exit` device, which ends QEMU with a known status. Only that status,
within PROBE_TIMEOUT, chooses KVM. The answer is kept for the process's life.
"""

from __future__ import annotations

import fcntl
import functools
import logging
import os
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

log = logging.getLogger("photoncloud.plasmavmc.accel")

KVM, TCG = "kvm", "tcg"
KVM_DEVICE = "/dev/kvm"
KVM_GET_API_VERSION = 0xAE00
KVM_CREATE_VM = 0xAE01
KVM_API_VERSION = 12
PROBE_TIMEOUT = 10.0  # seconds the test guest gets (it takes a fraction of one where KVM works)
# The test guest's firmware: 64 KiB (QEMU's pc machine takes a BIOS in whole 64 KiB blocks), whose last
# 16 bytes hold the reset vector the CPU starts at (F000:FFF0), in real mode:
#   mov al, 0x2a ; out 0xf4, al ; hlt ; jmp $-1
# The write to port 0xf4 (isa-debug-exit) makes QEMU exit with status (0x2a << 1) | 1.
EXIT_PORT = 0xF4
EXIT_VALUE = 0x2A
EXIT_STATUS = (EXIT_VALUE << 1) | 1
RESET_CODE = bytes([0xB0, EXIT_VALUE, 0xE6, EXIT_PORT, 0xF4, 0xEB, 0xFD])
FIRMWARE_SIZE = 64 * 1024


@dataclass(frozen=True)
class Choice:
    """The accelerator guests run on, and why (what the probe found, or that it was configured)."""

    accel: str
    reason: str

    @property
    def kvm(self) -> bool:
        """Whether guests run on KVM."""
        return self.accel == KVM


def firmware() -> bytes:
    """The test guest: hlt everywhere, and at the reset vector the write that ends QEMU."""
    image = bytearray([0xF4]) * FIRMWARE_SIZE
    start = FIRMWARE_SIZE - 16
    image[start:start + len(RESET_CODE)] = RESET_CODE
    return bytes(image)


def kvm_device_usable(device: str = KVM_DEVICE) -> str | None:
    """None when device opens read-write, speaks the KVM API and creates a VM; otherwise why not."""
    try:
        fd = os.open(device, os.O_RDWR | os.O_CLOEXEC)
    except OSError as exc:
        return f"{device} cannot be opened ({exc.strerror})"
    try:
        if fcntl.ioctl(fd, KVM_GET_API_VERSION) != KVM_API_VERSION:
            return f"{device} does not speak KVM API version {KVM_API_VERSION}"
        os.close(fcntl.ioctl(fd, KVM_CREATE_VM, 0))
        return None
    except OSError as exc:
        return f"{device} cannot create a VM ({exc.strerror})"
    finally:
        os.close(fd)


def probe_kvm(binary: str, device: str = KVM_DEVICE, timeout: float = PROBE_TIMEOUT) -> str | None:
    """None when the test guest ran to its end under KVM within timeout; otherwise why KVM is not used."""
    why = kvm_device_usable(device)
    if why is not None:
        return why
    with tempfile.TemporaryDirectory(prefix="plasmavmc-kvm-probe-") as directory:
        bios = Path(directory) / "probe.bin"
        bios.write_bytes(firmware())
        command = [binary, "-machine", "pc", "-accel", KVM, "-m", "16", "-nodefaults", "-no-user-config",
                   "-display", "none", "-serial", "none", "-monitor", "none", "-bios", str(bios),
                   "-device", f"isa-debug-exit,iobase={EXIT_PORT:#x},iosize=0x01"]
        try:
            done = subprocess.run(command, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                  stderr=subprocess.PIPE, timeout=timeout, check=False)
        except subprocess.TimeoutExpired:  # run() has killed it
            return (f"a test guest under KVM did not finish within {timeout:g}s (KVM guests hang here, "
                    "as under nested virtualisation without support for it)")
        except OSError as exc:
            return f"cannot run {binary} ({exc.strerror})"
    if done.returncode != EXIT_STATUS:
        said = [line for line in done.stderr.decode(errors="replace").splitlines() if line.strip()]
        return f"a test guest under KVM failed ({said[-1] if said else f'exit status {done.returncode}'})"
    return None


def choose(binary: str, device: str = KVM_DEVICE, timeout: float = PROBE_TIMEOUT) -> Choice:
    """KVM when the test guest runs on it, else TCG; logged when KVM is not used. Cached per process."""
    return _choose(binary, device, timeout)  # one cache key however the arguments are passed


@functools.cache
def _choose(binary: str, device: str, timeout: float) -> Choice:
    why = probe_kvm(binary, device, timeout)
    if why is None:
        log.info("guests run on KVM: a test guest ran under it", extra={"fields": {"accel": KVM}})
        return Choice(KVM, "a test guest ran under KVM")
    log.warning("guests are emulated (TCG, much slower) because %s", why,
                extra={"fields": {"accel": TCG, "reason": why}})
    return Choice(TCG, why)


def configured(accel: str, binary: str, device: str = KVM_DEVICE) -> Choice:
    """The accelerator --accel names: auto (the probe decides, see choose), kvm or tcg."""
    if accel == "auto":
        return choose(binary, device)
    if accel not in (KVM, TCG):
        raise ValueError(f"accelerator {accel!r} is not one of auto, kvm, tcg")
    return Choice(accel, "chosen by --accel")
