"""Configuration: flags beat environment beat defaults; the gRPC port rule; the data directory default."""

from __future__ import annotations

from pathlib import Path

import pytest

from photoncloud.common.config import ServerConfig, grpc_port_for, load_config

# DESIGN.md's port table: service, REST port, gRPC port.
PORTS = [
    ("chainfire", 8081, 50051),
    ("flaredb", 8082, 50052),
    ("iam", 8083, 50053),
    ("plasmavmc", 8084, 50054),
    ("k8shost", 8085, 50055),
    ("creditservice", 8086, 50056),
    ("prismnet", 8087, 50057),
]


@pytest.mark.parametrize(("service", "rest", "grpc"), PORTS)
def test_grpc_port_rule(service, rest, grpc):
    assert grpc_port_for(rest) == grpc


@pytest.mark.parametrize(("rest", "grpc"), [(9080, 50050), (18089, 50059), (8, 50058)])
def test_grpc_port_rule_uses_the_last_digit(rest, grpc):
    assert grpc_port_for(rest) == grpc


@pytest.mark.parametrize(("service", "rest", "grpc"), PORTS)
def test_defaults(service, rest, grpc, tmp_path):
    config = load_config(service, rest, argv=[], environ={"PHOTONCLOUD_DATA_DIR": str(tmp_path)})
    assert isinstance(config, ServerConfig)
    assert config.service == service
    assert config.rest_port == rest
    assert config.grpc_port == grpc
    assert config.data_dir == tmp_path / service
    assert config.log_level == "INFO"
    assert config.max_body_bytes > 0
    assert config.shutdown_grace > 0


def test_data_dir_defaults_under_dot_data_without_the_environment():
    config = load_config("iam", 8083, argv=[], environ={})
    assert config.data_dir == Path(".data") / "iam"


def test_environment_beats_defaults(tmp_path):
    environ = {
        "CHAINFIRE_BIND": "0.0.0.0",
        "CHAINFIRE_REST_PORT": "9181",
        "CHAINFIRE_GRPC_PORT": "9191",
        "CHAINFIRE_DATA_DIR": str(tmp_path / "from-env"),
        "CHAINFIRE_LOG_LEVEL": "debug",
        "CHAINFIRE_SHUTDOWN_GRACE": "2.5",
        "CHAINFIRE_MAX_BODY_BYTES": "1024",
    }
    config = load_config("chainfire", 8081, argv=[], environ=environ)
    assert config.bind == "0.0.0.0"
    assert config.rest_port == 9181
    assert config.grpc_port == 9191
    assert config.data_dir == tmp_path / "from-env"
    assert config.log_level == "DEBUG"
    assert config.shutdown_grace == 2.5
    assert config.max_body_bytes == 1024


def test_flags_beat_environment(tmp_path):
    environ = {
        "CHAINFIRE_BIND": "0.0.0.0",
        "CHAINFIRE_REST_PORT": "9181",
        "CHAINFIRE_GRPC_PORT": "9191",
        "CHAINFIRE_DATA_DIR": str(tmp_path / "from-env"),
        "CHAINFIRE_LOG_LEVEL": "debug",
        "CHAINFIRE_MAX_BODY_BYTES": "1024",
    }
    argv = [
        "--bind", "127.0.0.2", "--rest-port", "9281", "--grpc-port", "9291",
        "--data-dir", str(tmp_path / "from-flag"), "--log-level", "warning", "--max-body-bytes", "2048",
        "--shutdown-grace", "1",
    ]
    config = load_config("chainfire", 8081, argv=argv, environ=environ)
    assert config.bind == "127.0.0.2"
    assert config.rest_port == 9281
    assert config.grpc_port == 9291
    assert config.data_dir == tmp_path / "from-flag"
    assert config.log_level == "WARNING"
    assert config.max_body_bytes == 2048
    assert config.shutdown_grace == 1.0


def test_environment_of_another_service_is_ignored():
    config = load_config("flaredb", 8082, argv=[], environ={"CHAINFIRE_REST_PORT": "9999"})
    assert config.rest_port == 8082
    assert config.grpc_port == 50052


def test_service_data_dir_beats_the_platform_data_dir(tmp_path):
    environ = {"PHOTONCLOUD_DATA_DIR": str(tmp_path / "platform"), "IAM_DATA_DIR": str(tmp_path / "own")}
    assert load_config("iam", 8083, argv=[], environ=environ).data_dir == tmp_path / "own"


def test_real_environment_is_read_when_none_is_given(monkeypatch, tmp_path):
    monkeypatch.setenv("PHOTONCLOUD_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PRISMNET_REST_PORT", "9187")
    config = load_config("prismnet", 8087, argv=[])
    assert config.rest_port == 9187
    assert config.data_dir == tmp_path / "prismnet"


def test_an_unknown_flag_is_refused():
    with pytest.raises(SystemExit):
        load_config("iam", 8083, argv=["--no-such-flag"], environ={})


def test_a_port_that_is_not_a_number_is_refused():
    with pytest.raises(SystemExit):
        load_config("iam", 8083, argv=[], environ={"IAM_REST_PORT": "eighty"})


def test_a_service_adds_its_own_flags():
    def add_options(group, default):
        group.add_argument("--token-ttl", type=int, default=default("token_ttl", 60))

    config = load_config("iam", 8083, ["--rest-port", "9000"], environ={"IAM_TOKEN_TTL": "90"},
                         add_options=add_options)
    # argparse converts a string default (from the environment) with the flag's type.
    assert (config.rest_port, config.options) == (9000, {"token_ttl": 90})
    flagged = load_config("iam", 8083, ["--token-ttl", "30"], environ={"IAM_TOKEN_TTL": "90"}, add_options=add_options)
    assert flagged.options == {"token_ttl": 30}
    assert load_config("iam", 8083, [], environ={}).options == {}
