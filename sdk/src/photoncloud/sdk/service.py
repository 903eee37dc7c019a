"""What every service's sub-client shares: its transport, and calls that drop unset fields."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .transport import Transport, path_segment

Json = dict[str, Any]


def fields(**values: Any) -> Json:
    """values without those left unset (None), as a request body or query."""
    return {k: v for k, v in values.items() if v is not None}


class Service:
    """A sub-client: calls one service's REST API through its transport."""

    def __init__(self, transport: Transport):
        self.transport = transport

    def _get(self, path: str, **params: Any) -> Any:
        return self.transport.request("GET", path, params=fields(**params))

    def _post(self, path: str, body: Json | None = None) -> Any:
        return self.transport.request("POST", path, json=body)

    def _put(self, path: str, body: Json | None = None) -> Any:
        return self.transport.request("PUT", path, json=body)

    def _patch(self, path: str, body: Json) -> Any:
        return self.transport.request("PATCH", path, json=body)

    def _delete(self, path: str, **params: Any) -> Any:
        return self.transport.request("DELETE", path, params=fields(**params))

    def _pages(self, path: str, **params: Any) -> Iterator[Json]:
        return self.transport.pages(path, fields(**params))


def seg(value: str) -> str:
    """value as one path segment (an ID or a name)."""
    return path_segment(value)
