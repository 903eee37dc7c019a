"""The guard every transport's watch (and etcd's lease keep-alive stream) goes through: at most
--max-watches-per-caller open watches per caller, and each stream ends with its token."""

from __future__ import annotations

from photoncloud.common.streams import Revocations, StreamGuard

MAX_WATCHES_PER_CALLER = 64  # per principal subject, on each member, over REST, gRPC and etcd's API together


def watch_guard(limit: int = MAX_WATCHES_PER_CALLER, revocations: Revocations = lambda: None) -> StreamGuard:
    """A guard of limit watches per caller, ending streams when their token expires or revocations
    (called when a stream starts) lists it."""
    return StreamGuard(limit, revocations, what="watches")
