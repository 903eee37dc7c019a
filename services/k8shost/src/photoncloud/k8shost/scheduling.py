"""Where a pod may run: the scheduler's filters and its choice, as pure functions.

As Kubernetes' default scheduler: a node is feasible when it is Ready, schedulable, carries every
label of the pod's node selector, and has room for the pod's requests (CPU, memory, pod count)
next to what the pods already bound to it request; among feasible nodes the least allocated wins
(ties by name, so every replica applying the same log picks the same node).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from . import quantities
from .records import FAILED, READY, SUCCEEDED, TRUE, Node, Pod, condition

DEFAULT_MAX_PODS = 110  # Kubernetes' default for a node that does not say


@dataclass(frozen=True)
class Amounts:
    """CPU in millicores, memory in bytes, and a number of pods."""

    cpu: int = 0
    memory: int = 0
    pods: int = 0

    def __add__(self, other: Amounts) -> Amounts:
        return Amounts(self.cpu + other.cpu, self.memory + other.memory, self.pods + other.pods)


def requested(pod: Pod) -> Amounts:
    """What a pod asks of its node: the sum over its containers, and one pod."""
    total = Amounts(pods=1)
    for c in pod.spec.containers:
        r = c.resources.requests
        total += Amounts(quantities.millicores(r.get("cpu", "0")), quantities.bytes_of(r.get("memory", "0")))
    return total


def allocatable(node: Node) -> Amounts:
    """What a node offers pods (its allocatable, else its capacity)."""
    offered = node.status.allocatable or node.status.capacity
    return Amounts(quantities.millicores(offered.get("cpu", "0")), quantities.bytes_of(offered.get("memory", "0")),
                   quantities.count(offered.get("pods", str(DEFAULT_MAX_PODS))))


def is_ready(node: Node) -> bool:
    """Whether the node's Ready condition is True."""
    ready = condition(node.status.conditions, READY)
    return ready is not None and ready.status == TRUE


def occupies(pod: Pod) -> bool:
    """Whether a bound pod still holds its node's resources (terminated pods do not)."""
    return bool(pod.spec.node_name) and pod.status.phase not in (SUCCEEDED, FAILED)


def misfit(pod: Pod, node: Node, used: Amounts) -> str:
    """Why pod cannot go to node given what its pods use ("" when it can)."""
    if not is_ready(node):
        return "node(s) were not ready"
    if node.spec.unschedulable:
        return "node(s) were unschedulable"
    if any(node.metadata.labels.get(k) != v for k, v in pod.spec.node_selector.items()):
        return "node(s) didn't match Pod's node affinity/selector"
    want, room = requested(pod), allocatable(node)
    if used.pods + want.pods > room.pods:
        return "Too many pods"
    if used.cpu + want.cpu > room.cpu:
        return "Insufficient cpu"
    if used.memory + want.memory > room.memory:
        return "Insufficient memory"
    return ""


def usage(pods: Iterable[Pod]) -> dict[str, Amounts]:
    """What the bound, unfinished pods request, by node."""
    used: dict[str, Amounts] = {}
    for pod in pods:
        if occupies(pod):
            used[pod.spec.node_name] = used.get(pod.spec.node_name, Amounts()) + requested(pod)
    return used


def choose(pod: Pod, nodes: list[Node], used: dict[str, Amounts]) -> tuple[str, str]:
    """(the node for pod, "") or ("", why none fits, in Kubernetes' words)."""
    reasons: Counter[str] = Counter()
    best: tuple[float, str] | None = None
    for node in sorted(nodes, key=lambda n: n.metadata.name):
        load = used.get(node.metadata.name, Amounts())
        why = misfit(pod, node, load)
        if why:
            reasons[why] += 1
            continue
        room, after = allocatable(node), load + requested(pod)
        # Least allocated: the mean of the CPU and memory fractions in use after placing the pod.
        score = (after.cpu / room.cpu if room.cpu else 0) + (after.memory / room.memory if room.memory else 0)
        if best is None or score < best[0]:
            best = (score, node.metadata.name)
    if best is not None:
        return best[1], ""
    detail = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items()))
    return "", f"0/{len(nodes)} nodes are available" + (f": {detail}." if detail else ".")
