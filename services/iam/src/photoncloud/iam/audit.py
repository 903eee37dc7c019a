"""IAM's audit events: the one being built while an operation runs, and the log line of a recorded one."""

from __future__ import annotations

import logging
from typing import Any

from photoncloud.common import request_id

from .records import AuditEvent
from .values import Caller

audit_log = logging.getLogger("photoncloud.iam.audit")

SUCCESS, FAILURE = "SUCCESS", "FAILURE"  # an audit event's outcome


class Event:
    """An audit event being built while an operation runs."""

    def __init__(self, caller: Caller, action: str, target: str, details: dict[str, Any]):
        self.caller = caller
        self.principal = caller.subject
        self.action = action
        self.target = target
        self.details = details
        self.recorded = False

    def record(self, outcome: str, now: float) -> AuditEvent:
        """The event as it is stored, with its outcome (the request ID is the current request's)."""
        return AuditEvent(time=now, principal=self.principal, action=self.action, target=self.target,
                          outcome=outcome, request_id=request_id.current(),
                          client_address=self.caller.address, details=dict(self.details))


def log_event(record: AuditEvent) -> None:
    """Write a recorded audit event to the audit logger, as structured fields."""
    audit_log.info("%s %s %s", record.action, record.target, record.outcome,
                   extra={"fields": {"audit": {"principal": record.principal, "action": record.action,
                                               "target": record.target, "outcome": record.outcome,
                                               "client_address": record.client_address,
                                               "details": record.details}}})
