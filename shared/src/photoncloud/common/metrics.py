"""Prometheus metrics, one registry per running service: requests, the process, the build, and the
domain gauges a service reads from its core at scrape time."""

from __future__ import annotations

import asyncio
import logging
import platform
import time
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST
# How long a scrape waits for the core's figures: past it, /metrics answers without them (and says
# so in photoncloud_domain_metrics_up) rather than holding the scraper.
DOMAIN_TIMEOUT = 5.0
RAFT_ROLES = ("LEADER", "FOLLOWER", "CANDIDATE")

log = logging.getLogger("photoncloud.metrics")

# What a service gives the runner: an async read of its domain figures, as metric families.
DomainRead = Callable[[], Awaitable[Iterable[Metric]]]


class RequestMetrics:
    """Request counts and latencies by transport, route and code, beside the process's metrics and
    the build's."""

    def __init__(self, service: str, version: str = ""):
        # A registry of its own per service, so several servers can share one process (tests).
        self.registry = CollectorRegistry()
        labels = ["service", "transport", "method", "route", "code"]
        self.requests = Counter(
            "photoncloud_requests", "Requests served.", labels, registry=self.registry
        )
        self.latency = Histogram(
            "photoncloud_request_duration_seconds", "Time to serve a request.", labels,
            registry=self.registry,
        )
        # process_* (CPU, memory, file descriptors, start time) and python_info, as every exporter has.
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        Gauge("photoncloud_build_info", "The running build (always 1).", ["service", "version", "python_version"],
              registry=self.registry).labels(service, version, platform.python_version()).set(1)
        self.service = service
        # The counter and histogram of each label set met so far: labels() checks and looks them up
        # under a lock on every call, and a service meets a few dozen label sets in its life.
        self._series: dict[tuple[str, str, str, str], tuple[Counter, Histogram]] = {}

    def observe(self, transport: str, method: str, route: str, code: str, seconds: float) -> None:
        """Count one served request."""
        key = (transport, method, route, code)
        series = self._series.get(key)
        if series is None:
            labels = (self.service, *key)
            series = self._series[key] = (self.requests.labels(*labels), self.latency.labels(*labels))
        series[0].inc()
        series[1].observe(seconds)

    def exposition(self, extra: Iterable[Metric] = ()) -> bytes:
        """The metrics in Prometheus text format, with extra families (the domain's) after them."""
        return generate_latest(_Joined(self.registry, list(extra)))


class _Joined:
    """A registry's families and some more, as generate_latest reads a registry."""

    def __init__(self, registry: CollectorRegistry, extra: list[Metric]):
        self.registry = registry
        self.extra = extra

    def collect(self) -> Iterator[Metric]:
        yield from self.registry.collect()
        yield from self.extra


class DomainMetrics:
    """A service's domain figures, read from its core when /metrics is scraped: one read at a time
    (scrapes that come during a read share it), bounded in time."""

    def __init__(self, service: str, read: DomainRead, timeout: float = DOMAIN_TIMEOUT):
        self.service = service
        self.read = read
        self.timeout = timeout
        self._reading: asyncio.Future[list[Metric]] | None = None

    async def _read(self) -> list[Metric]:
        return list(await self.read())

    async def collect(self) -> list[Metric]:
        """The domain's families, then photoncloud_domain_metrics_up (0 when the read failed or
        took too long: the families are then missing, never stale)."""
        if self._reading is None:
            reading = self._reading = asyncio.ensure_future(self._read())
            reading.add_done_callback(self._done)
        started = time.monotonic()
        families: list[Metric] = []
        try:
            families = await asyncio.wait_for(asyncio.shield(self._reading), self.timeout)
        except TimeoutError:
            log.warning("%s: the domain metrics took longer than %.1f s; served without them",
                        self.service, self.timeout)
        except Exception:  # a failed read must not fail the request metrics with it
            log.exception("%s: reading the domain metrics failed", self.service)
        up = GaugeMetricFamily("photoncloud_domain_metrics_up",
                               "Whether this scrape has the service's domain metrics (1) or not (0).",
                               labels=["service"])
        up.add_metric([self.service], 1 if families else 0)
        took = GaugeMetricFamily("photoncloud_domain_metrics_duration_seconds",
                                 "How long this scrape waited for the domain metrics.", labels=["service"])
        took.add_metric([self.service], time.monotonic() - started)
        return [*families, up, took]

    def _done(self, future: asyncio.Future[list[Metric]]) -> None:
        self._reading = None
        if not future.cancelled():
            future.exception()  # retrieved: a read nobody waited for any more is not an unhandled error


def gauge(name: str, documentation: str, value: float, service: str) -> GaugeMetricFamily:
    """A one-sample gauge labelled with its service."""
    family = GaugeMetricFamily(name, documentation, labels=["service"])
    family.add_metric([service], value)
    return family


def gauge_by(name: str, documentation: str, service: str, label: str, values: Mapping[str, float],
             known: Sequence[str] = ()) -> GaugeMetricFamily:
    """A gauge with one sample per value of label: every known value (0 when values lacks it, so a
    state that empties reads 0, not gone), then any other in values."""
    family = GaugeMetricFamily(name, documentation, labels=["service", label])
    for key in [*known, *sorted(set(values) - set(known))]:
        family.add_metric([service, key], values.get(key, 0))
    return family


def log_metrics(service: str, log: Any) -> list[Metric]:
    """The Raft figures of a replicated log (photoncloud.common.replication.Log): role, term, commit
    and applied index, members, and on the leader each follower's lag in entries. A log of one
    member (LocalLog) reports itself the leader, with commit and applied index equal."""
    status = log.status()
    progress = getattr(log, "progress", None)
    commit, matched = progress() if progress is not None else (status.index, {})
    members = log.members()
    lag = GaugeMetricFamily("photoncloud_raft_follower_lag_entries",
                            "Entries the leader has committed that a follower has not matched (leader only).",
                            labels=["service", "member_id"])
    for member, index in sorted(matched.items()):
        lag.add_metric([service, str(member)], max(0, commit - index))
    return [
        gauge_by("photoncloud_raft_role", "This member's Raft role (1 for the current one).", service, "role",
                 {status.role: 1}, RAFT_ROLES),
        gauge("photoncloud_raft_term", "This member's Raft term.", status.term, service),
        gauge("photoncloud_raft_commit_index", "The highest log index this member knows committed.",
              commit, service),
        gauge("photoncloud_raft_applied_index", "The highest log index this member applied.", status.index, service),
        gauge("photoncloud_raft_members", "Members of the cluster as this member knows it.", len(members), service),
        gauge("photoncloud_raft_has_leader", "Whether this member knows a leader (1) or not (0).",
              1 if status.leader else 0, service),
        lag,
    ]
