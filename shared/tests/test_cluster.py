"""The cluster flags choose the log: alone by default, a Raft member with --initial-cluster and a secret."""

from __future__ import annotations

import pytest

from photoncloud.common.cluster import add_cluster_options, make_log
from photoncloud.common.config import load_config
from photoncloud.common.raft import RaftLog
from photoncloud.common.replication import LocalLog, member_id
from photoncloud.common.testing import free_ports


class Machine:
    """A state machine that stays empty."""

    def applied_index(self) -> int:
        return 0

    def apply(self, index, command):
        return None

    def snapshot(self, path: str) -> None:
        open(path, "wb").close()

    def restore(self, path: str) -> None:
        pass


def config(tmp_path, *argv: str, environ: dict[str, str] | None = None):
    return load_config("kvstore", 8089, ["--data-dir", str(tmp_path), *argv], environ or {},
                       lambda group, default: add_cluster_options(group, default, 2390))


async def test_without_initial_cluster_a_member_runs_alone(tmp_path):
    log = make_log(config(tmp_path, "--rest-port", "9001"), Machine(), {}, 2390)
    assert isinstance(log, LocalLog)
    [member] = log.members()
    assert member.peer_address == "127.0.0.1:2390" and member.member_id == member_id("127.0.0.1:2390")
    assert member.client_urls == {"rest": "http://127.0.0.1:9001", "grpc": "127.0.0.1:50059"}
    await log.close()


@pytest.mark.parametrize("secret", ["", "too-short"])
def test_a_cluster_needs_a_long_secret(tmp_path, secret):
    settings = config(tmp_path, "--initial-cluster", "127.0.0.1:1,127.0.0.1:2", "--peer-address", "127.0.0.1:1",
                      environ={"KVSTORE_CLUSTER_SECRET": secret})
    with pytest.raises(SystemExit, match="KVSTORE_CLUSTER_SECRET"):
        make_log(settings, Machine(), {"KVSTORE_CLUSTER_SECRET": secret}, 2390)


async def test_initial_cluster_and_a_secret_file_make_a_raft_member(tmp_path):
    own, other = (f"127.0.0.1:{port}" for port in free_ports(2))
    secret = tmp_path / "secret"
    secret.write_text("a-long-random-secret-for-the-peers\n")
    settings = config(tmp_path, "--peer-address", own, "--initial-cluster", f"{own},{other}",
                      "--cluster-secret-file", str(secret), "--advertise-host", "kv.example")
    log = make_log(settings, Machine(), {}, 2390)
    try:
        assert isinstance(log, RaftLog)
        assert sorted(m.peer_address for m in log.members()) == sorted([own, other])
        assert log.client_urls == {"rest": "http://kv.example:8089", "grpc": "kv.example:50059"}
    finally:
        await log.close()
