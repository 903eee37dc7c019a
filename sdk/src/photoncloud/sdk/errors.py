"""The one exception the SDK raises: a PhotonCloud error envelope, or a service that cannot be reached."""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error a service answered (its envelope's code, message and details), or UNAVAILABLE when
    no answer came; request_id is the one the service gave the request, when it answered."""

    def __init__(self, code: str, message: str, details: dict[str, Any] | None = None,
                 request_id: str | None = None, status: int | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.status = status

    def envelope(self) -> dict[str, Any]:
        """The error as the services write it: {"error": {...}, "meta": {"request_id": ...}}."""
        body: dict[str, Any] = {"error": {"code": self.code, "message": self.message, "details": self.details}}
        if self.request_id:
            body["meta"] = {"request_id": self.request_id}
        return body
