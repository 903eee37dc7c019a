"""The core: SQL results, transactions, the authorizer's refusals, determinism, KV and CAS."""

from __future__ import annotations

import sqlite3

import pytest
from photoncloud.common import auth
from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Principal, Scope
from photoncloud.common.errors import (
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    PermissionDenied,
    Unavailable,
)
from photoncloud.flaredb.commands import CreateNamespace, ExecuteSql, KvCas, KvPut, Mode, Statement
from photoncloud.flaredb.core import SQL_READ, SQL_WRITE, Consistency
from photoncloud.flaredb.machine import FlareDBStateMachine
from photoncloud.flaredb.store import ProjectFiles

P = "proj-a"


def S(sql, *params, **named):
    return Statement(sql, tuple(params), tuple(named.items()))


async def test_create_insert_query(db):
    results = await db.execute(P, [S("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT, score REAL, data BLOB)"),
                                   S("INSERT INTO t (name, score, data) VALUES (?, ?, ?)", "ann", 1.5, b"\x00\xff"),
                                   S("INSERT INTO t (name, score) VALUES (:name, :score)", name="bob", score=2)])
    assert [(r.rows_affected, r.last_insert_id) for r in results] == [(0, 0), (1, 1), (1, 2)]
    [query] = await db.execute(P, [S("SELECT id, name, score, data FROM t ORDER BY id")])
    assert query.columns == ["id", "name", "score", "data"]
    assert query.types == ["integer", "text", "real", "blob"]
    assert query.rows == [[1, "ann", 1.5, b"\x00\xff"], [2, "bob", 2.0, None]]


async def test_a_failing_list_changes_nothing(db):
    await db.execute(P, [S("CREATE TABLE t (id INTEGER PRIMARY KEY, name TEXT UNIQUE)")])
    with pytest.raises(InvalidArgument) as caught:
        await db.execute(P, [S("INSERT INTO t (name) VALUES ('a')"), S("INSERT INTO t (name) VALUES ('b')"),
                             S("INSERT INTO t (name) VALUES ('a')")])
    assert "UNIQUE constraint failed: t.name" in caught.value.message
    assert caught.value.details["statement_index"] == 2
    [rows] = await db.execute(P, [S("SELECT count(*) FROM t")])
    assert rows.rows == [[0]]
    # The next command still applies, with the next index.
    await db.execute(P, [S("INSERT INTO t (name) VALUES ('a')")])
    assert (await db.execute(P, [S("SELECT name FROM t")]))[0].rows == [["a"]]


async def test_sqlite_errors_are_invalid_argument(db):
    for statement, message in [(S("SELEC 1"), 'near "SELEC": syntax error'),
                               (S("SELECT * FROM nowhere"), "no such table: nowhere"),
                               (S("INSERT INTO nowhere VALUES (1)"), "no such table: nowhere"),
                               (S("SELECT ?"), "Incorrect number of bindings"),
                               (S("SELECT 1; SELECT 2"), "one statement at a time")]:
        with pytest.raises(InvalidArgument) as caught:
            await db.execute(P, [statement])
        assert message in caught.value.message, caught.value.message


@pytest.mark.parametrize("statement, reason", [
    ("SELECT * FROM _flaredb_kv", "_flaredb_kv is internal"),
    ("INSERT INTO _flaredb_meta VALUES ('x', 1)", "_flaredb_meta is internal"),
    ("DROP TABLE _flaredb_namespaces", "internal"),
    ("ATTACH DATABASE 'other.db' AS other", "ATTACH and DETACH are not allowed"),
    ("PRAGMA journal_mode = DELETE", "PRAGMA journal_mode is not allowed"),
    ("PRAGMA writable_schema = 1", "PRAGMA writable_schema is not allowed"),
    ("BEGIN", "transaction statements are not allowed"),
    ("CREATE TEMP TABLE x (a)", "temporary"),
    ("CREATE TRIGGER tr AFTER INSERT ON _flaredb_kv BEGIN SELECT 1; END", "internal"),
    ("SELECT load_extension('x')", "load_extension"),
    ("SELECT value FROM _flaredb_meta WHERE name = 'applied_index'", "internal"),  # FlareDB runs this itself
])
async def test_the_authorizer_refuses(db, statement, reason):
    await db.execute(P, [S("CREATE TABLE t (a)")])
    with pytest.raises(PermissionDenied) as caught:
        await db.execute(P, [S(statement)])
    assert reason in caught.value.message
    assert caught.value.details["reason"] == "SQL_NOT_ALLOWED"


async def test_a_view_over_internal_tables_is_refused_when_used(db):
    await db.execute(P, [S("CREATE VIEW v AS SELECT * FROM _flaredb_kv")])
    with pytest.raises(PermissionDenied):
        await db.execute(P, [S("SELECT * FROM v")])


async def test_schema_pragmas_and_sqlite_schema_are_readable(db):
    await db.execute(P, [S("CREATE TABLE t (a INTEGER NOT NULL)")])
    [info] = await db.execute(P, [S("PRAGMA table_info(t)")])
    assert info.rows[0][1:3] == ["a", "INTEGER"]
    [names] = await db.execute(P, [S("SELECT name FROM sqlite_schema WHERE name = 't'")])
    assert names.rows == [["t"]]


@pytest.mark.parametrize("statement", [
    "INSERT INTO t VALUES (CURRENT_TIMESTAMP)",
    "INSERT INTO t VALUES (current_date)",
    "INSERT INTO t VALUES (datetime('now'))",
    "INSERT INTO t VALUES (date( 'NOW' , '+1 day'))",
    "INSERT INTO t VALUES (julianday())",
    "INSERT INTO t VALUES (strftime('%s'))",
    "UPDATE t SET a = datetime('2024-01-01', 'localtime')",
])
async def test_the_clock_is_refused_before_the_log(db, statement):
    await db.execute(P, [S("CREATE TABLE t (a)")])
    index = db.machine.applied_index()
    with pytest.raises(InvalidArgument) as caught:
        await db.execute(P, [S(statement)])
    assert "compute the time in the client and pass it as a parameter" in caught.value.message
    assert caught.value.details["reason"] == "CLOCK"
    assert db.machine.applied_index() == index  # never proposed


async def test_the_clock_in_literals_identifiers_and_comments_is_fine(db):
    await db.execute(P, [S('CREATE TABLE t ("current_time" TEXT, b TEXT)'),
                         S("INSERT INTO t VALUES ('now', 'CURRENT_DATE') -- datetime('now')"),
                         S("INSERT INTO t VALUES (datetime('2024-01-02 03:04:05', '+1 day'), ?)", "x")])
    [rows] = await db.execute(P, [S('SELECT "current_time", b FROM t')])
    assert rows.rows == [["now", "CURRENT_DATE"], ["2024-01-03 03:04:05", "x"]]


async def test_now_passed_as_a_parameter_is_refused_when_applied(db):
    await db.execute(P, [S("CREATE TABLE t (a)")])
    with pytest.raises(InvalidArgument) as caught:
        await db.execute(P, [S("INSERT INTO t VALUES (datetime(?))", "now")])
    assert "reads the clock" in caught.value.message
    assert (await db.execute(P, [S("SELECT count(*) FROM t")]))[0].rows == [[0]]


async def test_reads_may_use_the_clock(db):
    [now] = await db.execute(P, [S("SELECT datetime('now') IS NOT NULL, CURRENT_DATE IS NOT NULL")])
    assert now.rows == [[1, 1]]


def apply_all(machine: FlareDBStateMachine, commands) -> list:
    return [machine.apply(index, command) for index, command in enumerate(commands, start=1)]


def dump(machine: FlareDBStateMachine, project: str) -> list:
    conn = machine.files.connection(project)
    return list(conn.iterdump())


def test_replicas_applying_the_same_commands_agree(tmp_path):
    commands = [
        ExecuteSql(P, (S("CREATE TABLE t (id INTEGER PRIMARY KEY, r INTEGER, b BLOB, l INTEGER)"),)),
        ExecuteSql(P, (S("INSERT INTO t (r, b, l) VALUES (random(), randomblob(16), last_insert_rowid())"),
                       S("INSERT INTO t (r, b, l) VALUES (random(), randomblob(4), last_insert_rowid())"))),
        ExecuteSql(P, (S("UPDATE t SET r = abs(random()) % 1000"),)),
        CreateNamespace(P, "ns", Mode.STRONG),
        KvCas(P, "ns", b"k", b"v", 0),
        ExecuteSql(P, (S("INSERT INTO nowhere VALUES (1)"),)),
    ]
    a, b = FlareDBStateMachine(ProjectFiles(tmp_path / "a")), FlareDBStateMachine(ProjectFiles(tmp_path / "b"))
    results_a, results_b = apply_all(a, commands), apply_all(b, commands)
    assert [repr(r) for r in results_a] == [repr(r) for r in results_b]
    assert dump(a, P) == dump(b, P)
    rows = a.query(P, [S("SELECT r, b FROM t")])[0].rows
    assert len({row[0] for row in rows}) == 2 and all(isinstance(row[1], bytes) for row in rows)
    assert a.applied_index() == b.applied_index() == len(commands)
    # Replaying entries a file already has changes nothing.
    assert a.apply(2, commands[1]) is None
    assert dump(a, P) == dump(b, P)


def test_a_snapshot_restores_every_project(tmp_path):
    source = FlareDBStateMachine(ProjectFiles(tmp_path / "a"))
    apply_all(source, [ExecuteSql(P, (S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (1)"))),
                       ExecuteSql("proj-b", (S("CREATE TABLE u (b)"),)),
                       CreateNamespace(P, "ns", Mode.EVENTUAL), KvPut(P, "ns", b"k", b"v")])
    source.snapshot(str(tmp_path / "snap"))
    target = FlareDBStateMachine(ProjectFiles(tmp_path / "b"))
    target.apply(1, ExecuteSql("proj-c", (S("CREATE TABLE gone (c)"),)))
    target.restore(str(tmp_path / "snap"))
    assert target.files.projects() == ["proj-a", "proj-b"]
    assert target.applied_index() == 4
    assert dump(target, P) == dump(source, P)
    assert target.get(P, "ns", b"k").value == b"v"


async def test_tables(db):
    await db.execute(P, [S("CREATE TABLE people (id INTEGER PRIMARY KEY, email TEXT NOT NULL UNIQUE, "
                           "age INT DEFAULT 0)"),
                         S("CREATE INDEX people_age ON people (age)"),
                         S("CREATE TABLE a (x)"),
                         S("INSERT INTO people (email) VALUES ('a@x'), ('b@x')")])
    page = await db.tables(P)
    assert [t.name for t in page.items] == ["a", "people"] and page.next_page_token == ""
    people = await db.table(P, "people")
    assert [(c.name, c.type, c.not_null, c.default, c.primary_key) for c in people.columns] == [
        ("id", "INTEGER", False, None, 1), ("email", "TEXT", True, None, 0), ("age", "INT", False, "0", 0)]
    assert [(i.name, i.columns, i.unique) for i in people.indexes] == [
        ("people_age", ["age"], False), ("sqlite_autoindex_people_1", ["email"], True)]
    assert people.row_count == 2
    first = await db.tables(P, page_size=1)
    assert [t.name for t in first.items] == ["a"]
    assert [t.name for t in (await db.tables(P, page_size=1, page_token=first.next_page_token)).items] == ["people"]
    for missing in ("nowhere", "_flaredb_kv"):
        with pytest.raises(NotFound):
            await db.table(P, missing)


async def test_backup_and_restore(db, tmp_path):
    await db.execute(P, [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (1)")])
    await db.create_namespace(P, "ns", Mode.EVENTUAL)
    await db.put(P, "ns", b"k", b"v1")
    data = await db.backup(P)
    copy = tmp_path / "copy.sqlite3"
    copy.write_bytes(data)
    assert sqlite3.connect(copy).execute("SELECT a FROM t").fetchall() == [(1,)]
    await db.execute(P, [S("DROP TABLE t"), S("CREATE TABLE other (b)")])
    await db.put(P, "ns", b"k", b"v2")
    result = await db.restore(P, data)
    assert (result.tables, result.bytes) == (1, len(data))
    assert (await db.execute(P, [S("SELECT a FROM t")]))[0].rows == [[1]]
    assert [t.name for t in (await db.tables(P)).items] == ["t"]
    assert (await db.get(P, "ns", b"k")).value == b"v1"
    await db.execute(P, [S("INSERT INTO t VALUES (2)")])  # writable after the restore
    with pytest.raises(InvalidArgument):
        await db.restore(P, b"not a database")
    with pytest.raises(InvalidArgument):
        await db.restore(P, b"SQLite format 3\x00" + b"\x00" * 200)
    assert (await db.execute(P, [S("SELECT a FROM t ORDER BY a")]))[0].rows == [[1], [2]]


async def test_a_project_without_a_database_reads_as_empty(db):
    assert (await db.tables("fresh")).items == []
    with pytest.raises(InvalidArgument):
        await db.execute("fresh", [S("SELECT * FROM t")])
    assert not db.machine.files.exists("fresh")
    data = await db.backup("fresh")
    assert data.startswith(b"SQLite format 3\x00")


async def test_project_ids_are_checked(db):
    for bad in ("", "../x", "a/b", "a.b", "x" * 200):
        with pytest.raises(InvalidArgument):
            await db.execute(bad, [S("CREATE TABLE t (a)")])


async def test_namespaces_and_modes(db):
    assert (await db.create_namespace(P, "cfg", Mode.STRONG)).mode is Mode.STRONG
    await db.create_namespace(P, "cache", Mode.EVENTUAL)
    with pytest.raises(AlreadyExists):
        await db.create_namespace(P, "cfg", Mode.EVENTUAL)
    assert [(n.name, n.mode) for n in (await db.namespaces(P)).items] == [("cache", Mode.EVENTUAL),
                                                                         ("cfg", Mode.STRONG)]
    with pytest.raises(FailedPrecondition):
        await db.put(P, "cfg", b"k", b"v")
    with pytest.raises(FailedPrecondition):
        await db.delete(P, "cfg", b"k")
    with pytest.raises(FailedPrecondition):
        await db.cas(P, "cache", b"k", b"v", 0)
    with pytest.raises(NotFound):
        await db.put(P, "nowhere", b"k", b"v")
    with pytest.raises(NotFound):
        await db.get(P, "nowhere", b"k")


async def test_put_get_delete_versions(db):
    await db.create_namespace(P, "cache", Mode.EVENTUAL)
    assert (await db.put(P, "cache", b"k", b"1")).version == 1
    assert (await db.put(P, "cache", b"k", b"2")).version == 2
    entry = await db.get(P, "cache", b"k")
    assert (entry.value, entry.version) == (b"2", 2)
    assert (await db.delete(P, "cache", b"k")).deleted == 1
    assert (await db.delete(P, "cache", b"k")).deleted == 0
    with pytest.raises(NotFound):
        await db.get(P, "cache", b"k")
    assert (await db.put(P, "cache", b"k", b"3")).version == 1  # a new key starts again
    assert (await db.namespace(P, "cache")).keys == 1


async def test_compare_and_swap(db):
    await db.create_namespace(P, "cfg", Mode.STRONG)
    created = await db.cas(P, "cfg", b"k", b"a", 0)
    assert (created.succeeded, created.version, created.value) == (True, 1, b"a")
    again = await db.cas(P, "cfg", b"k", b"b", 0)
    assert (again.succeeded, again.version, again.value) == (False, 1, b"a")
    assert (await db.cas(P, "cfg", b"k", b"b", 1)).version == 2
    stale = await db.cas(P, "cfg", b"k", b"c", 1)
    assert (stale.succeeded, stale.version, stale.value) == (False, 2, b"b")
    assert (await db.cas(P, "cfg", b"k", b"", 2, delete=True)).succeeded
    gone = await db.cas(P, "cfg", b"k", b"", 3, delete=True)
    assert (gone.succeeded, gone.version, gone.value) == (False, 0, None)


async def test_scan_pages(db):
    await db.create_namespace(P, "n", Mode.EVENTUAL)
    for key in (b"a", b"b", b"c", b"d"):
        await db.put(P, "n", key, key.upper())
    page = await db.scan(P, "n", b"a", b"d", limit=2)
    assert ([e.key for e in page.items], page.has_more, page.next_key) == ([b"a", b"b"], True, b"c")
    page = await db.scan(P, "n", page.next_key, b"d", limit=2)
    assert ([e.key for e in page.items], page.has_more, page.next_key) == ([b"c"], False, None)
    assert [e.key for e in (await db.scan(P, "n")).items] == [b"a", b"b", b"c", b"d"]
    with pytest.raises(InvalidArgument):
        await db.scan(P, "n", limit=1001)


async def test_projects_are_separate(db):
    await db.execute("one", [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES ('one')")])
    await db.execute("two", [S("CREATE TABLE t (a)")])
    assert (await db.execute("two", [S("SELECT count(*) FROM t")]))[0].rows == [[0]]
    await db.create_namespace("one", "ns", Mode.EVENTUAL)
    with pytest.raises(NotFound):
        await db.get("two", "ns", b"k")


async def test_consistency_levels_alone(db):
    for level in Consistency:
        assert (await db.execute(P, [S("SELECT 1")], level))[0].rows == [[1]]


class FollowerLog:
    """A log that is not the leader, for the weak-read rule."""

    def __init__(self, log):
        self.inner = log

    def status(self):
        from photoncloud.common.replication import LogStatus
        return LogStatus(1, 2, "FOLLOWER", 1, 0)

    def members(self):
        from photoncloud.common.replication import Member
        return [Member(2, "x:1", {"rest": "http://leader:8082", "grpc": "leader:50052"}, False, True)]

    async def read(self, query, *, linearizable=False):
        return await self.inner.read(query, linearizable=linearizable)


async def test_weak_reads_on_a_follower_name_the_leader(db):
    db.log = FollowerLog(db.log)
    with pytest.raises(Unavailable) as caught:
        await db.execute(P, [S("SELECT 1")], Consistency.WEAK)
    assert caught.value.details["leader"] == {"rest": "http://leader:8082", "grpc": "leader:50052"}
    assert (await db.execute(P, [S("SELECT 1")], Consistency.NONE))[0].rows == [[1]]
    assert (await db.execute(P, [S("SELECT 1")], Consistency.STRONG))[0].rows == [[1]]
    db.log = db.log.inner


class CountedReads:
    """Counts the trips a core's reads make to its reading threads."""

    def __init__(self, readers):
        self.inner = readers
        self.trips = 0

    async def run(self, project_id, read):
        self.trips += 1
        return await self.inner.run(project_id, read)


class MemberLog:
    """The log of a member of a cluster (not LocalLog), leading; a barrier first runs on_barrier,
    as writes acknowledged elsewhere would be applied here while the barrier waits."""

    def __init__(self, log):
        self.inner = log
        self.barriers = 0
        self.on_barrier = None

    def status(self):
        from photoncloud.common.replication import LogStatus
        return LogStatus(1, 1, "LEADER", 1, 0)

    async def propose(self, command):
        return await self.inner.propose(command)

    async def read(self, query, *, linearizable=False):
        self.barriers += linearizable
        if linearizable and self.on_barrier is not None:
            await self.on_barrier()
        return await self.inner.read(query, linearizable=linearizable)


async def test_a_kv_read_alone_is_one_trip_to_the_readers(db, monkeypatch):
    await db.create_namespace(P, "cfg", Mode.STRONG)
    await db.create_namespace(P, "cache", Mode.EVENTUAL)
    await db.cas(P, "cfg", b"k", b"strong", 0)
    await db.put(P, "cache", b"k", b"eventual")
    counted = CountedReads(db.readers)
    monkeypatch.setattr(db, "readers", counted)
    assert (await db.get(P, "cfg", b"k")).value == b"strong"
    assert (await db.get(P, "cache", b"k")).value == b"eventual"
    with pytest.raises(NotFound):
        await db.get(P, "nowhere", b"k")
    assert counted.trips == 3


async def test_a_strong_read_in_a_cluster_reads_after_its_barrier(db, monkeypatch):
    await db.create_namespace(P, "cfg", Mode.STRONG)
    await db.create_namespace(P, "cache", Mode.EVENTUAL)
    await db.cas(P, "cfg", b"k", b"old", 0)
    await db.put(P, "cache", b"k", b"mine")
    member, counted = MemberLog(db.log), CountedReads(db.readers)
    monkeypatch.setattr(db, "log", member)
    monkeypatch.setattr(db, "readers", counted)

    async def acknowledged_elsewhere():
        await member.inner.propose(KvCas(P, "cfg", b"k", b"new", 1, False))

    member.on_barrier = acknowledged_elsewhere
    assert (await db.get(P, "cfg", b"k")).value == b"new"  # the write the barrier waited for is seen
    assert (member.barriers, counted.trips) == (1, 2)
    member.on_barrier = None
    assert (await db.get(P, "cache", b"k")).value == b"mine"  # eventual: this member's state, no barrier
    assert (member.barriers, counted.trips) == (1, 3)

    async def declared_elsewhere():
        await member.inner.propose(CreateNamespace(P, "late", Mode.EVENTUAL))
        await member.inner.propose(KvPut(P, "late", b"k", b"v"))

    member.on_barrier = declared_elsewhere  # not applied here when the read comes: found after the barrier
    assert (await db.get(P, "late", b"k")).value == b"v"
    member.on_barrier = None
    with pytest.raises(NotFound):
        await db.namespace(P, "nowhere")
    assert member.barriers == 3


async def test_date_functions_work_in_generated_columns_and_checks(db):
    await db.execute(P, [S("CREATE TABLE e (d TEXT CHECK (date(d) IS NOT NULL), y TEXT AS (strftime('%Y', d)))"),
                         S("INSERT INTO e (d) VALUES (?)", "2024-05-06")])
    assert (await db.execute(P, [S("SELECT d, y FROM e")]))[0].rows == [["2024-05-06", "2024"]]


def test_a_batch_gives_what_one_by_one_gives(tmp_path):
    """Group commit (LocalLog hands over the commands that queued up) changes no result and no row,
    also when SQLite rolls a whole transaction back (RAISE(ROLLBACK), INSERT OR ROLLBACK)."""
    commands = [
        ExecuteSql(P, (S("CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT UNIQUE)"),
                       S("CREATE TRIGGER no_bad BEFORE INSERT ON t WHEN NEW.v = 'bad' "
                         "BEGIN SELECT RAISE(ROLLBACK, 'bad rows are refused'); END"))),
        ExecuteSql("proj-b", (S("CREATE TABLE u (x)"),)),
        ExecuteSql(P, (S("INSERT INTO t (v) VALUES ('a')"),)),
        ExecuteSql("proj-b", (S("INSERT INTO u VALUES (random())"),)),
        ExecuteSql(P, (S("INSERT INTO t (v) VALUES ('b')"), S("INSERT INTO t (v) VALUES ('bad')"))),
        ExecuteSql(P, (S("INSERT INTO t (v) VALUES ('c')"),)),
        ExecuteSql(P, (S("INSERT OR ROLLBACK INTO t (v) VALUES ('a')"),)),
        ExecuteSql(P, (S("INSERT INTO t (v) VALUES ('d')"), S("INSERT INTO t (v) VALUES ('a')"))),
        CreateNamespace(P, "ns", Mode.STRONG),
        KvCas(P, "ns", b"k", b"v", 0),
        KvCas(P, "ns", b"k", b"w", 0),
        ExecuteSql(P, (S("INSERT INTO t (v) VALUES (last_insert_rowid())"),)),
    ]
    batched = FlareDBStateMachine(ProjectFiles(tmp_path / "a"))
    single = FlareDBStateMachine(ProjectFiles(tmp_path / "b"))
    entries = list(enumerate(commands, start=1))
    got = batched.apply_batch(entries)
    want = [single.apply(index, command) for index, command in entries]
    assert [repr(r) for r in got] == [repr(r) for r in want]
    assert "bad rows are refused" in got[4].message and "UNIQUE" in got[6].message
    for project in (P, "proj-b"):
        assert dump(batched, project) == dump(single, project)
    assert batched.query(P, [S("SELECT v FROM t ORDER BY id")])[0].rows == [["a"], ["c"], ["0"]]
    assert batched.applied_index() == single.applied_index() == len(commands)


class StubProjects:
    """IAM's answer to "which org is this project in", for the projects it knows."""

    def __init__(self, orgs):
        self.orgs = orgs

    async def org_of(self, project_id):
        if project_id not in self.orgs:
            raise NotFound("project not found", {"project_id": project_id})
        return self.orgs[project_id]


def as_caller(kind, org_id="", project_id="", permissions=("*:*:read", "*:*:write")):
    return auth.bind(Principal(subject="user:x", name="x", scope=Scope(kind, org_id, project_id), roles=("member",),
                               permissions=permissions, token_id="t", expires_at=0, token="t"))


async def test_who_acts_on_which_project(db):
    db.projects = StubProjects({"p-in": "org-1", "p-out": "org-2"})
    bound = as_caller(ORG, "org-1")
    try:
        assert await db.project("p-in", SQL_READ) == "p-in"
        with pytest.raises(PermissionDenied) as caught:
            await db.project("p-out", SQL_READ)
        assert caught.value.details["reason"] == "OUT_OF_SCOPE"
        with pytest.raises(NotFound):
            await db.project("nowhere", SQL_READ)
        with pytest.raises(InvalidArgument):
            await db.project("", SQL_READ)
        db.projects = None  # no IAM to ask: only project and system tokens
        with pytest.raises(PermissionDenied) as caught:
            await db.project("p-in", SQL_READ)
        assert caught.value.details["reason"] == "PROJECT_SCOPE_REQUIRED"
    finally:
        auth.reset(bound)
    bound = as_caller(PROJECT, "org-1", "p-in", permissions=("*:*:read",))
    try:
        assert await db.project("", SQL_READ) == await db.project("p-in", SQL_READ) == "p-in"
        with pytest.raises(PermissionDenied):
            await db.project("p-out", SQL_READ)
        with pytest.raises(PermissionDenied):
            await db.project("", SQL_WRITE)
    finally:
        auth.reset(bound)
    bound = as_caller(SYSTEM)
    try:
        assert await db.project("any-project", SQL_WRITE) == "any-project"
        with pytest.raises(InvalidArgument):
            await db.project("", SQL_WRITE)
    finally:
        auth.reset(bound)


def test_a_reader_never_finds_a_project_file_without_its_tables(tmp_path, monkeypatch) -> None:
    # Reads open the project's file on other threads while the state machine may be creating it: at
    # any moment of the creation, a reader finds either no file (and reads the empty stand-in) or
    # one with FlareDB's tables.
    from photoncloud.flaredb import store

    files = ProjectFiles(tmp_path / "files")
    seen = []

    def configure_and_read(conn: sqlite3.Connection) -> None:
        for step in (lambda: None, lambda: real_configure(conn)):
            step()
            reader, _ = files.open_reader("proj-1")
            try:
                seen.append(reader.execute("SELECT count(*) FROM _flaredb_namespaces").fetchone()[0])
            finally:
                reader.close()

    real_configure = store.configure
    monkeypatch.setattr(store, "configure", configure_and_read)
    files.connection("proj-1")
    assert seen and all(count == 0 for count in seen)
    reader, is_file = files.open_reader("proj-1")
    assert is_file and reader.execute("SELECT count(*) FROM _flaredb_namespaces").fetchone() == (0,)
    reader.close()
