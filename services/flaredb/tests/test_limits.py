"""One tenant cannot stall or exhaust the others: endless reads are cut off by the clock while other
projects' reads and writes go on, endless writes run out of a budget of steps (the same result on
every member), and values, parameters and results are capped."""

from __future__ import annotations

import asyncio
import time

import pytest
from photoncloud.common.errors import DeadlineExceeded, ResourceExhausted
from photoncloud.common.raft import RaftLog
from photoncloud.common.replication import LocalLog
from photoncloud.common.testing import free_ports, wait_for
from photoncloud.flaredb.commands import CreateNamespace, ExecuteSql, Mode, Statement
from photoncloud.flaredb.core import Consistency, FlareDBCore
from photoncloud.flaredb.limits import HEAVY_SECONDS, HeavyWriters, Limits, StatementLimits
from photoncloud.flaredb.machine import FlareDBStateMachine
from photoncloud.flaredb.store import ProjectFiles

A, B = "tenant-a", "tenant-b"
ENDLESS = "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
ENDLESS_READ = ENDLESS + "SELECT count(*) FROM c"
ENDLESS_WRITE = "INSERT INTO t (a) " + ENDLESS + "SELECT x FROM c"
FAST_ENOUGH = 1.0  # seconds: generous, so that a slow machine does not fail the test


def S(sql, *params):
    return Statement(sql, tuple(params))


def make_core(root, **limits) -> FlareDBCore:
    machine = FlareDBStateMachine(ProjectFiles(root))
    return FlareDBCore(machine, LocalLog(machine), "test", limits=Limits(**limits))


@pytest.fixture
async def make(tmp_path):
    """make(**limits): a core alone over its own directory, with these limits."""
    made = []

    def factory(**limits) -> FlareDBCore:
        made.append(make_core(tmp_path / f"core-{len(made)}", **limits))
        return made[-1]

    yield factory
    for core in made:
        await core.close()
        core.machine.close()


async def timed(call) -> float:
    started = time.monotonic()
    await call
    return time.monotonic() - started


async def test_an_endless_read_is_cut_off_while_another_project_reads_and_writes(make):
    db = make(read_timeout_ms=1500)
    await db.execute(B, [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (1)")])
    started = time.monotonic()
    endless = asyncio.create_task(db.execute(A, [S(ENDLESS_READ)]))
    await asyncio.sleep(0.1)  # A's read is running
    read = await timed(db.execute(B, [S("SELECT a FROM t")]))
    write = await timed(db.execute(B, [S("INSERT INTO t VALUES (2)")]))
    assert not endless.done()  # B was served while A's read ran
    assert read < FAST_ENOUGH and write < FAST_ENOUGH
    with pytest.raises(DeadlineExceeded) as caught:
        await endless
    assert time.monotonic() - started >= 1.5
    assert caught.value.details["reason"] == "READ_TIMEOUT"
    assert caught.value.details["limit"] == 1500
    assert (await db.execute(B, [S("SELECT count(*) FROM t")]))[0].rows == [[2]]


async def test_one_project_cannot_take_every_reading_thread(make):
    db = make(read_timeout_ms=1000, read_threads=4)  # a project gets 2 of them at once
    await db.execute(B, [S("CREATE TABLE t (a)")])
    endless = [asyncio.create_task(db.execute(A, [S(ENDLESS_READ)])) for _ in range(4)]
    await asyncio.sleep(0.1)
    assert await timed(db.execute(B, [S("SELECT count(*) FROM t")])) < FAST_ENOUGH
    assert not any(task.done() for task in endless)
    results = await asyncio.gather(*endless, return_exceptions=True)
    assert all(isinstance(r, DeadlineExceeded) for r in results)


async def test_an_endless_write_runs_out_of_its_budget_and_the_entry_still_counts(make):
    db = make(statement_budget_steps=30_000_000)
    await db.execute(A, [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (0)")])
    await db.execute(B, [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (1)")])
    before = db.machine.applied_index()
    endless = asyncio.create_task(db.execute(A, [S("INSERT INTO t VALUES (1)"), S(ENDLESS_WRITE)]))
    await asyncio.sleep(0.05)
    # B's read does not wait for the state machine, which is busy with A's write.
    assert await timed(db.execute(B, [S("SELECT a FROM t")])) < FAST_ENOUGH
    with pytest.raises(ResourceExhausted) as caught:
        await endless
    assert caught.value.details == {"reason": "STATEMENT_BUDGET", "limit": 30_000_000, "statement_index": 1}
    assert db.machine.applied_index() == before + 1  # applied (as a failure), not lost
    assert (await db.execute(A, [S("SELECT a FROM t")]))[0].rows == [[0]]  # all or nothing
    await db.execute(A, [S("INSERT INTO t VALUES (2)")])
    assert (await db.execute(A, [S("SELECT a FROM t ORDER BY a")]))[0].rows == [[0], [2]]


def test_every_replica_stops_an_endless_write_at_the_same_step(tmp_path):
    limits = StatementLimits(steps=5_000_000, length=1 << 20, rows=100, result_bytes=1 << 20)
    commands = [
        ExecuteSql(A, (S("CREATE TABLE t (a)"),), limits),
        ExecuteSql(A, (S("INSERT INTO t VALUES (random())"),), limits),
        ExecuteSql(A, (S("INSERT INTO t VALUES (1)"), S(ENDLESS_WRITE)), limits),
        CreateNamespace(A, "ns", Mode.EVENTUAL),
        ExecuteSql(A, (S("INSERT INTO t VALUES (randomblob(8))"),), limits),
    ]
    replicas = [FlareDBStateMachine(ProjectFiles(tmp_path / f"replica-{i}")) for i in range(3)]
    try:
        # The first replica applies them one by one, the others in one batch: the same outcome.
        results = [[r.apply(i, c) for i, c in enumerate(commands, 1)] for r in replicas[:1]]
        results += [r.apply_batch(list(enumerate(commands, 1))) for r in replicas[1:]]
        assert isinstance(results[0][2], ResourceExhausted)
        assert len({repr(r) for r in results}) == 1
        dumps = [list(r.files.connection(A).iterdump()) for r in replicas]
        assert dumps[0] == dumps[1] == dumps[2]
    finally:
        for replica in replicas:
            replica.close()


async def test_zeroblob_and_long_strings_are_refused_with_the_limit(make):
    db = make(max_value_bytes=100_000)
    await db.execute(A, [S("CREATE TABLE t (a)")])
    for statement in ("SELECT zeroblob(50000000)", "INSERT INTO t VALUES (zeroblob(50000000))",
                      "SELECT length(replace(hex(zeroblob(60000)), '0', '00'))"):
        with pytest.raises(ResourceExhausted) as caught:
            await db.execute(A, [S(statement)])
        assert caught.value.details["reason"] == "VALUE_TOO_LARGE", statement
    limit = caught.value.details["limit"]
    # printf() gives NULL rather than an error past the limit: capped all the same.
    assert (await db.execute(A, [S("SELECT printf('%.*c', 50000000, 'x') IS NULL")]))[0].rows == [[1]]
    assert 100_000 <= limit < 50_000_000
    # The limit reported is the one enforced: a BLOB of exactly that size is built, one byte more is not.
    assert (await db.execute(A, [S("SELECT length(zeroblob(?))", limit)]))[0].rows == [[limit]]
    with pytest.raises(ResourceExhausted):
        await db.execute(A, [S("SELECT length(zeroblob(?))", limit + 1)])
    assert (await db.execute(A, [S("SELECT count(*) FROM t")]))[0].rows == [[0]]


async def test_a_too_large_value_or_parameter_is_refused(make):
    db = make(max_value_bytes=1000)
    await db.create_namespace(A, "ns", Mode.EVENTUAL)
    await db.put(A, "ns", b"k", b"x" * 1000)
    with pytest.raises(ResourceExhausted) as caught:
        await db.put(A, "ns", b"k", b"x" * 1001)
    assert caught.value.details == {"reason": "VALUE_TOO_LARGE", "limit": 1000, "field": "value"}
    assert (await db.get(A, "ns", b"k")).value == b"x" * 1000
    await db.create_namespace(A, "locks", Mode.STRONG)
    with pytest.raises(ResourceExhausted):
        await db.cas(A, "locks", b"k", b"y" * 1001, 0)
    await db.execute(A, [S("CREATE TABLE t (a)")])
    for value in ("é" * 501, b"\x00" * 1001):  # text counts its UTF-8 bytes
        with pytest.raises(ResourceExhausted) as caught:
            await db.execute(A, [S("INSERT INTO t VALUES (?)", value)])
        assert caught.value.details["limit"] == 1000
        assert caught.value.details["field"] == "statements.0.params"
    await db.execute(A, [S("INSERT INTO t VALUES (?)", "é" * 500)])
    assert (await db.execute(A, [S("SELECT length(a) FROM t")]))[0].rows == [[500]]


async def test_results_are_capped_in_rows_and_bytes(make):
    db = make(max_result_rows=50, max_result_bytes=20_000)
    await db.execute(A, [S("CREATE TABLE t (a)"), S("CREATE TABLE big (b)"),
                         S("INSERT INTO t " + ENDLESS.replace("FROM c)", "FROM c WHERE x < 50)") + "SELECT x FROM c"),
                         S("INSERT INTO big VALUES (zeroblob(15000)), (zeroblob(15000))")])
    assert len((await db.execute(A, [S("SELECT a FROM t")]))[0].rows) == 50
    await db.execute(A, [S("INSERT INTO t VALUES (51)")])
    with pytest.raises(ResourceExhausted) as caught:
        await db.execute(A, [S("SELECT a FROM t")])
    assert caught.value.details == {"reason": "RESULT_ROWS", "limit": 50, "statement_index": 0}
    with pytest.raises(ResourceExhausted) as caught:  # the rows of all statements count together
        await db.execute(A, [S("SELECT a FROM t LIMIT 30"), S("SELECT a FROM t LIMIT 30")])
    assert caught.value.details["statement_index"] == 1
    assert len((await db.execute(A, [S("SELECT b FROM big LIMIT 1")]))[0].rows) == 1
    with pytest.raises(ResourceExhausted) as caught:
        await db.execute(A, [S("SELECT b FROM big")])
    assert caught.value.details == {"reason": "RESULT_BYTES", "limit": 20_000, "statement_index": 0}
    with pytest.raises(ResourceExhausted) as caught:  # a write's RETURNING rows count too
        await db.execute(A, [S("UPDATE t SET a = a RETURNING a")])
    assert caught.value.details["reason"] == "RESULT_ROWS"


async def test_a_scan_page_ends_at_the_byte_cap(make):
    db = make(max_result_bytes=1000)
    await db.create_namespace(A, "ns", Mode.EVENTUAL)
    keys = [f"k{i:02}".encode() for i in range(10)]
    for key in keys:
        await db.put(A, "ns", key, b"v" * 300)
    seen, start, pages = [], b"", 0
    while True:
        page = await db.scan(A, "ns", start=start, limit=100)
        pages += 1
        assert 1 <= len(page.items) and sum(len(e.key) + len(e.value) for e in page.items) <= 1000
        seen += [e.key for e in page.items]
        if not page.has_more:
            break
        start = page.next_key
    assert seen == keys and pages > 1


async def test_the_limits_are_flags(tmp_path):
    from photoncloud.common.config import load_config
    from photoncloud.flaredb.app import add_options

    config = load_config("flaredb", 8082, ["--max-value-bytes", "5000", "--read-timeout-ms", "250",
                                           "--statement-budget-steps", "123456"],
                         {"FLAREDB_MAX_RESULT_ROWS": "7"}, add_options)
    limits = Limits.from_options(config.options)
    assert (limits.max_value_bytes, limits.read_timeout_ms, limits.statement_budget_steps,
            limits.max_result_rows) == (5000, 250, 123456, 7)
    assert limits.max_result_bytes == Limits().max_result_bytes


# -- three members, one Raft log --------------------------------------------------------------------


class RecordingMachine(FlareDBStateMachine):
    """A member's state machine that keeps the result of every command it applies."""

    def __init__(self, files):
        super().__init__(files)
        self.results: dict[int, str] = {}

    def apply_batch(self, entries):
        results = super().apply_batch(entries)
        for (index, _), result in zip(entries, results):
            self.results[index] = repr(result)
        return results


async def test_an_endless_write_fails_alike_on_every_member_of_a_cluster(tmp_path):
    addresses = [f"127.0.0.1:{port}" for port in free_ports(3)]
    machines = [RecordingMachine(ProjectFiles(tmp_path / f"member-{i}")) for i in range(3)]
    logs = [RaftLog(m, address, addresses, "cluster-secret-for-tests", tmp_path / f"raft-{i}",
                    election_timeout=(0.5, 1.0), heartbeat=0.05, connection_retry=0.3, propose_timeout=10.0)
            for i, (m, address) in enumerate(zip(machines, addresses))]
    cores = [FlareDBCore(m, log, "test", limits=Limits(statement_budget_steps=10_000_000))
             for m, log in zip(machines, logs)]
    try:
        await wait_for(lambda: sum(log.status().role == "LEADER" for log in logs) == 1)
        db = cores[0]  # a follower forwards it, or the leader runs it
        await db.execute(A, [S("CREATE TABLE t (a)")])
        await db.execute(B, [S("CREATE TABLE t (a)"), S("INSERT INTO t VALUES (1)")])
        with pytest.raises(ResourceExhausted) as caught:
            await db.execute(A, [S("INSERT INTO t VALUES (1)"), S(ENDLESS_WRITE)])
        assert caught.value.details["reason"] == "STATEMENT_BUDGET"
        await db.execute(A, [S("INSERT INTO t VALUES (2)")])
        last = machines[0].applied_index()
        await wait_for(lambda: all(m.applied_index() >= last for m in machines))
        failed = [index for index, result in machines[0].results.items() if "STATEMENT_BUDGET" in result]
        assert len(failed) == 1
        assert len({m.results.get(failed[0]) for m in machines}) == 1  # the same failure on every member
        for core in cores:  # strong reads through each member, after the log's barrier
            assert (await core.execute(A, [S("SELECT a FROM t")], consistency=Consistency.STRONG))[0].rows == [[2]]
            assert (await core.execute(B, [S("SELECT a FROM t")], consistency=Consistency.STRONG))[0].rows == [[1]]
    finally:
        for core, machine in zip(cores, machines):
            await core.close()
            machine.close()


async def test_a_project_whose_writes_run_out_of_budget_gets_one_write_in_flight():
    now = [0.0]
    heavy = HeavyWriters(clock=lambda: now[0])
    in_flight, most = [0], [0]

    async def propose(fail: bool):
        in_flight[0] += 1
        most[0] = max(most[0], in_flight[0])
        await asyncio.sleep(0.01)
        in_flight[0] -= 1
        if fail:
            raise ResourceExhausted("out of budget", {"reason": "STATEMENT_BUDGET", "limit": 1})
        return "ok"

    async def burst(project: str, fail: bool) -> list:
        most[0] = 0
        return await asyncio.gather(*[heavy.write(project, lambda: propose(fail)) for _ in range(4)],
                                    return_exceptions=True)

    assert await burst(A, fail=False) == ["ok"] * 4 and most[0] == 4  # within budget: never held back
    await burst(A, fail=True)
    await burst(A, fail=True)
    assert most[0] == 1  # once it ran out, one at a time
    assert await burst(B, fail=False) == ["ok"] * 4 and most[0] == 4  # other projects are not affected
    now[0] += HEAVY_SECONDS + 1
    await burst(A, fail=False)
    assert most[0] == 4  # it behaved long enough
