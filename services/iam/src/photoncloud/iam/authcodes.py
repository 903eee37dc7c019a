"""The codes of OAuth2's authorization code flow (RFC 6749 section 4.1) and RFC 7636's PKCE check.

A code is random (256 bits), single-use and short-lived, and bound to what it was issued for: the
client, the redirect URI, the user, the scope, the nonce and the PKCE challenge. The table is kept
in memory: IAM is one process (its log has one member), a code lives a minute, and losing the codes
in flight on a restart only makes those users sign in again. Its size is bounded (a flood of
sign-ins cannot exhaust memory): expired codes are dropped first, then the oldest.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass, field

from authlib.oauth2.rfc7636 import create_s256_code_challenge

from photoncloud.common.auth import Scope

# RFC 7636 section 4.1: a verifier is 43 to 128 unreserved characters; its S256 challenge is the
# unpadded base64url of a SHA-256 digest, 43 characters.
CODE_VERIFIER = re.compile(r"[A-Za-z0-9._~-]{43,128}")
S256_CHALLENGE = re.compile(r"[A-Za-z0-9_-]{43}")


def pkce_matches(challenge: str, verifier: str) -> bool:
    """Whether verifier is the one whose S256 challenge is challenge (RFC 7636 section 4.6)."""
    if not CODE_VERIFIER.fullmatch(verifier):
        return False
    return hmac.compare_digest(create_s256_code_challenge(verifier), challenge)


@dataclass
class PendingCode:
    """What a code was issued for, and what became of it."""

    client_id: str
    redirect_uri: str
    subject: str  # the user who signed in
    scope: Scope
    oidc: tuple[str, ...]
    nonce: str
    code_challenge: str
    auth_time: float
    expires_at: float
    uses: int = 0  # one is its exchange; more are replays
    family_id: str = ""  # the session the code was exchanged for, revoked if the code comes back
    digest: str = field(default="", repr=False)


def _digest(code: str) -> str:
    # Kept by digest, as refresh tokens are: the table never holds a usable code.
    return hashlib.sha256(code.encode()).hexdigest()


class CodeTable:
    """The codes in flight, by digest, in the order they expire (every code lives as long)."""

    def __init__(self, ttl: float, max_entries: int, clock: Callable[[], float]):
        self.ttl = ttl
        self.max_entries = max_entries
        self.clock = clock
        self._codes: OrderedDict[str, PendingCode] = OrderedDict()

    def __len__(self) -> int:
        return len(self._codes)

    def _drop_expired(self, now: float) -> None:
        while self._codes:
            oldest = next(iter(self._codes.values()))
            if oldest.expires_at > now:
                break
            self._codes.popitem(last=False)

    def issue(self, pending: PendingCode) -> str:
        """A new code for pending (whose expires_at it sets)."""
        now = self.clock()
        self._drop_expired(now)
        while len(self._codes) >= self.max_entries:
            self._codes.popitem(last=False)
        code = secrets.token_urlsafe(32)
        pending.expires_at, pending.digest = now + self.ttl, _digest(code)
        self._codes[pending.digest] = pending
        return code

    def take(self, code: str) -> PendingCode | None:
        """The code's entry with this use counted (whether it succeeds or not, the first use is the
        only one: uses above 1 is a replay, whose caller revokes what the code gave); None for a code
        that is unknown or expired."""
        self._drop_expired(self.clock())
        pending = self._codes.get(_digest(code)) if code else None
        if pending is not None:
            pending.uses += 1
        return pending
