"""A replicated log: the `Log` protocol on Raft (pysyncobj), for services with several members.

A leader appends each proposed command to the Raft log; once a majority has stored it, every member
applies it to its own state machine with `machine.apply(index, command)`, in log order, and the
proposer gets the result. Any member takes proposals: a follower forwards the command to the leader
and hands back the result of applying it itself (the same result: the state machine is
deterministic). The core above the log is the same as with LocalLog.

Members. A member is named by its peer address ("host:port"); its id is `member_id(address)`, so
every member computes the same ids without a table. Each member publishes where clients reach it
(its REST and gRPC addresses) through the log, so every member can list every other. Members are
added and removed one at a time through the log (Raft's single-server changes); the leader cannot
remove itself: stop it, and remove it from the member that leads next. pysyncobj has no pre-vote:
a member started before it is added calls elections nobody answers, and once added its higher
term may make the cluster elect a leader again (a pause of about one election timeout).

Index handling. The index passed to `apply` is the Raft log index of the entry (pysyncobj's
`raftLastApplied + 1` while the entry is being applied), so it is identical on every member. Indexes
strictly increase but may have gaps: Raft's own entries (a new leader's no-op, read barriers,
membership changes) take indexes too and are not passed to the state machine. The state machine
keeps its applied index durably; on restart pysyncobj replays its journal (from the last snapshot),
and entries at or below `machine.applied_index()` are skipped, so nothing is applied twice.

Snapshots. Once the journal holds `snapshot_entries` entries, the member writes a snapshot (the
state machine's `snapshot(path)`, taken on the applying thread so it is exactly the state at the
last applied index, with Raft's bookkeeping in front) and drops the journal up to it. A member too
far behind for the leader's journal receives the snapshot and `restore`s it; on restart a member
whose own state is already past its snapshot keeps its state. Snapshots run on pysyncobj's thread:
they delay heartbeats for as long as the state machine takes to copy itself, never the event loop.

Durability. With `fsync=True` (the default) journal appends are flushed to disk (fdatasync) once per
batch, before any of them counts: a follower flushes before it acknowledges an append message (all
its entries at once), a leader before it counts its own copy towards a commit (at the start of each
tick, and right after it sends new entries to the followers, so that both disks work at once);
truncations are flushed at once, and the term and vote are fsynced before they are acted on. An
acknowledged command then survives a power loss of any minority of members. With `fsync=False` the
journal is written through an mmap the OS flushes when it likes: a crash of the process loses
nothing, but after an OS crash or power loss a member may have applied (and durably committed, in
its own fsynced store) entries its journal no longer holds; such a member must be wiped (its data
directory and its state) and rejoin, since later entries at those indexes would be skipped. Either
way, applied state is as durable as the state machine's own commit (ChainFire's is an fsynced SQLite
transaction). When several commands commit at once and the state machine has `apply_batch`, they
are applied together, in one commit of the state machine; each proposer still gets its own result.

Reads. `read(query)` runs the query on a worker thread under the same lock as `apply`, so a read
never sees half of a command; it sees every command this member has applied. That is etcd's
"serializable" read: a follower, or a deposed leader, may be behind. `read(query, linearizable=True)`
first waits until this member has applied the leader's commit index as it stood after the read began,
confirmed by a majority (Raft's ReadIndex, see `_ReadIndex`: no log entry, no disk write), so the
query sees every command acknowledged anywhere before the read began (on a follower too). A leader
cut off from the majority cannot confirm itself and serves no linearizable read; there is no leader
lease (pysyncobj has no pre-vote or check-quorum to make one safe).

Security. pysyncobj sends pickled Python objects between members (commands are pickled too: they are
frozen dataclasses, and every member must run the same code). Unpickling untrusted bytes runs code,
so peer traffic is always encrypted and authenticated with the cluster secret (pysyncobj's
`password`: Fernet, i.e. AES-CBC + HMAC-SHA256, under a key derived from the secret with PBKDF2); a
member without the secret cannot connect, and the secret is required. pysyncobj derives the key
with a fixed salt, so the secret must be long and random (not a password a person chose). The peer
port binds only to the configured address.

Threads. `apply` runs on pysyncobj's tick thread, so a slow command (or a long read, which holds the
same lock) delays heartbeats; commands must stay short. Proposals wake the tick thread at once, and
new entries go to the followers as soon as they are appended (pysyncobj's batched mode would wait
for the next heartbeat). Results go back to the event loop with `call_soon_threadsafe`; a proposal
whose outcome is not known in time raises Unavailable (the command may still commit: callers retry
only idempotent commands, as with any replicated store).
"""

from __future__ import annotations

import asyncio
import functools
import heapq
import itertools
import logging
import os
import pickle
import queue
import shutil
import socket
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, TypeVar

_INET_NTOP = socket.inet_ntop
from pysyncobj import FAIL_REASON, SyncObj, SyncObjConf, replicated  # noqa: E402
from pysyncobj.journal import FileJournal  # noqa: E402
from pysyncobj.node import TCPNode  # noqa: E402
from pysyncobj.pipe_notifier import PipeNotifier  # noqa: E402
from pysyncobj.syncobj import _COMMAND_TYPE  # noqa: E402

# pysyncobj's Windows shim replaces socket.inet_ntop on every platform (with one that fails outside
# Windows), for the whole process; the real one is put back.
socket.inet_ntop = _INET_NTOP

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound, Unavailable  # noqa: E402
from photoncloud.common.replication import MAX_BATCH, LogStatus, Member, StateMachine, member_id  # noqa: E402

T = TypeVar("T")

log = logging.getLogger("photoncloud.raft")

_ROLES = {0: "FOLLOWER", 1: "CANDIDATE", 2: "LEADER"}
_LEADER = 2
_NEVER = 2**31  # seconds: snapshots are triggered by the journal's length, not by time
_SNAPSHOT_FORMAT = 1
_REGULAR = bytes([_COMMAND_TYPE.REGULAR])  # the first byte of a journal entry that calls a replicated method


class _FsyncJournal(FileJournal):
    """pysyncobj's file journal, flushed to disk once per batch of appends (`sync`) and after
    every truncation."""

    def __init__(self, path: str):
        super().__init__(path)
        self._path = path
        self._unsynced = False
        # pysyncobj writes the journal through an mmap. On Linux msync(MS_SYNC) is an fdatasync of
        # the mapped range; fdatasync on a descriptor of the same file does the same for the whole
        # file, without going through Python's mmap.flush.
        self._fd = os.open(path, os.O_RDWR)

    def add(self, command: bytes, idx: int, term: int) -> None:
        super().add(command, idx, term)
        self._unsynced = True  # _Node syncs before the entry counts: before an ack, before a commit

    def sync(self) -> None:
        """Flush the appends made since the last flush (one fdatasync for a whole batch)."""
        if self._unsynced:
            self.flush()

    def flush(self) -> None:
        self._unsynced = False
        os.fdatasync(self._fd)

    def _destroy(self) -> None:
        super()._destroy()
        os.close(self._fd)

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


def check_address(address: str) -> str:
    """address if it is "host:port" with a valid port, else InvalidArgument."""
    host, _, port = address.rpartition(":")
    if not host or not (port.isascii() and port.isdigit()) or not 0 < int(port) < 65536:
        raise InvalidArgument(f"{address!r} is not a peer address host:port", {"field": "peer_address"})
    return address


Done = Callable[[str | None], None]  # a read's continuation: None once it may run, else why it cannot
Reply = Callable[[int | None, str | None], None]  # a read index for a waiting read, or why there is none


class _ReadIndex:
    """Linearizable reads without a log entry: Raft's ReadIndex (Ongaro's thesis, 6.4), on the tick thread.

    The leader takes its commit index as a read's index, once it has committed an entry of its own
    term (its no-op), and confirms that it still leads by a round of pings answered by a majority: a
    member answers only while its term is at most the leader's, so no later leader had been elected
    when the round started, and nothing committed before the read began lies past that index. Reads
    waiting together share one round. A follower asks the leader for the index, telling its term: its
    request answers for it as a ping would (and after its read began), so where the two make a
    majority (three members) the leader answers at once. Either then runs the read once it has
    applied that far. There is no lease: a leader cut off from the majority never confirms a round,
    so it serves no read that could be stale. A read that finds no leader, or whose leader changes
    before it has its index, is placed again (an index from any later leader is as good: it is
    confirmed after the read began), until it times out.
    """

    def __init__(self, node: _Node, timeout: float):
        self._node = node
        self._timeout = timeout
        self._requests: queue.SimpleQueue[Done] = queue.SimpleQueue()  # from the event loop
        self._unplaced: list[tuple[float, Done]] = []  # (deadline, done): waiting for a leader
        # As leader: replies without a round yet, rounds in flight (oldest first), and the last round
        # each member confirmed in this term.
        self._waiting: list[Reply] = []
        self._rounds: deque[tuple[int, float, int, list[Reply]]] = deque()  # round, deadline, index, replies
        self._round = 0
        self._term = -1
        self._confirmed: dict[str, int] = {}
        # As follower: reads whose index was asked of the leader (one request for the reads of a tick).
        self._asked: dict[int, list[tuple[float, Done]]] = {}
        self._request_ids = itertools.count(1)
        # Reads with their index, waiting for this member to apply that far: (index, order, done).
        self._unapplied: list[tuple[int, int, Done]] = []
        self._order = itertools.count()

    def request(self, done: Done) -> None:
        """Serve a read (from any thread): done(None) once this member has applied everything
        committed before the read began; done(reason) if that cannot be known in time."""
        self._requests.put(done)

    def tick(self) -> None:
        """Place new reads (and those still without a leader), start a round for those waiting,
        drop what waited too long."""
        node = self._node
        now = time.monotonic()
        while not self._requests.empty():
            self._unplaced.append((now + self._timeout, self._requests.get_nowait()))
        leader = node._state() == _LEADER
        if not leader:
            self._fail_rounds("leader_changed")
        unplaced, self._unplaced = self._unplaced, []
        ask = []
        for deadline, done in unplaced:
            if deadline < now:
                done("no_leader")
            elif leader:
                self._waiting.append(self._local(deadline, done))
            else:
                ask.append((deadline, done))
        if ask:
            self._ask_leader(ask)
        if leader:
            self._start_round()
        while self._rounds and self._rounds[0][1] < now:  # answered by no majority in time
            for reply in self._rounds.popleft()[3]:
                reply(None, "timeout")
        for request_id, reads in list(self._asked.items()):
            if any(deadline < now for deadline, _ in reads):
                del self._asked[request_id]
                if live := [read for read in reads if read[0] >= now]:
                    self._asked[request_id] = live
                for _, done in (read for read in reads if read[0] < now):
                    done("timeout")

    def handle(self, sender: Any, message: dict[str, Any]) -> bool:
        """Handle a read message from another member (False: not one)."""
        node = self._node
        kind = message.get("type")
        if kind == "read_ping":  # from a leader: confirm it, unless this member has seen a later term
            if message["term"] >= node.raftCurrentTerm:
                node._send(sender, {"type": "read_ack", "term": message["term"], "round": message["round"]})
        elif kind == "read_ack":
            if node._state() == _LEADER and message["term"] == self._term == node.raftCurrentTerm:
                address = sender.address
                self._confirmed[address] = max(self._confirmed.get(address, 0), message["round"])
                self._confirm()
        elif kind == "read_index":  # from a follower
            reply = functools.partial(self._answer, sender, message["request_id"])
            if node._state() != _LEADER:
                reply(None, "not_leader")
            elif (message["term"] <= node.raftCurrentTerm and sender in node._SyncObj__otherNodes
                  and self._own_term_committed() and self._majority(1)):
                # The request confirms this leader as a ping's answer would, after the read began:
                # with this member, the follower makes a majority, so no round is needed.
                reply(node.raftCommitIndex, None)
            else:
                self._waiting.append(reply)  # it waits for the next round
        elif kind == "read_index_reply":
            for deadline, done in self._asked.pop(message["request_id"], []):
                if message["index"] is not None:
                    self._serve(message["index"], done)
                elif message["error"] == "timeout":
                    done("timeout")
                else:
                    self._unplaced.append((deadline, done))
        else:
            return False
        return True

    def applied(self, index: int) -> None:
        """This member has applied up to index: run the reads waiting for it."""
        while self._unapplied and self._unapplied[0][0] <= index:
            heapq.heappop(self._unapplied)[2](None)

    def leader_changed(self) -> None:
        """The leader asked for an index may never answer: ask the next one."""
        for reads in self._asked.values():
            self._unplaced += reads
        self._asked = {}

    def _local(self, deadline: float, done: Done) -> Reply:
        def reply(index: int | None, error: str | None) -> None:
            if index is not None:
                self._serve(index, done)
            elif error == "timeout":
                done(error)
            else:
                self._unplaced.append((deadline, done))
        return reply

    def _answer(self, follower: Any, request_id: int, index: int | None, error: str | None) -> None:
        self._node._send(follower, {"type": "read_index_reply", "request_id": request_id, "index": index,
                                    "error": error})

    def _serve(self, index: int, done: Done) -> None:
        if self._node.raftLastApplied >= index:
            done(None)
        else:
            heapq.heappush(self._unapplied, (index, next(self._order), done))

    def _ask_leader(self, reads: list[tuple[float, Done]]) -> None:
        """One request for these reads (all begun before it is sent)."""
        leader = self._node._getLeader()
        if leader is None:
            self._unplaced += reads
            return
        request_id = next(self._request_ids)
        self._asked[request_id] = reads
        message = {"type": "read_index", "request_id": request_id, "term": self._node.raftCurrentTerm}
        if not self._node._send(leader, message):
            self._unplaced += self._asked.pop(request_id)

    def _start_round(self) -> None:
        node = self._node
        term = node.raftCurrentTerm
        if term != self._term:
            self._fail_rounds("leader_changed")
            self._term, self._confirmed = term, {}
        if not self._waiting or not self._own_term_committed():
            return
        self._round += 1
        self._rounds.append((self._round, time.monotonic() + self._timeout, node.raftCommitIndex, self._waiting))
        self._waiting = []
        for other in node._SyncObj__otherNodes:
            node._send(other, {"type": "read_ping", "term": term, "round": self._round})
        self._confirm()

    def _own_term_committed(self) -> bool:
        """Whether this leader has committed its no-op: only then does it know what is committed."""
        noop: int | None = self._node._SyncObj__noopIDx
        return noop is not None and self._node.raftCommitIndex >= noop

    def _majority(self, others: int) -> bool:
        """Whether this member and that many others are a majority of the members."""
        return (1 + others) * 2 > len(self._node._SyncObj__otherNodes) + 1

    def _confirm(self) -> None:
        others = [other.address for other in self._node._SyncObj__otherNodes]
        while self._rounds:
            round_, _, index, replies = self._rounds[0]
            if not self._majority(sum(1 for address in others if self._confirmed.get(address, 0) >= round_)):
                return
            self._rounds.popleft()
            for reply in replies:
                reply(index, None)

    def _fail_rounds(self, error: str) -> None:
        waiting = self._waiting + [reply for round_ in self._rounds for reply in round_[3]]
        self._waiting, self._rounds = [], deque()
        for reply in waiting:
            reply(None, error)


class _Node(SyncObj):
    """The pysyncobj object: its replicated methods run on its tick thread, in log order."""

    _SyncObj__raftLog: Any  # SyncObj's journal (its own, replaced below when fsync is on)

    def __init__(self, owner: RaftLog, self_address: str, others: list[str], conf: SyncObjConf, fsync: bool):
        self._owner = owner
        self._acknowledge_up_to: int | None = None  # while an append is handled: see _keep_matching
        self._results: dict[int, Any] = {}  # index -> result of a command applied ahead in a batch
        self._journal: _FsyncJournal | None = None
        self.reads = _ReadIndex(self, owner._propose_timeout)
        super().__init__(self_address, others, conf)
        if fsync:
            # Swap in the fsyncing journal before the first tick (autoTick is off, nothing ran yet).
            journal = self._SyncObj__raftLog
            assert isinstance(journal, FileJournal), "pysyncobj's journal layout changed"
            journal._destroy()
            self._journal = self._SyncObj__raftLog = _FsyncJournal(conf.journalFile)
            _fsync_file(conf.journalFile)

    @replicated
    def _command(self, command: Any) -> Any:
        index = self.raftLastApplied + 1
        if index in self._results:
            return self._results.pop(index)
        return self._owner._apply_entry(index, command)

    @replicated
    def _barrier(self) -> None:  # no longer proposed; kept so that journals holding one still replay
        return None

    @replicated
    def _publish(self, address: str, client_urls: dict[str, str]) -> None:
        self._owner._client_urls[address] = client_urls

    def _state(self) -> int:
        state: int = self._SyncObj__raftState
        return state

    def _send(self, node: Any, message: dict[str, Any]) -> bool:
        sent: bool = self._SyncObj__transport.send(node, message)
        return sent

    # Durability, once per batch. An appended entry counts only once it is on disk: a follower
    # acknowledges it to the leader, and a leader counts itself towards its commit, only after the
    # journal is synced. Appends are not flushed one by one; the journal is synced before every
    # acknowledgement, at the start of every tick (before the leader computes its commit index) and
    # after a leader appends its no-op.

    def _sync(self) -> None:
        if self._journal is not None:
            self._journal.sync()

    def _onTick(self, timeToWait: float = 0.0) -> None:  # noqa: N802 - pysyncobj's
        self._sync()
        SyncObj._onTick(self, timeToWait)
        self.reads.tick()

    def _SyncObj__onBecomeLeader(self) -> None:  # noqa: N802
        SyncObj._SyncObj__onBecomeLeader(self)
        self._sync()

    def _SyncObj__onLeaderChanged(self) -> None:  # noqa: N802
        SyncObj._SyncObj__onLeaderChanged(self)
        self.reads.leader_changed()

    # pysyncobj truncates a follower's log after an append's prevLogIdx whenever the log is longer,
    # even where its entries are the ones sent (a resend after a stale "go back" reply, of which
    # eager sending leaves several in flight): applied, acknowledged entries vanish until they come
    # again, and a leader dying meanwhile can take a committed entry with it. Raft keeps matching
    # entries and truncates only from the first conflict; the two overrides below make it so.

    def _SyncObj__onMessageReceived(self, node: Any, message: Any) -> None:  # noqa: N802 - pysyncobj's
        if isinstance(message, dict) and self.reads.handle(node, message):
            return
        if (isinstance(message, dict) and message.get("type") == "append_entries" and "prevLogIdx" in message
                and "transmission" not in message and message["term"] >= self._SyncObj__raftCurrentTerm):
            message, self._acknowledge_up_to = self._keep_matching(message)
        try:
            SyncObj._SyncObj__onMessageReceived(self, node, message)
        finally:
            self._acknowledge_up_to = None

    def _SyncObj__sendNextNodeIdx(self, node: Any, reset: bool = False, nextNodeIdx: int | None = None,  # noqa: N802
                                  success: bool = False) -> None:
        if success and self._acknowledge_up_to is not None and nextNodeIdx is not None:
            nextNodeIdx = min(nextNodeIdx, self._acknowledge_up_to + 1)  # acknowledge only what the append verified
        self._sync()  # what this acknowledges is on disk first
        SyncObj._SyncObj__sendNextNodeIdx(self, node, reset, nextNodeIdx, success)

    def _keep_matching(self, message: dict[str, Any]) -> tuple[dict[str, Any], int | None]:
        """The append as pysyncobj must see it to follow Raft, and the last index it verifies (None:
        unchanged). Entries are (command, index, term)."""
        prev, entries = message["prevLogIdx"], message.get("entries", [])
        found = self._SyncObj__getEntries(prev)
        if not found or found[0][2] != message["prevLogTerm"]:
            return message, None  # pysyncobj tells the leader to go back
        local = found[1:]
        matched = 0
        while matched < min(len(entries), len(local)) and entries[matched][2] == local[matched][2]:
            matched += 1
        if matched < len(entries):
            # Append from the first new or conflicting entry: pysyncobj truncates only a conflict.
            last = (prev, message["prevLogTerm"]) if matched == 0 else entries[matched - 1][1:]
            return {**message, "prevLogIdx": last[0], "prevLogTerm": last[1], "entries": entries[matched:]}, None
        if not local:
            return message, None
        # Everything sent is here already: keep the log as it is (nothing conflicts), and acknowledge
        # and commit only up to the last entry sent (what may follow is not known to be the leader's).
        verified = prev + len(entries)
        return {**message, "prevLogIdx": local[-1][1], "prevLogTerm": local[-1][2], "entries": [],
                "commit_index": min(message["commit_index"], verified)}, verified

    def _addresses(self) -> list[str]:
        """Every member's address (self first); read from other threads, so copied with retries."""
        for _ in range(100):
            try:
                return [self.selfNode.address] + sorted(node.address for node in list(self.otherNodes))
            except RuntimeError:  # the set changed while it was copied
                continue
        raise Unavailable("the membership is changing; retry")

    def _SyncObj__applyLogEntries(self) -> bool:  # noqa: N802 - overrides pysyncobj's private method
        if self._state() == _LEADER and self.raftCommitIndex > self.raftLastApplied:
            # A leader that committed entries tells the followers at once, before it applies them
            # itself (so that they apply them meanwhile, and answer the proposals they forwarded),
            # instead of with the next heartbeat.
            self._SyncObj__sendAppendEntries()
        self._apply_ahead()
        try:
            send: bool = SyncObj._SyncObj__applyLogEntries(self)
        finally:
            for index in [index for index in self._results if index <= self.raftLastApplied]:
                del self._results[index]
        self.reads.applied(self.raftLastApplied)
        return send

    def _apply_ahead(self) -> None:
        """Apply the commands among the committed entries together (one state-machine commit), before
        pysyncobj walks them one by one; `_command` then hands back each one's result."""
        first, last = self.raftLastApplied + 1, self.raftCommitIndex
        if last <= first or not self._owner._batches:
            return  # one entry (or none): applied on its own, as pysyncobj reaches it
        command_id = self._methodToID[self._getFuncName("_command")]
        commands = []
        for data, index, _term in self._SyncObj__getEntries(first, last - first + 1):
            if data[:1] == _REGULAR and index not in self._results:
                call = pickle.loads(data[1:])
                if isinstance(call, tuple) and call[0] == command_id:
                    commands.append((index, call[1][0]))
        self._results.update(self._owner._apply_batch(commands))

    def _checkCommandsToApply(self) -> None:
        # pysyncobj's batched mode appends queued commands at the end of a tick and sends them with
        # the next heartbeat; a leader sends them at once instead, before the tick waits for events,
        # and syncs its journal while the followers write theirs.
        last = self._SyncObj__getCurrentLogIndex()
        super()._checkCommandsToApply()
        if self._state() == _LEADER and self._SyncObj__getCurrentLogIndex() != last:
            self._SyncObj__sendAppendEntries()
            self._sync()


class RaftLog:
    """A member of a Raft-replicated log: propose anywhere, apply everywhere in log order."""

    def __init__(
        self,
        machine: StateMachine,
        self_address: str,
        peers: Sequence[str],
        secret: str,
        data_dir: Path,
        *,
        client_urls: Mapping[str, str] | None = None,
        bind_address: str | None = None,
        fsync: bool = True,
        snapshot_entries: int = 10_000,
        election_timeout: tuple[float, float] = (0.4, 1.4),
        heartbeat: float = 0.1,
        connection_retry: float = 1.0,
        propose_timeout: float = 10.0,
    ):
        """peers: the other members' "host:port" (self may be listed too); secret: the cluster's key.

        A member joining a running cluster lists the current members as peers; it takes part once a
        current member has added it (`add_member`).
        """
        if not secret:
            raise ValueError("a cluster secret is required: peer traffic is pickled")
        self.machine = machine
        # Several committed commands are applied (and made durable) together if the machine can.
        self._batches: Callable[[list[tuple[int, Any]]], list[Any]] | None = getattr(machine, "apply_batch", None)
        # The machine's applied index as of its last apply, for status() without the apply lock (which
        # an apply holds through its commit: the event loop would wait for the disk).
        self._applied = machine.applied_index()
        self.self_address = check_address(self_address)
        self.member_id = member_id(self_address)
        self.client_urls = dict(client_urls or {})
        self._client_urls: dict[str, dict[str, str]] = {}  # address -> client urls, as published in the log
        self._propose_timeout = propose_timeout
        self._lock = threading.Lock()  # held by apply, snapshots and reads
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
            fullDumpFile=str(data_dir / "raft.snapshot"),
            serializer=self._write_snapshot,
            deserializer=self._read_snapshot,
            appendEntriesUseBatch=True,
            autoTick=False,
            raftMinTimeout=low,
            raftMaxTimeout=high,
            appendEntriesPeriod=heartbeat,
            connectionTimeout=max(3.5, high),
            connectionRetryTime=connection_retry,
            logCompactionMinEntries=snapshot_entries,
            logCompactionMinTime=_NEVER,
            logCompactionSplit=False,
            dynamicMembershipChange=True,
        )
        others = sorted({check_address(peer) for peer in peers} - {self_address})
        self._node = _Node(self, self_address, others, conf, fsync)
        self._wake = PipeNotifier(self._node._poller)
        self._thread = threading.Thread(target=self._run, name=f"raft-{self_address}", daemon=True)
        self._thread.start()

    # -- the tick thread ------------------------------------------------------------------------

    def _run(self) -> None:
        published_at = 0.0
        try:
            while not self._stopping.is_set():
                try:
                    self._node.doTick(0.05)
                    if (self._client_urls.get(self.self_address) != self.client_urls
                            and self._node._getLeader() is not None and time.monotonic() - published_at > 1):
                        published_at = time.monotonic()  # retried each second until applied: it may be lost
                        self._node._publish(self.self_address, self.client_urls)
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
            result = self.machine.apply(index, command)
            self._applied = index
            return result

    def _apply_batch(self, entries: list[tuple[int, Any]]) -> dict[int, Any]:
        """Apply committed (index, command) entries with the machine's apply_batch (on the tick
        thread), MAX_BATCH at a time; entries already applied are skipped. Each index's result."""
        assert self._batches is not None
        results: dict[int, Any] = {}
        with self._lock:
            applied = self.machine.applied_index()
            entries = [(index, command) for index, command in entries if index > applied]
            for start in range(0, len(entries), MAX_BATCH):
                batch = entries[start:start + MAX_BATCH]
                results.update(zip((index for index, _ in batch), self._batches(batch), strict=True))
                self._applied = batch[-1][0]
        return results

    def _write_snapshot(self, path: str, data: tuple[Any, Any, Any]) -> None:
        """pysyncobj's serializer (tick thread): Raft's bookkeeping, then the state machine's copy."""
        last, previous, cluster = data
        state = path + ".state"
        with self._lock:
            self.machine.snapshot(state)
        header = pickle.dumps({"format": _SNAPSHOT_FORMAT, "last": last, "previous": previous,
                               "cluster": sorted(node.address for node in cluster),
                               "client_urls": dict(self._client_urls)})
        try:
            with open(path, "wb") as out, open(state, "rb") as body:
                out.write(len(header).to_bytes(8, "big"))
                out.write(header)
                shutil.copyfileobj(body, out, 1 << 20)
                out.flush()
                os.fsync(out.fileno())
        finally:
            os.unlink(state)
        log.info("snapshot written at raft index %d", last[1])

    def _read_snapshot(self, path: str) -> tuple[Any, Any, set[TCPNode]]:
        """pysyncobj's deserializer (tick thread): restore the state machine unless it is already past it."""
        with open(path, "rb") as snapshot:
            header = pickle.loads(snapshot.read(int.from_bytes(snapshot.read(8), "big")))
            if header["format"] != _SNAPSHOT_FORMAT:
                raise ValueError(f"unknown snapshot format {header['format']}")
            index = header["last"][1]
            with self._lock:
                if self.machine.applied_index() < index:
                    state = path + ".restore"
                    with open(state, "wb") as body:
                        shutil.copyfileobj(snapshot, body, 1 << 20)
                    try:
                        self.machine.restore(state)
                        self._applied = self.machine.applied_index()
                    finally:
                        if os.path.exists(state):
                            os.unlink(state)
                    log.info("state restored from a snapshot at raft index %d", index)
        self._client_urls.update(header["client_urls"])
        return header["last"], header["previous"], {TCPNode(address) for address in header["cluster"]}

    # -- the Log protocol -----------------------------------------------------------------------

    async def propose(self, command: Any) -> Any:
        """Replicate command and return the result of applying it (raising the error it gave)."""
        result = await self._replicate(self._node._command, command)
        if isinstance(result, Exception):
            raise result
        return result

    async def read(self, query: Callable[[], T], *, linearizable: bool = False) -> T:
        """Run query under the apply lock; linearizable: once this member has applied the leader's
        commit index as confirmed after the read began (ReadIndex: no log entry)."""
        if linearizable:
            await self._read_index()
        self._check_open()

        def locked() -> T:
            with self._lock:
                return query()

        return await asyncio.get_running_loop().run_in_executor(self._reader, locked)

    def status(self) -> LogStatus:
        """Role, leader id (0: unknown), term and this member's applied index."""
        role = _ROLES[self._node._state()]
        leader = self.leader_address()
        return LogStatus(self.member_id, member_id(leader) if leader else 0, role, self._node.raftCurrentTerm,
                         self._applied)

    def members(self) -> list[Member]:
        """Every member of the cluster as this member knows it, by id."""
        leader = self.leader_address()
        return sorted(
            (Member(member_id(address), address, dict(self._client_urls.get(address, {})),
                    address == self.self_address, address == leader)
             for address in self._node._addresses()),
            key=lambda member: member.member_id,
        )

    async def add_member(self, address: str) -> Member:
        """Add the member at peer address (started with the current members as its peers)."""
        address = check_address(address)
        if address in self._node._addresses():
            raise AlreadyExists("already a member", {"peer_address": address, "member_id": member_id(address)})
        await self._replicate(self._node.addNodeToCluster, address,
                              denied="another membership change is in progress; retry when it is done")
        return Member(member_id(address), address)

    async def remove_member(self, id: int) -> Member:
        """Remove the member with this id (not the leader: stop it first, and remove it afterwards)."""
        found = [address for address in self._node._addresses() if member_id(address) == id]
        if not found:
            raise NotFound("no member with this id", {"member_id": id})
        if found[0] == self.leader_address():
            raise FailedPrecondition("the leader cannot remove itself; stop it and remove it once another member leads",
                                     {"member_id": id})
        await self._replicate(self._node.removeNodeFromCluster, found[0],
                              denied="another membership change is in progress; retry when it is done")
        return Member(id, found[0])

    def progress(self) -> tuple[int, dict[int, int]]:
        """The commit index this member knows, and (on the leader; else empty) each other member's
        matched index by member id, for metrics."""
        node = self._node
        # A copy in one step: the Raft thread changes the dict while the loop reads it.
        matched = dict(node._SyncObj__raftMatchIndex) if self.status().role == "LEADER" else {}
        return node.raftCommitIndex, {member_id(other.address): index for other, index in matched.items()}

    def leader_address(self) -> str | None:
        """The last known leader's peer address, or None."""
        leader = self._node._getLeader()
        return leader.address if leader is not None else None

    def snapshot_now(self) -> None:
        """Write a snapshot at the next tick (then drop the journal up to it)."""
        self._node.forceLogCompaction()
        self._wake.notify()

    async def close(self) -> None:
        """Stop taking part in the cluster; proposals in flight fail with Unavailable."""
        if self._closed:
            return
        self._closed = True
        self._stopping.set()
        self._wake.notify()
        await asyncio.to_thread(self._thread.join)
        for future in list(self._pending):
            if not future.done():
                future.set_exception(Unavailable("the member stopped; the outcome of the command is unknown"))
        await asyncio.get_running_loop().run_in_executor(None, self._reader.shutdown)

    # -- helpers ----------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if self._closed:
            raise Unavailable("the member is stopping")

    def _no_leader(self) -> Unavailable:
        return Unavailable("the cluster has no leader (no majority of members is reachable)",
                           {"leader": self.leader_address()})

    async def _replicate(self, method: Callable[..., Any], *args: Any, denied: str = "") -> Any:
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(result: Any, error: int) -> None:  # on the event loop
            if future.done():
                return
            if error == FAIL_REASON.SUCCESS:
                future.set_result(result)
            elif error == FAIL_REASON.REQUEST_DENIED and denied:
                future.set_exception(FailedPrecondition(denied))
            elif error in (FAIL_REASON.MISSING_LEADER, FAIL_REASON.REQUEST_DENIED):  # never appended
                future.set_exception(self._no_leader())
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
            self._wake.notify()
            return await asyncio.wait_for(asyncio.shield(future), self._propose_timeout)
        except TimeoutError:
            raise Unavailable("no majority committed the command in time; its outcome is unknown",
                              {"leader": self.leader_address()}) from None
        finally:
            self._pending.discard(future)

    async def _read_index(self) -> None:
        self._check_open()
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()

        def settle(error: str | None) -> None:  # on the event loop
            if future.done():
                return
            if error is None:
                future.set_result(None)
            elif error == "no_leader":
                future.set_exception(self._no_leader())
            else:  # leader_changed, not_leader, timeout: the read may be retried
                future.set_exception(Unavailable("leadership changed or could not be confirmed; retry the read",
                                                 {"leader": self.leader_address()}))

        def done(error: str | None) -> None:  # on the tick thread
            try:
                loop.call_soon_threadsafe(settle, error)
            except RuntimeError:  # the loop has closed; nobody is waiting
                pass

        self._pending.add(future)
        try:
            self._node.reads.request(done)
            self._wake.notify()
            await asyncio.wait_for(asyncio.shield(future), self._propose_timeout)
        except TimeoutError:
            raise Unavailable("no majority confirmed the leader in time; retry the read",
                              {"leader": self.leader_address()}) from None
        finally:
            self._pending.discard(future)
