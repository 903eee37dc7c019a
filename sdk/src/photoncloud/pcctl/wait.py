"""--wait: poll a resource until it settles, showing its state as it goes (a spinner on a terminal,
a line per change otherwise)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich.console import Console

from photoncloud.sdk import ApiError

T = TypeVar("T")


def until(what: str, poll: Callable[[], T], describe: Callable[[T], str], done: Callable[[T], bool],
          timeout: float, interval: float = 0.5) -> T:
    """poll() every interval until done(result), showing describe(result); ClickException when timeout
    seconds pass first (Ctrl-C stops waiting, never the operation)."""
    console = Console(stderr=True)
    deadline, shown = time.monotonic() + timeout, ""
    with console.status(f"{what}: waiting", spinner="dots") as status:
        while True:
            result = poll()
            text = describe(result)
            if text != shown:
                status.update(f"{what}: {text}")
                if not console.is_terminal:
                    click.echo(f"{what}: {text}", err=True)
                shown = text
            if done(result):
                return result
            if time.monotonic() >= deadline:
                raise click.ClickException(f"{what} is still {text} after {timeout:g}s (it goes on without pcctl)")
            time.sleep(interval)


def gone(get: Callable[[], Any]) -> Callable[[], Any]:
    """A poll for until() that answers None once get() is NOT_FOUND."""
    def poll() -> Any:
        try:
            return get()
        except ApiError as error:
            if error.code == "NOT_FOUND":
                return None
            raise
    return poll
