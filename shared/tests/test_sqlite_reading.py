"""SqliteState's snapshot reads: reading() sees one snapshot of the last commit, never the writer's
uncommitted changes, follows a restore, and closes with the store; LocalLog runs reads there, and
Scans on its worker."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from pathlib import Path
from typing import Any

import pytest

from photoncloud.common.replication import LocalLog, Scan
from photoncloud.common.sqlite import SqliteState, SqliteStateMachine

SCHEMA = "CREATE TABLE IF NOT EXISTS items (name TEXT PRIMARY KEY, value INTEGER NOT NULL);"


class Items(SqliteState):
    """Named numbers."""

    SCHEMA = SCHEMA

    def put(self, name: str, value: int) -> None:
        self.db.execute("INSERT OR REPLACE INTO items VALUES (?, ?)", (name, value))

    def get(self, name: str) -> int | None:
        row = self.db.execute("SELECT value FROM items WHERE name = ?", (name,)).fetchone()
        return row[0] if row else None


class Captures(Items):
    """Reads the number of items once per snapshot."""

    def capture(self) -> int:
        return int(self.db.execute("SELECT COUNT(*) FROM items").fetchone()[0])


class ItemsMachine(SqliteStateMachine):
    """Commands are (name, value) puts."""

    store: Items
    snapshot_reads = True

    def execute(self, command: Any) -> None:
        self.store.put(*command)


def committed(store: Items, name: str, value: int) -> None:
    with store.transaction():
        store.put(name, value)


def writer_thread(store: Items, name: str, value: int) -> None:
    """Commit a put on another thread (as the state machine's would), and wait for it."""
    thread = threading.Thread(target=committed, args=(store, name, value))
    thread.start()
    thread.join()


@pytest.fixture
def store(tmp_path: Path) -> Any:
    items = Items(tmp_path / "items.db")
    committed(items, "a", 1)
    yield items
    items.close()


def test_a_reading_sees_one_snapshot_and_the_next_one_sees_later_commits(store: Items) -> None:
    with store.reading():
        assert store.get("a") == 1
        writer_thread(store, "a", 2)
        writer_thread(store, "b", 3)
        assert store.get("a") == 1  # still the snapshot it began with
        assert store.get("b") is None
    with store.reading():
        assert (store.get("a"), store.get("b")) == (2, 3)


def test_the_writers_uncommitted_changes_are_invisible_to_readers(store: Items) -> None:
    with store.transaction():
        store.put("a", 5)
        assert store.get("a") == 5  # the writer sees its own change
        with store.reading():
            assert store.get("a") == 1
    with store.reading():
        assert store.get("a") == 5


def test_reading_nested_keeps_the_snapshot_and_capture_runs_once_per_snapshot(tmp_path: Path) -> None:
    store = Captures(tmp_path / "items.db")
    try:
        committed(store, "a", 1)
        assert store.captured() is None  # outside reading()
        with store.reading():
            assert store.captured() == 1
            writer_thread(store, "b", 2)
            with store.reading():
                assert store.captured() == 1
                assert store.get("b") is None
            assert store.db is not store._db  # still inside the outer one
        assert store.captured() is None
        assert store.db is store._db
        with store.reading():
            assert store.captured() == 2
    finally:
        store.close()


def test_a_read_connection_cannot_write(store: Items) -> None:
    with store.reading(), pytest.raises(sqlite3.OperationalError, match="readonly"):
        store.put("a", 9)


def test_each_thread_reads_through_its_own_connection(store: Items) -> None:
    seen: list[sqlite3.Connection] = []

    def read() -> None:
        with store.reading():
            seen.append(store.db)

    for _ in range(2):
        read()
        thread = threading.Thread(target=read)
        thread.start()
        thread.join()
    here, there, again, elsewhere = seen
    assert here is again  # reused by its thread
    assert len({id(here), id(there), id(elsewhere), id(store._db)}) == 4


def test_readers_return_rows_as_the_writer_does(tmp_path: Path) -> None:
    class Rows(Items):
        def _open(self) -> None:
            super()._open()
            self.db.row_factory = sqlite3.Row

    store = Rows(tmp_path / "rows.db")
    try:
        committed(store, "a", 1)
        with store.reading():
            row = store.db.execute("SELECT name, value FROM items").fetchone()
        assert (row["name"], row["value"]) == ("a", 1)
    finally:
        store.close()


def test_after_a_restore_readers_read_the_new_file(store: Items, tmp_path: Path) -> None:
    copy = str(tmp_path / "copy.db")
    committed(store, "a", 7)
    store.snapshot(copy)
    committed(store, "a", 8)
    with store.reading():
        old = store.db
        assert store.get("a") == 8
    store.restore(copy)
    with pytest.raises(sqlite3.ProgrammingError):  # the old file's reader is closed
        old.execute("SELECT 1")
    with store.reading():
        assert store.get("a") == 7
    committed(store, "a", 9)
    with store.reading():
        assert store.get("a") == 9


def test_close_closes_every_read_connection(store: Items) -> None:
    connections: list[sqlite3.Connection] = []

    def read() -> None:
        with store.reading():
            connections.append(store.db)

    read()
    thread = threading.Thread(target=read)
    thread.start()
    thread.join()
    writer = store._db
    store.close()
    for connection in [*connections, writer]:
        with pytest.raises(sqlite3.ProgrammingError):
            connection.execute("SELECT 1")


def test_only_a_file_and_a_machine_that_says_so_offer_snapshot_reads(tmp_path: Path) -> None:
    memory = Items(":memory:")
    assert not memory.concurrent_reads
    assert ItemsMachine(memory).reading() is None  # one connection: reads stay on the applying thread
    memory.close()
    store = Items(tmp_path / "items.db")
    try:
        assert store.concurrent_reads
        assert ItemsMachine(store).reading() is not None
        assert SqliteStateMachine(store).reading() is None  # not offered unless a machine says so
    finally:
        store.close()


async def test_local_log_reads_on_the_loop_and_scans_on_its_worker(tmp_path: Path) -> None:
    store = Items(tmp_path / "items.db")
    log = LocalLog(ItemsMachine(store))
    try:
        await log.propose(("a", 1))

        def where() -> tuple[int, int | None]:
            return threading.get_ident(), store.get("a")

        loop_thread = threading.get_ident()
        assert await log.read(where) == (loop_thread, 1)
        worker, value = await log.read(Scan(where))
        assert value == 1 and worker != loop_thread
        await asyncio.gather(*(log.propose(("a", n)) for n in range(2, 6)))
        assert await log.read(where) == (loop_thread, 5)  # every acknowledged command
    finally:
        await log.close()
        store.close()


def test_a_restored_file_and_its_rename_are_flushed_to_disk(store: Items, tmp_path: Path, monkeypatch) -> None:
    # A snapshot installed from the leader replaces the state: the file must be on disk before the
    # old state goes, and its new name too, or a power loss could leave neither.
    import os

    from photoncloud.common import sqlite

    copy = tmp_path / "copy.db"
    store.snapshot(str(copy))
    synced: list[str] = []
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        synced.append(os.readlink(f"/proc/self/fd/{fd}"))
        real_fsync(fd)

    monkeypatch.setattr(sqlite.os, "fsync", fsync)
    store.restore(str(copy))
    assert str(copy) in synced
    assert str(Path(store.path).parent) in synced
