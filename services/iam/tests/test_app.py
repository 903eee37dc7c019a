"""The IAM process: app.build on a fresh data directory, the admin bootstrap, flags, and a real
`python -m photoncloud.iam` stopped with SIGTERM."""

from __future__ import annotations

import json
import stat
import urllib.request

import pytest

from photoncloud.common.config import ServerConfig, load_config
from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.testing import DIRECT, ServiceProcess
from photoncloud.iam import app
from photoncloud.iam.core import Caller, Grant




def config_for(data_dir) -> ServerConfig:
    return ServerConfig(service="iam", bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=data_dir)


def core_of(service):
    """The core behind a built service (its routes' handlers close over it)."""
    return service.verifier.keys.core


async def test_build_bootstraps_a_fresh_directory_once(tmp_path, capsys):
    service = await app.build(config_for(tmp_path), environ={})
    try:
        secret_file = tmp_path / app.ADMIN_PASSWORD_FILE
        assert stat.S_IMODE(secret_file.stat().st_mode) == 0o600
        assert stat.S_IMODE((tmp_path / "iam.sqlite3").stat().st_mode) == 0o600
        password = secret_file.read_text().strip()
        printed = capsys.readouterr().err
        assert printed.count(password) == 1 and len(printed.strip().splitlines()) == 1
        issued = await core_of(service).issue_token(Caller(address="127.0.0.1"), Grant("password", "admin", password))
        assert issued.roles == ("admin",) and issued.scope.kind == "system"
        assert {r.rpc for r in service.routes.routes} and all(r.rpc for r in service.routes.routes)
    finally:
        await service.close()
    again = await app.build(config_for(tmp_path), environ={app.ADMIN_PASSWORD_ENV: "ignored on a later start"})
    await again.close()
    assert capsys.readouterr().err == ""  # nothing printed again
    assert secret_file.read_text().strip() == password


async def test_the_admin_password_can_come_from_the_environment(tmp_path, capsys):
    service = await app.build(config_for(tmp_path), environ={app.ADMIN_PASSWORD_ENV: "from the environment"})
    try:
        assert not (tmp_path / app.ADMIN_PASSWORD_FILE).exists()
        assert "from the environment" not in capsys.readouterr().err
        await core_of(service).issue_token(Caller(), Grant("password", "admin", "from the environment"))
    finally:
        await service.close()


async def test_a_weak_admin_password_is_refused_at_start(tmp_path):
    with pytest.raises(ServiceError) as raised:
        await app.build(config_for(tmp_path), environ={app.ADMIN_PASSWORD_ENV: "admin"})
    assert raised.value.code is Code.INVALID_ARGUMENT
    assert raised.value.details["field"] == app.ADMIN_PASSWORD_ENV


def test_iam_flags_and_environment():
    config = load_config("iam", app.REST_PORT, ["--issuer", "https://iam.example.com/", "--rest-port", "9000",
                                                "--access-token-ttl", "600"],
                         environ={"IAM_REFRESH_TOKEN_TTL": "7200"}, add_options=app.add_options)
    settings = app.settings_from(config)
    assert (settings.issuer, settings.access_token_ttl, settings.refresh_token_ttl) == \
        ("https://iam.example.com", 600, 7200)
    assert config.rest_port == 9000
    with pytest.raises(SystemExit) as refused:
        app.settings_from(load_config("iam", app.REST_PORT, ["--access-token-ttl", "0"], environ={},
                                      add_options=app.add_options))
    assert "access_token_ttl" in str(refused.value)


@pytest.mark.parametrize("argv, environ, issuer", [
    ([], {}, "http://127.0.0.1:8083"),
    (["--rest-port", "9000"], {}, "http://127.0.0.1:9000"),
    ([], {"IAM_REST_PORT": "9001"}, "http://127.0.0.1:9001"),
    (["--bind", "0.0.0.0", "--rest-port", "9443", "--tls", "auto"], {}, "https://127.0.0.1:9443"),
    (["--bind", "::1", "--rest-port", "9002"], {}, "http://[::1]:9002"),
    (["--bind", "10.1.2.3"], {}, "http://10.1.2.3:8083"),
    (["--rest-port", "9000", "--public-url", "https://iam.example.com/"], {}, "https://iam.example.com"),
    (["--rest-port", "9000"], {"IAM_ISSUER": "https://login.example.com"}, "https://login.example.com"),
])
def test_the_issuer_is_where_iam_serves_unless_given(argv, environ, issuer):
    config = load_config("iam", app.REST_PORT, argv, environ=environ, add_options=app.add_options)
    assert app.settings_from(config).issuer == issuer


def test_iam_flags_are_in_the_help(capsys):
    with pytest.raises(SystemExit):
        load_config("iam", app.REST_PORT, ["--help"], environ={}, add_options=app.add_options)
    assert "--issuer" in capsys.readouterr().out


def test_the_module_runs_and_stops_on_sigterm(tmp_path, monkeypatch):
    monkeypatch.setenv(app.ADMIN_PASSWORD_ENV, "a process admin password")
    process = ServiceProcess("iam", tmp_path / "iam", "--issuer", "http://iam.test:8083").start()
    try:
        with DIRECT.open(f"{process.url}/.well-known/openid-configuration", timeout=5) as response:
            assert json.load(response)["issuer"] == "http://iam.test:8083"
        request = urllib.request.Request(f"{process.url}/api/v1/auth/token", method="POST",
                                         headers={"Content-Type": "application/json"},
                                         data=json.dumps({"grant_type": "password", "username": "admin",
                                                          "password": "a process admin password"}).encode())
        with DIRECT.open(request, timeout=10) as response:
            assert response.headers["Cache-Control"] == "no-store"
            token = json.load(response)["data"]["access_token"]
    finally:
        assert process.stop() == 0
    log = process.log()
    assert "a process admin password" not in log and token not in log
