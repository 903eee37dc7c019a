"""VPCs' VXLAN network identifiers: unique, given in the state machine's step, kept across restarts,
the same on every replica applying the same commands, and given to the VPCs of an older store."""

from __future__ import annotations

import shutil
import sqlite3

import pytest

from photoncloud.common.errors import ResourceExhausted
from photoncloud.common.replication import LocalLog
from photoncloud.prismnet.commands import CreateVpc, DeleteVpc
from photoncloud.prismnet.core import NetworkCore
from photoncloud.prismnet.machine import NetworkStateMachine
from photoncloud.prismnet.records import Vpc
from photoncloud.prismnet.store import VNI_MAX, VNI_MIN, SqliteNetworkStore

# The vpcs table (and the rest) as PrismNET wrote them before VPCs had a VNI.
OLD_SCHEMA = """
CREATE TABLE meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE vpcs (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, org_id TEXT NOT NULL, project_id TEXT NOT NULL,
    cidr_block TEXT NOT NULL, description TEXT NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
CREATE INDEX vpcs_by_project ON vpcs (org_id, project_id, id);
CREATE TABLE subnets (
    id TEXT PRIMARY KEY, vpc_id TEXT NOT NULL REFERENCES vpcs (id), name TEXT NOT NULL, cidr_block TEXT NOT NULL,
    gateway_ip TEXT NOT NULL, description TEXT NOT NULL, allocation_pools TEXT NOT NULL, dns_servers TEXT NOT NULL,
    ip_version INTEGER NOT NULL, created_at REAL NOT NULL, updated_at REAL NOT NULL
);
INSERT INTO meta VALUES ('applied_index', 7);
INSERT INTO vpcs VALUES ('b', 'second', 'o1', 'p1', '10.2.0.0/16', '', 20.0, 20.0);
INSERT INTO vpcs VALUES ('a', 'first', 'o1', 'p2', '10.1.0.0/16', '', 10.0, 10.0);
INSERT INTO vpcs VALUES ('c', 'third', 'o2', 'p3', '10.3.0.0/16', '', 20.0, 20.0);
INSERT INTO subnets VALUES ('s', 'a', 'web', '10.1.1.0/24', '10.1.1.1', '', '[]', '[]', 4, 10.0, 10.0);
"""


def old_store(path) -> None:
    db = sqlite3.connect(path)
    db.executescript(OLD_SCHEMA)
    db.close()


def core_over(store: SqliteNetworkStore, vnis: tuple[int, int] | None = None) -> NetworkCore:
    machine = NetworkStateMachine(store, vnis)
    return NetworkCore(machine, LocalLog(machine))


async def test_vnis_are_unique_and_not_reused_until_the_others_are(net):
    made = [await net.create_vpc(f"v{i}", "o1", f"p{i % 3}", f"10.{i}.0.0/16") for i in range(5)]
    assert [v.vni for v in made] == list(range(VNI_MIN, VNI_MIN + 5))
    assert [(await net.vpc(v.id)).vni for v in made] == [v.vni for v in made]
    await net.delete_vpc(made[1].id)
    later = await net.create_vpc("later", "o1", "p1", "10.9.0.0/16")
    assert later.vni == VNI_MIN + 5  # the deleted VPC's VNI is not the next one given
    listed = (await net.vpcs()).items
    assert sorted(v.vni for v in listed) == sorted([v.vni for v in made if v.id != made[1].id] + [later.vni])


async def test_when_every_vni_is_taken_a_vpc_is_refused_until_one_is_freed(tmp_path):
    store = SqliteNetworkStore(tmp_path / "net.sqlite3")
    net = core_over(store, (100, 102))
    try:
        made = [await net.create_vpc(f"v{i}", "o1", "p1", f"10.{i}.0.0/16") for i in range(3)]
        assert [v.vni for v in made] == [100, 101, 102]
        with pytest.raises(ResourceExhausted) as refused:
            await net.create_vpc("full", "o1", "p1", "10.8.0.0/16")
        assert refused.value.details == {"reason": "VNI_EXHAUSTED"}
        assert len((await net.vpcs()).items) == 3
        await net.delete_vpc(made[1].id)
        assert (await net.create_vpc("again", "o1", "p1", "10.8.0.0/16")).vni == 101  # wrapped around to it
    finally:
        await net.close()
        store.close()


async def test_vnis_survive_a_restart_and_the_next_one_follows_on(tmp_path):
    path = tmp_path / "net.sqlite3"
    store = SqliteNetworkStore(path)
    net = core_over(store)
    first = [await net.create_vpc(f"v{i}", "o1", "p1", f"10.{i}.0.0/16") for i in range(3)]
    await net.delete_vpc(first[2].id)
    await net.close()
    store.close()
    store = SqliteNetworkStore(path)
    net = core_over(store)
    try:
        assert {v.id: v.vni for v in (await net.vpcs()).items} == {v.id: v.vni for v in first[:2]}
        assert (await net.create_vpc("next", "o1", "p1", "10.5.0.0/16")).vni == VNI_MIN + 3
    finally:
        await net.close()
        store.close()


def test_two_replicas_applying_the_same_commands_give_the_same_vnis():
    def vpc(i: int) -> Vpc:
        return Vpc(f"id{i}", f"v{i}", "o1", "p1", f"10.{i}.0.0/16", "", float(i), float(i))

    commands = [CreateVpc(vpc(0)), CreateVpc(vpc(1)), CreateVpc(vpc(2)), DeleteVpc("id0"), CreateVpc(vpc(3)),
                DeleteVpc("id2"), CreateVpc(vpc(4)), CreateVpc(vpc(1))]  # the last one is refused: id1 exists
    replicas = []
    for _ in range(2):
        store = SqliteNetworkStore(":memory:")
        machine = NetworkStateMachine(store, (VNI_MIN, VNI_MIN + 3))
        results = [machine.apply(index, command) for index, command in enumerate(commands, 1)]
        replicas.append(([getattr(r, "vni", type(r).__name__) for r in results],
                         {v.id: v.vni for v in store.vpcs("", "", "", -1)}, store.applied_index()))
        store.close()
    assert replicas[0] == replicas[1]
    assert replicas[0][1] == {"id1": VNI_MIN + 1, "id3": VNI_MIN + 3, "id4": VNI_MIN}


async def test_an_older_store_opens_and_its_vpcs_get_vnis(tmp_path):
    path = tmp_path / "net.sqlite3"
    old_store(path)
    store = SqliteNetworkStore(path)
    net = core_over(store)
    try:
        # In order of creation, then of id; everything else as it was.
        assert {v.id: (v.name, v.vni) for v in (await net.vpcs()).items} == {
            "a": ("first", VNI_MIN), "b": ("second", VNI_MIN + 1), "c": ("third", VNI_MIN + 2)}
        assert (await net.subnet("s")).cidr_block == "10.1.1.0/24"
        assert store.applied_index() == 7
        new = await net.create_vpc("new", "o1", "p1", "10.4.0.0/16")
        assert new.vni == VNI_MIN + 3
        with pytest.raises(sqlite3.IntegrityError):  # the database itself refuses a VNI held twice
            store.db.execute("UPDATE vpcs SET vni = ? WHERE id = 'a'", (new.vni,))
    finally:
        await net.close()
        store.close()
    store = SqliteNetworkStore(path)  # opened again: nothing changes
    try:
        assert {v.id: v.vni for v in store.vpcs("", "", "", -1)} == {
            "a": VNI_MIN, "b": VNI_MIN + 1, "c": VNI_MIN + 2, new.id: VNI_MIN + 3}
    finally:
        store.close()


@pytest.mark.parametrize("kind", ["memory", "file"])
def test_an_older_snapshot_restored_gets_vnis(tmp_path, kind):
    old_store(tmp_path / "old.sqlite3")
    shutil.copy(tmp_path / "old.sqlite3", tmp_path / "snapshot.sqlite3")
    store = SqliteNetworkStore(":memory:" if kind == "memory" else tmp_path / "net.sqlite3")
    try:
        store.restore(str(tmp_path / "snapshot.sqlite3"))
        assert {v.id: v.vni for v in store.vpcs("", "", "", -1)} == {"a": VNI_MIN, "b": VNI_MIN + 1,
                                                                      "c": VNI_MIN + 2}
        assert VNI_MAX == 2**24 - 1  # 24 bits, as VXLAN carries
    finally:
        store.close()
