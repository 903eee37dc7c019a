"""Long-lived streams (watches, keep-alives) held to the token that opened them, and capped per caller.

A token is checked once, when a call starts; a stream may outlive it by hours. So a stream's
handler iterates its items through `until_token_ends`, which ends the stream with UNAUTHENTICATED
(reason EXPIRED or REVOKED) when the token expires or the service's revocation source lists it,
and holds a slot of an `OpenStreams` while it is open, so that no caller can hold more than a set
number of streams (RESOURCE_EXHAUSTED, with the limit in the details). `StreamGuard` bundles the
two for the principal of the call being served:

    guard = StreamGuard(limit=64)
    async with guard.hold():
        async for batch in guard.until_token_ends(watch):
            ...
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import Counter
from collections.abc import AsyncIterable, AsyncIterator, Callable, Mapping
from typing import Any, Protocol, TypeVar

from . import auth
from .auth import Principal, RevocationSource
from .errors import ResourceExhausted, Unauthenticated

log = logging.getLogger("photoncloud.streams")

T = TypeVar("T")

DEFAULT_CHECK_SECONDS = 1.0  # how often a source without a poll interval is asked


def _check_seconds(revocations: RevocationSource | None) -> float:
    # Half the source's poll interval: a check that just misses a poll is followed by one after it.
    interval = getattr(revocations, "interval", None)
    return interval / 2 if isinstance(interval, (int, float)) and interval > 0 else DEFAULT_CHECK_SECONDS


async def token_end(principal: Principal, check_seconds: float | None = None) -> Unauthenticated:
    """Completes when principal's token expires or its revocation list (that of the verifier that
    admitted it) lists it, with the error that ends its streams; the list is asked every
    check_seconds (None: half its poll interval)."""
    revocations = principal.revocations
    period = check_seconds or _check_seconds(revocations)
    while True:
        left = principal.expires_at - time.time()
        if left <= 0:
            return Unauthenticated("the token has expired", {"reason": "EXPIRED"})
        if revocations is not None:
            try:
                if await revocations.is_revoked(principal.token_id):
                    return Unauthenticated("the token has been revoked", {"reason": "REVOKED"})
            except Exception:  # noqa: BLE001 - as the verifier does: an unreachable list ends no stream
                log.warning("cannot check whether a stream's token was revoked", exc_info=True)
        await asyncio.sleep(min(period, left))


async def until_token_ends(items: AsyncIterable[T], principal: Principal | None,
                           check_seconds: float | None = None) -> AsyncIterator[T]:
    """items, until they end or principal's token does: then Unauthenticated (EXPIRED or REVOKED)
    is raised. With no principal (no authentication) items pass as they are. items is closed
    (aclose) however this ends."""
    iterator = aiter(items)
    if principal is None:
        try:
            async for item in iterator:
                yield item
        finally:
            await _close(iterator)
        return
    ending = asyncio.ensure_future(token_end(principal, check_seconds))
    pending: asyncio.Future[T] | None = None
    try:
        while True:
            pending = asyncio.ensure_future(anext(iterator))
            await asyncio.wait({pending, ending}, return_when=asyncio.FIRST_COMPLETED)
            if not pending.done():
                raise ending.result()
            next_item, pending = pending, None
            try:
                item = next_item.result()
            except StopAsyncIteration:
                return
            yield item
    finally:
        ending.cancel()
        if pending is not None:
            pending.cancel()
        await asyncio.gather(ending, *([pending] if pending is not None else []), return_exceptions=True)
        await _close(iterator)


async def _close(iterator: AsyncIterator[Any]) -> None:
    close = getattr(iterator, "aclose", None)
    if close is not None:
        await close()


class OpenStreams:
    """How many streams each caller (a principal's subject) holds open, at most limit each."""

    def __init__(self, limit: int, what: str = "streams"):
        if limit < 1:
            raise ValueError("a stream limit is at least 1")
        self.limit = limit
        self.what = what  # named in the refusal, e.g. "watches"
        self._open: Counter[str] = Counter()

    def count(self, subject: str) -> int:
        """The streams subject holds open."""
        return self._open[subject]

    @contextlib.asynccontextmanager
    async def hold(self, subject: str | None) -> AsyncIterator[None]:
        """One slot of subject's for as long as the block runs (None: not counted);
        RESOURCE_EXHAUSTED when subject holds limit already."""
        if subject is None:
            yield
            return
        if self._open[subject] >= self.limit:
            raise ResourceExhausted(
                f"at most {self.limit} open {self.what} per caller: close one first",
                {"reason": "TOO_MANY_STREAMS", "limit": self.limit, "what": self.what})
        self._open[subject] += 1
        try:
            yield
        finally:
            self._open[subject] -= 1
            if not self._open[subject]:
                del self._open[subject]


class StreamGuard:
    """A service's streams, for the principal of the call being served: capped per caller
    (OpenStreams) and ended with its token (until_token_ends), whose revocations are those of the
    verifier that admitted it."""

    def __init__(self, limit: int, what: str = "streams", check_seconds: float | None = None):
        self.open = OpenStreams(limit, what)
        self.check_seconds = check_seconds

    def hold(self) -> contextlib.AbstractAsyncContextManager[None]:
        """A slot of the current caller's (RESOURCE_EXHAUSTED beyond the limit)."""
        principal = auth.current()
        return self.open.hold(principal.subject if principal is not None else None)

    def until_token_ends(self, items: AsyncIterable[T]) -> AsyncIterator[T]:
        """items until the current caller's token expires or is revoked (see until_token_ends)."""
        return until_token_ends(items, auth.current(), self.check_seconds)

    def watch(self, watch: Watch) -> Watch:
        """watch (an async iterable with close(), as sse.stream takes one) ending with the current
        caller's token."""
        return _TokenBoundWatch(watch, auth.current(), self.check_seconds)


MAX_WATCHES_PER_CALLER = 64  # per principal subject, on each member of a service, over every API together


def add_watch_options(group: Any, default: Callable[[str, object], object]) -> None:
    """The flag of a service that serves watches: how many one caller may hold open."""
    group.add_argument("--max-watches-per-caller", type=int,
                       default=default("max_watches_per_caller", MAX_WATCHES_PER_CALLER),
                       help="open watches one caller (a user or service account) may hold on this member, over "
                            "REST, gRPC and etcd's API together; one more is RESOURCE_EXHAUSTED")


def watch_guard(options: Mapping[str, object] | None = None) -> StreamGuard:
    """The guard of a service's watches, with the limit add_watch_options's flag set in options."""
    # The option is the flag's int (or a config file's value, which int() checks): typed as object here.
    return StreamGuard(int((options or {}).get("max_watches_per_caller", MAX_WATCHES_PER_CALLER)),  # type: ignore[call-overload]
                       what="watches")


class Watch(AsyncIterable[Any], Protocol):
    """Batches of events until closed (sse.Watch's shape)."""

    def close(self) -> None:
        """Stop watching."""


class _TokenBoundWatch:
    def __init__(self, watch: Watch, principal: Principal | None, check_seconds: float | None):
        self._watch, self._principal, self._check = watch, principal, check_seconds

    def __aiter__(self) -> AsyncIterator[Any]:
        return until_token_ends(self._watch, self._principal, self._check)

    def close(self) -> None:
        self._watch.close()
