"""A restore takes only a sound SQLite file without views, triggers, virtual tables or objects in
FlareDB's internal namespace (but FlareDB's own tables, which a backup holds); a refused file leaves
the project's database as it was, also across a restart."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from photoncloud.common.errors import InvalidArgument
from photoncloud.common.replication import LocalLog
from photoncloud.flaredb.commands import Mode, RestoreDatabase, Statement
from photoncloud.flaredb.core import FlareDBCore
from photoncloud.flaredb.machine import FlareDBStateMachine
from photoncloud.flaredb.store import SCHEMA, ProjectFiles

from .test_auth import call, token

P = "proj-a"
KV_TABLE = next(s for s in SCHEMA.split(";") if "TABLE IF NOT EXISTS _flaredb_kv" in s)


def S(sql, *params):
    return Statement(sql, tuple(params))


def open_core(root: Path) -> FlareDBCore:
    machine = FlareDBStateMachine(ProjectFiles(root))
    return FlareDBCore(machine, LocalLog(machine), "test")


async def close_core(core: FlareDBCore) -> None:
    await core.close()
    core.machine.close()


def sqlite_file(path: Path, *statements: str) -> bytes:
    """A SQLite file made by the sqlite3 module (not by FlareDB) from statements."""
    conn = sqlite3.connect(path)
    for statement in statements:
        conn.execute(statement)
    conn.commit()
    conn.close()
    return path.read_bytes()


def corrupted(path: Path) -> bytes:
    """A file whose b-tree pages point their cells past the page's end."""
    data = bytearray(sqlite_file(path, "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT)",
                                 "CREATE INDEX t_s ON t (s)",
                                 *[f"INSERT INTO t (s) VALUES ('{f'row {i} ' * 5}')" for i in range(500)]))
    page_size = int.from_bytes(data[16:18], "big")
    for start in range(page_size, len(data), page_size):  # every page but the first (the header's)
        data[start + 12:start + 40] = b"\xff" * 28
    return bytes(data)


BAD_FILES = {
    # A view named like FlareDB's applied-index table: it once poisoned the index of every project.
    "internal view": (["CREATE TABLE t (a)",
                       "CREATE VIEW _flaredb_meta AS SELECT 'applied_index' AS name, 1000000000 AS value",
                       "CREATE TRIGGER meta INSTEAD OF INSERT ON _flaredb_meta BEGIN SELECT 1; END"], "VIEW"),
    "trigger": (["CREATE TABLE t (a)", "CREATE TABLE log (a)",
                 "CREATE TRIGGER t_log AFTER INSERT ON t BEGIN INSERT INTO log VALUES (new.a); END"], "TRIGGER"),
    "view": (["CREATE TABLE t (a)", "CREATE VIEW v AS SELECT a FROM t"], "VIEW"),
    "internal table of another shape": (["CREATE TABLE _flaredb_meta (name TEXT, value TEXT)"], "INTERNAL_OBJECT"),
    "internal index": (["CREATE TABLE t (a)", "CREATE INDEX _FlareDB_x ON t (a)"], "INTERNAL_OBJECT"),
    "index on an internal table": (["CREATE TABLE _flaredb_meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL)",
                                    "CREATE INDEX m ON _flaredb_meta (value)"], "INTERNAL_OBJECT"),
    "virtual table": (["CREATE VIRTUAL TABLE docs USING fts5(body)"], "VIRTUAL_TABLE"),
    # FlareDB's own KV table, as FlareDB makes it, holding a key FlareDB would read as bytes.
    "internal data": ([KV_TABLE, "INSERT INTO _flaredb_kv VALUES ('ns', 'text, not bytes', x'00', 1)"],
                      "INTERNAL_DATA"),
}


@pytest.mark.parametrize("case", [*BAD_FILES, "corrupt"])
async def test_a_refused_file_leaves_the_database_as_it_was(tmp_path, case):
    db = open_core(tmp_path / "data")
    await db.execute(P, [S("CREATE TABLE kept (a)"), S("INSERT INTO kept VALUES ('before')")])
    await db.create_namespace(P, "ns", Mode.EVENTUAL)
    await db.put(P, "ns", b"k", b"v")
    if case == "corrupt":
        data, reason = corrupted(tmp_path / "upload.sqlite3"), "CORRUPT"
    else:
        statements, reason = BAD_FILES[case]
        data = sqlite_file(tmp_path / "upload.sqlite3", *statements)
    index = db.machine.applied_index()
    with pytest.raises(InvalidArgument) as caught:
        await db.restore(P, data)
    assert caught.value.details["reason"] == reason, caught.value
    assert db.machine.applied_index() == index  # refused before the log
    # Every member checks again when it applies the entry (an entry logged by an older member).
    refused = db.machine.apply(index + 1, RestoreDatabase(P, data))
    assert isinstance(refused, InvalidArgument) and refused.details["reason"] == reason
    assert db.machine.applied_index() == index + 1
    await close_core(db)

    db = open_core(tmp_path / "data")  # a restart
    try:
        assert db.machine.applied_index() == index + 1
        assert (await db.execute(P, [S("SELECT a FROM kept")]))[0].rows == [["before"]]
        assert (await db.get(P, "ns", b"k")).value == b"v"
        await db.execute(P, [S("INSERT INTO kept VALUES ('after')")])
        await db.execute("another-project", [S("CREATE TABLE t (a)")])
        assert db.machine.applied_index() == index + 3
        assert (await db.execute(P, [S("SELECT a FROM kept ORDER BY a")]))[0].rows == [["after"], ["before"]]
    finally:
        await close_core(db)


async def test_a_file_made_elsewhere_and_a_backup_are_restored(tmp_path):
    db = open_core(tmp_path / "data")
    try:
        data = sqlite_file(tmp_path / "made.sqlite3", "CREATE TABLE t (id INTEGER PRIMARY KEY, s TEXT UNIQUE)",
                           "INSERT INTO t (s) VALUES ('x')")
        assert (await db.restore(P, data)).tables == 1
        await db.create_namespace(P, "ns", Mode.STRONG)
        await db.cas(P, "ns", b"k", b"v", 0)
        backup = await db.backup(P)
        await db.execute(P, [S("DROP TABLE t")])
        assert (await db.restore(P, backup)).tables == 1  # FlareDB's own tables come along
        assert (await db.execute(P, [S("SELECT s FROM t")]))[0].rows == [["x"]]
        assert (await db.get(P, "ns", b"k")).version == 1
    finally:
        await close_core(db)


async def test_a_refused_restore_over_rest_names_the_reason(server, mint, tmp_path):
    admin = mint.token(permissions=("*",), roles=("admin",))
    member = token(mint)
    await call(server, "POST", "/sql", member, json={"sql": "CREATE TABLE t (a)"})
    data = sqlite_file(tmp_path / "upload.sqlite3", "CREATE TABLE t (a)",
                       "CREATE VIEW _flaredb_meta AS SELECT 'applied_index' AS name, 1000000000 AS value")
    status, body = await call(server, "POST", "/restore", admin, params={"project_id": P}, data=data)
    assert (status, body["error"]["code"], body["error"]["details"]["reason"]) == (400, "INVALID_ARGUMENT", "VIEW")
    status, body = await call(server, "POST", "/sql", member, json={"sql": "INSERT INTO t VALUES (1)"})
    assert status == 200, body
