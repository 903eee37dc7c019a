"""Calling another PhotonCloud service over gRPC with the caller's token and request ID.

A dependency that cannot be reached is UNAVAILABLE (with `details.dependency`); any other error
comes back as the dependency gave it (e.g. a full subnet's RESOURCE_EXHAUSTED).
"""

from __future__ import annotations

from typing import Any

import grpc

from . import tls
from .errors import Unavailable
from .rpc import client_interceptors, error_from_rpc

CALL_TIMEOUT = 5.0  # seconds; a dependency that does not answer within this counts as down
DOWN = (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED)
# A dependency that restarts is used again within a second (gRPC's default backoff grows to 120 s).
CHANNEL_OPTIONS = [("grpc.initial_reconnect_backoff_ms", 200), ("grpc.min_reconnect_backoff_ms", 200),
                   ("grpc.max_reconnect_backoff_ms", 1000)]


async def call(dependency: str, method: Any, request: Any) -> Any:
    """method(request) on the dependency's stub, with its errors as the shared error types."""
    try:
        # wait_for_ready: a call made while the channel reconnects waits for it (up to the timeout)
        # instead of failing at once.
        return await method(request, timeout=CALL_TIMEOUT, wait_for_ready=True)
    except grpc.aio.AioRpcError as exc:
        if exc.code() in DOWN:
            raise Unavailable(f"{dependency} cannot be reached: {exc.details() or exc.code().name}",
                              {"dependency": dependency}) from None
        raise error_from_rpc(exc) from None


class Channel:
    """A channel opened on first use (in the serving loop), closed by close()."""

    def __init__(self, target: str):
        self.target = target
        self._channel: grpc.aio.Channel | None = None

    def get(self) -> grpc.aio.Channel:
        """The open channel."""
        if self._channel is None:
            # The shared interceptors forward the caller's token and the request ID; with TLS on, the
            # dependency is verified against the platform's CA.
            self._channel = tls.grpc_channel(self.target, options=CHANNEL_OPTIONS, interceptors=client_interceptors())
        return self._channel

    async def close(self) -> None:
        """Close the channel (it opens again on the next get())."""
        if self._channel is not None:
            await self._channel.close()
            self._channel = None
