"""Test support: run a service as a real process on free loopback ports."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .auth import AUDIENCE, SYSTEM, Scope, Verifier


_DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServiceProcess:
    """`python -m photoncloud.<name>` on free ports with its own data directory."""

    def __init__(self, name: str, data_dir: Path, *extra_args: str):
        self.name = name
        self.data_dir = data_dir
        self.rest_port = free_port()
        self.grpc_port = free_port()
        self.extra_args = extra_args
        self.process: subprocess.Popen | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        """The REST base URL."""
        return f"http://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 30) -> "ServiceProcess":
        """Start the process and wait until /health answers SERVING."""
        args = [sys.executable, "-m", f"photoncloud.{self.name}", "--bind", "127.0.0.1",
                "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port),
                "--data-dir", str(self.data_dir), *self.extra_args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=os.environ.copy())
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s:\n{self.log()}")

    def healthy(self) -> bool:
        """Whether /health answers SERVING."""
        try:
            with _DIRECT.open(self.url + "/health", timeout=1) as response:
                return json.load(response)["data"]["status"] == "SERVING"
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return False

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then wait for a graceful exit; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


class StaticKeys:
    """A KeySource holding fixed keys (for tests that sign their own tokens)."""

    def __init__(self, keys: dict[str, Any]):
        self.keys = keys

    async def key(self, kid: str) -> Any:
        """The key for kid."""
        from .errors import Unauthenticated

        if kid not in self.keys:
            raise Unauthenticated("the token is signed with an unknown key", {"reason": "UNKNOWN_KEY"})
        return self.keys[kid]


class TokenMint:
    """Signs tokens shaped like IAM's with a key of its own, to test a service without IAM."""

    def __init__(self, issuer: str = "http://iam.test", kid: str = "test-key"):
        self.issuer = issuer
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, permissions: tuple[str, ...] = ("*",), roles: tuple[str, ...] = ("admin",),
              scope: Scope = Scope(SYSTEM), subject: str = "user:test", ttl: int = 300, **claims: Any) -> str:
        """A signed token with these grants, valid for ttl seconds (negative: already expired)."""
        now = int(time.time())
        payload = {
            "iss": self.issuer, "aud": AUDIENCE, "sub": subject, "name": subject.split(":")[-1],
            "iat": now, "nbf": now, "exp": now + ttl, "jti": os.urandom(16).hex(),
            "scope": scope.as_dict(), "roles": list(roles), "permissions": list(permissions), **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def verifier(self) -> Verifier:
        """A verifier that trusts this mint's key."""
        public = jwt.PyJWK.from_dict({**jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True),
                                      "kid": self.kid, "alg": "RS256"})
        return Verifier(StaticKeys({self.kid: public}), self.issuer)
