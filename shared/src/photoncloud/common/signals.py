"""Stopping a process on SIGTERM and SIGINT, safely beside libraries that fork.

asyncio's `loop.add_signal_handler` hears signals through a wakeup socket that a forked child
inherits. pyroute2 forks to work in a network namespace and SIGTERMs the child when it is done; a
child still running when that signal lands writes it into the shared socket, and the parent stops
as if it had been told to (seen: PrismNET's dataplane agent stopping in the middle of its first
rounds). A plain handler that hands the call to the loop has no such socket, and a child's copy of
it does nothing, since it checks the process it runs in.
"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import Callable
from types import FrameType


def on_stop_signals(callback: Callable[[], object]) -> None:
    """Call callback on the running loop when this process gets SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    pid = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() == pid:  # not in a forked child that has not exec'd yet
            loop.call_soon_threadsafe(callback)

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, handler)
