"""A container's resource limits as the agent enforces them: the pod's `resources.limits` (cpu, memory,
pids), and the node's defaults for what a pod leaves out, so that no container runs unbounded unless the
operator chose so (a default of 0)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from photoncloud.k8shost import quantities


@dataclass(frozen=True)
class Limits:
    """The most a container may take; 0 is no limit."""

    cpu_millicores: int = 0
    memory_bytes: int = 0
    pids: int = 0

    def __bool__(self) -> bool:
        return bool(self.cpu_millicores or self.memory_bytes or self.pids)

    def describe(self) -> str:
        """The limits as a person reads them (cpu=500m memory=268435456 pids=100)."""
        named = (("cpu", f"{self.cpu_millicores}m" if self.cpu_millicores else ""), ("memory", self.memory_bytes),
                 ("pids", self.pids))
        return " ".join(f"{name}={value}" for name, value in named if value) or "none"


def parse_defaults(cpu: str, memory: str, pids: str) -> Limits:
    """The node's default limits from their flags (each a Kubernetes quantity; 0 for none); ValueError if one is
    not a quantity."""
    try:
        return Limits(quantities.millicores(cpu, "cpu"), quantities.bytes_of(memory, "memory"),
                      quantities.count(pids, "pids"))
    except Exception as exc:  # noqa: BLE001 - the quantities module raises the platform's InvalidArgument
        raise ValueError(str(exc)) from None


def of(container: dict[str, Any], defaults: Limits) -> Limits:
    """A container's limits: its own where it gives them (as the API server checked them), else the defaults."""
    given = (container.get("resources") or {}).get("limits") or {}
    return Limits(quantities.millicores(given["cpu"]) if "cpu" in given else defaults.cpu_millicores,
                  quantities.bytes_of(given["memory"]) if "memory" in given else defaults.memory_bytes,
                  quantities.count(given["pids"]) if "pids" in given else defaults.pids)
