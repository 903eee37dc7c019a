"""on_stop_signals hears the process's own SIGTERM, and not one sent to a forked child that has not exec'd
(as pyroute2's namespace helpers are), which asyncio's add_signal_handler would hear as the parent's."""

from __future__ import annotations

import asyncio
import os
import signal
import time

from photoncloud.common.signals import on_stop_signals


def fork_and_terminate() -> None:
    """Fork a child that runs Python for a while, SIGTERM it while it runs, reap it."""
    pid = os.fork()
    if pid == 0:
        time.sleep(2)
        os._exit(0)
    time.sleep(0.3)
    os.kill(pid, signal.SIGTERM)
    os.waitpid(pid, 0)


async def heard(subscribe) -> list[str]:
    """What a stop subscription heard while a thread forked and terminated a child, then after the process's own
    SIGTERM."""
    seen: list[str] = []
    subscribe(lambda: seen.append("stop"))
    await asyncio.to_thread(fork_and_terminate)
    await asyncio.sleep(0.3)
    seen.append("then")
    os.kill(os.getpid(), signal.SIGTERM)
    await asyncio.sleep(0.3)
    return seen


def test_a_childs_sigterm_does_not_stop_the_parent_but_its_own_does():
    previous = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        assert asyncio.run(heard(on_stop_signals)) == ["then", "stop"]

        def asyncio_handlers(callback):
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, callback)

        # The way it went before: the child's SIGTERM reaches the parent's loop as its own.
        assert asyncio.run(heard(asyncio_handlers)) == ["stop", "then", "stop"]
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
