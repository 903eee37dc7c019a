"""k8shost's Events on an in-memory store: the scheduler's and the node agent's, recorded in the step that applies
what they are about; aggregation of repeats; retention by age and a cap per namespace; events clients record;
tenancy; and the contract's watch, which has no message for them, refusing them on both transports."""

from __future__ import annotations

import asyncio
from typing import Any

import aiohttp
import grpc
import pytest

from photoncloud.common import auth
from photoncloud.common.auth import PROJECT, Principal, Scope
from photoncloud.common.config import ServerConfig
from photoncloud.common.errors import Aborted, AlreadyExists, InvalidArgument, NotFound, PermissionDenied
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Server
from photoncloud.common.testing import TokenMint
from photoncloud.k8shost.app import build
from photoncloud.k8shost.commands import Bind, Create, RegisterNode, SetPodStatus, Unschedulable
from photoncloud.k8shost.core import pod_status
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.records import Container, Meta, Namespace, Node, NodeStatus, Pod, PodSpec, encode
from photoncloud.k8shost.store import SqliteObjectStore
from photoncloud.k8shost.v1 import k8shost_pb2 as pb
from photoncloud.k8shost.v1 import k8shost_pb2_grpc as pb_grpc

SLEEP = {"containers": [{"name": "main", "image": "busybox:1", "command": ["sleep", "60"]}]}
POD_REF = {"kind": "Pod", "namespace": "web", "name": "a"}


async def node(kube, name: str = "n1", cpu: str = "2"):
    """Register a Ready node."""
    return await kube.register_node(name, {}, {"cpu": cpu, "memory": "4Gi", "pods": "10"}, None,
                                    [{"type": "InternalIP", "address": "127.0.0.1"}], 10250, "t")


async def bound_pod(kube, namespace: str = "web", name: str = "a") -> Pod:
    """A pod of the namespace bound to node n1 (registered here if missing)."""
    if not (await kube.nodes()).items:
        await node(kube)
    await kube.create_pod(namespace, name, spec=SLEEP)
    await kube.schedule()
    pod = await kube.pod(namespace, name)
    assert pod.spec.node_name == "n1"
    return pod


def container(state: str, reason: str = "", message: str = "", exit_code: int = 0, started: str = "",
              finished: str = "", restarts: int = 0) -> dict[str, Any]:
    """A pod status report with one container named main in this state."""
    return {"phase": "Running" if state == "RUNNING" else "Pending",
            "container_statuses": [{"name": "main", "state": state, "reason": reason, "message": message,
                                    "exit_code": exit_code, "started_at": started, "finished_at": finished,
                                    "restart_count": restarts}]}


async def events_of(kube, namespace: str = "web") -> list:
    """The namespace's events, oldest first (by first time seen, then resource version)."""
    items = (await kube.events(namespace)).items
    return sorted(items, key=lambda e: (e.first_timestamp, e.metadata.resource_version))


def summary(events: list) -> list[tuple[str, str, int]]:
    """(type, reason, count) of each event."""
    return [(e.type, e.reason, e.count) for e in events]


def bind_caller(scope: Scope, permissions=("*:*:read", "*:*:write")) -> object:
    """Make a caller with this scope and these permissions the current principal."""
    return auth.bind(Principal("user:u", "u", scope, ("member",), tuple(permissions), "jti", 2**31, "token"))


# The scheduler's events

async def test_binding_records_scheduled_and_an_unschedulable_pod_failed_scheduling_once_per_message(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "small", cpu="1")
    pod = await kube.create_pod("web", "a", spec={"containers": [{"name": "main", "command": ["true"], "resources": {
        "requests": {"cpu": "2"}}}]})
    await kube.schedule()
    (failed,) = await events_of(kube)
    assert (failed.type, failed.reason, failed.source_component, failed.count) == \
        ("Warning", "FailedScheduling", "default-scheduler", 1)
    assert failed.message == "0/1 nodes are available: 1 Insufficient cpu."
    ref = failed.involved_object
    assert (ref.kind, ref.namespace, ref.name, ref.uid) == ("Pod", "web", "a", pod.metadata.uid)
    assert failed.metadata.name == f"a.{failed.metadata.resource_version:x}"  # named for the revision it took
    assert failed.first_timestamp == failed.last_timestamp == clock.now
    applied = kube.machine.applied_index()
    await kube.schedule()  # the same reason again: nothing is proposed, no event is added
    assert kube.machine.applied_index() == applied and len(await events_of(kube)) == 1

    clock.now += 5
    await node(kube, "other", cpu="1")  # a new message: a new event
    await kube.schedule()
    assert [e.message for e in await events_of(kube)] == ["0/1 nodes are available: 1 Insufficient cpu.",
                                                          "0/2 nodes are available: 2 Insufficient cpu."]
    clock.now += 5
    await kube.delete_node("other")  # the first message again: the first event counts it
    await kube.schedule()
    events = await events_of(kube)
    assert summary(events) == [("Warning", "FailedScheduling", 2), ("Warning", "FailedScheduling", 1)]
    assert (events[0].metadata.name, events[0].first_timestamp, events[0].last_timestamp) == \
        (failed.metadata.name, failed.first_timestamp, clock.now)

    clock.now += 5
    await node(kube, "big", cpu="4")
    assert await kube.schedule() == 1
    scheduled = (await events_of(kube))[-1]
    assert (scheduled.type, scheduled.reason, scheduled.source_component) == \
        ("Normal", "Scheduled", "default-scheduler")
    assert scheduled.message == "Successfully assigned web/a to big"
    assert scheduled.involved_object.uid == pod.metadata.uid and scheduled.last_timestamp == clock.now
    bound = await kube.pod("web", "a")
    assert scheduled.metadata.resource_version == bound.metadata.resource_version + 1  # in the same step


async def test_replicas_applying_the_same_commands_record_the_same_events(tmp_path):
    """No clock or randomness in the step: two state machines given one log agree on every event, uid included."""
    ns = Namespace(Meta("web", uid="ns-uid"), "o1", "p1")
    pod = Pod(Meta("a", "web", "pod-uid"), PodSpec((Container("main", command=("true",)),)))
    capacity = {"cpu": "1", "memory": "1Gi", "pods": "10"}
    commands = [Create("namespaces", ns), Create("pods", pod),
                RegisterNode(Node(Meta("n1", uid="node-uid"), status=NodeStatus(capacity, capacity)), 5.0),
                Unschedulable("web", "a", "pod-uid", "0/1 nodes are available: 1 node(s) were unschedulable.", 10.0),
                Bind("web", "a", "pod-uid", "n1", 20.0),
                SetPodStatus("web", "a", "pod-uid", pod_status(container("RUNNING", started="2026-01-01T00:00:00Z")),
                             30.0)]
    recorded = []
    for path in (":memory:", tmp_path / "replica.sqlite3"):
        store = SqliteObjectStore(path)
        log = LocalLog(ObjectStateMachine(store))
        for command in commands:
            await log.propose(command)
        recorded.append([encode(e) for e in store.scan("events")])
        await log.close()
        store.close()
    assert len(recorded[0]) == 3 and recorded[0] == recorded[1]
    assert len({e["metadata"]["uid"] for e in recorded[0]}) == 3


# The node agent's events

async def test_status_reports_record_started_failed_and_back_off_and_repeats_count_up(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    pod = await bound_pod(kube)
    uid = pod.metadata.uid

    async def report(status: dict) -> None:
        await kube.update_pod_status("web", "a", uid, status)

    await report(container("WAITING", "ContainerCreating"))  # the normal wait: nothing to say
    await report(container("RUNNING", started="2026-01-01T00:00:01Z"))
    await report(container("RUNNING", started="2026-01-01T00:00:01Z"))  # the same report: nothing new
    started = [e for e in await events_of(kube) if e.reason == "Started"]
    assert [(e.type, e.message, e.count, e.source_component, e.source_host) for e in started] == \
        [("Normal", "Started container main", 1, "kubelet", "n1")]
    assert started[0].involved_object.field_path == "spec.containers{main}"
    first_seen = clock.now

    for cycle in range(3):  # a crash loop: exit 1, back-off (whose delay grows), a new run
        clock.now += 10
        await report(container("TERMINATED", "Error", exit_code=1, started=f"2026-01-01T00:0{cycle}:01Z",
                               finished=f"2026-01-01T00:0{cycle}:02Z"))
        await report(container("WAITING", "CrashLoopBackOff", f"back-off {0.2 * 2 ** cycle:g}s restarting the "
                               "exited container (exit code 1)"))
        await report(container("RUNNING", started=f"2026-01-01T00:0{cycle + 1}:01Z"))
    # A restart within the second of the last start, whose other reports the agent did not get to send: the
    # restart count tells the runs apart.
    clock.now += 10
    await report(container("RUNNING", started="2026-01-01T00:03:01Z", restarts=1))
    events = await events_of(kube)
    assert summary(events) == [("Normal", "Scheduled", 1), ("Normal", "Started", 5), ("Warning", "Failed", 3),
                               ("Warning", "BackOff", 3)]
    failed, backoff = events[2], events[3]
    assert failed.message == "Container main exited with code 1 (Error)"
    assert backoff.message == f"Back-off restarting failed container main in pod a_web({uid})"
    assert (events[1].first_timestamp, events[1].last_timestamp) == (first_seen, clock.now)
    assert len({e.metadata.name for e in events}) == 4


async def test_waiting_reasons_become_warnings_and_a_deliberate_stop_or_a_clean_exit_does_not(kube):
    await kube.create_namespace("web", "o1", "p1")
    pod = await bound_pod(kube)

    async def report(status: dict) -> None:
        await kube.update_pod_status("web", "a", pod.metadata.uid, status)

    await report(container("WAITING", "ErrImagePull", "manifest unknown"))
    await report(container("WAITING", "ImagePullBackOff", "back-off pulling"))
    await report(container("WAITING", "CreateContainerConfigError", "x" * 5000))  # an agent's long message
    await report(container("TERMINATED", "Killed", exit_code=137, finished="2026-01-01T00:00:02Z"))
    await report(container("TERMINATED", "Completed", exit_code=0, finished="2026-01-01T00:00:03Z"))
    await report(container("TERMINATED", "OOMKilled", "the container reached its memory limit (137)", 137,
                           finished="2026-01-01T00:00:04Z"))
    events = [e for e in await events_of(kube) if e.reason != "Scheduled"]
    assert [(e.type, e.reason) for e in events] == [("Warning", "Failed"), ("Warning", "BackOff"),
                                                    ("Warning", "CreateContainerConfigError"), ("Warning", "Failed")]
    assert events[0].message == 'Failed to pull image "busybox:1": manifest unknown'
    assert events[1].message == 'Back-off pulling image "busybox:1"'
    assert events[2].message == "x" * 1024  # cut to 1 KiB, as Kubernetes' recorder does
    assert events[3].message == "Container main exited with code 137 (OOMKilled): the container reached its " \
                                "memory limit (137)"


async def test_the_pods_of_a_node_that_went_silent_get_a_node_not_ready_warning(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    pod = await bound_pod(kube)
    clock.now += 11  # past the fixture's node grace
    assert await kube.check_nodes() == ["n1"]
    lost = (await events_of(kube))[-1]
    assert (lost.type, lost.reason, lost.message, lost.source_component) == \
        ("Warning", "NodeNotReady", "Node is not ready", "node-controller")
    assert lost.involved_object.uid == pod.metadata.uid and lost.last_timestamp == clock.now


# Retention

async def test_events_older_than_an_hour_go_when_their_namespace_records_another(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    await kube.create_namespace("dev", "o1", "p1")
    await kube.create_event("web", "old", POD_REF, "Tested", "first")
    await kube.create_event("web", "kept", POD_REF, "Tested", "second")
    await kube.create_event("dev", "other", {"kind": "Pod", "name": "b"}, "Tested", "elsewhere")
    clock.now += 1800
    pod = await bound_pod(kube)  # the scheduler's event in web, half an hour on: both still kept
    scheduled = f"a.{pod.metadata.resource_version + 1:x}"
    assert {e.metadata.name for e in await events_of(kube)} == {"old", "kept", scheduled}
    clock.now += 1801  # "old" and "kept" are now past the hour, the Scheduled event is not
    await kube.update_pod_status("web", "a", pod.metadata.uid, container("RUNNING", started="2026-01-01T00:00:01Z"))
    assert [e.reason for e in await events_of(kube)] == ["Scheduled", "Started"]
    assert [e.metadata.name for e in await events_of(kube, "dev")] == ["other"]  # another namespace: its own time
    with pytest.raises(NotFound):
        await kube.event("web", "old")
    # A repeat keeps its event alive: last seen recently, it stays however long ago it first happened.
    clock.now += 3000
    await kube.update_pod_status("web", "a", pod.metadata.uid, container("RUNNING", started="2026-01-01T00:01:01Z"))
    clock.now += 3000
    await kube.create_event("web", "fresh", POD_REF, "Tested", "third")
    assert summary(await events_of(kube)) == [("Normal", "Started", 2), ("Normal", "Tested", 1)]


async def test_a_tenant_flooding_its_namespace_cannot_exceed_the_cap(kube, clock):
    kube.machine.events_kept = 5  # the cap (1000 by default), made small so that flooding takes few steps
    await kube.create_namespace("web", "o1", "p1")
    await kube.create_namespace("quiet", "o1", "p2")
    await kube.create_event("quiet", "kept", {"kind": "Pod", "name": "b"}, "Tested", "a bystander")
    token = bind_caller(Scope(PROJECT, "o1", "p1"))
    try:
        for i in range(20):
            clock.now += 1
            await kube.create_event("web", f"flood-{i}", POD_REF, "Flooding", f"event {i}")
            assert kube.store.count("events", "web") <= 5
    finally:
        auth.reset(token)
    assert [e.metadata.name for e in await events_of(kube)] == [f"flood-{i}" for i in range(15, 20)]  # the newest
    assert [e.metadata.name for e in await events_of(kube, "quiet")] == ["kept"]  # the cap is per namespace


async def test_deleting_a_namespace_deletes_its_events(kube):
    await kube.create_namespace("web", "o1", "p1")
    await bound_pod(kube)
    await kube.create_event("web", "mine", POD_REF, "Tested", "x")
    assert len((await kube.events()).items) == 2
    await kube.delete_namespace("web")
    await kube.create_namespace("web", "o1", "p1")
    assert (await kube.events()).items == [] and kube.store.count("events", "web") == 0


# Events clients record

async def test_a_client_records_reads_lists_and_deletes_events(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    made = await kube.create_event("web", "a.1", {**POD_REF, "uid": "u1", "field_path": "spec.containers{main}"},
                                   "Probing", "probe failed", "Warning", "my-operator", "n1", labels={"app": "x"})
    assert (made.type, made.reason, made.message, made.source_component, made.source_host, made.count) == \
        ("Warning", "Probing", "probe failed", "my-operator", "n1", 1)
    assert made.first_timestamp == made.last_timestamp == clock.now and made.metadata.resource_version == 2
    assert made.involved_object.field_path == "spec.containers{main}"
    assert clock.now == 1_800_000_000.0  # 2027-01-15T08:00:00Z
    stamped = await kube.create_event("web", "b", POD_REF, "Counted", "", first_timestamp="2027-01-15T07:59:00Z",
                                      last_timestamp=clock.now - 10, count=7)
    assert (stamped.first_timestamp, stamped.last_timestamp, stamped.count, stamped.type) == \
        (clock.now - 60, clock.now - 10, 7, "Normal")
    assert (await kube.event("web", "a.1")).message == "probe failed"
    assert [e.metadata.name for e in (await kube.events("web", "app=x")).items] == ["a.1"]
    page = await kube.events("web", page_size=1)
    assert len(page.items) == 1 and page.next_page_token
    with pytest.raises(AlreadyExists):
        await kube.create_event("web", "a.1", POD_REF, "Probing", "again")
    with pytest.raises(Aborted):
        await kube.delete_event("web", "a.1", resource_version="1")
    assert (await kube.delete_event("web", "a.1", resource_version="2")).metadata.name == "a.1"
    with pytest.raises(NotFound):
        await kube.event("web", "a.1")
    with pytest.raises(NotFound):
        await kube.create_event("nowhere", "x", {"kind": "Pod", "name": "a"}, "Tested", "")


async def test_a_client_counts_a_repeat_by_replacing_its_event(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    ref = {**POD_REF, "uid": "u1", "api_version": "v1", "resource_version": "7"}
    made = await kube.create_event("web", "e", ref, "Probing", "probe failed", "Warning", "prober")
    assert (made.involved_object.api_version, made.involved_object.resource_version) == ("v1", "7")
    clock.now += 30
    counted = await kube.update_event("web", "e", ref, "Probing", "probe failed", "Warning", "prober",
                                      first_timestamp=made.first_timestamp, last_timestamp=clock.now, count=2,
                                      resource_version=str(made.metadata.resource_version))
    assert (counted.count, counted.first_timestamp, counted.last_timestamp) == (2, clock.now - 30, clock.now)
    assert (counted.metadata.uid, counted.metadata.creation_timestamp) == \
        (made.metadata.uid, made.metadata.creation_timestamp)
    with pytest.raises(Aborted):  # a second recorder that read the same version loses
        await kube.update_event("web", "e", ref, "Probing", "probe failed", count=3,
                                resource_version=str(made.metadata.resource_version))
    with pytest.raises(InvalidArgument):
        await kube.update_event("web", "e", ref, "Probing", "probe failed", count=0)
    with pytest.raises(NotFound):
        await kube.update_event("web", "other", ref, "Probing", "probe failed")
    assert (await kube.event("web", "e")).count == 2


@pytest.mark.parametrize("change, field", [
    ({"name": "Bad_Name"}, "name"),
    ({"involved_object": {"name": "a"}}, "involved_object.kind"),
    ({"involved_object": {"kind": "pod", "name": "a"}}, "involved_object.kind"),
    ({"involved_object": {"kind": "Pod"}}, "involved_object.name"),
    ({"involved_object": {"kind": "Pod", "name": "a", "namespace": "theirs"}}, "involved_object.namespace"),
    ({"involved_object": {"kind": "Pod", "name": "a", "api": "v1"}}, "involved_object.api"),
    ({"involved_object": "a"}, "involved_object"),
    ({"reason": ""}, "reason"),
    ({"reason": "R" * 129}, "reason"),
    ({"reason": "two words"}, "reason"),
    ({"message": "é" * 513}, "message"),  # 1026 bytes
    ({"type": "Error"}, "type"),
    ({"source_component": "a\nb"}, "source_component"),
    ({"source_host": "Not A Host"}, "source_host"),
    ({"count": 0}, "count"),
    ({"count": "3"}, "count"),
    ({"last_timestamp": "yesterday"}, "last_timestamp"),
    ({"last_timestamp": 1_800_000_000.0 + 3600}, "last_timestamp"),  # an hour ahead of the server's clock
    ({"last_timestamp": 1_800_000_000.0 - 3601}, "last_timestamp"),  # past the retention: it would not be kept
    ({"first_timestamp": 1_800_000_000.0 - 10, "last_timestamp": 1_800_000_000.0 - 20}, "first_timestamp"),
])
async def test_what_clients_record_is_checked(kube, clock, change, field):
    assert clock.now == 1_800_000_000.0  # the times above are relative to the fixture's clock
    await kube.create_namespace("web", "o1", "p1")
    args = {"name": "e", "involved_object": POD_REF, "reason": "Tested", "message": "x", **change}
    with pytest.raises(InvalidArgument) as refused:
        await kube.create_event("web", **args)
    assert refused.value.details["field"] == field
    assert (await kube.events("web")).items == []  # nothing was recorded


async def test_a_message_of_exactly_one_kib_is_taken(kube):
    await kube.create_namespace("web", "o1", "p1")
    assert len((await kube.create_event("web", "e", POD_REF, "Tested", "é" * 512)).message.encode()) == 1024


# Tenancy

async def test_another_project_cannot_list_read_record_delete_or_watch_a_namespaces_events(kube):
    await kube.create_namespace("mine", "o1", "p1")
    await kube.create_namespace("theirs", "o1", "p2")
    await kube.create_event("mine", "m", {"kind": "Pod", "name": "a"}, "Tested", "mine")
    await kube.create_event("theirs", "t", {"kind": "Pod", "name": "b"}, "Tested", "theirs")
    token = bind_caller(Scope(PROJECT, "o1", "p1"))
    try:
        assert [e.metadata.name for e in (await kube.events()).items] == ["m"]
        for attempt in (kube.events("theirs"), kube.event("theirs", "t"), kube.delete_event("theirs", "t"),
                        kube.create_event("theirs", "x", {"kind": "Pod", "name": "b"}, "Forged", "not yours"),
                        kube.update_event("theirs", "t", {"kind": "Pod", "name": "b"}, "Forged", "not yours"),
                        kube.watch("events", "theirs")):
            with pytest.raises(PermissionDenied):
                await attempt
        watch = await kube.watch("events")  # every namespace the token reaches: its own only
        events = watch.__aiter__()
        assert [e.object.metadata.name for e in await asyncio.wait_for(anext(events), 2)] == ["m"]
    finally:
        auth.reset(token)
    assert (await kube.event("theirs", "t")).message == "theirs"  # neither deleted nor rewritten
    await kube.create_event("theirs", "t2", {"kind": "Pod", "name": "b"}, "Tested", "theirs again")
    await kube.create_event("mine", "m2", {"kind": "Pod", "name": "a"}, "Tested", "mine again")
    assert [e.object.metadata.name for e in await asyncio.wait_for(anext(events), 2)] == ["m2"]
    watch.close()
    reader = bind_caller(Scope(PROJECT, "o1", "p1"), ("k8shost:pods:read",))
    try:
        assert [e.metadata.name for e in (await kube.events("mine")).items] == ["m", "m2"]  # read as pods are
        with pytest.raises(PermissionDenied):
            await kube.create_event("mine", "x", {"kind": "Pod", "name": "a"}, "Tested", "")
        with pytest.raises(PermissionDenied):
            await kube.delete_event("mine", "m")
        with pytest.raises(PermissionDenied):
            await kube.update_event("mine", "m", {"kind": "Pod", "name": "a"}, "Tested", "rewritten")
    finally:
        auth.reset(reader)
    assert (await kube.event("mine", "m")).message == "mine"
    no_pods = bind_caller(Scope(PROJECT, "o1", "p1"), ("k8shost:services:read", "k8shost:namespaces:read"))
    try:
        with pytest.raises(PermissionDenied):
            await kube.events("mine")
    finally:
        auth.reset(no_pods)


# Watch

async def test_a_watch_of_events_sees_them_recorded_and_counted(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "small", cpu="1")
    await kube.create_pod("web", "a", spec={"containers": [{"name": "main", "command": ["true"], "resources": {
        "requests": {"cpu": "2"}}}]})
    watch = await kube.watch("events", "web")
    events = watch.__aiter__()
    await kube.schedule()
    (added,) = await asyncio.wait_for(anext(events), 2)
    assert (added.type, added.kind, added.object.reason, added.object.count) == \
        ("ADDED", "events", "FailedScheduling", 1)
    await node(kube, "other", cpu="1")
    await kube.schedule()
    await kube.delete_node("other")
    await kube.schedule()
    seen = []
    while len(seen) < 2:
        seen += [(e.type, e.object.count) for e in await asyncio.wait_for(anext(events), 2)]
    assert seen == [("ADDED", 1), ("MODIFIED", 2)]
    watch.close()


# The contract's watch has no Event message

MINT = TokenMint()


async def test_the_contracts_watch_refuses_events_on_both_transports(tmp_path):
    config = ServerConfig(service="k8shost", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=tmp_path,
                          shutdown_grace=2, iam_url="", options={"disable_scheduler": True})
    service = await build(config)
    service.verifier = MINT.verifier()
    server = Server(service, config)
    await server.start()
    authorization = f"Bearer {MINT.token()}"
    try:
        async with aiohttp.ClientSession(headers={"Authorization": authorization}) as session:
            async with session.get(f"http://127.0.0.1:{server.rest_port}/api/v1/watch/events",
                                   params={"timeout_seconds": "1"}) as response:
                body = await response.json()
            assert response.status == 400 and body["error"]["code"] == "INVALID_ARGUMENT"
            assert "namespaces, pods, services, nodes, endpoints" in body["error"]["message"]
            assert body["error"]["details"] == {"field": "kind"}
        async with grpc.aio.insecure_channel(f"127.0.0.1:{server.grpc_port}") as channel:
            stream = pb_grpc.WatchStub(channel).Watch(pb.WatchRequest(kind="events", timeout_seconds=1),
                                                      metadata=(("authorization", authorization),))
            with pytest.raises(grpc.aio.AioRpcError) as refused:
                await stream.read()
            assert refused.value.code() == grpc.StatusCode.INVALID_ARGUMENT
            assert "namespaces, pods, services, nodes, endpoints" in (refused.value.details() or "")
    finally:
        await server.stop()
