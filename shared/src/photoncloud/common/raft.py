"""A replicated log: the `Log` protocol on Raft (pysyncobj), for services with several members.

A leader appends each proposed command to the Raft log; once a majority has stored it, every member
applies it to its own state machine with `machine.apply(index, command)`, in log order, and the
leader hands the result back to the proposer. The core above the log is the same as with LocalLog.

Index handling. The index passed to `apply` is the Raft log index of the entry (pysyncobj's
`raftLastApplied + 1` while the entry is being applied), so it is identical on every member. Indexes
strictly increase but may have gaps: Raft's own entries (a new leader's no-op, read barriers) take
indexes too and are not passed to the state machine. The state machine keeps its applied index
durably; pysyncobj replays its journal from the start on every restart, and entries at or below
`machine.applied_index()` are skipped, so nothing is applied twice.

Durability. With `fsync=True` (the default) every journal write (entry appends, truncations) is
flushed to disk (msync) before pysyncobj goes on, which is before it acknowledges the entry to the
leader, and the term and vote are fsynced before they are acted on; an acknowledged command then
survives a power loss of any minority of members. With `fsync=False` the journal is written through
an mmap the OS flushes when it likes: a crash of the process loses nothing, but after an OS crash or
power loss a member may have applied (and durably committed, in its own fsynced store) entries its
journal no longer holds; such a member must be wiped (its data directory and its state) and rejoin,
since later entries at those indexes would be skipped. Either way, applied state is as durable as
the state machine's own commit (ChainFire's is an fsynced SQLite transaction).

Log compaction (pysyncobj's snapshots) is disabled: the state lives outside the SyncObj, in the
state machine, and the `StateMachine` protocol has no snapshot/restore yet, so a pysyncobj snapshot
would install an empty state on a lagging member. The journal therefore grows with every command; a
member that falls behind catches up by replaying entries. Nothing here blocks the event loop:
pysyncobj runs on its own thread, which also applies commands.

Reads. `read(query)` runs the query on a worker thread under the same lock as `apply`, so a read
never sees half of a command; it sees every command this member has applied (on the leader, every
command whose `propose` has returned). That is etcd's "serializable" read: a follower, or a deposed
leader, may be behind. `read(query, linearizable=True)` first commits a no-op barrier through the
log on the leader (raising Unavailable on a follower), so the query sees every command acknowledged
anywhere before the read began.

Security. pysyncobj sends pickled Python objects between members (commands are pickled too: they are
frozen dataclasses, and every member must run the same code). Unpickling untrusted bytes runs code,
so peer traffic is always encrypted and authenticated with the cluster secret (pysyncobj's
`password`: Fernet, i.e. AES-CBC + HMAC-SHA256, under a key derived from the secret with PBKDF2); a
member without the secret cannot connect, and the secret is required. pysyncobj derives the key
with a fixed salt, so the secret must be long and random (not a password a person chose). The peer
port binds only to the configured address.

Threads. `apply` runs on pysyncobj's tick thread, so a slow command (or a long read, which holds the
same lock) delays heartbeats; commands must stay short. Results go back to the event loop with
`call_soon_threadsafe`; a proposal whose outcome is not known in time raises Unavailable (the
command may still commit: callers retry only idempotent commands, as with any replicated store).
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated
from pysyncobj.journal import FileJournal

from photoncloud.common.errors import Unavailable
from photoncloud.common.replication import LogStatus, StateMachine

T = TypeVar("T")

log = logging.getLogger("photoncloud.raft")

_ROLES = {0: "FOLLOWER", 1: "CANDIDATE", 2: "LEADER"}
_NEVER = 2**62  # log compaction thresholds that are never reached


@dataclass(frozen=True)
class RaftMember:
    """One member of the cluster as this member sees it."""

    member_id: int
    address: str
    is_self: bool
    is_leader: bool


class _FsyncJournal(FileJournal):
    """pysyncobj's file journal, flushed to disk after every change."""

    def __init__(self, path: str):
        super().__init__(path)
        self._path = path

    def add(self, command: bytes, idx: int, term: int) -> None:
        super().add(command, idx, term)
        self.flush()

    def clear(self) -> None:
        super().clear()
        self.flush()

    def deleteEntriesFrom(self, entryFrom: int) -> None:
        super().deleteEntriesFrom(entryFrom)
        self.flush()

    def deleteEntriesTo(self, entryTo: int) -> None:
        super().deleteEntriesTo(entryTo)
        self.flush()

    def setCurrentTerm(self, term: int, votedForNodeId: Any) -> None:
        super().setCurrentTerm(term, votedForNodeId)
        _fsync_file(self._path + ".meta")


def _fsync_file(path: str) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except FileNotFoundError:
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    dir_fd = os.open(os.path.dirname(path) or ".", os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _Node(SyncObj):
    """The pysyncobj object: its replicated methods run on its tick thread, in log order."""

    def __init__(self, owner: RaftLog, self_address: str, others: list[str], conf: SyncObjConf, fsync: bool):
        self._owner = owner
        super().__init__(self_address, others, conf)
        if fsync:
            # Swap in the fsyncing journal before the first tick (autoTick is off, nothing ran yet).
            journal = self._SyncObj__raftLog
            assert isinstance(journal, FileJournal), "pysyncobj's journal layout changed"
            journal._destroy()
            self._SyncObj__raftLog = _FsyncJournal(conf.journalFile)
            _fsync_file(conf.journalFile)

    @replicated
    def _command(self, command: Any) -> Any:
        return self._owner._apply_entry(self.raftLastApplied + 1, command)

    @replicated
    def _barrier(self) -> None:
        return None

    def _state(self) -> int:
        return self._SyncObj__raftState


class RaftLog:
    """A member of a Raft-replicated log: propose on the leader, apply everywhere in log order."""

    def __init__(
        self,
        machine: StateMachine,
        self_address: str,
        peers: Sequence[str] | Mapping[int, str],
        secret: str,
        data_dir: Path,
        member_id: int,
        *,
        bind_address: str | None = None,
        fsync: bool = True,
        election_timeout: tuple[float, float] = (0.4, 1.4),
        heartbeat: float = 0.1,
        connection_retry: float = 1.0,
        propose_timeout: float = 10.0,
    ):
        """peers: the other members' "host:port", or {member_id: "host:port"} (self may be included).

        With a plain list, member ids are the 1-based positions of the addresses (self included) in
        sorted order, the same on every member, and member_id must match this member's position.
        """
        if not secret:
            raise ValueError("a cluster secret is required: peer traffic is pickled")
        self.machine = machine
        self.member_id = member_id
        self.self_address = self_address
        if isinstance(peers, Mapping):
            ids = {address: mid for mid, address in peers.items()}
            ids[self_address] = member_id
        else:
            ordered = sorted(set(peers) | {self_address})
            ids = {address: position + 1 for position, address in enumerate(ordered)}
            if ids[self_address] != member_id:
                raise ValueError(f"member_id {member_id} is not {self_address}'s position {ids[self_address]}")
        if len(set(ids.values())) != len(ids):
            raise ValueError("member ids must be unique")
        self._ids = ids
        self._propose_timeout = propose_timeout
        self._lock = threading.Lock()  # held by apply and by reads
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="raft-read")
        self._pending: set[asyncio.Future[Any]] = set()
        self._stopping = threading.Event()
        self._closed = False
        data_dir = Path(data_dir)
        data_dir.mkdir(parents=True, exist_ok=True)
        low, high = election_timeout
        conf = SyncObjConf(
            password=secret,
            bindAddress=bind_address or self_address,
            journalFile=str(data_dir / "raft.journal"),
            appendEntriesUseBatch=True,
            autoTick=False,
            raftMinTimeout=low,
            raftMaxTimeout=high,
            appendEntriesPeriod=heartbeat,
            connectionTimeout=max(3.5, high),
            connectionRetryTime=connection_retry,
            logCompactionMinEntries=_NEVER,
            logCompactionMinTime=_NEVER,
            dynamicMembershipChange=False,
        )
        others = [address for address in ids if address != self_address]
        self._node = _Node(self, self_address, others, conf, fsync)
        self._thread = threading.Thread(target=self._run, name=f"raft-{member_id}", daemon=True)
        self._thread.start()

    # -- the tick thread ------------------------------------------------------------------------

    def _run(self) -> None:
        try:
            while not self._stopping.is_set():
                try:
                    self._node.doTick(0.02)
                except Exception:
                    log.exception("raft tick failed")
                    self._stopping.wait(0.1)
        finally:
            self._node._doDestroy()

    def _apply_entry(self, index: int, command: Any) -> Any:
        """Apply one committed entry (on the tick thread); entries already applied are skipped."""
        with self._lock:
            if index <= self.machine.applied_index():
                return None
            return self.machine.apply(index, command)

    # -- the Log protocol -----------------------------------------------------------------------

    async def propose(self, command: Any) -> Any:
        """Replicate command and return the result of applying it (raising the error it gave)."""
        result = await self._replicate(self._node._command, command)
        if isinstance(result, Exception):
            raise result
        return result

    async def read(self, query: Callable[[], T], *, linearizable: bool = False) -> T:
        """Run query under the apply lock; linearizable: after a barrier committed by the leader."""
        if linearizable:
            await self._replicate(self._node._barrier)
        self._check_open()

        def locked() -> T:
            with self._lock:
                return query()

        return await asyncio.get_running_loop().run_in_executor(self._reader, locked)

    def status(self) -> LogStatus:
        """Role, leader id (0: unknown), term and this member's applied index."""
        role = _ROLES[self._node._state()]
        leader = self._node._getLeader()
        leader_id = self._ids.get(leader.address, 0) if leader is not None else 0
        return LogStatus(self.member_id, leader_id, role, self._node.raftCurrentTerm, self.machine.applied_index())

    def members(self) -> list[RaftMember]:
        """Every member of the cluster, by member id."""
        leader = self.leader_address()
        return sorted(
            (RaftMember(mid, address, address == self.self_address, address == leader)
             for address, mid in self._ids.items()),
            key=lambda member: member.member_id,
        )

    def leader_address(self) -> str | None:
        """The last known leader's address, or None."""
        leader = self._node._getLeader()
        return leader.address if leader is not None else None

    async def close(self) -> None:
        """Stop taking part in the cluster; proposals in flight fail with Unavailable."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        await asyncio.to_thread(self._thread.join)
        for future in list(self._pending):
            if not future.done():
                future.set_exception(Unavailable("the member stopped; the outcome of the command is unknown"))
        await asyncio.get_running_loop().run_in_executor(None, self._reader.shutdown)

    # -- helpers ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the member is stopping")

    def _not_leader(self) -> Unavailable:
        leader = self.leader_address()
        return Unavailable("this member is not the leader", {"leader": leader})

    async def _replicate(self, method: Callable[..., Any], *args: Any) -> Any:
        self._check_open()
        if self._node._state() != 2:
            raise self._not_leader()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: int) -> None:  # on the event loop
            if future.done():
                return
            if error == FAIL_REASON.SUCCESS:
                future.set_result(result)
            elif error in (FAIL_REASON.MISSING_LEADER, FAIL_REASON.REQUEST_DENIED):  # never appended
                future.set_exception(self._not_leader())
            elif error == FAIL_REASON.QUEUE_FULL:
                future.set_exception(Unavailable("too many commands in flight; retry later"))
            else:  # NOT_LEADER, DISCARDED, LEADER_CHANGED, UNKNOWN_OUTCOME: it may or may not commit
                future.set_exception(Unavailable("leadership changed; the outcome of the command is unknown",
                                                 {"leader": self.leader_address()}))

        def callback(result: Any, error: int) -> None:  # on the tick thread
            try:
                loop.call_soon_threadsafe(settle, result, error)
            except RuntimeError:  # the loop has closed; nobody is waiting
                pass

        self._pending.add(future)
        try:
            method(*args, callback=callback)
            return await asyncio.wait_for(asyncio.shield(future), self._propose_timeout)
        except TimeoutError:
            raise Unavailable("no majority committed the command in time; its outcome is unknown",
                              {"leader": self.leader_address()}) from None
        finally:
            self._pending.discard(future)
