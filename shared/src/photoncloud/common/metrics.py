"""Prometheus request metrics, one registry per running service."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

CONTENT_TYPE = CONTENT_TYPE_LATEST


class RequestMetrics:
    """Request counts and latencies by transport, route and code."""

    def __init__(self, service: str):
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

    def exposition(self) -> bytes:
        """The metrics in Prometheus text format."""
        return generate_latest(self.registry)
