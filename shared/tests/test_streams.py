"""streams.py on its own: a stream ends when its token expires or is revoked, and each caller holds
at most a set number of streams open."""

from __future__ import annotations

import asyncio
import time

import pytest

from photoncloud.common import auth
from photoncloud.common.auth import SYSTEM, Principal, Scope
from photoncloud.common.errors import ResourceExhausted, Unauthenticated
from photoncloud.common.streams import OpenStreams, StreamGuard, token_end, until_token_ends
from photoncloud.common.testing import ListedRevocations

SECONDS = 5  # every wait is bounded by this


def principal(expires_in: float = 3600, subject: str = "user:u", token_id: str = "jti-1",
              revocations: object = None) -> Principal:
    """A principal admitted by a verifier whose revocation list is revocations."""
    return Principal(subject, "u", Scope(SYSTEM), (), ("*",), token_id, int(time.time() + expires_in), "t",
                     revocations)


async def ticks(count: int | None = None, every: float = 0.01):
    """0, 1, 2, ... one every `every` seconds (count of them, or forever); notes whether it was closed."""
    ticks.closed = False
    n = 0
    try:
        while count is None or n < count:
            yield n
            n += 1
            await asyncio.sleep(every)
    finally:
        ticks.closed = True


async def test_token_end_names_expiry_and_revocation():
    ended = await asyncio.wait_for(token_end(principal(expires_in=-1)), SECONDS)
    assert (type(ended), ended.details) == (Unauthenticated, {"reason": "EXPIRED"})
    source = ListedRevocations()
    waiting = asyncio.ensure_future(token_end(principal(revocations=source)))
    await asyncio.sleep(0.25)
    assert not waiting.done() and source.asked >= 2  # asked again and again while the token is good
    source.revoked.add("jti-1")
    ended = await asyncio.wait_for(waiting, SECONDS)
    assert ended.details == {"reason": "REVOKED"}


async def test_a_failing_revocation_source_ends_nothing():
    class Broken:
        interval = 0.05

        async def is_revoked(self, token_id: str) -> bool:
            raise OSError("IAM is down")

    waiting = asyncio.ensure_future(token_end(principal(revocations=Broken())))
    await asyncio.sleep(0.2)
    assert not waiting.done()
    waiting.cancel()


async def test_items_pass_until_the_token_expires_then_the_stream_ends_and_is_closed():
    # Tokens carry whole seconds: the end comes at a second boundary 1 to 2 s from now (with 1.2, as
    # before, it could come 0.2 s from now, too soon for the ticks the test counts).
    expires_in = 2
    holder = principal(expires_in=expires_in)
    seen = []
    started = time.time()
    with pytest.raises(Unauthenticated) as ended:
        async for n in until_token_ends(ticks(every=0.05), holder):
            seen.append(n)
    assert ended.value.details == {"reason": "EXPIRED"}
    assert holder.expires_at <= time.time() < holder.expires_at + 1
    assert len(seen) > 5 and seen == list(range(len(seen)))
    assert ticks.closed
    assert time.time() - started < SECONDS


async def test_a_revoked_token_ends_the_stream_within_the_poll_interval():
    source = ListedRevocations(interval=0.5)
    seen = []

    async def consume():
        async for n in until_token_ends(ticks(every=0.01), principal(revocations=source)):
            seen.append(n)

    task = asyncio.ensure_future(consume())
    await asyncio.sleep(0.1)
    assert not task.done() and seen
    source.revoked.add("jti-1")
    revoked_at = time.monotonic()
    with pytest.raises(Unauthenticated) as ended:
        await asyncio.wait_for(task, SECONDS)
    assert ended.value.details == {"reason": "REVOKED"}
    assert time.monotonic() - revoked_at < 2 * source.interval  # checked every half interval; slack for a busy host
    assert ticks.closed


async def test_items_that_end_first_end_the_stream_quietly_and_no_token_means_no_end():
    assert [n async for n in until_token_ends(ticks(3), principal(revocations=ListedRevocations()))] == [0, 1, 2]
    assert [n async for n in until_token_ends(ticks(3), None)] == [0, 1, 2]
    stream = until_token_ends(ticks(every=0.01), principal())
    assert await anext(stream) == 0
    await stream.aclose()  # the consumer goes away: the items are closed too
    assert ticks.closed


async def test_open_streams_are_capped_per_caller():
    streams = OpenStreams(2, what="watches")
    async with streams.hold("user:a"), streams.hold("user:a"):
        assert streams.count("user:a") == 2
        with pytest.raises(ResourceExhausted) as refused:
            async with streams.hold("user:a"):
                pass
        assert refused.value.details == {"reason": "TOO_MANY_STREAMS", "limit": 2, "what": "watches"}
        assert "2 open watches" in refused.value.message
        async with streams.hold("user:b"), streams.hold(None):  # another caller; nobody (no authentication)
            assert streams.count("user:b") == 1
        assert streams.count("user:a") == 2  # the refusal took no slot
    assert streams.count("user:a") == 0
    with pytest.raises(RuntimeError):
        async with streams.hold("user:a"):
            raise RuntimeError("the stream failed")
    assert streams.count("user:a") == 0  # a failing stream gives its slot back
    with pytest.raises(ValueError):
        OpenStreams(0)


async def test_the_guard_works_for_the_current_caller_and_the_revocations_of_its_verifier():
    source = ListedRevocations(interval=0.1)
    guard = StreamGuard(1, what="watches")
    # the revocations of the verifier that admitted the token
    bound = auth.bind(principal(subject="user:g", revocations=source))
    try:
        async with guard.hold():
            with pytest.raises(ResourceExhausted):
                async with guard.hold():
                    pass

            class Watch:
                closed = False

                def __aiter__(self):
                    return ticks(every=0.01)

                def close(self):
                    Watch.closed = True

            wrapped = guard.watch(Watch())
            source.revoked.add("jti-1")
            with pytest.raises(Unauthenticated):
                async for _ in wrapped:
                    pass
            wrapped.close()
            assert Watch.closed
    finally:
        auth.reset(bound)
