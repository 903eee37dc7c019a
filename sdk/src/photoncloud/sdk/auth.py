"""Signing in with IAM's JSON token endpoint, and keeping the access token fresh with the refresh token."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .errors import ApiError
from .transport import Transport

TOKEN_PATH = "/api/v1/auth/token"
# Refresh this long before the access token expires (or at half its life when that is shorter), so that a
# request never leaves with a token that dies on its way.
REFRESH_MARGIN = 60.0


@dataclass
class Tokens:
    """What a sign-in gave: the access token, the refresh token, when each expires (Unix seconds),
    the scope and roles the token holds."""

    access_token: str
    expires_at: float
    refresh_token: str = ""
    refresh_expires_at: float = 0.0
    scope: dict[str, Any] = field(default_factory=dict)
    roles: list[str] = field(default_factory=list)
    issued_at: float = 0.0

    @classmethod
    def from_grant(cls, data: dict[str, Any], now: float | None = None) -> Tokens:
        """The tokens of a token endpoint's `data` (expires_in and refresh_expires_in are seconds from now)."""
        now = time.time() if now is None else now
        refresh = data.get("refresh_token") or ""
        return cls(str(data["access_token"]), now + float(data.get("expires_in") or 0), refresh,
                   now + float(data.get("refresh_expires_in") or 0) if refresh else 0.0,
                   dict(data.get("scope") or {}), list(data.get("roles") or []), now)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Tokens:
        """Tokens as to_dict wrote them."""
        known = {k: v for k, v in data.items() if k in cls.__dataclass_fields__}
        return cls(**known)

    def to_dict(self) -> dict[str, Any]:
        """These tokens as JSON-ready values."""
        return asdict(self)

    def stale(self, now: float | None = None) -> bool:
        """Whether the access token expires within the refresh margin."""
        now = time.time() if now is None else now
        life = self.expires_at - (self.issued_at or now)
        return now >= self.expires_at - min(REFRESH_MARGIN, life / 2)

    def can_refresh(self, now: float | None = None) -> bool:
        """Whether the refresh token is there and still live."""
        now = time.time() if now is None else now
        return bool(self.refresh_token) and now < self.refresh_expires_at


class SharedTokens(Protocol):
    """Tokens that other processes use and refresh too (pcctl's credentials file). A refresh token works
    once, and IAM revokes the whole session when one is used twice: so a refresh holds the store's
    lock, and first looks whether another process has refreshed already."""

    def locked(self) -> AbstractContextManager[Tokens | None]:
        """Hold the store's lock (across processes); the tokens it holds now."""
        ...


class TokenManager:
    """The token a client sends: a fixed one, or tokens from a sign-in, refreshed before they expire;
    on_change is called with each new set (to keep them, as pcctl does in its credentials file), and
    with shared, refreshes are taken in turns with the other processes that share those tokens."""

    def __init__(self, iam: Transport, tokens: Tokens | None = None, static_token: str | None = None,
                 on_change: Callable[[Tokens | None], None] | None = None, shared: SharedTokens | None = None):
        self.iam = iam
        self.tokens = tokens
        self.static_token = static_token
        self.on_change = on_change
        self.shared = shared
        self._lock = threading.Lock()

    def access_token(self, force_refresh: bool = False) -> str | None:
        """The token to send now: refreshed first if it is about to expire (or force_refresh) and a
        refresh token can; None when signed out."""
        if self.static_token:
            return self.static_token
        with self._lock:
            if self.tokens is None:
                return None
            if (force_refresh or self.tokens.stale()) and self.tokens.can_refresh():
                self._refresh_locked()
            return self.tokens.access_token

    def login(self, username: str, password: str, project_id: str | None = None,
              org_id: str | None = None) -> Tokens:
        """Sign in with the password grant, for the system or the given org/project scope."""
        return self._grant({"grant_type": "password", "username": username, "password": password},
                           project_id, org_id)

    def login_client(self, client_id: str, client_secret: str, project_id: str | None = None,
                     org_id: str | None = None) -> Tokens:
        """Sign in as a service account with the client-credentials grant."""
        return self._grant({"grant_type": "client_credentials", "client_id": client_id,
                            "client_secret": client_secret}, project_id, org_id)

    def refresh(self) -> Tokens:
        """New tokens from the refresh token (which works once: IAM hands out a new one)."""
        with self._lock:
            return self._refresh_locked()

    def logout(self) -> list[str]:
        """Revoke the token and its session (the refresh token too); forget them. Returns the revoked IDs."""
        token = self.access_token()
        revoked: list[str] = []
        if token:
            data = Transport(self.iam.base_url, _Fixed(token), self.iam.session, self.iam.timeout,
                             self.iam.verify).request("POST", "/api/v1/auth/revoke")
            revoked = list(data.get("revoked_token_ids", []))
        self._set(None)
        return revoked

    def _refresh_locked(self) -> Tokens:
        if self.tokens is None or not self.tokens.refresh_token:
            raise ApiError("UNAUTHENTICATED", "no refresh token: sign in again", {"reason": "NOT_SIGNED_IN"})
        with self.shared.locked() if self.shared else nullcontext(None) as latest:
            if latest is not None and latest.access_token != self.tokens.access_token and not latest.stale():
                self.tokens = latest  # another process refreshed them meanwhile: its refresh token is the live one
                return latest
            body = {"grant_type": "refresh_token", "refresh_token": self.tokens.refresh_token}
            tokens = Tokens.from_grant(self.iam.request("POST", TOKEN_PATH, json=body, authenticated=False))
            self._set(tokens)  # kept while the lock is held: the next process reads these
            return tokens

    def _grant(self, body: dict[str, Any], project_id: str | None, org_id: str | None) -> Tokens:
        scope = {k: v for k, v in (("org_id", org_id), ("project_id", project_id)) if v}
        if scope:
            body["scope"] = scope
        tokens = Tokens.from_grant(self.iam.request("POST", TOKEN_PATH, json=body, authenticated=False))
        with self._lock:
            self._set(tokens)
        return tokens

    def _set(self, tokens: Tokens | None) -> None:
        self.tokens = tokens
        self.static_token = None
        if self.on_change is not None:
            self.on_change(tokens)


class _Fixed:
    """A token source that always gives one token."""

    def __init__(self, token: str):
        self.token = token

    def access_token(self, force_refresh: bool = False) -> str | None:
        """The token."""
        return self.token
