"""The MVCC key-value core on an in-memory store: revisions, ranges, deletes, transactions."""

from __future__ import annotations

import pytest

from photoncloud.chainfire.core import (
    ALL_KEYS,
    MAX_KEY_BYTES,
    MAX_TXN_OPS,
    MAX_VALUE_BYTES,
    Compare,
    CompareResult,
    CompareTarget,
    DeleteRangeRequest,
    PutRequest,
    RangeRequest,
    TxnRequest,
    prefix_end,
)
from photoncloud.common.errors import Code, ServiceError


async def put(kv, key: str, value: str, **kw):
    return await kv.put(PutRequest(key.encode(), value.encode(), **kw))


async def get(kv, key: str, **kw):
    result = await kv.range(RangeRequest(key.encode(), **kw))
    return result.kvs[0] if result.kvs else None


def keys(result) -> list[str]:
    return [kv.key.decode() for kv in result.kvs]


async def test_every_put_creates_a_revision_and_bumps_the_version(kv):
    assert (await put(kv, "a", "1")).revision == 1
    assert (await put(kv, "b", "x")).revision == 2
    assert (await put(kv, "a", "2")).revision == 3
    a = await get(kv, "a")
    assert (a.value, a.create_revision, a.mod_revision, a.version) == (b"2", 1, 3, 2)


async def test_put_returns_the_previous_pair_when_asked(kv):
    await put(kv, "k", "old")
    result = await put(kv, "k", "new", prev_kv=True)
    assert result.prev_kv.value == b"old" and result.prev_kv.mod_revision == 1
    assert (await put(kv, "k", "newer")).prev_kv is None


async def test_delete_then_recreate_starts_a_new_life(kv):
    await put(kv, "k", "1")
    await put(kv, "k", "2")
    deleted = await kv.delete_range(DeleteRangeRequest(b"k", prev_kv=True))
    assert (deleted.deleted, deleted.revision, deleted.prev_kvs[0].value) == (1, 3, b"2")
    assert await get(kv, "k") is None
    await put(kv, "k", "3")
    k = await get(kv, "k")
    assert (k.create_revision, k.version) == (4, 1)


async def test_deleting_nothing_creates_no_revision(kv):
    await put(kv, "a", "1")
    result = await kv.delete_range(DeleteRangeRequest(b"zzz"))
    assert (result.deleted, result.revision) == (0, 1)
    assert (await put(kv, "b", "1")).revision == 2


async def test_prefix_range_and_open_ended_ranges(kv):
    for key in ["app/a", "app/b", "app0", "apq", "b"]:
        await put(kv, key, "v")
    assert keys(await kv.range(RangeRequest(b"app/", prefix=True))) == ["app/a", "app/b"]
    assert keys(await kv.range(RangeRequest(b"app/a", range_end=b"app0"))) == ["app/a", "app/b"]
    assert keys(await kv.range(RangeRequest(b"apq", range_end=ALL_KEYS))) == ["apq", "b"]
    assert keys(await kv.range(RangeRequest(ALL_KEYS, range_end=ALL_KEYS))) == ["app/a", "app/b", "app0", "apq", "b"]
    assert keys(await kv.range(RangeRequest(b"", prefix=True))) == ["app/a", "app/b", "app0", "apq", "b"]


def test_prefix_end_follows_etcd():
    assert prefix_end(b"abc") == b"abd"
    assert prefix_end(b"a\xff") == b"b"
    assert prefix_end(b"\xff\xff") == ALL_KEYS


async def test_limit_count_keys_only_and_count_only(kv):
    for i in range(5):
        await put(kv, f"k{i}", f"value{i}")
    page = await kv.range(RangeRequest(b"k", prefix=True, limit=2))
    assert keys(page) == ["k0", "k1"] and page.count == 5 and page.more and page.next_page_token
    only_keys = await kv.range(RangeRequest(b"k", prefix=True, keys_only=True))
    assert [x.value for x in only_keys.kvs] == [b""] * 5
    counted = await kv.range(RangeRequest(b"k", prefix=True, count_only=True))
    assert (counted.kvs, counted.count) == ([], 5)


async def test_pages_read_one_snapshot_even_when_keys_change_between_pages(kv):
    for i in range(5):
        await put(kv, f"k{i}", "old")
    first = await kv.range(RangeRequest(b"k", prefix=True, limit=2))
    await put(kv, "k3", "new")
    await put(kv, "k25", "inserted")
    await kv.delete_range(DeleteRangeRequest(b"k4"))
    seen, token = keys(first), first.next_page_token
    values = [x.value for x in first.kvs]
    while token:
        page = await kv.range(RangeRequest(b"k", prefix=True, limit=2, page_token=token))
        seen += keys(page)
        values += [x.value for x in page.kvs]
        token = page.next_page_token
    assert seen == ["k0", "k1", "k2", "k3", "k4"]
    assert values == [b"old"] * 5


async def test_a_page_token_only_continues_its_own_range(kv):
    for i in range(3):
        await put(kv, f"k{i}", "v")
    token = (await kv.range(RangeRequest(b"k", prefix=True, limit=1))).next_page_token
    with pytest.raises(ServiceError) as err:
        await kv.range(RangeRequest(b"other", prefix=True, limit=1, page_token=token))
    assert err.value.code is Code.INVALID_ARGUMENT
    with pytest.raises(ServiceError) as err:
        await kv.range(RangeRequest(b"k", prefix=True, limit=1, page_token="not-a-token"))
    assert err.value.code is Code.INVALID_ARGUMENT


async def test_reads_at_an_old_revision_see_the_old_state(kv):
    await put(kv, "a", "1")          # rev 1
    await put(kv, "b", "1")          # rev 2
    await put(kv, "a", "2")          # rev 3
    await kv.delete_range(DeleteRangeRequest(b"b"))  # rev 4
    at2 = await kv.range(RangeRequest(b"", prefix=True, revision=2))
    assert [(x.key, x.value, x.mod_revision) for x in at2.kvs] == [(b"a", b"1", 1), (b"b", b"1", 2)]
    at3 = await kv.range(RangeRequest(b"", prefix=True, revision=3))
    assert [(x.key, x.value, x.version) for x in at3.kvs] == [(b"a", b"2", 2), (b"b", b"1", 1)]
    assert keys(await kv.range(RangeRequest(b"", prefix=True, revision=4))) == ["a"]
    assert (await kv.range(RangeRequest(b"", prefix=True, revision=2, count_only=True))).count == 2


async def test_a_future_revision_is_out_of_range(kv):
    await put(kv, "a", "1")
    with pytest.raises(ServiceError) as err:
        await kv.range(RangeRequest(b"a", revision=2))
    assert err.value.code is Code.OUT_OF_RANGE


@pytest.mark.parametrize("request_", [
    PutRequest(b"", b"v"),
    PutRequest(b"k" * (MAX_KEY_BYTES + 1), b"v"),
    PutRequest(b"k", b"v" * (MAX_VALUE_BYTES + 1)),
    RangeRequest(b""),
    RangeRequest(b"a", limit=-1),
    RangeRequest(b"a", prefix=True, range_end=b"b"),
    DeleteRangeRequest(b""),
])
async def test_invalid_requests_are_refused_and_change_nothing(kv, request_):
    call = {PutRequest: kv.put, RangeRequest: kv.range, DeleteRangeRequest: kv.delete_range}[type(request_)]
    with pytest.raises(ServiceError) as err:
        await call(request_)
    assert err.value.code is Code.INVALID_ARGUMENT
    assert (await kv.status()).revision == 0


def cmp(key, target, result, operand):
    return Compare(key.encode(), CompareTarget[target], CompareResult[result], operand)


async def test_txn_compare_and_swap(kv):
    await put(kv, "lock", "free")
    swap = TxnRequest(
        compare=(cmp("lock", "VALUE", "EQUAL", b"free"),),
        success=(PutRequest(b"lock", b"taken"),),
        failure=(RangeRequest(b"lock"),),
    )
    won = await kv.txn(swap)
    assert won.succeeded and won.revision == 2
    lost = await kv.txn(swap)
    assert not lost.succeeded and lost.revision == 2
    assert lost.responses[0].kvs[0].value == b"taken"


@pytest.mark.parametrize("target,result,operand,expected", [
    ("VERSION", "EQUAL", 2, True),
    ("VERSION", "GREATER", 1, True),
    ("VERSION", "LESS", 2, False),
    ("CREATE", "EQUAL", 1, True),
    ("MOD", "EQUAL", 2, True),
    ("MOD", "NOT_EQUAL", 2, False),
    ("VALUE", "GREATER", b"a", True),
    ("VALUE", "LESS", b"a", False),
])
async def test_txn_compares_each_target(kv, target, result, operand, expected):
    await put(kv, "k", "1")
    await put(kv, "k", "b")
    outcome = await kv.txn(TxnRequest(compare=(cmp("k", target, result, operand),)))
    assert outcome.succeeded is expected


async def test_an_absent_key_compares_as_version_zero(kv):
    create_once = TxnRequest(compare=(cmp("new", "VERSION", "EQUAL", 0),), success=(PutRequest(b"new", b"1"),))
    assert (await kv.txn(create_once)).succeeded
    assert not (await kv.txn(create_once)).succeeded


async def test_txn_operations_share_one_revision_and_see_earlier_writes(kv):
    await put(kv, "old", "x")
    result = await kv.txn(TxnRequest(success=(
        PutRequest(b"a", b"1"), PutRequest(b"b", b"2"), DeleteRangeRequest(b"old"), RangeRequest(b"", prefix=True),
    )))
    assert result.revision == 2
    assert [r.revision for r in result.responses] == [2, 2, 2, 2]
    assert keys(result.responses[3]) == ["a", "b"]
    assert (await get(kv, "a")).mod_revision == (await get(kv, "b")).mod_revision == 2


async def test_a_read_only_txn_creates_no_revision(kv):
    await put(kv, "a", "1")
    result = await kv.txn(TxnRequest(success=(RangeRequest(b"a"),)))
    assert result.revision == 1 and (await kv.status()).revision == 1


@pytest.mark.parametrize("ops", [
    (PutRequest(b"a", b"1"), PutRequest(b"a", b"2")),
    (DeleteRangeRequest(b"a", prefix=True), PutRequest(b"ab", b"2")),
    tuple(PutRequest(f"k{i}".encode(), b"v") for i in range(MAX_TXN_OPS + 1)),
])
@pytest.mark.parametrize("branch", ["success", "failure"])
async def test_txn_refuses_duplicate_keys_and_oversized_branches(kv, ops, branch):
    with pytest.raises(ServiceError) as err:
        await kv.txn(TxnRequest(**{branch: ops}))
    assert (err.value.code, err.value.details["field"]) == (Code.INVALID_ARGUMENT, branch)
    assert (await kv.status()).revision == 0


async def test_a_failing_range_inside_a_txn_rolls_back_its_writes(kv):
    await put(kv, "a", "1")
    with pytest.raises(ServiceError) as err:
        await kv.txn(TxnRequest(success=(PutRequest(b"b", b"1"), RangeRequest(b"a", revision=99))))
    assert err.value.code is Code.OUT_OF_RANGE
    assert await get(kv, "b") is None
    status = await kv.status()
    assert status.revision == 1 and status.raft_index == 2  # the entry was applied, as a no-op


async def test_status_reports_a_single_leader(kv):
    await put(kv, "a", "1")
    status = await kv.status()
    assert (status.role, status.leader, status.revision) == ("LEADER", status.member_id, 1)
    assert [(m.member_id, m.is_self, m.is_leader) for m in kv.members()] == [(status.member_id, True, True)]
    assert status.raft_index == 1 and status.db_size_bytes > 0
