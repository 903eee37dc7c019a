"""FlareDB's domain: SQL on one SQLite database per project, and key-value namespaces beside it,
as commands applied to a replicated state machine.

Writes (SQL that changes anything, namespace creation, KV puts, deletes and compare-and-swaps,
restores) are commands (commands.py) the core proposes to its log; the log applies them to
FlareDBStateMachine (machine.py) on every member, in log order. Read-only SQL and KV reads run on
read-only connections beside the state machine (readers.ReadPool), with the consistency the request
asks for, as in rqlite: `none` (this member's state as it stands), `weak` (the leader's state: a
follower refuses with UNAVAILABLE naming the leader), `strong` (after the log's linearizable
barrier, the leader's confirmed commit index: sees every write acknowledged before the read began).

Statements that would read the clock are refused here, before they are proposed: the state machine
must come to the same result on every member. A write runs under a budget of SQLite steps that
travels with it in the log, a read under a deadline (limits.py): one tenant's statement cannot hold
a thread for long.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import re
import sqlite3
from collections.abc import Callable, Sequence
from typing import Any, Protocol, TypeVar

from photoncloud.common import auth, paging
from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Principal
from photoncloud.common.errors import InvalidArgument, NotFound, PermissionDenied, Unavailable
from photoncloud.common.projects import Projects
from photoncloud.common.replication import LocalLog, Log, LogStatus, Member

from . import sql
# The log's journal holds pickles that name the commands as photoncloud.flaredb.core.<name> (they
# were defined here): importing them here keeps those pickles loadable.
from .commands import CreateNamespace, ExecuteSql, KvCas, KvDelete, KvPut, Mode, RestoreDatabase, Statement, Value
from .kv import namespace_mode, no_namespace, read_get, read_namespace, read_namespaces, read_scan
from .limits import Deadline, HeavyWriters, Limits, ResultMeter, StatementLimits, value_too_large
from .machine import FlareDBStateMachine
from .readers import ReadPool
from .results import (CasResult, DeleteResult, Entry, Namespace, NamespacePage, PutResult, RestoreResult, ScanResult,
                      StatementResult, Status, Table, TablePage)
from .schema import read_tables
from .statements import run_statements

T = TypeVar("T")
log = logging.getLogger("photoncloud.flaredb")

SQL_READ, SQL_WRITE, SQL_MANAGE = "flaredb:sql:read", "flaredb:sql:write", "flaredb:sql:manage"
KV_READ, KV_WRITE = "flaredb:kv:read", "flaredb:kv:write"
MAX_STATEMENTS = 1000  # per request
MAX_SQL_BYTES = 1024 * 1024  # per statement
MAX_KEY_BYTES = 4 * 1024
DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT = 100, 1000
DEFAULT_NAMESPACE = "default"  # the namespace of KV calls that name none
NAMESPACE_NAME = r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$"
SQLITE_HEADER = b"SQLite format 3\x00"
PROJECT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,127}$")  # also a safe file name: no dots, no slashes


class Consistency(enum.Enum):
    """How fresh a read must be (rqlite's levels)."""

    NONE = "none"
    WEAK = "weak"
    STRONG = "strong"


def check_project_id(project_id: str) -> str:
    """project_id if it is a valid project ID (letters, digits, `-`, `_`), else INVALID_ARGUMENT."""
    if not isinstance(project_id, str) or not PROJECT_ID.match(project_id):
        raise InvalidArgument("project_id must be 1 to 128 letters, digits, '-' or '_'", {"field": "project_id"})
    return project_id


# -- the store the state machine works on ------------------------------------------------------------


class ProjectStore(Protocol):
    """The project databases the state machine works on (store.ProjectFiles)."""

    on_open: Callable[[sqlite3.Connection], None] | None  # called with each connection it opens
    open_files: int  # connections kept open at most

    def applied_index(self) -> int:
        """The highest index applied to any project's database."""

    def index(self, project_id: str) -> int:
        """The last index applied to the project's database (0: none)."""

    def applied_to(self, project_id: str, index: int) -> None:
        """Note that index was committed to the project's database."""

    def set_index(self, conn: sqlite3.Connection, index: int) -> None:
        """Record index as applied, inside the command's transaction (also sets last_insert_rowid() to 0)."""

    def connection(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, creating its database if it has none."""

    def reader(self, project_id: str) -> sqlite3.Connection:
        """The project's connection, or an empty database's if it has none."""

    def generation(self, project_id: str) -> Any:
        """A value that changes whenever the project's file is replaced."""

    def open_reader(self, project_id: str) -> tuple[sqlite3.Connection, bool]:
        """A new read-only connection to the project's database (or an empty one's, and False)."""

    def check(self, project_id: str, data: bytes, limits: StatementLimits | None) -> None:
        """INVALID_ARGUMENT unless data is a SQLite file a restore would take."""

    def load(self, project_id: str, data: bytes, index: int, limits: StatementLimits | None = None) -> int:
        """Replace the project's database with the SQLite file data, applied up to index; its table count."""

    def backup(self, project_id: str, source: sqlite3.Connection | None = None) -> bytes:
        """A consistent copy of the project's database as a SQLite file (from source, if given)."""

    def projects(self) -> list[str]:
        """Every project with a database."""

    def size_bytes(self) -> int:
        """The size of every project's database."""

    def snapshot(self, path: str) -> None:
        """Every project's database in one archive at path."""

    def restore(self, path: str) -> None:
        """Replace every project's database with the archive's."""

    def close(self) -> None:
        """Close every open connection."""


# -- validation --------------------------------------------------------------------------------------


_PLAIN = (type(None), str, bytes, float)


def check_value(value: Any, where: str) -> Value:
    """value if SQLite can bind it: NULL, a 64-bit integer, a real, text or bytes."""
    if isinstance(value, _PLAIN):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not -(1 << 63) <= value < (1 << 63):
            raise InvalidArgument(f"{where}: integers are 64-bit", {"field": where})
        return value
    raise InvalidArgument(f"{where}: a parameter is null, a number, text or bytes", {"field": where})


def _params_ok(values: Sequence[Any]) -> bool:
    """Whether every value binds as it is (the common case, checked without building messages)."""
    return all(type(v) in _PLAIN or (type(v) is int and -(1 << 63) <= v < (1 << 63)) for v in values)


def _size(value: Value) -> int:
    """The bytes of a text or BLOB value (0 for the others)."""
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, str):
        return len(value) if value.isascii() else len(value.encode())
    return 0


def check_statements(statements: Sequence[Statement], max_value_bytes: int = Limits.max_value_bytes
                     ) -> tuple[Statement, ...]:
    """The statements, if there are 1 to MAX_STATEMENTS well-formed ones whose parameters are at most
    max_value_bytes each."""
    if not statements:
        raise InvalidArgument("give at least one statement", {"field": "statements"})
    if len(statements) > MAX_STATEMENTS:
        raise InvalidArgument(f"at most {MAX_STATEMENTS} statements per request", {"field": "statements"})
    checked = []
    for i, s in enumerate(statements):
        if not s.sql.strip():
            raise InvalidArgument(f"statements.{i}: the statement is empty", {"field": f"statements.{i}.sql"})
        if len(s.sql) > MAX_SQL_BYTES // 4 and len(s.sql.encode()) > MAX_SQL_BYTES:
            raise InvalidArgument(f"statements.{i}: a statement has at most {MAX_SQL_BYTES} bytes",
                                  {"field": f"statements.{i}.sql"})
        if s.params and s.named:
            raise InvalidArgument(f"statements.{i}: give positional or named parameters, not both",
                                  {"field": f"statements.{i}.params"})
        if s.named:
            s = Statement(s.sql, named=tuple((name.lstrip(":@$"), value) for name, value in s.named))
        if not _params_ok(s.params) or not _params_ok([v for _, v in s.named]):
            where = f"statements.{i}.params"
            s = Statement(s.sql, tuple(check_value(v, where) for v in s.params),
                          tuple((name, check_value(v, where)) for name, v in s.named))
        for value in (*s.params, *(v for _, v in s.named)):
            if _size(value) > max_value_bytes:
                raise value_too_large(f"statements.{i}.params", max_value_bytes)
        checked.append(s)
    return tuple(checked)


def check_namespace(name: str) -> str:
    """name if it is a valid namespace name."""
    if not re.match(NAMESPACE_NAME, name or ""):
        raise InvalidArgument("a namespace name is 1 to 64 letters, digits, '.', '-' or '_'", {"field": "namespace"})
    return name


def check_key(key: bytes) -> bytes:
    """key if it is 1 to MAX_KEY_BYTES bytes."""
    if not key or len(key) > MAX_KEY_BYTES:
        raise InvalidArgument(f"a key has 1 to {MAX_KEY_BYTES} bytes", {"field": "key"})
    return key


def check_kv_value(value: bytes, max_value_bytes: int = Limits.max_value_bytes) -> bytes:
    """value if it is at most max_value_bytes bytes (else RESOURCE_EXHAUSTED)."""
    if len(value) > max_value_bytes:
        raise value_too_large("value", max_value_bytes)
    return value


def _nothing() -> None:
    """A read that reads nothing: awaiting it through the log is a barrier."""


# -- the core ----------------------------------------------------------------------------------------


class FlareDBCore:
    """FlareDB's operations: validate, then propose writes to the log or read the project files."""

    def __init__(self, machine: FlareDBStateMachine, log: Log, version: str, projects: Projects | None = None,
                 limits: Limits | None = None):
        self.machine = machine
        self.log = log
        self.version = version
        self.projects = projects  # IAM, for the org of a project an org-scoped token names
        self.limits = limits or Limits()
        self.readers = ReadPool(machine.files, self.limits)
        self.heavy = HeavyWriters()

    # -- who acts on which project --

    async def project(self, requested: str, action: str) -> str:
        """The project the current caller acts on, once it may do action there: a project-scoped
        token's own project, or the one the request names (`project_id`) for a system-scoped token,
        or for an org-scoped token whose org IAM says the project belongs to (asked with the
        caller's own token)."""
        principal = auth.current()
        if principal is None:  # no authentication (tests of the core)
            return check_project_id(requested)
        principal.require(action)
        scope = principal.scope
        if scope.kind == PROJECT:
            if requested and requested != scope.project_id:
                raise PermissionDenied("the project lies outside the token's scope",
                                       {"reason": "OUT_OF_SCOPE", "action": action, "scope": scope.as_dict()})
            return check_project_id(scope.project_id)
        if not requested:
            raise InvalidArgument(f"a token scoped to {'the system' if scope.kind == SYSTEM else 'an org'} names the "
                                  "project: give project_id", {"field": "project_id"})
        check_project_id(requested)
        if scope.kind == ORG:
            if self.projects is None:
                raise PermissionDenied("this FlareDB cannot ask IAM which org a project belongs to: use a token "
                                       "scoped to the project", {"reason": "PROJECT_SCOPE_REQUIRED", "action": action})
            principal.require(action, await self.projects.org_of(requested), requested)
        return requested

    # -- reads with a consistency level --

    async def _read(self, project_id: str, read: Callable[[sqlite3.Connection, Deadline], T],
                    consistency: Consistency) -> T:
        """read(connection, deadline) on one of the project's readers, as fresh as consistency asks."""
        if consistency is Consistency.STRONG:
            await self._barrier()
        elif consistency is Consistency.WEAK and self.log.status().role != "LEADER":
            raise Unavailable("this member is not the leader: send weak reads to the leader, or ask for "
                              "consistency none (this member's state) or strong", {"leader": self.leader_urls()})
        return await self.readers.run(project_id, read)

    async def _barrier(self) -> None:
        """Return once this member has applied every write acknowledged anywhere before the call:
        readers then see them all (a write is committed before it is acknowledged)."""
        if isinstance(self.log, LocalLog):
            return  # one member: every write it acknowledged is committed already
        await self.log.read(_nothing, linearizable=True)

    def leader_urls(self) -> dict[str, str] | None:
        """Where clients reach the leader (None: no leader known)."""
        leader = next((m for m in self.log.members() if m.is_leader), None)
        return dict(leader.client_urls) if leader is not None else None

    # -- SQL --

    async def execute(self, project_id: str, statements: Sequence[Statement],
                      consistency: Consistency = Consistency.WEAK,
                      principal: Principal | None = None) -> list[StatementResult]:
        """Run statements: read-only ones with the consistency asked for, others through the log as
        one transaction (all or nothing)."""
        checked = check_statements(statements, self.limits.max_value_bytes)
        if all(sql.is_read_only(s.sql) for s in checked):
            limits = self.limits

            def query(conn: sqlite3.Connection, deadline: Deadline) -> list[StatementResult]:
                authorizer = sql.Authorizer()  # one per read: it keeps the reason of its last refusal
                return run_statements(conn, checked, authorizer, authorizer.read, deadline,
                                      ResultMeter(limits.max_result_rows, limits.max_result_bytes))

            return await self._read(project_id, query, consistency)
        if principal is not None:
            principal.require(SQL_WRITE)
        for i, statement in enumerate(checked):
            reason = sql.clock_use(statement.sql)
            if reason is not None:
                raise InvalidArgument(
                    f"statement {i}: {reason} reads the clock or the time zone, which would differ between "
                    "replicas; compute the time in the client and pass it as a parameter",
                    {"statement_index": i, "reason": "CLOCK", "field": f"statements.{i}.sql"})
        command = ExecuteSql(project_id, checked, self.limits.for_writes())
        return await self.heavy.write(project_id, lambda: self.log.propose(command))

    async def tables(self, project_id: str, page_size: int = 0, page_token: str = "",
                     consistency: Consistency = Consistency.WEAK) -> TablePage:
        """The project's tables, by name."""
        limit = paging.page_size(page_size)
        after = str(paging.decode_token(page_token).get("after", "")) if page_token else ""
        found = await self._read(project_id, lambda conn, _: read_tables(conn, after, limit + 1), consistency)
        token = paging.encode_token({"after": found[limit - 1].name}) if len(found) > limit else ""
        return TablePage(found[:limit], token)

    async def table(self, project_id: str, name: str, consistency: Consistency = Consistency.WEAK) -> Table:
        """One table: columns, indexes, row count."""
        if name.lower().startswith(sql.INTERNAL_PREFIX):
            raise NotFound(f"table {name!r} not found", {"table": name})
        found = await self._read(project_id, lambda conn, _: read_tables(conn, "", 1, name), consistency)
        if not found:
            raise NotFound(f"table {name!r} not found", {"table": name})
        return found[0]

    async def backup(self, project_id: str, consistency: Consistency = Consistency.WEAK) -> bytes:
        """The project's database as a SQLite file."""
        files = self.machine.files
        return await self._read(project_id, lambda conn, _: files.backup(project_id, conn), consistency)

    async def restore(self, project_id: str, data: bytes) -> RestoreResult:
        """Replace the project's database with a SQLite file (one made by backup). The file is checked
        here, so that one no member would take never enters the log, and again by every member."""
        if not data.startswith(SQLITE_HEADER):
            raise InvalidArgument("the body is not a SQLite database file", {"field": "data"})
        limits = self.limits.for_writes()
        await asyncio.to_thread(self.machine.files.check, project_id, data, limits)
        result: RestoreResult = await self.log.propose(RestoreDatabase(project_id, bytes(data), limits))
        return result

    # -- KV --

    async def create_namespace(self, project_id: str, name: str, mode: Mode) -> Namespace:
        """Declare a namespace."""
        result: Namespace = await self.log.propose(CreateNamespace(project_id, check_namespace(name), mode))
        return result

    async def namespaces(self, project_id: str, page_size: int = 0, page_token: str = "") -> NamespacePage:
        """The project's namespaces, by name."""
        limit = paging.page_size(page_size)
        after = str(paging.decode_token(page_token).get("after", "")) if page_token else ""
        found = await self.readers.run(project_id, lambda conn, _: read_namespaces(conn, after, limit + 1))
        token = paging.encode_token({"after": found[limit - 1].name}) if len(found) > limit else ""
        return NamespacePage(found[:limit], token)

    async def namespace(self, project_id: str, name: str) -> Namespace:
        """One namespace, with its number of keys."""
        check_namespace(name)
        return await self._kv_read(project_id, name, lambda conn: read_namespace(conn, name))

    async def _kv_read(self, project_id: str, namespace: str, query: Callable[[sqlite3.Connection], T]) -> T:
        """A read of a namespace: linearizable if it is strong, from this member's state if eventual.
        The namespace's mode and the query are read in one trip to a reading thread when no barrier has
        to come between them (an eventual namespace; any namespace on a single member, where every
        acknowledged write is applied already)."""
        alone = isinstance(self.log, LocalLog)

        def mode_and_query(conn: sqlite3.Connection, after_barrier: bool) -> tuple[Mode | None, list[T]]:
            mode = namespace_mode(conn, namespace)
            ready = mode is Mode.EVENTUAL or (mode is not None and (alone or after_barrier))
            return mode, [query(conn)] if ready else []

        mode, found = await self.readers.run(project_id, lambda conn, _: mode_and_query(conn, False))
        if found:
            return found[0]
        if mode is None and alone:
            raise no_namespace(namespace)
        # A strong namespace's read waits for every write acknowledged before it; a namespace not
        # seen here may be declared but not applied on this member yet.
        await self._barrier()
        mode, found = await self.readers.run(project_id, lambda conn, _: mode_and_query(conn, True))
        if not found:
            raise no_namespace(namespace)
        return found[0]

    async def get(self, project_id: str, namespace: str, key: bytes) -> Entry:
        """A key's value and version."""
        check_namespace(namespace)
        check_key(key)
        found = await self._kv_read(project_id, namespace, lambda conn: read_get(conn, namespace, key))
        if found is None:
            raise NotFound(f"key {key.decode(errors='backslashreplace')!r} not found",
                           {"namespace": namespace, "key": key.decode(errors="backslashreplace")})
        return found

    async def scan(self, project_id: str, namespace: str, start: bytes = b"", end: bytes = b"",
                   limit: int = 0) -> ScanResult:
        """Keys in [start, end), at most limit (default DEFAULT_SCAN_LIMIT, at most MAX_SCAN_LIMIT), and at
        most --max-result-bytes of keys and values (but at least one key): has_more says where to go on."""
        check_namespace(namespace)
        limit = paging.page_size(limit, DEFAULT_SCAN_LIMIT, MAX_SCAN_LIMIT)
        if end and end <= start:
            raise InvalidArgument("end must be after start (or empty: no end)", {"field": "end"})
        max_bytes = self.limits.max_result_bytes
        return await self._kv_read(project_id, namespace,
                                   lambda conn: read_scan(conn, namespace, start, end, limit, max_bytes))

    async def put(self, project_id: str, namespace: str, key: bytes, value: bytes) -> PutResult:
        """Write a key of an eventual namespace."""
        result: PutResult = await self.log.propose(KvPut(project_id, check_namespace(namespace), check_key(key),
                                                         check_kv_value(value, self.limits.max_value_bytes)))
        return result

    async def delete(self, project_id: str, namespace: str, key: bytes) -> DeleteResult:
        """Delete a key of an eventual namespace (deleted 0 if it did not exist)."""
        result: DeleteResult = await self.log.propose(KvDelete(project_id, check_namespace(namespace), check_key(key)))
        return result

    async def cas(self, project_id: str, namespace: str, key: bytes, value: bytes, expected_version: int,
                  delete: bool = False) -> CasResult:
        """Write (or delete) a key of a strong namespace if its version is expected_version (0: absent)."""
        if expected_version < 0:
            raise InvalidArgument("expected_version is 0 (absent) or a version", {"field": "expected_version"})
        result: CasResult = await self.log.propose(KvCas(project_id, check_namespace(namespace), check_key(key),
                                                         check_kv_value(value, self.limits.max_value_bytes),
                                                         expected_version, delete))
        return result

    # -- the member --

    def log_status(self) -> LogStatus:
        """This member's place in the log."""
        return self.log.status()

    async def status(self) -> Status:
        """This member, its log and its files."""
        s = self.log.status()
        projects, size = await self.log.read(lambda: (len(self.machine.files.projects()),
                                                      self.machine.files.size_bytes()))
        return Status(s.member_id, s.leader, s.role, s.term, s.index, projects, size)

    def members(self) -> list[Member]:
        """Every member of the cluster."""
        return self.log.members()

    async def close(self) -> None:
        """Stop the log and the readers (the files are closed by whoever opened them)."""
        await self.log.close()
        await asyncio.to_thread(self.readers.close)
