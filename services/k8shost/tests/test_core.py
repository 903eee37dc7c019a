"""k8shost's rules on an in-memory store: metadata, resource versions and optimistic concurrency,
label selectors and pagination, tenancy, the scheduler, nodes that go silent, and watches."""

from __future__ import annotations

import asyncio

import pytest

from photoncloud.common import auth
from photoncloud.common.auth import PROJECT, Principal, Scope
from photoncloud.common.errors import (
    Aborted,
    AlreadyExists,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
)

BUSYBOX = {"containers": [{"name": "main", "command": ["sleep", "60"]}]}


def spec(cpu: str = "", memory: str = "", node_selector: dict | None = None, policy: str = "Always") -> dict:
    """A pod spec of one container with these requests, selector and policy."""
    requests = {k: v for k, v in (("cpu", cpu), ("memory", memory)) if v}
    return {"containers": [{"name": "main", "command": ["sleep", "60"], "resources": {"requests": requests}}],
            "node_selector": node_selector or {}, "restart_policy": policy}


async def node(kube, name: str, cpu: str = "2", memory: str = "4Gi", labels: dict | None = None):
    """Register a Ready node with this capacity and labels."""
    return await kube.register_node(name, labels or {}, {"cpu": cpu, "memory": memory, "pods": "10"}, None,
                                    [{"type": "InternalIP", "address": "127.0.0.1"}], 10250, "t")


async def test_objects_get_metadata_and_every_change_takes_the_next_global_revision(kube, clock):
    ns = await kube.create_namespace("web", "o1", "p1", {"team": "a"}, {"note": "x y"})
    assert (ns.metadata.name, ns.metadata.resource_version, ns.metadata.creation_timestamp) == ("web", 1, clock.now)
    assert len(ns.metadata.uid) == 36 and ns.metadata.labels == {"team": "a"} and ns.phase == "Active"
    pod = await kube.create_pod("web", "a", {"app": "a"}, spec=BUSYBOX)
    assert pod.metadata.resource_version == 2 and pod.metadata.namespace == "web" and pod.status.phase == "Pending"
    service = await kube.create_service("web", "a", port=80, target_port=8080, selector={"app": "a"})
    assert service.metadata.resource_version == 3  # and its endpoints 4, in the same step
    assert (service.spec.type, service.spec.ports[0].port, service.spec.ports[0].target_port) == ("ClusterIP", 80, 8080)
    assert (await kube.endpoints("web", "a")).metadata.resource_version == 4
    updated = await kube.update_pod("web", "a", {"app": "a", "v": "2"})
    assert updated.metadata.resource_version == 5 and updated.metadata.uid == pod.metadata.uid
    with pytest.raises(AlreadyExists):
        await kube.create_pod("web", "a", spec=BUSYBOX)
    with pytest.raises(NotFound):
        await kube.create_pod("nowhere", "a", spec=BUSYBOX)


@pytest.mark.parametrize("name", ["", "Upper", "-a", "a-", "a_b", "a" * 64, "a.b"])
async def test_names_are_dns_labels(kube, name):
    await kube.create_namespace("web", "o1", "p1")
    with pytest.raises(InvalidArgument) as error:
        await kube.create_pod("web", name, spec=BUSYBOX)
    assert error.value.details["field"] == "name"


async def test_the_shorthand_makes_a_one_container_pod_and_a_one_port_service(kube):
    await kube.create_namespace("web", "o1", "p1")
    pod = await kube.create_pod("web", "hello", image="python:3.12", command=["python3"], args=["-m", "http.server"])
    (container,) = pod.spec.containers
    assert (container.name, container.image, container.command, container.args) == \
        ("main", "python:3.12", ("python3",), ("-m", "http.server"))
    with pytest.raises(InvalidArgument, match="not both"):
        await kube.create_pod("web", "x", spec=BUSYBOX, command=["true"])
    with pytest.raises(InvalidArgument, match="at least one container"):
        await kube.create_pod("web", "x")
    with pytest.raises(InvalidArgument, match="restart_policy"):
        await kube.create_pod("web", "x", spec={**BUSYBOX, "restart_policy": "Sometimes"})
    with pytest.raises(InvalidArgument, match="quantity"):
        await kube.create_pod("web", "x", spec=spec(cpu="lots"))
    service = await kube.create_service("web", "s", service_type="NodePort", port=80, selector={"app": "a"})
    assert service.spec.type == "NodePort" and service.spec.ports[0].target_port == 80
    with pytest.raises(InvalidArgument, match="at least one port"):
        await kube.create_service("web", "t", selector={"app": "a"})


async def test_a_stale_resource_version_is_aborted_and_the_current_one_goes_through(kube):
    await kube.create_namespace("web", "o1", "p1")
    pod = await kube.create_pod("web", "a", {"v": "1"}, spec=BUSYBOX)
    read = str(pod.metadata.resource_version)
    first = await kube.update_pod("web", "a", {"v": "2"}, resource_version=read)
    with pytest.raises(Aborted) as conflict:  # a second writer that read the same version loses
        await kube.update_pod("web", "a", {"v": "3"}, resource_version=read)
    assert conflict.value.details == {"reason": "CONFLICT", "resource_version": str(first.metadata.resource_version)}
    with pytest.raises(Aborted):
        await kube.delete_pod("web", "a", resource_version=read)
    assert (await kube.pod("web", "a")).metadata.labels == {"v": "2"}
    await kube.update_pod("web", "a", {"v": "3"})  # no resource_version: unconditional
    with pytest.raises(InvalidArgument):
        await kube.update_pod("web", "a", {}, resource_version="abc")
    for odd in ("\u00b2", "\u0663", "\uff11"):  # digits to str.isdigit, not to int(): refused, not a crash
        with pytest.raises(InvalidArgument):
            await kube.delete_pod("web", "a", resource_version=odd)
    current = str((await kube.pod("web", "a")).metadata.resource_version)
    deleted = await kube.delete_pod("web", "a", resource_version=current)
    assert deleted.metadata.labels == {"v": "3"}
    with pytest.raises(NotFound):
        await kube.pod("web", "a")


async def test_concurrent_updates_from_one_read_let_exactly_one_win(kube):
    await kube.create_namespace("web", "o1", "p1")
    pod = await kube.create_pod("web", "a", spec=BUSYBOX)
    read = str(pod.metadata.resource_version)
    results = await asyncio.gather(*(kube.update_pod("web", "a", {"writer": str(i)}, resource_version=read)
                                     for i in range(20)), return_exceptions=True)
    assert sum(not isinstance(r, Exception) for r in results) == 1
    assert all(isinstance(r, Aborted) for r in results if isinstance(r, Exception))


async def test_listings_filter_by_label_selector_and_page_through_everything(kube):
    await kube.create_namespace("web", "o1", "p1")
    for i in range(7):
        await kube.create_pod("web", f"p{i}", {"app": "web" if i % 2 else "db", "i": str(i)}, spec=BUSYBOX)
    web = await kube.pods("web", "app=web")
    assert [p.metadata.name for p in web.items] == ["p1", "p3", "p5"]
    assert [p.metadata.name for p in (await kube.pods("web", "app!=web,i notin (0,2)")).items] == ["p4", "p6"]
    assert [p.metadata.name for p in (await kube.pods("web", "i in (1, 2),!nothing")).items] == ["p1", "p2"]
    names, token = [], ""
    while True:
        page = await kube.pods("web", "app", page_size=2, page_token=token)
        assert len(page.items) <= 2 and page.resource_version == 8
        names += [p.metadata.name for p in page.items]
        token = page.next_page_token
        if not token:
            break
    assert names == [f"p{i}" for i in range(7)]
    with pytest.raises(InvalidArgument) as bad:
        await kube.pods("web", "app in web")
    assert bad.value.details == {"field": "label_selector"}
    with pytest.raises(InvalidArgument):
        await kube.pods("web", page_token="garbage!")


def bind_caller(scope: Scope, permissions=("*:*:read", "*:*:write")) -> object:
    """Make a caller with this scope and these permissions the current principal."""
    return auth.bind(Principal("user:u", "u", scope, ("member",), tuple(permissions), "jti", 2**31, "token"))


async def test_namespaces_belong_to_projects_and_a_project_token_sees_only_its_own(kube):
    await kube.create_namespace("mine", "o1", "p1")
    await kube.create_namespace("theirs", "o1", "p2")
    await kube.create_pod("mine", "a", spec=BUSYBOX)
    await kube.create_pod("theirs", "b", spec=BUSYBOX)
    token = bind_caller(Scope(PROJECT, "o1", "p1"))
    try:
        assert [n.metadata.name for n in (await kube.namespaces()).items] == ["mine"]
        assert [p.metadata.name for p in (await kube.pods()).items] == ["a"]
        with pytest.raises(PermissionDenied):
            await kube.pod("theirs", "b")
        with pytest.raises(PermissionDenied):
            await kube.create_pod("theirs", "c", spec=BUSYBOX)
        with pytest.raises(PermissionDenied):
            await kube.create_namespace("new", "o1", "p2")
        watch = await kube.watch("pods")
        assert [e.object.metadata.name for e in await anext(watch.__aiter__())] == ["a"]
        watch.close()
    finally:
        auth.reset(token)
    reader = bind_caller(Scope(PROJECT, "o1", "p1"), ("k8shost:pods:read",))
    try:
        with pytest.raises(PermissionDenied):
            await kube.create_pod("mine", "c", spec=BUSYBOX)
    finally:
        auth.reset(reader)


async def test_deleting_a_namespace_deletes_its_pods_and_services(kube):
    await kube.create_namespace("web", "o1", "p1")
    await kube.create_pod("web", "a", spec=BUSYBOX)
    await kube.create_service("web", "s", port=80)
    await kube.delete_namespace("web")
    with pytest.raises(NotFound):
        await kube.namespace("web")
    assert (await kube.pods()).items == [] and (await kube.services()).items == []


# Services

async def test_services_get_the_lowest_free_cluster_ip_and_node_ports_from_their_ranges(kube):
    await kube.create_namespace("web", "o1", "p1")
    a = await kube.create_service("web", "a", port=80)
    b = await kube.create_service("web", "b", service_type="NodePort", port=80)
    assert (a.spec.cluster_ip, b.spec.cluster_ip) == ("127.96.0.2", "127.96.0.3")  # .1 is kept back
    assert a.spec.ports[0].node_port == 0 and b.spec.ports[0].node_port == 30000
    c = await kube.create_service("web", "c", spec={"type": "NodePort", "ports": [{"port": 1, "node_port": 30001},
                                                                                  {"port": 2, "name": "x"}]})
    assert [p.node_port for p in c.spec.ports] == [30001, 30002]
    with pytest.raises(InvalidArgument) as taken:
        await kube.create_service("web", "d", spec={"type": "NodePort", "ports": [{"port": 1, "node_port": 30000}]})
    assert taken.value.details["reason"] == "NODE_PORT_ALLOCATED"
    with pytest.raises(InvalidArgument, match="outside"):
        await kube.create_service("web", "d", spec={"type": "NodePort", "ports": [{"port": 1, "node_port": 80}]})
    await kube.delete_service("web", "a")
    assert (await kube.create_service("web", "e", port=80)).spec.cluster_ip == "127.96.0.2"  # freed, given again
    # An update keeps the cluster IP and each port's node port; a switch to ClusterIP gives them back.
    kept = await kube.update_service("web", "b", spec={"type": "NodePort", "ports": [{"port": 80}, {"port": 81,
                                                                                                  "name": "b"}]})
    assert kept.spec.cluster_ip == "127.96.0.3" and [p.node_port for p in kept.spec.ports] == [30000, 30003]
    back = await kube.update_service("web", "b", spec={"type": "ClusterIP", "ports": [{"port": 80}]})
    assert back.spec.ports[0].node_port == 0
    assert (await kube.create_service("web", "f", service_type="NodePort", port=1)).spec.ports[0].node_port == 30000


async def test_endpoints_follow_the_ready_pods_a_service_selects(kube):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "n1")
    await kube.create_service("web", "front", port=80, target_port=8080, selector={"app": "web"})
    pods = [await kube.create_pod("web", f"p{i}", {"app": "web" if i < 2 else "db"}, spec=spec()) for i in range(3)]
    await kube.schedule()
    endpoints = await kube.endpoints("web", "front")
    assert endpoints.addresses == () and endpoints.not_ready_addresses == ()  # no pod has an address yet
    assert [(p.port, p.protocol) for p in endpoints.ports] == [(8080, "TCP")]

    def report(ip: str, ready: bool) -> dict:
        return {"phase": "Running", "pod_ip": ip, "conditions": [{"type": "Ready", "status": str(ready)}]}

    for i, pod in enumerate(pods):
        await kube.update_pod_status("web", pod.metadata.name, pod.metadata.uid, report(f"127.80.0.{i + 1}", i != 1))
    endpoints = await kube.endpoints("web", "front")
    assert [(a.ip, a.pod_name, a.node_name) for a in endpoints.addresses] == [("127.80.0.1", "p0", "n1")]
    assert [a.pod_name for a in endpoints.not_ready_addresses] == ["p1"]
    await kube.update_pod_status("web", "p1", pods[1].metadata.uid, report("127.80.0.2", True))
    await kube.update_pod("web", "p2", {"app": "web"})  # relabelled into the selector
    assert [a.pod_name for a in (await kube.endpoints("web", "front")).addresses] == ["p0", "p1", "p2"]
    await kube.delete_pod("web", "p0")
    assert [a.pod_name for a in (await kube.endpoints("web", "front")).addresses] == ["p1", "p2"]
    await kube.update_service("web", "front", spec={"selector": {"app": "db"}, "ports": [{"port": 80}]})
    assert (await kube.endpoints("web", "front")).addresses == ()
    assert [e.metadata.name for e in (await kube.endpoints_list("web")).items] == ["front"]
    await kube.delete_service("web", "front")
    with pytest.raises(NotFound):
        await kube.endpoints("web", "front")


# Scheduler

async def test_the_scheduler_binds_by_node_selector_and_resources_or_says_why_not(kube):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "small", cpu="1", memory="1Gi", labels={"disk": "hdd"})
    await node(kube, "big", cpu="4", memory="8Gi", labels={"disk": "ssd"})
    await kube.create_pod("web", "ssd", spec=spec(cpu="500m", node_selector={"disk": "ssd"}))
    await kube.create_pod("web", "huge", spec=spec(cpu="16"))
    await kube.create_pod("web", "nowhere", spec=spec(node_selector={"disk": "tape"}))
    await kube.create_pod("web", "any", spec=spec(memory="512Mi"))
    assert await kube.schedule() == 2
    assert (await kube.pod("web", "ssd")).spec.node_name == "big"
    any_pod = await kube.pod("web", "any")
    assert any_pod.spec.node_name in ("small", "big") and any_pod.status.host_ip == "127.0.0.1"
    huge = await kube.pod("web", "huge")
    assert huge.spec.node_name == "" and huge.status.phase == "Pending"
    (scheduled,) = huge.status.conditions
    assert (scheduled.type, scheduled.status, scheduled.reason) == ("PodScheduled", "False", "Unschedulable")
    assert scheduled.message == "0/2 nodes are available: 2 Insufficient cpu."
    nowhere = (await kube.pod("web", "nowhere")).status.conditions[0]
    assert "2 node(s) didn't match Pod's node affinity/selector" in nowhere.message
    version, applied = huge.metadata.resource_version, kube.machine.applied_index()
    await kube.schedule()  # nothing new to say: no new revision, and nothing proposed at all
    assert (await kube.pod("web", "huge")).metadata.resource_version == version
    assert kube.machine.applied_index() == applied
    await node(kube, "huge", cpu="32", memory="8Gi")  # a change: the next round binds what now fits
    assert await kube.schedule() == 1 and (await kube.pod("web", "huge")).spec.node_name == "huge"


async def test_requests_add_up_against_allocatable(kube):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "n1", cpu="1", memory="1Gi")
    for i in range(3):
        await kube.create_pod("web", f"p{i}", spec=spec(cpu="400m", memory="100Mi"))
    await kube.schedule()
    placed = [(await kube.pod("web", f"p{i}")).spec.node_name for i in range(3)]
    assert placed.count("n1") == 2 and placed.count("") == 1
    await kube.delete_pod("web", f"p{placed.index('n1')}")
    await kube.schedule()  # the freed room takes the pending pod
    assert [p.spec.node_name for p in (await kube.pods("web")).items] == ["n1", "n1"]


async def test_pods_go_to_ready_schedulable_nodes_only(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "n1")
    await kube.update_node("n1", unschedulable=True)
    await kube.create_pod("web", "a", spec=spec())
    await kube.schedule()
    assert "unschedulable" in (await kube.pod("web", "a")).status.conditions[0].message
    await kube.update_node("n1", unschedulable=False)
    clock.now += 11
    assert await kube.check_nodes() == ["n1"]
    await kube.schedule()
    assert "not ready" in (await kube.pod("web", "a")).status.conditions[0].message
    await kube.heartbeat("n1")
    assert await kube.schedule() == 1


# Nodes

async def test_a_node_that_misses_heartbeats_becomes_not_ready_and_its_pods_unknown(kube, clock):
    await kube.create_namespace("web", "o1", "p1")
    await node(kube, "n1")
    await kube.create_pod("web", "a", spec=spec())
    await kube.schedule()
    pod = await kube.pod("web", "a")
    running = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
               "container_statuses": [{"name": "main", "state": "RUNNING", "ready": True}]}
    reported = await kube.update_pod_status("web", "a", pod.metadata.uid, running)
    assert reported.status.phase == "Running" and reported.status.start_time == clock.now
    assert [c.type for c in reported.status.conditions] == ["PodScheduled", "Ready"]
    became_ready = clock.now
    assert reported.status.conditions[1].last_transition_time == became_ready  # stamped when it first appears
    clock.now += 1
    again = await kube.update_pod_status("web", "a", pod.metadata.uid, running)
    assert again.status.conditions[1].last_transition_time == became_ready  # unchanged status: unchanged time
    clock.now += 4
    await kube.heartbeat("n1")
    clock.now += 9
    assert await kube.check_nodes() == []  # 9 s since the last heartbeat: within the grace
    clock.now += 2
    assert await kube.check_nodes() == ["n1"]
    ready = (await kube.node("n1")).status.conditions[0]
    assert (ready.type, ready.status, ready.reason) == ("Ready", "Unknown", "NodeStatusUnknown")
    lost = await kube.pod("web", "a")
    assert lost.status.phase == "Unknown" and lost.status.reason == "NodeLost"
    assert [(c.type, c.status) for c in lost.status.conditions] == [("PodScheduled", "True"), ("Ready", "False")]
    assert lost.status.container_statuses[0].ready is False
    assert await kube.check_nodes() == []  # marked once
    await kube.heartbeat("n1")
    assert (await kube.node("n1")).status.conditions[0].status == "True"


async def test_status_reports_are_refused_for_a_replaced_or_unbound_pod(kube):
    await kube.create_namespace("web", "o1", "p1")
    pod = await kube.create_pod("web", "a", spec=spec())
    with pytest.raises(FailedPrecondition, match="not bound"):
        await kube.update_pod_status("web", "a", pod.metadata.uid, {"phase": "Running"})
    await node(kube, "n1")
    await kube.schedule()
    with pytest.raises(FailedPrecondition, match="replaced"):
        await kube.update_pod_status("web", "a", "another-uid", {"phase": "Running"})
    with pytest.raises(InvalidArgument):
        await kube.update_pod_status("web", "a", pod.metadata.uid, {"phase": "Dancing"})


async def test_registering_again_refreshes_the_node_and_keeps_administrators_labels(kube):
    first = await node(kube, "n1", labels={"zone": "a"})
    await kube.update_node("n1", {"zone": "a", "tier": "gold"})
    again = await node(kube, "n1", cpu="8", labels={"zone": "b"})
    assert again.metadata.uid == first.metadata.uid and again.status.capacity["cpu"] == "8"
    assert again.metadata.labels == {"zone": "b", "tier": "gold"}
    assert first.spec.pod_cidr == again.spec.pod_cidr == "127.128.0.0/24"  # a node keeps its pod CIDR
    assert (await node(kube, "n2")).spec.pod_cidr == "127.128.1.0/24"
    cordoned = await kube.update_node("n1", again.metadata.labels, unschedulable=True)
    assert cordoned.spec.pod_cidr == "127.128.0.0/24" and cordoned.spec.unschedulable
    assert [n.metadata.name for n in (await kube.nodes("tier=gold")).items] == ["n1"]
    with pytest.raises(InvalidArgument):
        await kube.register_node("n2", capacity={"cpu": "many"})


# Watch

async def next_batch(iterator, timeout: float = 2.0) -> list:
    """A watch's next batch of events, waited for at most timeout seconds."""
    return await asyncio.wait_for(anext(iterator), timeout)


async def test_a_watch_from_a_resource_version_sees_every_change_after_it_in_order(kube):
    await kube.create_namespace("web", "o1", "p1")
    listed = await kube.pods("web")
    await kube.create_pod("web", "a", {"app": "x"}, spec=BUSYBOX)
    watch = await kube.watch("pods", "web", resource_version=str(listed.resource_version))
    events = watch.__aiter__()
    await kube.update_pod("web", "a", {"app": "y"})
    await kube.delete_pod("web", "a")
    seen = []
    while len(seen) < 3:
        seen += [(e.type, e.object.metadata.name, e.revision) for e in await next_batch(events)]
    assert seen == [("ADDED", "a", 2), ("MODIFIED", "a", 3), ("DELETED", "a", 4)]
    watch.close()


async def test_a_watch_without_a_resource_version_starts_with_the_current_objects(kube):
    await kube.create_namespace("web", "o1", "p1")
    await kube.create_pod("web", "a", spec=BUSYBOX)
    watch = await kube.watch("pods", "web")
    events = watch.__aiter__()
    assert [(e.type, e.object.metadata.name) for e in await next_batch(events)] == [("ADDED", "a")]
    await kube.create_pod("web", "b", spec=BUSYBOX)
    assert [(e.type, e.object.metadata.name) for e in await next_batch(events)] == [("ADDED", "b")]
    watch.close()


async def test_a_filtered_watch_sees_objects_enter_and_leave_its_selector(kube):
    await kube.create_namespace("web", "o1", "p1")
    await kube.create_pod("web", "a", {"app": "db"}, spec=BUSYBOX)
    watch = await kube.watch("pods", "web", "app=web", resource_version="1")
    events = watch.__aiter__()
    await kube.update_pod("web", "a", {"app": "web"})
    await kube.update_pod("web", "a", {"app": "web", "v": "2"})
    await kube.update_pod("web", "a", {"app": "db"})
    seen = []
    while len(seen) < 3:
        seen += [e.type for e in await next_batch(events)]
    assert seen == ["ADDED", "MODIFIED", "DELETED"]
    watch.close()


async def test_a_watch_from_a_compacted_resource_version_is_out_of_range(kube):
    await kube.create_namespace("web", "o1", "p1")
    for i in range(60):  # the fixture keeps 50 events
        await kube.update_namespace("web", {"i": str(i)})
    with pytest.raises(OutOfRange) as error:
        await kube.watch("namespaces", resource_version="5")
    assert error.value.details["reason"] == "RESOURCE_VERSION_TOO_OLD"
    watch = await kube.watch("namespaces", resource_version="55")
    events = watch.__aiter__()
    assert [e.revision for e in await next_batch(events)] == [56, 57, 58, 59, 60, 61]
    watch.close()


async def test_limits_are_checked_and_a_limit_without_a_request_is_also_the_request(kube):
    await kube.create_namespace("web", "o1", "p1")

    def spec(resources: dict) -> dict:
        return {"containers": [{"name": "main", "command": ["true"], "resources": resources}]}

    pod = await kube.create_pod("web", "limited", spec=spec({"limits": {"cpu": "500m", "memory": "64Mi", "pids": "50"},
                                                             "requests": {"cpu": "100m"}}))
    resources = pod.spec.containers[0].resources
    assert resources.limits == {"cpu": "500m", "memory": "64Mi", "pids": "50"}
    assert resources.requests == {"cpu": "100m", "memory": "64Mi"}  # as Kubernetes defaults it; pids is no request
    for resources, field in (({"limits": {"gpu": "1"}}, "limits"), ({"limits": {"memory": "lots"}}, "memory"),
                             ({"limits": {"cpu": "1"}, "requests": {"cpu": "2"}}, "requests"),
                             ({"limits": {"pids": "0"}}, "pids"), ({"limits": {"memory": "1Ki"}}, "memory"),
                             ({"limits": {"memory": 64}}, "memory"), ({"quota": {}}, "quota")):
        with pytest.raises(InvalidArgument) as refused:
            await kube.create_pod("web", "bad", spec=spec(resources))
        assert field in refused.value.details["field"], (resources, refused.value.details)
