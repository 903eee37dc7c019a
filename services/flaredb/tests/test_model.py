"""Property tests: KV scans and compare-and-swap agree with a plain dict model."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st
from photoncloud.flaredb.commands import CreateNamespace, KvCas, KvDelete, KvPut, Mode
from photoncloud.flaredb.machine import FlareDBStateMachine
from photoncloud.flaredb.store import ProjectFiles

P = "proj"
keys = st.sampled_from([b"a", b"ab", b"b", b"b\x00", b"b\xff", b"c", b"\xff"])
values = st.binary(max_size=3)


def fresh(tmp_path_factory) -> FlareDBStateMachine:
    machine = FlareDBStateMachine(ProjectFiles(tmp_path_factory.mktemp("model")))
    machine.apply(1, CreateNamespace(P, "e", Mode.EVENTUAL))
    machine.apply(2, CreateNamespace(P, "s", Mode.STRONG))
    return machine


def scan_all(machine, namespace, start, end, limit):
    """Every page of [start, end), following next_key."""
    pages, found = 0, []
    while True:
        page = machine.scan(P, namespace, start, end, limit)
        assert len(page.items) <= limit
        found += page.items
        pages += 1
        if not page.has_more:
            assert page.next_key is None
            return found, pages
        assert page.next_key > page.items[-1].key
        start = page.next_key


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.one_of(st.tuples(st.just("put"), keys, values), st.tuples(st.just("delete"), keys, values)),
                    max_size=25),
       start=keys, end=st.one_of(st.just(b""), keys), limit=st.integers(1, 4))
def test_scans_match_the_model(tmp_path_factory, ops, start, end, limit):
    machine = fresh(tmp_path_factory)
    model: dict[bytes, tuple[bytes, int]] = {}
    for index, (op, key, value) in enumerate(ops, start=3):
        if op == "put":
            result = machine.apply(index, KvPut(P, "e", key, value))
            model[key] = (value, model[key][1] + 1 if key in model else 1)
            assert result.version == model[key][1]
        else:
            result = machine.apply(index, KvDelete(P, "e", key))
            assert result.deleted == (1 if model.pop(key, None) else 0)
    found, pages = scan_all(machine, "e", start, end, limit)
    expected = sorted((k, v, ver) for k, (v, ver) in model.items() if k >= start and (not end or k < end))
    assert [(e.key, e.value, e.version) for e in found] == expected
    assert pages == max(1, -(-len(expected) // limit))  # a full last page says has_more=false
    machine.close()


@settings(max_examples=60, deadline=None)
@given(ops=st.lists(st.tuples(keys, values, st.integers(0, 4), st.booleans()), max_size=25))
def test_compare_and_swap_matches_the_model(tmp_path_factory, ops):
    machine = fresh(tmp_path_factory)
    model: dict[bytes, tuple[bytes, int]] = {}
    for index, (key, value, expected, delete) in enumerate(ops, start=3):
        result = machine.apply(index, KvCas(P, "s", key, value, expected, delete))
        current = model.get(key)
        version = current[1] if current else 0
        succeeds = version == expected and not (delete and current is None)
        assert result.succeeded is succeeds
        if succeeds and delete:
            del model[key]
        elif succeeds:
            model[key] = (value, version + 1)
        now = model.get(key)
        assert (result.version, result.value) == ((now[1], now[0]) if now else (0, None))
    found, _ = scan_all(machine, "s", b"", b"", 1000)
    assert [(e.key, e.value, e.version) for e in found] == sorted((k, v, ver) for k, (v, ver) in model.items())
    machine.close()
