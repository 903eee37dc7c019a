"""Fixtures: an IAM core on an in-memory store and on a file, and a real IAM server on free ports.

Password hashing uses cheap argon2 parameters here so that the suite stays fast; the service's
defaults are argon2-cffi's (RFC 9106 low-memory profile).
"""

from __future__ import annotations

import time
from types import SimpleNamespace
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher

from photoncloud.common.auth import Principal, Scope
from photoncloud.common.config import ServerConfig
from photoncloud.common.server import Server
from photoncloud.iam import app
from photoncloud.iam.core import Caller, IamCore, Settings
from photoncloud.iam.credentials import SecretHasher
from photoncloud.iam.store import SqliteIamStore

ADMIN_PASSWORD = "correct horse battery staple"


def cheap_hasher() -> SecretHasher:
    return SecretHasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))


class Clock:
    """A clock the test moves: wall time (for tokens) and monotonic time (for the throttle)."""

    def __init__(self) -> None:
        self.now = time.time()
        self.mono = 1000.0

    def __call__(self) -> float:
        return self.now

    def monotonic(self) -> float:
        return self.mono

    def advance(self, seconds: float) -> None:
        self.now += seconds
        self.mono += seconds


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture(params=["memory", "file"])
async def iam(request, tmp_path, clock):
    """A started, bootstrapped IamCore over an in-memory SQLite store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit)."""
    store = await SqliteIamStore(":memory:" if request.param == "memory" else tmp_path / "iam.sqlite3").open()
    core = IamCore(store, Settings(), cheap_hasher(), clock=clock, monotonic=clock.monotonic)
    await core.start()
    core.bootstrapped = await core.bootstrap(ADMIN_PASSWORD)
    yield core
    await core.close()
    await store.close()


def principal(subject: str = "user:test", kind: str = "system", org_id: str = "", project_id: str = "",
              permissions: tuple[str, ...] = ("*",), roles: tuple[str, ...] = ("admin",)) -> Principal:
    """A principal as a verified token would give it."""
    return Principal(subject, subject.partition(":")[2], Scope(kind, org_id, project_id), roles, permissions,
                     token_id="t-" + subject, expires_at=int(time.time()) + 3600, token="")


@pytest.fixture
def admin_password() -> str:
    """The bootstrap admin's password in these tests."""
    return ADMIN_PASSWORD


@pytest.fixture
def make_principal():
    """principal(subject, kind, org_id, project_id, permissions, roles): a verified token's principal."""
    return principal


@pytest.fixture
def start():
    """start(data_dir, **settings): another running IAM (stop it yourself)."""
    return start_iam


@pytest.fixture
def root(iam) -> Caller:
    """The bootstrap admin, on a system-scoped token."""
    return Caller(principal(f"user:{iam.bootstrapped.user_id}"), "127.0.0.1")


async def start_iam(data_dir, **settings: Any) -> Server:
    """A running IAM (REST and gRPC on 127.0.0.1, free ports) over data_dir, admin = ADMIN_PASSWORD;
    its core is `.iam`."""
    config = ServerConfig(service="iam", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=data_dir,
                          shutdown_grace=2)
    core = await app.open_core(config, Settings(**settings), cheap_hasher())
    await core.bootstrap(ADMIN_PASSWORD)
    running = Server(app.service(core), config)
    await running.start()
    running.iam = core
    return running


@pytest.fixture
async def server(tmp_path):
    """A running IAM over a fresh data directory."""
    running = await start_iam(tmp_path / "iam")
    yield running
    await running.stop()


class Http:
    """A small REST client: call() returns (status, body, headers)."""

    def __init__(self, session: aiohttp.ClientSession, port: int):
        self.session = session
        self.base = f"http://127.0.0.1:{port}"

    async def call(self, method: str, path: str, token: str | None = None, headers: dict | None = None, **kw: Any):
        headers = {**(headers or {}), **({"Authorization": f"Bearer {token}"} if token else {})}
        async with self.session.request(method, self.base + path, headers=headers, **kw) as response:
            return response.status, await response.json(), response.headers

    async def token(self, username: str = "admin", password: str = ADMIN_PASSWORD, **scope: str) -> dict:
        body: dict[str, Any] = {"grant_type": "password", "username": username, "password": password}
        if scope:
            body["scope"] = scope
        status, reply, _ = await self.call("POST", "/api/v1/auth/token", json=body)
        assert status == 200, reply
        return reply["data"]


@pytest.fixture
async def http(server):
    async with aiohttp.ClientSession() as session:
        yield Http(session, server.rest_port)


@pytest.fixture
async def admin(http) -> SimpleNamespace:
    """The bootstrap admin's system-scoped token."""
    token = await http.token()
    return SimpleNamespace(token=token["access_token"], refresh=token["refresh_token"])
