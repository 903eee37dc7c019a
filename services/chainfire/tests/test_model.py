"""Property test: the state machine agrees with a plain dict model of etcd's semantics, at every revision."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from photoncloud.chainfire.core import DeleteRangeRequest, KVStateMachine, PutRequest, RangeRequest
from photoncloud.chainfire.store import SqliteKVStore

keys = st.sampled_from(
    [b"a", b"ab", b"b", b"ba", b"b\x00", b"b\xff", b"c"])
ops = st.lists(
    st.one_of(
        st.tuples(st.just("put"), keys, st.binary(max_size=4)),
        st.tuples(st.just("delete"), keys, st.sampled_from([b"", b"b", b"\x00"])),
    ),
    max_size=30,
)


def in_span(key: bytes, start: bytes, end: bytes) -> bool:
    """The model's reading of a delete's [start, end): "" means just start, "\\0" means no end."""
    if end == b"":
        return key == start
    return key >= start and (end == b"\x00" or key < end)


@settings(max_examples=150, deadline=None)
@given(ops)
def test_every_revision_matches_the_model(commands):
    machine = KVStateMachine(SqliteKVStore(":memory:"))
    model: dict[bytes, tuple[bytes, int, int, int]] = {}  # key -> (value, create, mod, version)
    snapshots = {0: {}}
    revision = 0
    for index, (op, key, arg) in enumerate(commands, start=1):
        if op == "put":
            revision += 1
            old = model.get(key)
            model[key] = (arg, old[1] if old else revision, revision, old[3] + 1 if old else 1)
            result = machine.apply(index, PutRequest(key, arg))
        else:
            doomed = [k for k in model if in_span(k, key, arg)]
            if doomed:
                revision += 1
            for k in doomed:
                del model[k]
            result = machine.apply(index, DeleteRangeRequest(key, arg))
            assert result.deleted == len(doomed)
        assert result.revision == revision
        snapshots[revision] = dict(model)
    for rev, expected in snapshots.items():
        if rev == 0 and revision > 0:
            continue  # revision 0 in a request means "the latest"
        got = machine.range(RangeRequest(b"\x00", range_end=b"\x00", revision=rev))
        assert [(kv.key, kv.value, kv.create_revision, kv.mod_revision, kv.version) for kv in got.kvs] == [
            (k, *expected[k]) for k in sorted(expected)
        ]
