"""Linearizability under faults: concurrent clients on a few keys of a three-member ChainFire (put,
get, compare-and-swap through a transaction) and a three-member FlareDB (get and compare-and-swap on
a strong namespace), through members chosen at random, while a fault runs: the leader or a follower
SIGKILLed and restarted, SIGSTOPped for longer than an election, or cut off from its peers by a
network partition (tests/faults.py). The history is checked with tests/linearizability.py; after
the faults heal, a read of every key through every member joins it, so that a lost acknowledged
write fails the check too.

A write that fails with UNAVAILABLE or a transport error or times out may or may not have taken
effect: its outcome is unknown. A read that fails is left out.

Each test injects its fault PHOTONCLOUD_FAULT_SECONDS / 4 times (at least twice: the leader, then a
follower, and so on), a second apart, and its clients run on for three seconds after the last one
heals. The default, 8, is the bounded run CI does (about 10 s a test); a long run is, for example,
`PHOTONCLOUD_FAULT_SECONDS=600 python -m pytest tests/test_linearizability.py` (150 faults a test;
the keys grow with the faults, so that each key's history stays small enough to check).

The partition needs root, nftables and cgroup v2 (tests/faults.py says how it is made).
"""

from __future__ import annotations

import asyncio
import itertools
import os
import random
import time
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import pytest

from photoncloud.common.testing import ServiceProcess
from tests import faults
from tests.linearizability import Operation, Register, Result, Verdict, VersionedRegister, check, check_one
from tests.test_chainfire_cluster import Cluster as ChainFireCluster
from tests.test_flaredb_cluster import Cluster as FlareDBCluster

FAULT_SECONDS = float(os.environ.get("PHOTONCLOUD_FAULT_SECONDS", "8"))
ROUNDS = max(2, round(FAULT_SECONDS / 4))  # a fault and its second of quiet take 2.5 to 4 s
QUIET, RECOVERY = 1.0, 3.0  # seconds before each fault, and of clients after the last one heals
CLIENTS = 6
KEYS = max(3, ROUNDS + 1)
OP_TIMEOUT = aiohttp.ClientTimeout(total=2)
STATUS_TIMEOUT = aiohttp.ClientTimeout(total=1)
PROJECT = "proj-linearizability"
NAMESPACE = "registers"
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


# -- the checker, on histories made by hand ------------------------------------------------------

def history(*ops: tuple) -> list[Operation]:
    """Operations on one key from (process, op, input, call, ret, output) tuples."""
    return [Operation(p, "k", op, input, call, ret, output) for p, op, input, call, ret, output in ops]


def test_the_checker_accepts_histories_that_have_a_linearization() -> None:
    register = Register()
    assert check(register, history((0, "put", "a", 0, 1, None), (1, "get", None, 2, 3, "a"))).ok
    # Concurrent with a write, one read sees the old value and a later one the new.
    assert check(register, history((0, "put", "a", 0, 3, None), (1, "get", None, 1, 2, None),
                                   (2, "get", None, 1.5, 2.5, "a"))).ok
    # Two overlapping writes may take effect in either order.
    assert check(register, history((0, "put", "a", 0, 2, None), (1, "put", "b", 1, 3, None),
                                   (2, "get", None, 4, 5, "a"))).ok
    assert check(register, history((0, "cas", ("a", "b"), 0, 1, False), (1, "put", "a", 2, 3, None),
                                   (0, "cas", ("a", "b"), 4, 5, True), (1, "get", None, 6, 7, "b"))).ok
    # Calls and returns at the same instant overlap.
    assert check(register, history((0, "put", "a", 0, 1, None), (1, "get", None, 1, 2, "a"),
                                   (2, "get", None, 0, 1, "a"))).ok
    # Histories of different keys are checked apart.
    both = [Operation(0, "x", "put", "a", 0, 1), Operation(1, "y", "get", None, 2, 3, None)]
    assert check(register, both).ok


def test_the_checker_rejects_histories_that_have_none() -> None:
    register = Register()
    stale = check(register, history((0, "put", "a", 0, 1, None), (1, "get", None, 2, 3, None)))
    assert stale.verdict is Verdict.VIOLATION and stale.key == "k" and len(stale.history) == 2
    # Once a read saw the new value, a later read may not see the old one.
    assert not check(register, history((0, "put", "a", 0, 5, None), (1, "get", None, 1, 2, "a"),
                                       (2, "get", None, 3, 4, None))).ok
    assert not check(register, history((0, "put", "a", 0, 1, None), (1, "put", "b", 2, 3, None),
                                       (2, "get", None, 4, 5, "a"))).ok
    # Two compare-and-swaps from the same value cannot both succeed.
    assert not check(register, history((0, "put", "a", 0, 1, None), (1, "cas", ("a", "b"), 2, 4, True),
                                       (2, "cas", ("a", "c"), 2, 4, True))).ok
    # A failed compare-and-swap saw a value other than the expected one, and nothing else was written.
    assert not check(register, history((0, "put", "a", 0, 1, None), (1, "cas", ("a", "b"), 2, 3, False))).ok
    # The smallest failing key is the one reported.
    mixed = [Operation(0, "big", "put", "a", 0, 1), Operation(1, "big", "get", None, 2, 3, None),
             Operation(2, "big", "get", None, 2, 3, None), Operation(0, "small", "put", "a", 0, 1),
             Operation(1, "small", "get", None, 2, 3, "b")]
    assert check(register, mixed).key == "small"


def test_an_unknown_outcome_may_take_effect_late_or_never_but_not_before_its_call() -> None:
    register = Register()
    assert check(register, history((0, "put", "a", 0, None, None), (1, "get", None, 2, 3, "a"))).ok
    assert check(register, history((0, "put", "a", 0, None, None), (1, "get", None, 2, 3, None))).ok
    # It took effect after the first read, long after its caller gave up.
    assert check(register, history((0, "put", "a", 0, None, None), (1, "get", None, 2, 3, None),
                                   (1, "get", None, 9, 10, "a"))).ok
    assert not check(register, history((1, "get", None, 1, 2, "a"), (0, "put", "a", 3, None, None))).ok
    # It takes effect once: a value seen, then overwritten, cannot come back from the same write.
    assert not check(register, history((0, "put", "a", 0, None, None), (1, "get", None, 1, 2, "a"),
                                       (1, "put", "b", 3, 4, None), (1, "get", None, 5, 6, "a"))).ok
    # An unknown compare-and-swap that swapped explains a value nobody else wrote.
    assert check(register, history((0, "put", "a", 0, 1, None), (1, "cas", ("a", "b"), 2, None, None),
                                   (2, "get", None, 5, 6, "b"))).ok
    assert not check(register, history((0, "put", "x", 0, 1, None), (1, "cas", ("a", "b"), 2, None, None),
                                       (2, "get", None, 5, 6, "b"))).ok


def test_the_versioned_register_counts_versions() -> None:
    model = VersionedRegister()
    assert check(model, history((0, "cas", (0, "a"), 0, 1, (True, 1, "a")), (1, "get", None, 2, 3, ("a", 1)),
                                (1, "cas", (0, "b"), 4, 5, (False, 1, "a")),
                                (0, "cas", (1, "c"), 6, None, None), (1, "get", None, 7, 8, ("c", 2)))).ok
    # A read of an acknowledged swap's previous version after it returned: stale.
    assert not check(model, history((0, "cas", (0, "a"), 0, 1, (True, 1, "a")),
                                    (1, "get", None, 2, 3, (None, 0)))).ok
    # A swap's reported version must follow the one it replaced.
    assert not check(model, history((0, "cas", (0, "a"), 0, 1, (True, 2, "a")),)).ok


def linearizable_by_brute_force(model: Any, ops: list[Operation]) -> bool:
    """Every order of every subset that holds the completed operations, tried: the definition itself."""
    unknown = [op for op in ops if op.ret is None]
    known = [op for op in ops if op.ret is not None]
    for subset in itertools.chain.from_iterable(itertools.combinations(unknown, n) for n in range(len(unknown) + 1)):
        for order in itertools.permutations(known + list(subset)):
            # Real time: an operation that returned before another was called comes first.
            if any(a.ret is not None and a.ret < b.call for i, b in enumerate(order) for a in order[i + 1:]):
                continue
            state = model.init()
            for op in order:
                output, state = model.step(state, op.op, op.input)
                if op.ret is not None and output != op.output:
                    break
            else:
                return True
    return False


def test_the_checker_agrees_with_brute_force_on_random_histories() -> None:
    rng = random.Random(18)
    verdicts = {True: 0, False: 0}
    for _ in range(300):
        ops = []
        for p in range(rng.randint(2, 6)):
            call = rng.uniform(0, 10)
            ret = None if rng.random() < 0.15 else call + rng.uniform(0.1, 4)
            kind = rng.choice(["put", "get", "cas"])
            value = rng.choice(["a", "b", None])
            input = {"put": rng.choice("ab"), "get": None, "cas": (value, rng.choice("ab"))}[kind]
            output = {"put": None, "get": value, "cas": rng.random() < 0.5}[kind]
            ops.append(Operation(p, "k", kind, input, call, ret, output if ret is not None else None))
        expected = linearizable_by_brute_force(Register(), ops)
        assert check(Register(), ops).ok == expected, "\n".join(map(str, ops))
        verdicts[expected] += 1
    assert min(verdicts.values()) > 50  # both kinds were tried


def test_a_search_past_its_budget_is_unknown_not_linearizable() -> None:
    # Many concurrent unknown writes and a read nobody could have caused: the search must try them all.
    ops = [(i, "put", f"v{i}", 0, None, None) for i in range(40)] + [(99, "get", None, 1, 2, "nobody")]
    result = check_one(Register(), history(*ops), budget=0.05, max_steps=2000)
    assert result.verdict is Verdict.UNKNOWN and not result.ok


# -- the services -----------------------------------------------------------------------------------

def peer_port(member: ServiceProcess) -> int:
    """The member's Raft port, from its --peer-address."""
    args = list(member.extra_args)
    return int(args[args.index("--peer-address") + 1].rsplit(":", 1)[1])


class Unknown(Exception):
    """The request failed in a way that leaves its outcome unknown (UNAVAILABLE, transport, timeout)."""


class Refused(Unknown):
    """The member refused the connection: the request was never sent, so it took no effect. (Only
    for a method aiohttp does not retry: it sends a PUT or a GET again on a new connection when the
    first one broke, and a refused retry says nothing of the first.)"""


class Service:
    """A three-member cluster driven over REST; its operations return the model's outputs."""

    model: Any
    operations: tuple[str, ...]

    def __init__(self, members: list[ServiceProcess], session: aiohttp.ClientSession):
        self.members, self.session = members, session

    async def call(self, method: str, url: str, timeout: aiohttp.ClientTimeout = OP_TIMEOUT,
                   **kwargs: Any) -> tuple[int, dict]:
        try:
            async with self.session.request(method, url, timeout=timeout, **kwargs) as response:
                body = await response.json()
        except aiohttp.ClientConnectorError as error:
            raise Refused(repr(error)) from None
        except TRANSPORT_ERRORS as error:
            raise Unknown(repr(error)) from None
        if response.status == 503:
            raise Unknown(body["error"]["message"])
        return response.status, body

    async def role(self, member: ServiceProcess) -> tuple[str, int, int]:
        """(role, term, leader's member id) as member sees it."""
        raise NotImplementedError

    async def leader(self, timeout: float = 30) -> ServiceProcess:
        """The member that leads, named by every member that answers."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            roles = {}
            for member in self.members:
                try:
                    roles[member] = await self.role(member)
                except Unknown:
                    continue
            leaders = [m for m, (role, _, _) in roles.items() if role == "LEADER"]
            if len(leaders) == 1 and len({leader for _, _, leader in roles.values()}) == 1:
                return leaders[0]
            await asyncio.sleep(0.1)
        raise AssertionError("no leader was elected in time")

    async def setup(self, keys: list[str]) -> list[Operation]:
        """Whatever the keys need before the clients start, as operations of the history."""
        return []

    async def run(self, member: ServiceProcess, op: str, key: str, input: Any) -> Any:
        """The operation's output (raising Unknown)."""
        raise NotImplementedError

    def choose(self, op: str, seen: Any, value: str) -> Any:
        """An input for op: seen is what this client last saw of the key (the model's state, or None)."""
        raise NotImplementedError

    def observed(self, op: str, input: Any, output: Any, seen: Any) -> Any:
        """What a client knows of the key's state after op returned output (seen: what it knew before)."""
        raise NotImplementedError


class ChainFire(Service):
    """Put, get and compare-and-swap (a transaction comparing the value) on registers."""

    model = Register()
    operations = ("get", "get", "put", "cas", "cas")

    async def role(self, member: ServiceProcess) -> tuple[str, int, int]:
        status, body = await self.call("GET", f"{member.url}/api/v1/cluster/status", STATUS_TIMEOUT)
        assert status == 200, body
        return body["data"]["role"], int(body["data"]["raft_term"]), int(body["data"]["leader"])

    async def setup(self, keys: list[str]) -> list[Operation]:
        # A value to compare with from the start (a missing key compares as empty, which a
        # register without a value does not model).
        return [op for key in keys for op in await self.put_until_done(key, "initial")]

    async def put_until_done(self, key: str, value: str) -> list[Operation]:
        """Put through the leader until one is acknowledged: the attempts, as operations."""
        attempts, deadline = [], time.monotonic() + 30
        while True:
            call = time.monotonic()
            try:
                await self.run(await self.leader(), "put", key, value)
            except Unknown:  # it may still take effect
                attempts.append(Operation("setup", key, "put", value, call, None))
                assert time.monotonic() < deadline, "the cluster took no write in time"
                await asyncio.sleep(0.2)
                continue
            return [*attempts, Operation("setup", key, "put", value, call, time.monotonic())]

    async def run(self, member: ServiceProcess, op: str, key: str, input: Any) -> Any:
        url = f"{member.url}/api/v1/kv/{key}"
        if op == "get":
            status, body = await self.call("GET", url)
            assert status in (200, 404), body
            return body["data"]["value"] if status == 200 else None
        if op == "put":  # POST: aiohttp sends a PUT again on a new connection when the first one broke
            status, body = await self.call("POST", f"{url}/put", json={"value": input})
            assert status == 200, body
            return None
        old, new = input
        status, body = await self.call("POST", f"{member.url}/api/v1/txn", json={
            "compare": [{"key": key, "target": "VALUE", "result": "EQUAL", "value": old}],
            "success": [{"put": {"key": key, "value": new}}]})
        assert status == 200, body
        return body["data"]["succeeded"]

    def choose(self, op: str, seen: Any, value: str) -> Any:
        return (seen if seen is not None else "initial", value) if op == "cas" else value

    def observed(self, op: str, input: Any, output: Any, seen: Any) -> Any:
        if op == "get":
            return output
        if op == "put":
            return input
        return input[1] if output else seen


class FlareDB(Service):
    """Get and compare-and-swap by version on a strong namespace's keys."""

    model = VersionedRegister()
    operations = ("get", "cas")

    async def role(self, member: ServiceProcess) -> tuple[str, int, int]:
        status, body = await self.call("GET", f"{member.url}/health", STATUS_TIMEOUT)
        raft = body["data"]["dependencies"]["raft"]
        return raft["role"], int(raft["term"]), int(raft["leader"])

    async def setup(self, keys: list[str]) -> list[Operation]:
        deadline = time.monotonic() + 30
        while True:
            try:
                status, body = await self.call("POST", f"{(await self.leader()).url}/api/v1/namespaces",
                                               json={"name": NAMESPACE, "mode": "strong", "project_id": PROJECT})
                assert status == 200, body
                break
            except Unknown:
                assert time.monotonic() < deadline, "the cluster took no write in time"
                await asyncio.sleep(0.2)
        # Every member has the project's file before the clients start. A member that is creating
        # it answers a read in the meantime with INTERNAL ("no such table: _flaredb_namespaces": the
        # file exists before its tables do); that is a fault of its own, outside what this checks.
        for member in self.members:
            while True:
                try:
                    status, body = await self.call("GET", f"{member.url}/api/v1/namespaces/{NAMESPACE}",
                                                   params={"project_id": PROJECT})
                except Unknown:
                    status = 503
                if status == 200:
                    break
                assert time.monotonic() < deadline and status in (500, 503), body
                await asyncio.sleep(0.1)
        return []

    async def run(self, member: ServiceProcess, op: str, key: str, input: Any) -> Any:
        if op == "get":
            status, body = await self.call("GET", f"{member.url}/api/v1/kv/{key}",
                                           params={"namespace": NAMESPACE, "project_id": PROJECT})
            assert status in (200, 404), body
            return (body["data"]["value"], body["data"]["version"]) if status == 200 else (None, 0)
        expected, new = input
        status, body = await self.call("POST", f"{member.url}/api/v1/cas", json={
            "namespace": NAMESPACE, "key": key, "value": new, "expected_version": expected, "project_id": PROJECT})
        assert status == 200, body
        data = body["data"]
        return data["succeeded"], data["version"], data.get("value")

    def choose(self, op: str, seen: Any, value: str) -> Any:
        return (seen[1] if seen is not None else 0, value)

    def observed(self, op: str, input: Any, output: Any, seen: Any) -> Any:
        if op == "get":
            return output
        _, version, value = output  # the key afterwards, swapped or not
        return (value, version)


# -- the runs -------------------------------------------------------------------------------------

@pytest.fixture
def network():
    """Members in cgroups of their own, so that a partition can cut one off; always healed and removed."""
    made = faults.Network()
    yield made
    made.close()


@pytest.fixture
async def session(iam_alone):
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {iam_alone.admin_token()}"}) as opened:
        yield opened


@pytest.fixture(params=["chainfire", "flaredb"])
def service(request, tmp_path, iam_alone, session):
    """A running three-member cluster of the service; its members enrolled in the network if the test
    partitions it (only a partition needs root and nftables)."""
    network = request.getfixturevalue("network") if "network" in request.fixturenames else None
    cluster = (ChainFireCluster if request.param == "chainfire" else FlareDBCluster)(tmp_path, iam_alone.iam.url)
    try:
        for member in cluster.members:
            if network is not None:
                network.enroll(member, peer_port(member))
            member.start()
        yield (ChainFire if request.param == "chainfire" else FlareDB)(cluster.members, session)
    finally:
        for member in cluster.members:
            if member.process is not None and member.process.poll() is None:
                faults.resume(member)  # a stopped process cannot take its SIGTERM
        cluster.stop()


class Run:
    """Concurrent clients recording a history while faults come and go."""

    def __init__(self, service: Service, rounds: int = ROUNDS):
        self.service = service
        self.keys = [f"register-{k}" for k in range(KEYS)]
        self.history: list[Operation] = []
        self.rounds = rounds
        self.stopped = False
        self.faults = 0
        self.healed_at = 0.0

    async def client(self, c: int) -> None:
        seen: dict[str, Any] = {}
        n = 0
        while not self.stopped:
            key, member = random.choice(self.keys), random.choice(self.service.members)
            op = random.choice(self.service.operations)
            n += 1
            input = None if op == "get" else self.service.choose(op, seen.get(key), f"c{c}-{n}")
            call = time.monotonic()
            try:
                output = await self.service.run(member, op, key, input)
            except Unknown as error:
                if op != "get" and not isinstance(error, Refused):  # it may take effect, any time after its call
                    self.history.append(Operation(c, key, op, input, call, None))
                await asyncio.sleep(0.05)
                continue
            self.history.append(Operation(c, key, op, input, call, time.monotonic(), output))
            seen[key] = self.service.observed(op, input, output, seen.get(key))

    @staticmethod
    def succeeded(output: Any) -> bool:
        """Whether a write took effect (a put always; a compare-and-swap when it says so)."""
        return output is None or output is True or (isinstance(output, tuple) and output[0] is True)

    async def faulting(self, inject: Callable[[int], Awaitable[None]]) -> None:
        """inject(round) after a second of quiet, ROUNDS times (each fault heals before inject returns),
        then RECOVERY seconds more of clients."""
        for round_ in range(self.rounds):
            await asyncio.sleep(QUIET)
            await inject(round_)
            self.faults += 1
        self.healed_at = time.monotonic()
        await asyncio.sleep(RECOVERY)
        self.stopped = True

    async def final_reads(self) -> None:
        """Every key through every member once the cluster is whole again: joins the history."""
        await self.service.leader()
        for key in self.keys:
            for member in self.service.members:
                deadline = time.monotonic() + 30
                while True:
                    call = time.monotonic()
                    try:
                        output = await self.service.run(member, "get", key, None)
                        break
                    except Unknown:
                        assert time.monotonic() < deadline, f"{member.url} could not read {key} after the faults"
                        await asyncio.sleep(0.2)
                self.history.append(Operation("final", key, "get", None, call, time.monotonic(), output))

    async def go(self, inject: Callable[[int], Awaitable[None]]) -> Result:
        """Run the clients and the faults, read back, and check the history."""
        self.history += await self.service.setup(self.keys)
        await asyncio.gather(self.faulting(inject), *(self.client(c) for c in range(CLIENTS)))
        await self.final_reads()
        done = [op for op in self.history if op.ret is not None and op.process not in ("setup", "final")]
        writes = [op for op in done if op.op != "get" and self.succeeded(op.output)]
        reads = [op for op in done if op.op == "get"]
        assert self.faults >= 1
        assert len(writes) >= 10 * self.faults and len(reads) >= 10 * self.faults, \
            f"too few operations completed: {len(writes)} writes, {len(reads)} reads"
        assert any(op.call > self.healed_at for op in writes), "no write was acknowledged after the last fault"
        started = time.monotonic()
        result = check(self.service.model, self.history)
        unknown = sum(op.ret is None for op in self.history)
        print(f"{len(self.history)} operations ({len(writes)} writes took effect, {unknown} unknown), "
              f"{self.faults} faults; {result.steps} search steps in {time.monotonic() - started:.2f} s")
        assert result.ok, result.explain()
        return result


async def target(service: Service, round_: int) -> ServiceProcess:
    """The leader in even rounds, a follower in odd ones."""
    leader = await service.leader()
    if round_ % 2 == 0:
        return leader
    return random.choice([m for m in service.members if m is not leader])


async def test_leader_and_follower_kills(service: Service) -> None:
    async def inject(round_: int) -> None:
        member = await target(service, round_)
        faults.kill(member)
        await asyncio.sleep(1.0)
        await asyncio.to_thread(faults.restart, member)

    await Run(service).go(inject)


async def test_members_stopped_longer_than_an_election(service: Service) -> None:
    async def inject(round_: int) -> None:
        member = await target(service, round_)
        faults.pause(member)
        await asyncio.sleep(1.5)  # the election timeout is 0.3 to 0.75 s
        faults.resume(member)

    await Run(service).go(inject)


async def test_members_partitioned_from_their_peers(service: Service, network: faults.Network) -> None:
    async def inject(round_: int) -> None:
        member = await target(service, round_)
        network.isolate(member)
        try:
            await asyncio.sleep(2.0)
        finally:
            network.heal()

    await Run(service).go(inject)


# -- the partition itself -------------------------------------------------------------------------

async def test_a_partition_cuts_a_member_off_its_peers_both_ways_and_heals(iam_alone, network, session,
                                                                          tmp_path) -> None:
    cluster = ChainFireCluster(tmp_path, iam_alone.iam.url)
    try:
        for member in cluster.members:
            network.enroll(member, peer_port(member))
            member.start()
        chainfire = ChainFire(cluster.members, session)
        await chainfire.put_until_done("fenced", "old")
        leader = await chainfire.leader()
        follower, other = [m for m in cluster.members if m is not leader]
        term = (await chainfire.role(leader))[1]

        # A follower cut off hears no heartbeat: it calls elections, in ever higher terms, that the
        # others never hear of (their term stays lower), while clients still reach it.
        network.isolate(follower)
        await asyncio.sleep(3)
        cut_off, leader_side, other_side = [await chainfire.role(m) for m in (follower, leader, other)]
        seen = f"cut off {cut_off}, leader {leader_side}, other {other_side}"
        assert cut_off[0] != "LEADER" and cut_off[2] == 0, seen  # it knows no leader
        assert cut_off[1] > max(leader_side[1], other_side[1]) >= term, seen  # they never heard its terms
        assert leader_side[0] == "LEADER" or other_side[0] == "LEADER", seen
        with pytest.raises(Unknown):
            await chainfire.run(follower, "put", "fenced", "through the cut-off follower")
        assert network.dropped() > 0
        network.heal()
        assert (await chainfire.leader()) is not None
        await chainfire.run(follower, "put", "fenced", "old")  # through it again

        # The leader cut off: the others elect another, in a higher term it does not hear of; the
        # old leader must not answer a linearizable read with the value the new leader replaced.
        leader = await chainfire.leader()
        _, term, _ = await chainfire.role(leader)
        network.isolate(leader)
        majority = [m for m in cluster.members if m is not leader]
        deadline = time.monotonic() + 15
        while True:
            roles = [await chainfire.role(m) for m in majority]
            if any(role == "LEADER" for role, _, _ in roles) and len({r[2] for r in roles}) == 1:
                break
            assert time.monotonic() < deadline, f"the majority elected no leader: {roles}"
            await asyncio.sleep(0.1)
        new_term = max(t for _, t, _ in roles)
        assert new_term > term, roles  # they stopped hearing it
        assert (await chainfire.role(leader))[1] < new_term, roles  # it heard nothing of the new term
        new_leader = next(m for m, (role, _, _) in zip(majority, roles) if role == "LEADER")
        for attempt in range(20):
            try:
                await chainfire.run(new_leader, "put", "fenced", "new")
                break
            except Unknown:
                assert attempt < 19, "the new leader took no write"
                await asyncio.sleep(0.2)
        try:
            read = await chainfire.run(leader, "get", "fenced", None)
        except Unknown:
            read = None  # refusing is right: it cannot know
        assert read != "old", "the partitioned old leader served a stale linearizable read"
        network.heal()
        healed = await chainfire.leader()
        assert {(await chainfire.role(m))[2] for m in cluster.members} == {(await chainfire.role(healed))[2]}
        assert await chainfire.run(leader, "get", "fenced", None) == "new"
    finally:
        cluster.stop()
