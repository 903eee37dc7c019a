"""The process runtime's seccomp filter: the system calls that open the kernel's attack surface to an
unprivileged process fail with EPERM, as under Docker's default profile, and everything else is
allowed. Denied: making user namespaces (unshare, and clone with CLONE_NEWUSER; clone3, whose flags
a filter cannot read, fails with ENOSYS so that the C library falls back to clone), the kernel
keyring (add_key, keyctl, request_key, which no namespace separates), bpf, userfaultfd and
perf_event_open; and any other architecture's calls (a 32-bit program could otherwise reach the
same calls by other numbers).

bwrap loads the filter (`--seccomp FD`) as a classic BPF program, which is small enough to write
here for the two architectures the platform runs on (x86-64 and arm64); elsewhere there is none.
"""

from __future__ import annotations

import errno
import functools
import os
import platform
import struct
from typing import Any

# struct seccomp_data: nr (int) at 0, arch (u32) at 4, args (u64 each) from 16; the low half of args[0] at 16.
NR, ARCH, ARG0_LOW = 0, 4, 16
LD_ABS, JEQ, JGE, JSET, RET = 0x20, 0x15, 0x35, 0x45, 0x06  # BPF_LD|W|ABS, BPF_JMP|JEQ/JGE/JSET|K, BPF_RET|K
ALLOW = 0x7FFF0000
DENY = 0x00050000 | errno.EPERM  # SECCOMP_RET_ERRNO
NO_SUCH_CALL = 0x00050000 | errno.ENOSYS
CLONE_NEWUSER = 0x10000000
X32_BIT = 0x40000000  # x86-64's x32 calls: their numbers carry this bit

# The architecture's audit number, and the numbers of the calls named above.
ARCHES = {
    "x86_64": (0xC000003E, {"unshare": 272, "clone": 56, "clone3": 435, "add_key": 248, "keyctl": 250,
                            "request_key": 249, "bpf": 321, "userfaultfd": 323, "perf_event_open": 298}),
    "aarch64": (0xC00000B7, {"unshare": 97, "clone": 220, "clone3": 435, "add_key": 217, "keyctl": 219,
                             "request_key": 218, "bpf": 280, "userfaultfd": 282, "perf_event_open": 241}),
}
DENIED = ("unshare", "add_key", "keyctl", "request_key", "bpf", "userfaultfd", "perf_event_open")


def _assemble(program: list[tuple[Any, ...]]) -> bytes:
    """Classic BPF from (code, k) and (code, k, true label, false label) steps, with ("label", name) marks; a jump's
    labels are resolved to the offsets BPF counts from the next instruction."""
    where, index = {}, 0
    for step in program:
        if step[0] == "label":
            where[step[1]] = index
        else:
            index += 1
    out, index = b"", 0
    for step in program:
        if step[0] == "label":
            continue
        code, k, *targets = step
        jt, jf = (where[t] - index - 1 if t else 0 for t in targets) if targets else (0, 0)
        out += struct.pack("<HBBI", code, jt, jf, k)
        index += 1
    return out


@functools.cache
def program(machine: str | None = None) -> bytes:
    """The filter for this machine's architecture (b"" where there is none)."""
    machine = machine or platform.machine()
    if machine not in ARCHES:
        return b""
    arch, numbers = ARCHES[machine]
    steps: list[tuple[Any, ...]] = [(LD_ABS, ARCH), (JEQ, arch, None, "deny"), (LD_ABS, NR)]
    if machine == "x86_64":
        steps.append((JGE, X32_BIT, "deny", None))
    steps += [(JEQ, numbers[name], "deny", None) for name in DENIED]
    steps += [(JEQ, numbers["clone3"], "no-such-call", None), (JEQ, numbers["clone"], "clone", None), (RET, ALLOW),
              ("label", "clone"), (LD_ABS, ARG0_LOW), (JSET, CLONE_NEWUSER, "deny", None), (RET, ALLOW),
              ("label", "no-such-call"), (RET, NO_SUCH_CALL), ("label", "deny"), (RET, DENY)]
    return _assemble(steps)


def descriptor() -> int | None:
    """A file descriptor holding this machine's filter, for bwrap's --seccomp (None: no filter here). The caller
    closes it once bwrap started."""
    code = program()  # assembled once, then cached
    if not code:
        return None
    fd = os.memfd_create("photoncloud-seccomp", 0)  # no MFD_CLOEXEC: bwrap inherits it
    os.write(fd, code)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd
