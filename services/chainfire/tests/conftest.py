"""Fixtures: a ChainFire core on an in-memory store and on a file, and a real ChainFire server on free ports."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from photoncloud.chainfire.app import build
from photoncloud.chainfire.core import KVCore, KVStateMachine
from photoncloud.chainfire.store import SqliteKVStore
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Server
from photoncloud.common.testing import TokenMint, serve


@pytest.fixture(params=["memory", "file"])
async def kv(request, tmp_path):
    """A KVCore over an in-memory SQLite store (reads run on the applying thread) and over a file
    (reads run on the loop, from a snapshot of the last commit)."""
    store = SqliteKVStore(":memory:" if request.param == "memory" else tmp_path / "kv.sqlite3")
    machine = KVStateMachine(store)
    core = KVCore(machine, LocalLog(machine), "test")
    yield core
    await core.close()
    store.close()


@pytest.fixture(scope="session")
def mint():
    """Signs test tokens; the servers below trust its key instead of fetching IAM's."""
    return TokenMint()


@pytest.fixture
def auth(mint):
    """An admin token as REST headers and gRPC metadata."""
    token = mint.token()
    return SimpleNamespace(token=token, headers={"Authorization": f"Bearer {token}"},
                           metadata=(("authorization", f"Bearer {token}"),))


async def start_chainfire(data_dir, mint) -> Server:
    """A running ChainFire (REST and gRPC on 127.0.0.1, free ports) that trusts mint's tokens."""
    return await serve(build, "chainfire", data_dir, mint.verifier())


@pytest.fixture
async def server(tmp_path, mint):
    """A running ChainFire over a fresh data directory."""
    running = await start_chainfire(tmp_path, mint)
    yield running
    await running.stop()


@pytest.fixture
def start(mint):
    """start(data_dir): start another ChainFire that trusts the same tokens."""
    return lambda data_dir: start_chainfire(data_dir, mint)
