"""The keyspace rule on its own: how a project's keys, ranges and leases map onto the raw keyspace,
and that nothing a project names reaches past its prefix (a core on an in-memory store)."""

from __future__ import annotations

import pytest

from photoncloud.chainfire import keyspace
from photoncloud.chainfire.core import (ALL_KEYS, Compare, CompareResult, CompareTarget, DeleteRangeRequest,
                                        KVCore, KVStateMachine, PutRequest, RangeRequest, TxnRequest,
                                        WatchRequest)
from photoncloud.chainfire.machine import _span_fingerprint
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common import auth, paging
from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Principal, Scope
from photoncloud.common.errors import InvalidArgument, NotFound, PermissionDenied
from photoncloud.common.replication import LocalLog

A, B = Scope(PROJECT, "org-1", "proj-a"), Scope(PROJECT, "org-1", "proj-b")


def principal(scope: Scope) -> Principal:
    return Principal(f"user:{scope.project_id or scope.kind}", "someone", scope, ("member",), ("*",), "jti", 0, "t")


class As:
    """Run the block as a caller of scope (what the transports' gate does)."""

    def __init__(self, scope: Scope):
        self.scope = scope

    def __enter__(self):
        self.token = auth.bind(principal(self.scope))

    def __exit__(self, *exc):
        auth.reset(self.token)


@pytest.fixture
async def scoped():
    """A core and the view of it the transports serve."""
    store = SqliteKVStore(":memory:")
    machine = KVStateMachine(store)
    core = KVCore(machine, LocalLog(machine), "test", lease_check_seconds=None)
    yield core, keyspace.ScopedKV(core)
    await core.close()
    store.close()


def test_the_layout_by_scope():
    assert keyspace.of(A).prefix == b"/projects/proj-a/"
    assert keyspace.of(Scope(SYSTEM)) == keyspace.of(None) == keyspace.RAW
    with pytest.raises(PermissionDenied) as refused:
        keyspace.of(Scope(ORG, "org-1"))
    assert refused.value.details["reason"] == "PROJECT_SCOPE_REQUIRED"
    for odd in ("", "a/b", "a\0b"):  # no id, or one whose prefix could lie inside another project's
        with pytest.raises(PermissionDenied):
            keyspace.of(Scope(PROJECT, "org-1", odd))


def test_ranges_map_as_etcds_namespaces_do_and_stay_inside_the_prefix():
    space = keyspace.of(A)
    p = space.prefix
    end = p[:-1] + bytes([p[-1] + 1])  # the first key after every key of the prefix
    assert space.span(b"k", b"", False) == (p + b"k", b"", False)
    assert space.span(b"", b"", True) == (p, b"", True)  # every key of the project
    assert space.span(b"a/", b"", True) == (p + b"a/", b"", True)
    assert space.span(ALL_KEYS, ALL_KEYS, False) == (p + ALL_KEYS, end, False)  # etcd's "every key"
    assert space.span(b"m", ALL_KEYS, False) == (p + b"m", end, False)  # from m on, to the prefix's end
    assert space.span(b"a", b"c", False) == (p + b"a", p + b"c", False)
    with pytest.raises(InvalidArgument):
        space.span(b"", b"z", False)  # no key: etcd's "key is not provided", not "the whole prefix"
    with pytest.raises(InvalidArgument):
        space.key(b"")
    assert space.strip(p + b"k") == b"k"
    assert keyspace.RAW.span(ALL_KEYS, ALL_KEYS, False) == (ALL_KEYS, ALL_KEYS, False)


async def test_each_project_reads_writes_and_deletes_only_its_own_keys(scoped):
    core, kv = scoped
    await core.put(PutRequest(b"platform/config", b"secret"))
    with As(A):
        await kv.put(PutRequest(b"shared", b"a"))
        await kv.put(PutRequest(b"a-only", b"a"))
    with As(B):
        assert (await kv.range(RangeRequest(b"shared"))).kvs == []
        previous = await kv.put(PutRequest(b"shared", b"b", prev_kv=True))
        assert previous.prev_kv is None  # B's own key, not A's
        await kv.put(PutRequest(b"b-only", b"b"))
        listed = await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS))
        assert [(x.key, x.value) for x in listed.kvs] == [(b"b-only", b"b"), (b"shared", b"b")]
        assert listed.count == 2
        assert [x.key for x in (await kv.range(RangeRequest(b"", prefix=True))).kvs] == [b"b-only", b"shared"]
        deleted = await kv.delete_range(DeleteRangeRequest(ALL_KEYS, ALL_KEYS, prev_kv=True))
        assert (deleted.deleted, [x.key for x in deleted.prev_kvs]) == (2, [b"b-only", b"shared"])
    with As(A):
        assert [(x.key, x.value) for x in (await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS))).kvs] == \
            [(b"a-only", b"a"), (b"shared", b"a")]
    raw = await core.range(RangeRequest(ALL_KEYS, ALL_KEYS))  # the operator's view: everything, as stored
    assert [x.key for x in raw.kvs] == [b"/projects/proj-a/a-only", b"/projects/proj-a/shared", b"platform/config"]
    with As(Scope(SYSTEM)):
        assert [x.key for x in (await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS))).kvs] == [x.key for x in raw.kvs]


async def test_a_transaction_compares_and_touches_only_the_callers_keys(scoped):
    core, kv = scoped
    with As(A):
        await kv.put(PutRequest(b"flag", b"on"))
    with As(B):
        # A's flag is "on"; in B's keyspace there is no flag, so the comparison fails.
        result = await kv.txn(TxnRequest(
            compare=(Compare(b"flag", CompareTarget.VALUE, CompareResult.EQUAL, b"on"),),
            success=(PutRequest(b"flag", b"hijacked"),),
            failure=(PutRequest(b"flag", b"b's own", prev_kv=True), RangeRequest(ALL_KEYS, ALL_KEYS),
                     DeleteRangeRequest(b"zzz", prev_kv=True))))
        assert not result.succeeded
        put, read, _ = result.responses
        assert put.prev_kv is None and [x.key for x in read.kvs] == [b"flag"]
    with As(A):
        assert (await kv.range(RangeRequest(b"flag"))).kvs[0].value == b"on"


async def test_a_watch_sees_its_own_keys_under_their_own_names(scoped):
    core, kv = scoped
    with As(B):
        watch = await kv.watch(WatchRequest(ALL_KEYS, ALL_KEYS, prev_kv=True))
    with As(A):
        await kv.put(PutRequest(b"k", b"a"))
    await core.put(PutRequest(b"platform/k", b"x"))
    with As(B):
        await kv.put(PutRequest(b"k", b"b1"))
        await kv.put(PutRequest(b"k", b"b2"))
    batches = aiter(watch)
    seen = []
    while len(seen) < 2:
        seen += (await anext(batches)).events
    watch.close()
    assert [(e.kv.key, e.kv.value) for e in seen] == [(b"k", b"b1"), (b"k", b"b2")]
    assert seen[1].prev_kv.key == b"k"


async def test_a_page_token_cannot_reach_before_the_projects_prefix(scoped):
    core, kv = scoped
    with As(A):
        for key in (b"a1", b"a2"):
            await kv.put(PutRequest(key, b"a"))
    with As(B):
        for key in (b"b1", b"b2"):
            await kv.put(PutRequest(key, b"b"))
        # A page token forged to continue after a key of A's, for B's "every key" range.
        mapped = keyspace.of(B).request(RangeRequest(ALL_KEYS, ALL_KEYS, limit=10))
        forged = paging.encode_token({"after": b"/projects/proj-a/a1".hex(), "rev": 4,
                                      "span": _span_fingerprint(mapped)})
        page = await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS, limit=10, page_token=forged))
        assert [x.key for x in page.kvs] == [b"b1", b"b2"]
        with pytest.raises(InvalidArgument):
            await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS, limit=10, page_token=paging.encode_token(
                {"after": "not hex", "rev": 4, "span": _span_fingerprint(mapped)})))


async def test_leases_belong_to_the_project_that_granted_them(scoped):
    core, kv = scoped
    with As(A):
        lease = await kv.grant_lease(60)
        await kv.put(PutRequest(b"session", b"a", lease=lease.id))
        assert (await kv.time_to_live(lease.id, keys=True)).keys == [b"session"]
    with As(B):
        assert (await kv.leases()).ids == []
        for call in (kv.revoke_lease(lease.id), kv.keep_alive(lease.id), kv.time_to_live(lease.id),
                     kv.put(PutRequest(b"mine", b"b", lease=lease.id))):
            with pytest.raises(NotFound):
                await call
        own = await kv.grant_lease(60)
        assert (await kv.leases()).ids == [own.id]
    with As(A):
        assert (await kv.leases()).ids == [lease.id]
        assert (await kv.keep_alive(lease.id)).ttl == 60
    # The operator sees every lease; it cannot attach a key outside a project to the project's lease
    # (the project could delete it by revoking), but may revoke the lease.
    assert (await core.leases()).ids == sorted([lease.id, own.id])
    with pytest.raises(NotFound):
        await core.put(PutRequest(b"platform/k", b"x", lease=lease.id))
    await core.put(PutRequest(b"/projects/proj-a/also", b"x", lease=lease.id))
    await core.revoke_lease(lease.id)
    with As(A):
        assert (await kv.range(RangeRequest(ALL_KEYS, ALL_KEYS))).kvs == []


def test_a_store_made_before_keyspaces_keeps_its_leases_as_the_operators(tmp_path):
    import sqlite3

    path = tmp_path / "kv.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE leases (id INTEGER PRIMARY KEY, ttl INTEGER NOT NULL, deadline REAL NOT NULL)")
    old.execute("INSERT INTO leases VALUES (5, 60, 1e12)")
    old.commit()
    old.close()
    store = SqliteKVStore(path)
    try:
        lease = store.lease(5)
        assert (lease.ttl, lease.keyspace) == (60, b"")
        assert [x.id for x in store.leases(0, 0)] == [5]
        assert store.leases(0, 0, b"/projects/proj-a/") == []
    finally:
        store.close()
