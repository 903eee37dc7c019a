"""PlasmaVMC's records as the messages of its contract, and the messages' parts the core takes."""

from __future__ import annotations


from photoncloud.common.messages import from_record
from photoncloud.common.times import rfc3339
from photoncloud.plasmavmc.v1 import plasmavmc_pb2 as pb

from .core import Console
from .records import Flavor, Image, Vm


def flavor(f: Flavor) -> pb.Flavor:
    """A flavor."""
    return from_record(pb.Flavor, f)


def image(i: Image) -> pb.Image:
    """An image, with its files' sizes and digests (absent files are left unset: null over REST)."""
    return from_record(pb.Image, i, size_bytes=i.size_bytes)


def vm(v: Vm) -> pb.Vm:
    """A VM, with its NICs (started_at empty when it never started)."""
    return from_record(pb.Vm, v, state=v.state.value, started_at=rfc3339(v.started_at) if v.started_at else "")


def console(c: Console) -> pb.Console:
    """The end of a console log."""
    return from_record(pb.Console, c)
