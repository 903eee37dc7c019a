"""FlareDB's reads: run on read-only connections on threads of their own, never on the state
machine's thread, so that a long read of one project delays neither another project's reads nor
anyone's writes.

A project's file is in WAL mode: its readers see its last committed state while a write is being
applied, and a write is committed before it is acknowledged, so a read sees every write acknowledged
before it began on this member (the core adds the log's barrier for strong reads). Each read runs
under a deadline (`Deadline`, checked every few thousand SQLite steps), and a project keeps at most
half of the threads busy, so one tenant's slow reads leave room for the others'.

When a file is replaced (a restore, a snapshot installed) its generation changes, and connections
opened on the old file are closed instead of reused.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol, TypeVar

from .limits import Deadline, Limits, install

T = TypeVar("T")
IDLE_CONNECTIONS = 64  # read-only connections kept open between reads, over every project


class ReadableFiles(Protocol):
    """What the pool needs from the project files (store.ProjectFiles)."""

    def generation(self, project_id: str) -> Hashable:
        """A value that changes whenever the project's file is replaced."""

    def open_reader(self, project_id: str) -> tuple[sqlite3.Connection, bool]:
        """A new read-only connection to the project's database (an empty one if it has none), and
        whether it is the project's file (False: the empty stand-in, never kept)."""


Read = Callable[[sqlite3.Connection, Deadline], T]


class ReadPool:
    """Threads and read-only connections serving reads, at most half of the threads per project."""

    def __init__(self, files: ReadableFiles, limits: Limits):
        self.files = files
        self.limits = limits
        self._threads = ThreadPoolExecutor(limits.read_threads, thread_name_prefix="flaredb-read")
        self._per_project = max(1, limits.read_threads // 2)
        self._gates: dict[str, tuple[asyncio.Semaphore, list[int]]] = {}  # project -> (gate, [readers using it])
        self._idle: OrderedDict[tuple[str, int], tuple[Hashable, sqlite3.Connection]] = OrderedDict()
        self._lock = threading.Lock()  # guards _idle (threads check connections in and out)
        self._serial = 0

    async def run(self, project_id: str, read: Read[T]) -> T:
        """read(connection, deadline) on a reading thread, once the project has a thread free."""
        gate, users = self._gates.setdefault(project_id, (asyncio.Semaphore(self._per_project), [0]))
        users[0] += 1
        try:
            await gate.acquire()
        except BaseException:
            self._leave(project_id, users)
            raise
        future = asyncio.get_running_loop().run_in_executor(self._threads, self._run, project_id, read)

        def release(done: asyncio.Future[T]) -> None:
            gate.release()
            self._leave(project_id, users)
            if not done.cancelled():
                done.exception()  # retrieved: a caller that gave up leaves no "never retrieved" warning

        # The thread holds the project's share until the read ends, even if the caller gave up.
        future.add_done_callback(release)
        return await asyncio.shield(future)

    def _leave(self, project_id: str, users: list[int]) -> None:
        users[0] -= 1
        if users[0] == 0:
            self._gates.pop(project_id, None)

    def _run(self, project_id: str, read: Read[T]) -> T:
        conn, stamp = self._checkout(project_id)
        deadline = Deadline(self.limits.read_timeout_ms)
        reusable = False
        try:
            install(conn, deadline, self.limits.length)
            result = read(conn, deadline)
            reusable = not conn.in_transaction
            return result
        finally:
            self._checkin(project_id, conn, stamp, reusable)

    def _checkout(self, project_id: str) -> tuple[sqlite3.Connection, Hashable | None]:
        stamp = self.files.generation(project_id)  # read before opening: a file replaced meanwhile is stale
        with self._lock:
            for key in [k for k in reversed(self._idle) if k[0] == project_id]:
                kept, conn = self._idle.pop(key)
                if kept == stamp:
                    return conn, stamp
                conn.close()  # its file was replaced
        conn, is_file = self.files.open_reader(project_id)
        return conn, stamp if is_file else None

    def _checkin(self, project_id: str, conn: sqlite3.Connection, stamp: Hashable | None, reusable: bool) -> None:
        conn.set_progress_handler(None, 0)
        conn.set_authorizer(None)
        if not reusable or stamp is None or stamp != self.files.generation(project_id):
            conn.close()
            return
        with self._lock:
            self._serial += 1
            self._idle[(project_id, self._serial)] = (stamp, conn)
            while len(self._idle) > IDLE_CONNECTIONS:
                _, (_, oldest) = self._idle.popitem(last=False)
                oldest.close()

    def close(self) -> None:
        """Wait for the reads in flight (each ends by its deadline), then close every connection."""
        self._threads.shutdown(wait=True)
        with self._lock:
            while self._idle:
                _, (_, conn) = self._idle.popitem()
                conn.close()
