"""The plumbing under IAM's operations: audited changes proposed to the log, pages and lookups read from the store."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any, TypeVar

from photoncloud.common import paging
from photoncloud.common.auth import Principal, Verifier
from photoncloud.common.errors import InvalidArgument, NotFound, ServiceError
from photoncloud.common.replication import Log

from .audit import FAILURE, SUCCESS, Event, log_event
from .commands import Change, Cmp, Commit, Guard, Where
from .credentials import LoginThrottle, SecretHasher
from .records import Binding, ServiceAccount, TokenFamily, User
from .store import Records, SqliteIamStore
from .values import Caller, Page, Settings

log = logging.getLogger("photoncloud.iam")

R = TypeVar("R")


class Facade:
    """What every part of IAM's operations stands on: the log they propose to, the store they read,
    and the audit event each change is recorded with (IamCore in core.py sets the attributes)."""

    state: SqliteIamStore
    log: Log
    store: Records
    settings: Settings
    hasher: SecretHasher
    clock: Callable[[], float]
    throttle: LoginThrottle
    verifier: Verifier
    _lock: asyncio.Lock

    # What one part takes from another; IamCore joins the parts, whose methods these are.

    async def _revoke_families(self, families: Sequence[TokenFamily],
                               refresh: bool = True) -> tuple[list[Change], list[str]]:
        raise NotImplementedError  # tokens.py

    async def _revoke_principal(self, subject: str) -> tuple[list[Change], list[str]]:
        raise NotImplementedError  # tokens.py

    async def _revoke_access_for(self, binding: Binding) -> list[Change]:
        raise NotImplementedError  # tokens.py

    async def _permissions(self, roles: Iterable[str]) -> list[str]:
        raise NotImplementedError  # tokens.py

    async def _check_admins_remain(self, *, without_user: str = "", without_binding: str = "") -> None:
        raise NotImplementedError  # principals.py

    async def _require_within_reach(self, me: Principal, subject: str) -> None:
        raise NotImplementedError  # principals.py

    async def _principal_record(self, subject: str) -> User | ServiceAccount | None:
        raise NotImplementedError  # access.py

    @asynccontextmanager
    async def _audited(self, caller: Caller, action: str, target: str = "",
                       **details: Any) -> AsyncIterator[Event]:
        """Run an operation as an audit event: recorded with its change (see _commit), or as a
        FAILURE with the error code when it raises."""
        event = Event(caller, action, target, details)
        try:
            yield event
        except ServiceError as exc:
            if not event.recorded:
                # A create names its new ID only once it is made: a failed one keeps the first target.
                event.target = target
                event.details.update(error=exc.code.name)
                if exc.details and "reason" in exc.details:
                    event.details.setdefault("reason", exc.details["reason"])
                await self._record(event, FAILURE)
            raise
        except Exception:
            if not event.recorded:
                event.details.update(error="INTERNAL")
                await self._record(event, FAILURE)
            raise
        if not event.recorded:
            await self._record(event, SUCCESS)

    async def _record(self, event: Event, outcome: str) -> None:
        record = event.record(outcome, self.clock())
        try:
            await self.log.propose(Commit(audit=record))
        except Exception:  # noqa: BLE001 - the failure being reported matters more
            log.exception("cannot record audit event %s", event.action)
            return
        event.recorded = True
        log_event(record)

    async def _propose(self, *changes: Change, expect: Sequence[Guard] = ()) -> list[int]:
        """Apply changes through the log, without an audit event; the rows each affected."""
        return await self.log.propose(Commit(tuple(changes), None, tuple(expect)))

    async def _commit(self, event: Event, *changes: Change, expect: Sequence[Guard] = ()) -> list[int]:
        """Apply changes and their SUCCESS audit event at once, through the log; ALREADY_EXISTS on a
        name conflict, ABORTED when a guard in expect no longer holds."""
        record = event.record(SUCCESS, self.clock())
        counts = await self.log.propose(Commit(tuple(changes), record, tuple(expect)))
        event.recorded = True
        log_event(record)
        return counts

    async def _page(self, kind: type[Any], where: Where, page_size: int, page_token: str,
                    descending: bool = False) -> Page:
        size = paging.page_size(page_size)
        where = list(where)
        if page_token:
            position = paging.decode_token(page_token)
            after = position.get("after")
            if position.get("kind") != kind.__name__ or not isinstance(after, (str, int)):
                raise InvalidArgument("page_token does not belong to this listing", {"field": "page_token"})
            where.append((kind.KEY, Cmp("<" if descending else ">", after)))
        rows = await self.store.find(kind, where, limit=size + 1, descending=descending)
        if len(rows) <= size:
            return Page(rows)
        rows = rows[:size]
        return Page(rows, paging.encode_token({"kind": kind.__name__, "after": getattr(rows[-1], kind.KEY)}))

    async def _get(self, kind: type[R], key: str, noun: str) -> R:
        record = await self.store.get(kind, key) if key else None
        if record is None:
            raise NotFound(f"{noun} {key!r} not found", {"resource": noun, "id": key})
        return record
