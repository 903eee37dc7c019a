"""IAM's domain metrics, read when /metrics is scraped: principals and tenancy counted in the store,
and the tokens this process issued."""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

from prometheus_client.core import CounterMetricFamily, Metric

from photoncloud.common.metrics import DomainRead, gauge
from photoncloud.common.replication import Scan

from .core import IamCore
from .records import Organization, Project, ServiceAccount, User
from .rules import GRANT_TYPES
from .values import Caller, Grant, IssuedToken

Issue = Callable[[Caller, Grant], Coroutine[Any, Any, IssuedToken]]


class TokensIssued:
    """Access tokens issued since the process started, by grant type (refused grants do not count,
    so the grant types are the three IAM accepts)."""

    def __init__(self) -> None:
        self.counts: Counter[str] = Counter()

    def counting(self, issue: Issue) -> Issue:
        """issue, counting each token it returns."""

        async def counted(caller: Caller, grant: Grant) -> IssuedToken:
            token = await issue(caller, grant)
            self.counts[grant.grant_type] += 1
            return token

        return counted

    def family(self, service: str) -> CounterMetricFamily:
        """The counter, every grant type present (0 until its first token)."""
        family = CounterMetricFamily("photoncloud_iam_tokens_issued", "Access tokens issued by this process.",
                                     labels=["service", "grant_type"])
        for grant_type in GRANT_TYPES:
            family.add_metric([service, grant_type], self.counts[grant_type])
        return family


def reader(service: str, core: IamCore) -> DomainRead:
    """Count the tokens core issues from now on, and return the read /metrics awaits."""
    issued = TokensIssued()
    # Both transports (and any other way in) issue through the core's one method.
    core.issue_token = issued.counting(core.issue_token)  # type: ignore[method-assign,assignment]

    def counts() -> tuple[int, int, int, int]:
        state = core.state
        return state.count(User), state.count(ServiceAccount), state.count(Organization), state.count(Project)

    async def read() -> list[Metric]:
        users, accounts, orgs, projects = await core.log.read(Scan(counts))
        return [
            gauge("photoncloud_iam_users", "Users.", users, service),
            gauge("photoncloud_iam_service_accounts", "Service accounts.", accounts, service),
            gauge("photoncloud_iam_organizations", "Organizations.", orgs, service),
            gauge("photoncloud_iam_projects", "Projects.", projects, service),
            issued.family(service),
        ]

    return read
