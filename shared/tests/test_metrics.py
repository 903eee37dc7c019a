"""The shared metrics: the process's and the build's beside the requests', and a service's domain
figures read at scrape time (one read at a time, bounded in time, never failing the scrape)."""

from __future__ import annotations

import asyncio
import platform
import time
from types import SimpleNamespace

from prometheus_client.parser import text_string_to_metric_families

from photoncloud.common.metrics import DomainMetrics, RequestMetrics, gauge, gauge_by, log_metrics
from photoncloud.common.replication import LocalLog, LogStatus, Member
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service


def parse(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def by_name(samples, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {labels: v for (sample, labels), v in samples.items() if sample == name}


def test_the_process_and_the_build_are_exported_beside_the_requests():
    metrics = RequestMetrics("svc", "1.2.3")
    metrics.observe("rest", "GET", "/x", "OK", 0.01)
    samples = parse(metrics.exposition().decode())
    names = {name for name, _ in samples}
    assert {"process_cpu_seconds_total", "process_resident_memory_bytes", "process_open_fds", "process_max_fds",
            "process_start_time_seconds", "python_info", "photoncloud_requests_total"} <= names
    assert by_name(samples, "photoncloud_build_info") == {
        (("python_version", platform.python_version()), ("service", "svc"), ("version", "1.2.3")): 1.0}
    assert abs(samples[("process_start_time_seconds", ())] - time.time()) < 24 * 3600


def test_gauge_by_keeps_every_known_value_and_adds_the_others():
    family = gauge_by("m", "doc", "svc", "state", {"RUNNING": 2, "odd": 1}, ("STOPPED", "RUNNING"))
    assert [(s.labels["state"], s.value) for s in family.samples] == [("STOPPED", 0), ("RUNNING", 2), ("odd", 1)]
    assert gauge("g", "doc", 7, "svc").samples[0].labels == {"service": "svc"}


async def test_domain_figures_come_after_the_registry_with_their_up_gauge():
    domain = DomainMetrics("svc", lambda: _ready([gauge("photoncloud_svc_things", "Things.", 3, "svc")]))
    samples = parse(RequestMetrics("svc").exposition(await domain.collect()).decode())
    assert samples[("photoncloud_svc_things", (("service", "svc"),))] == 3
    assert samples[("photoncloud_domain_metrics_up", (("service", "svc"),))] == 1
    assert ("process_cpu_seconds_total", ()) in samples


async def _ready(families):
    return families


async def test_a_failing_read_leaves_the_domain_out_and_says_so():
    async def broken():
        raise RuntimeError("the store is gone")

    families = await DomainMetrics("svc", broken).collect()
    samples = parse(RequestMetrics("svc").exposition(families).decode())
    assert samples[("photoncloud_domain_metrics_up", (("service", "svc"),))] == 0
    assert not [name for name, _ in samples if name.startswith("photoncloud_svc_")]


async def test_a_slow_read_is_waited_for_only_until_the_timeout_and_shared_by_scrapes_meanwhile():
    calls = 0
    release = asyncio.Event()

    async def slow():
        nonlocal calls
        calls += 1
        await release.wait()
        return [gauge("photoncloud_svc_things", "Things.", calls, "svc")]

    domain = DomainMetrics("svc", slow, timeout=0.2)
    started = time.monotonic()
    first, second = await asyncio.gather(domain.collect(), domain.collect())
    assert time.monotonic() - started < 2
    assert calls == 1  # the second scrape waited on the first one's read, not a read of its own
    for families in (first, second):
        assert [f.name for f in families] == ["photoncloud_domain_metrics_up",
                                              "photoncloud_domain_metrics_duration_seconds"]
        assert families[0].samples[0].value == 0
    release.set()  # the read that was left running ends; the next scrape starts a new one
    await asyncio.sleep(0.05)
    families = await domain.collect()
    assert calls == 2 and families[0].samples[0].value == 2


async def test_a_log_of_one_member_reports_itself_leader_with_nothing_to_lag(tmp_path):
    machine = SimpleNamespace(applied_index=lambda: 7)
    log = LocalLog(machine, "127.0.0.1:2380")  # type: ignore[arg-type]
    try:
        samples = parse(RequestMetrics("kv").exposition(log_metrics("kv", log)).decode())
    finally:
        await log.close()
    one = (("service", "kv"),)
    assert by_name(samples, "photoncloud_raft_role") == {
        (("role", "LEADER"), ("service", "kv")): 1, (("role", "FOLLOWER"), ("service", "kv")): 0,
        (("role", "CANDIDATE"), ("service", "kv")): 0}
    assert samples[("photoncloud_raft_commit_index", one)] == samples[("photoncloud_raft_applied_index", one)] == 7
    assert samples[("photoncloud_raft_members", one)] == 1
    assert not by_name(samples, "photoncloud_raft_follower_lag_entries")


def test_the_leader_reports_each_followers_lag_by_member_id():
    class Leader:
        def status(self):
            return LogStatus(1, 1, "LEADER", 4, 100)

        def progress(self):
            return 120, {2: 120, 3: 95}

        def members(self):
            return [Member(i, f"m{i}") for i in (1, 2, 3)]

    samples = parse(RequestMetrics("db").exposition(log_metrics("db", Leader())).decode())
    assert by_name(samples, "photoncloud_raft_follower_lag_entries") == {
        (("member_id", "2"), ("service", "db")): 0, (("member_id", "3"), ("service", "db")): 25}
    assert samples[("photoncloud_raft_commit_index", (("service", "db"),))] == 120
    assert samples[("photoncloud_raft_applied_index", (("service", "db"),))] == 100
    assert samples[("photoncloud_raft_term", (("service", "db"),))] == 4


async def test_metrics_stay_public_and_answer_when_the_domain_read_fails(start, http):
    async def broken():
        raise RuntimeError("no store")

    async def counted():
        return [gauge("photoncloud_t_items", "Items.", 5, "t")]

    failing = await start(Service("t", "1.0.0", RouteTable(), [], domain_metrics=broken))
    working = await start(Service("u", "2.0.0", RouteTable(), [], domain_metrics=counted))
    async with http.get(f"http://127.0.0.1:{failing.rest_port}/metrics") as response:
        assert response.status == 200
        samples = parse(await response.text())
    assert samples[("photoncloud_domain_metrics_up", (("service", "t"),))] == 0
    assert ("process_resident_memory_bytes", ()) in samples
    async with http.get(f"http://127.0.0.1:{working.rest_port}/metrics") as response:
        samples = parse(await response.text())
    assert samples[("photoncloud_t_items", (("service", "t"),))] == 5
    assert samples[("photoncloud_domain_metrics_up", (("service", "u"),))] == 1
