"""Whose keys a call reaches: every project has a keyspace of its own, as etcd's namespaces give one.

The raw keyspace (what the store holds) is laid out as:

    /projects/<project_id>/<key>    project <project_id>'s key <key>
    anything else                   the platform's own keys

A project-scoped token works inside its project's keyspace: every key it names gets the project's
prefix on the way in, and loses it on the way out (in results, watch events and transaction
responses), so to the project its keyspace is a whole store of its own. Ranges are mapped as etcd's
clientv3/namespace does, and clamped to the prefix: `range_end` "\\0" (every key from `key` on)
ends at the prefix's end, and `key` "\\0" starts at its first key. Leases belong to the keyspace
that granted them (see core's Lease). A system-scoped token, the operator's, sees the raw keyspace
as it is, the platform's keys and every project's under `/projects/`. An org-scoped token has no
keyspace of its own: it is refused with PERMISSION_DENIED (PROJECT_SCOPE_REQUIRED), and an org's
member reaches a project's keys with a token scoped to that project.

This module is the one place the rule lives: every transport reaches the core through ScopedKV.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace
from typing import overload

from photoncloud.common import auth
from photoncloud.common.errors import InvalidArgument, PermissionDenied

from . import core

PROJECTS = b"/projects/"  # reserved in the raw keyspace: the platform keeps none of its own keys under it
_PROJECT_ID = re.compile(r"[A-Za-z0-9._-]+")  # no "/": one project's prefix never lies inside another's


@dataclass(frozen=True)
class Keyspace:
    """A view of the raw keyspace: the keys under prefix, with the prefix taken off (b"": every key, as is)."""

    prefix: bytes = b""

    def key(self, key: bytes) -> bytes:
        """A key the caller names, as the store holds it."""
        if not self.prefix:
            return key
        if not key:  # the prefix alone is no key of the caller's (etcd: "key is not provided")
            raise InvalidArgument("key is required", {"field": "key", "reason": core.KEY_REQUIRED})
        return self.prefix + key

    def span(self, key: bytes, range_end: bytes, prefix: bool) -> tuple[bytes, bytes, bool]:
        """A range the caller names (one key, a prefix, or [key, range_end)) as the store's, inside the prefix."""
        if not self.prefix:
            return key, range_end, prefix
        if prefix:  # every key starting with key: the store's keys starting with prefix + key
            return self.prefix + key, range_end, True  # (a range_end as well is refused by the core)
        start = self.key(key)  # key "\0" (etcd's "from the first key") is the prefix's first key
        if not range_end:
            return start, b"", False
        # Every prefix + x sorts before the prefix's end, so only "\0" (no end) needs clamping.
        return start, core.prefix_end(self.prefix) if range_end == core.ALL_KEYS else self.prefix + range_end, False

    def strip(self, key: bytes) -> bytes:
        """A key the store holds, as the caller knows it."""
        return key[len(self.prefix):] if self.prefix and key.startswith(self.prefix) else key

    # Requests in

    @overload
    def request(self, op: core.RangeRequest) -> core.RangeRequest: ...
    @overload
    def request(self, op: core.PutRequest) -> core.PutRequest: ...
    @overload
    def request(self, op: core.DeleteRangeRequest) -> core.DeleteRangeRequest: ...
    @overload
    def request(self, op: core.Op) -> core.Op: ...
    def request(self, op: core.Op) -> core.Op:
        """A read, put or delete as the store runs it."""
        if not self.prefix:
            return op
        if isinstance(op, core.PutRequest):
            return replace(op, key=self.key(op.key))
        key, range_end, prefix = self.span(op.key, op.range_end, op.prefix)
        return replace(op, key=key, range_end=range_end, prefix=prefix)

    def txn(self, txn: core.TxnRequest) -> core.TxnRequest:
        """A transaction whose comparisons and operations all name the store's keys."""
        if not self.prefix:
            return txn
        return core.TxnRequest(tuple(replace(c, key=self.key(c.key)) for c in txn.compare),
                               tuple(map(self.request, txn.success)), tuple(map(self.request, txn.failure)))

    def watch(self, request: core.WatchRequest) -> core.WatchRequest:
        """A watch of the store's keys."""
        key, range_end, prefix = self.span(request.key, request.range_end, request.prefix)
        return replace(request, key=key, range_end=range_end, prefix=prefix)

    # Results out

    @overload
    def kv(self, kv: core.KeyValue) -> core.KeyValue: ...
    @overload
    def kv(self, kv: None) -> None: ...
    def kv(self, kv: core.KeyValue | None) -> core.KeyValue | None:
        """A pair as the caller sees it."""
        return replace(kv, key=self.strip(kv.key)) if kv is not None and self.prefix else kv

    def event(self, event: core.Event) -> core.Event:
        """An event as the caller sees it."""
        if not self.prefix:
            return event
        return replace(event, kv=self.kv(event.kv), prev_kv=self.kv(event.prev_kv))

    @overload
    def result(self, result: core.RangeResult) -> core.RangeResult: ...
    @overload
    def result(self, result: core.PutResult) -> core.PutResult: ...
    @overload
    def result(self, result: core.DeleteResult) -> core.DeleteResult: ...
    @overload
    def result(self, result: core.OpResult) -> core.OpResult: ...
    def result(self, result: core.OpResult) -> core.OpResult:
        """A read's, put's or delete's result as the caller sees it."""
        if not self.prefix:
            return result
        if isinstance(result, core.RangeResult):
            return replace(result, kvs=[self.kv(kv) for kv in result.kvs])
        if isinstance(result, core.PutResult):
            return replace(result, prev_kv=self.kv(result.prev_kv))
        return replace(result, prev_kvs=[self.kv(kv) for kv in result.prev_kvs])


RAW = Keyspace()


def of(scope: auth.Scope | None) -> Keyspace:
    """The keyspace a token of scope works in (None: no authentication, the raw keyspace)."""
    if scope is None or scope.kind == auth.SYSTEM:
        return RAW
    if scope.kind == auth.PROJECT and _PROJECT_ID.fullmatch(scope.project_id):
        return Keyspace(PROJECTS + scope.project_id.encode() + b"/")
    raise PermissionDenied(
        "ChainFire's keys belong to projects: use a token scoped to one project (or the operator's)",
        {"reason": "PROJECT_SCOPE_REQUIRED", "scope": scope.as_dict()})


def current() -> Keyspace:
    """The keyspace of the call being served."""
    principal = auth.current()
    return of(principal.scope if principal is not None else None)


class ScopedWatch:
    """An open watch whose events name the caller's keys."""

    def __init__(self, watch: core.Watch, space: Keyspace):
        self._watch, self._space = watch, space

    @property
    def revision(self) -> int:
        """The store's revision when the watch started."""
        return self._watch.revision

    async def __aiter__(self) -> AsyncIterator[core.WatchBatch]:
        async for batch in self._watch:
            yield core.WatchBatch(batch.revision, [self._space.event(e) for e in batch.events])

    def close(self) -> None:
        """Stop receiving events."""
        self._watch.close()


class ScopedKV:
    """The core as the calling token's keyspace shows it: what every transport serves."""

    def __init__(self, kv: core.KVCore):
        self.core = kv

    async def range(self, request: core.RangeRequest) -> core.RangeResult:
        """Read keys of the caller's keyspace."""
        space = current()
        return space.result(await self.core.range(space.request(request)))

    async def put(self, request: core.PutRequest) -> core.PutResult:
        """Write a key of the caller's keyspace."""
        space = current()
        return space.result(await self.core.put(space.request(request)))

    async def delete_range(self, request: core.DeleteRangeRequest) -> core.DeleteResult:
        """Delete keys of the caller's keyspace."""
        space = current()
        return space.result(await self.core.delete_range(space.request(request)))

    async def txn(self, request: core.TxnRequest) -> core.TxnResult:
        """Run a transaction on the caller's keyspace."""
        space = current()
        result = await self.core.txn(space.txn(request))
        return replace(result, responses=[space.result(r) for r in result.responses])

    async def watch(self, request: core.WatchRequest) -> ScopedWatch:
        """Watch keys of the caller's keyspace."""
        space = current()
        return ScopedWatch(await self.core.watch(space.watch(request)), space)

    async def grant_lease(self, ttl: int, lease_id: int = 0) -> core.LeaseResult:
        """Grant a lease in the caller's keyspace."""
        return await self.core.grant_lease(ttl, lease_id, current().prefix)

    async def revoke_lease(self, lease_id: int) -> core.LeaseResult:
        """Revoke a lease of the caller's keyspace."""
        return await self.core.revoke_lease(lease_id, current().prefix)

    async def keep_alive(self, lease_id: int) -> core.LeaseResult:
        """Restart the ttl of a lease of the caller's keyspace."""
        return await self.core.keep_alive(lease_id, current().prefix)

    async def time_to_live(self, lease_id: int, keys: bool = False) -> core.LeaseTimeToLive:
        """A lease of the caller's keyspace: its ttl and (if asked for) its keys."""
        space = current()
        result = await self.core.time_to_live(lease_id, keys, space.prefix)
        return replace(result, keys=[space.strip(k) for k in result.keys])

    async def leases(self, limit: int = 0, page_token: str = "") -> core.LeaseList:
        """The leases of the caller's keyspace."""
        return await self.core.leases(limit, page_token, current().prefix)

    # The operator's calls (compaction, the cluster) and the ones naming no key: the core's own.

    async def compact(self, request: core.CompactRequest) -> core.CompactResult:
        """Forget the history before a revision (the operator's)."""
        return await self.core.compact(request)

    async def status(self) -> core.Status:
        """This member, its log and its store."""
        return await self.core.status()

    def log_status(self) -> core.LogStatus:
        """This member's place in the log."""
        return self.core.log_status()

    def members(self) -> list[core.Member]:
        """Every member of the cluster."""
        return self.core.members()

    async def add_member(self, peer_address: str) -> list[core.Member]:
        """Add a member (the operator's)."""
        return await self.core.add_member(peer_address)

    async def remove_member(self, member_id: int) -> list[core.Member]:
        """Remove a member (the operator's)."""
        return await self.core.remove_member(member_id)


def scoped(kv: core.KVCore | ScopedKV) -> ScopedKV:
    """kv as each call's keyspace shows it (kv itself if it is already scoped: keys are prefixed once)."""
    return kv if isinstance(kv, ScopedKV) else ScopedKV(kv)
