"""The secrets side of IAM's domain: password rules and hashing, generated secrets and refresh
tokens, the login throttle, and RSA signing keys. No I/O besides the CPU-bound work it runs on
worker threads.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import math
import secrets
import time
import unicodedata
import uuid
from collections import OrderedDict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import jwt
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from photoncloud.common.errors import InvalidArgument, ResourceExhausted

MIN_PASSWORD_LENGTH = 12
MAX_PASSWORD_LENGTH = 256
RSA_KEY_BITS = 2048
ALGORITHM = "RS256"


def check_password(password: str, user_name: str, field_name: str = "password") -> str:
    """password if it satisfies the rules (12 to 256 characters, not the user's name)."""
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidArgument(
            f"the password must have at least {MIN_PASSWORD_LENGTH} characters",
            {"field": field_name, "reason": "PASSWORD_TOO_SHORT", "min_length": MIN_PASSWORD_LENGTH},
        )
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidArgument(
            f"the password must have at most {MAX_PASSWORD_LENGTH} characters",
            {"field": field_name, "reason": "PASSWORD_TOO_LONG", "max_length": MAX_PASSWORD_LENGTH},
        )
    if password.casefold() == user_name.casefold():
        raise InvalidArgument("the password must not be the user name",
                              {"field": field_name, "reason": "PASSWORD_EQUALS_NAME"})
    return password


def _normalized(secret: str) -> bytes:
    # NFKC, so that the same password typed on another keyboard or OS still matches.
    return unicodedata.normalize("NFKC", secret).encode()


class SecretHasher:
    """argon2id hashes of passwords and secrets, computed on worker threads (they are slow on purpose)."""

    def __init__(self, hasher: PasswordHasher | None = None):
        self.hasher = hasher or PasswordHasher()  # argon2-cffi's defaults: RFC 9106's low-memory profile
        self._decoy: str | None = None

    async def hash(self, secret: str) -> str:
        """A salted argon2id hash of secret."""
        return await asyncio.to_thread(self.hasher.hash, _normalized(secret))

    async def verify(self, hashed: str, secret: str) -> tuple[bool, bool]:
        """(whether secret matches hashed, whether hashed should be recomputed with today's parameters)."""

        def check() -> tuple[bool, bool]:
            try:
                self.hasher.verify(hashed, _normalized(secret))
            except (VerificationError, InvalidHashError):
                return False, False
            return True, self.hasher.check_needs_rehash(hashed)

        return await asyncio.to_thread(check)

    async def waste(self, secret: str) -> None:
        """Spend what a verification costs, so an unknown name answers as slowly as a wrong password."""
        if self._decoy is None:
            self._decoy = await self.hash(secrets.token_urlsafe(16))
        await self.verify(self._decoy, secret)


def new_secret() -> str:
    """A random secret for a service account (256 bits, URL-safe)."""
    return secrets.token_urlsafe(32)


def new_refresh_token() -> str:
    """An opaque, random refresh token (256 bits)."""
    return secrets.token_urlsafe(32)


def token_digest(token: str) -> str:
    """How a refresh token is stored: its SHA-256 (enough for a random 256-bit value)."""
    return hashlib.sha256(token.encode()).hexdigest()


def new_id(prefix: str) -> str:
    """A new resource ID, e.g. `org-3f2a...` (uuid4, hex)."""
    return f"{prefix}-{uuid.uuid4().hex}"


class LoginThrottle:
    """Failed sign-ins per key (a user at an address, an address) in a sliding window: after a key's
    limit of failures within `window` seconds, further attempts on that key are refused until the
    oldest failure leaves the window. A key's limit is `limit`, or the one `limits` gives its kind
    (the part before the first colon). Attempts still being checked count too, so that a burst of
    parallel guesses cannot all pass before the first failure is counted.

    In memory: IAM is one process, and forgetting the counts on a restart is harmless.
    """

    def __init__(self, limit: int = 5, window: float = 60.0, clock: Callable[[], float] = time.monotonic,
                 max_keys: int = 100_000, limits: dict[str, int] | None = None):
        self.limit = limit
        self.limits = limits or {}
        self.window = window
        self.clock = clock
        self.max_keys = max_keys  # bounds the memory an attacker inventing names can make us use
        self._failures: OrderedDict[str, deque] = OrderedDict()
        self._pending: dict[str, int] = {}

    def _limit(self, key: str) -> int:
        return self.limits.get(key.split(":", 1)[0], self.limit)

    def _recent(self, key: str, now: float) -> deque:
        times = self._failures.get(key)
        if times is None:
            return deque()
        while times and times[0] <= now - self.window:
            times.popleft()
        if not times:
            del self._failures[key]
        return times

    def check(self, *keys: str) -> None:
        """RESOURCE_EXHAUSTED (with retry_after_seconds) when any key is throttled now."""
        now = self.clock()
        wait = 0.0
        for key in keys:
            times, limit = self._recent(key, now), self._limit(key)
            if len(times) + self._pending.get(key, 0) >= limit:
                # Throttled by failures: until the oldest counted one leaves the window; by attempts
                # in flight only: a moment, until they are decided.
                wait = max(wait, times[-limit] + self.window - now if len(times) >= limit else 1.0)
        if wait > 0:
            seconds = max(1, math.ceil(wait))
            raise ResourceExhausted(
                f"too many failed sign-in attempts; retry in {seconds} s",
                {"reason": "TOO_MANY_FAILED_LOGINS", "retry_after_seconds": seconds},
            )

    def begin(self, *keys: str) -> None:
        """check(), then count an attempt in flight on every key until end()."""
        self.check(*keys)
        for key in keys:
            self._pending[key] = self._pending.get(key, 0) + 1

    def end(self, *keys: str) -> None:
        """The attempts begun on keys are decided (failures were counted with failure())."""
        for key in keys:
            left = self._pending.get(key, 0) - 1
            if left > 0:
                self._pending[key] = left
            else:
                self._pending.pop(key, None)

    def failure(self, *keys: str) -> bool:
        """Count a failed attempt on every key; whether one of them is throttled from now on."""
        now = self.clock()
        blocked = False
        for key in keys:
            times = self._recent(key, now)
            if key not in self._failures:
                self._failures[key] = times
            self._failures.move_to_end(key)
            times.append(now)
            while len(times) > self._limit(key):
                times.popleft()
            blocked = blocked or len(times) >= self._limit(key)
        while len(self._failures) > self.max_keys:
            self._failures.popitem(last=False)
        return blocked

    def success(self, key: str) -> None:
        """Forget the failures of key (a user at an address after a good password; never an address)."""
        self._failures.pop(key, None)


# --- signing keys --------------------------------------------------------------------------------


def jwk_thumbprint(jwk: dict[str, Any]) -> str:
    """The RFC 7638 thumbprint of an RSA JWK: the key ID, stable for the key and unique to it."""
    canonical = json.dumps({k: jwk[k] for k in ("e", "kty", "n")}, separators=(",", ":"), sort_keys=True)
    return base64.urlsafe_b64encode(hashlib.sha256(canonical.encode()).digest()).decode().rstrip("=")


@dataclass(frozen=True)
class KeyMaterial:
    """A freshly generated RSA key: its ID, private key in PEM, and public JWK."""

    kid: str
    private_pem: str = field(repr=False)
    public_jwk: dict[str, Any]


def _generate() -> KeyMaterial:
    private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_KEY_BITS)
    jwk = RSAAlgorithm.to_jwk(private.public_key(), as_dict=True)
    jwk.pop("key_ops", None)  # RFC 7517: not together with `use`
    kid = jwk_thumbprint(jwk)
    jwk.update(kid=kid, use="sig", alg=ALGORITHM)
    pem = private.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption()).decode()
    return KeyMaterial(kid, pem, jwk)


async def generate_key() -> KeyMaterial:
    """A new 2048-bit RSA signing key (generated on a worker thread)."""
    return await asyncio.to_thread(_generate)


def load_private_key(pem: str) -> Any:
    """The private key object of a PEM."""
    return serialization.load_pem_private_key(pem.encode(), password=None)


def public_key(jwk: dict[str, Any]) -> Any:
    """The public key object of a JWK."""
    return RSAAlgorithm.from_jwk(jwk)


def sign(claims: dict[str, Any], kid: str, private_key: Any) -> str:
    """A compact RS256 JWS of claims, with kid in its header."""
    return jwt.encode(claims, private_key, algorithm=ALGORITHM, headers={"kid": kid, "typ": "JWT"})
