"""A property test of the scheduler against its rules: after a round, no node holds more than it
offers, every bound pod sits on a Ready, schedulable node its selector matches, and every pod
left Pending fits no node (and says so for each of them)."""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from photoncloud.common.replication import LocalLog
from photoncloud.k8shost import scheduling
from photoncloud.k8shost.core import KubeCore
from photoncloud.k8shost.machine import ObjectStateMachine
from photoncloud.k8shost.store import SqliteObjectStore

SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

LABELS = st.dictionaries(st.sampled_from(["disk", "zone"]), st.sampled_from(["a", "b"]), max_size=2)
CPU = st.integers(0, 8).map(lambda n: f"{n * 500}m")
MEMORY = st.integers(0, 8).map(lambda n: f"{n * 64}Mi")
# (cpu, memory, max pods, labels, ready, cordoned)
nodes = st.lists(st.tuples(CPU, MEMORY, st.integers(1, 4), LABELS, st.booleans(), st.booleans()), max_size=4)
# (cpu, memory, node selector)
pods = st.lists(st.tuples(CPU.map(lambda c: f"{int(c[:-1]) // 2}m"), MEMORY, LABELS), max_size=10)


@SETTINGS
@given(nodes, pods)
async def test_a_scheduling_round_keeps_every_rule(drawn_nodes, drawn_pods):
    store = SqliteObjectStore(":memory:")
    machine = ObjectStateMachine(store)
    now = [1_800_000_000.0]
    kube = KubeCore(machine, LocalLog(machine), clock=lambda: now[0], node_grace_seconds=10)
    try:
        await kube.create_namespace("ns", "o", "p")
        # The nodes drawn not ready register first and fall silent; the others register after the check.
        for ready_ones in (False, True):
            for i, (cpu, memory, max_pods, labels, ready, cordoned) in enumerate(drawn_nodes):
                if ready != ready_ones:
                    continue
                await kube.register_node(f"n{i}", labels, {"cpu": cpu, "memory": memory, "pods": str(max_pods)})
                if cordoned:
                    await kube.update_node(f"n{i}", labels, unschedulable=True)
            if not ready_ones:
                now[0] += 60
                await kube.check_nodes()
        by_number = sorted((await kube.nodes()).items, key=lambda n: int(n.metadata.name[1:]))
        assert [scheduling.is_ready(n) for n in by_number] == [ready for _, _, _, _, ready, _ in drawn_nodes]
        for i, (cpu, memory, selector) in enumerate(drawn_pods):
            containers = [{"name": "c", "command": ["true"], "resources": {"requests": {"cpu": cpu, "memory": memory}}}]
            await kube.create_pod("ns", f"p{i}", spec={"containers": containers, "node_selector": selector})
        await kube.schedule()
        all_nodes = {n.metadata.name: n for n in (await kube.nodes()).items}
        all_pods = (await kube.pods("ns")).items
        used = scheduling.usage(all_pods)
        for name, node in all_nodes.items():
            room, load = scheduling.allocatable(node), used.get(name, scheduling.Amounts())
            assert load.cpu <= room.cpu and load.memory <= room.memory and load.pods <= room.pods
        for pod in all_pods:
            if pod.spec.node_name:
                node = all_nodes[pod.spec.node_name]
                assert scheduling.is_ready(node) and not node.spec.unschedulable
                assert all(node.metadata.labels.get(k) == v for k, v in pod.spec.node_selector.items())
            else:
                assert all(scheduling.misfit(pod, node, used.get(name, scheduling.Amounts()))
                           for name, node in all_nodes.items())
                (condition,) = pod.status.conditions
                assert (condition.reason, condition.message.split(" ")[0]) == ("Unschedulable",
                                                                              f"0/{len(all_nodes)}")
    finally:
        await kube.close()
        store.close()
