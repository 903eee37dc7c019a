"""TLS: the auto mode's CA and certificates on disk, the flags, and both transports of one server
over TLS, verified against the CA (and refused with another)."""

from __future__ import annotations

import asyncio
import multiprocessing
import ssl
import stat
from pathlib import Path

import aiohttp
import grpc
import jwt
import pytest
from cryptography import x509
from grpc_health.v1 import health_pb2, health_pb2_grpc

from photoncloud.common import auth, errors, tls
from photoncloud.common.config import load_config
from photoncloud.common.rest import RouteTable, json_response
from photoncloud.common.server import Service
from photoncloud.common.testing import TokenMint


def load(path: Path) -> x509.Certificate:
    return x509.load_pem_x509_certificate(path.read_bytes())


def sans(path: Path) -> set[str]:
    names = load(path).extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return {str(n.value) for n in names}


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


# --- the files -----------------------------------------------------------------------------------


def test_auto_makes_a_ca_and_a_certificate_it_signed_with_private_files(tmp_path):
    directory = tmp_path / "tls"
    files = tls.ensure_service_cert(directory, "chainfire", tls.default_names("chainfire", ["cf.example", "10.1.2.3"]))
    ca = load(directory / "ca.crt")
    cert = load(files.cert)
    cert.verify_directly_issued_by(ca)
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is True
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca is False
    assert {"localhost", "127.0.0.1", "::1", "chainfire", "cf.example", "10.1.2.3"} <= sans(files.cert)
    assert mode(directory) == 0o700
    for path in (directory / "ca.crt", directory / "ca.key", files.cert, files.key):
        assert mode(path) == 0o600, path
    assert not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def test_a_second_start_reuses_the_ca_and_the_certificate(tmp_path):
    names = tls.default_names("iam")
    first = tls.ensure_service_cert(tmp_path, "iam", names)
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    second = tls.ensure_service_cert(tmp_path, "iam", names)
    assert second == first
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    # Another service of the machine: a certificate of its own, from the same CA.
    other = tls.ensure_service_cert(tmp_path, "flaredb", tls.default_names("flaredb"))
    assert (tmp_path / "ca.crt").read_bytes() == before["ca.crt"]
    load(other.cert).verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_a_certificate_is_issued_again_for_new_names_or_another_ca(tmp_path):
    first = tls.ensure_service_cert(tmp_path, "iam", tls.default_names("iam"))
    old = first.cert.read_bytes()
    tls.ensure_service_cert(tmp_path, "iam", tls.default_names("iam", ["iam.internal"]))
    assert first.cert.read_bytes() != old and "iam.internal" in sans(first.cert)
    # A certificate some other CA signed (e.g. a copied directory) is not presented.
    foreign = tls.ensure_service_cert(tmp_path / "other", "iam", tls.default_names("iam"))
    first.cert.write_bytes(foreign.cert.read_bytes())
    tls.ensure_service_cert(tmp_path, "iam", tls.default_names("iam"))
    load(first.cert).verify_directly_issued_by(load(tmp_path / "ca.crt"))


def test_a_ca_missing_its_key_is_not_replaced_silently(tmp_path):
    tls.ensure_ca(tmp_path)
    (tmp_path / "ca.key").unlink()
    with pytest.raises(SystemExit, match="ca.key"):
        tls.ensure_ca(tmp_path)


def _issue(directory: str, service: str) -> None:
    tls.ensure_service_cert(Path(directory), service, tls.default_names(service))


def test_services_starting_at_once_make_one_ca(tmp_path):
    context = multiprocessing.get_context("spawn")
    names = [f"svc{i}" for i in range(6)]
    processes = [context.Process(target=_issue, args=(str(tmp_path), name)) for name in names]
    for process in processes:
        process.start()
    for process in processes:
        process.join(60)
        assert process.exitcode == 0
    ca = load(tmp_path / "ca.crt")
    for name in names:  # every certificate from the one CA on disk
        load(tmp_path / f"{name}.crt").verify_directly_issued_by(ca)


def test_the_command_makes_the_ca_and_certificates_ahead_of_time(tmp_path, capsys):
    assert tls.main(["--tls-dir", str(tmp_path), "--tls-san", "iam.svc,10.0.0.9", "iam"]) == 0
    assert capsys.readouterr().out.split() == [str(tmp_path / "ca.crt"), str(tmp_path / "iam.crt")]
    assert {"iam.svc", "10.0.0.9", "iam"} <= sans(tmp_path / "iam.crt")


# --- the flags -----------------------------------------------------------------------------------


def test_tls_is_off_by_default_and_auto_keeps_its_files_beside_the_data_directory(tmp_path):
    config = load_config("chainfire", 8081, [], environ={})
    assert config.tls.mode == "off" and not config.tls.enabled
    config = load_config("chainfire", 8081, ["--tls", "auto", "--data-dir", str(tmp_path / "chainfire")], environ={})
    assert config.tls.dir == tmp_path / "tls" and config.tls.ca_file() == tmp_path / "tls" / "ca.crt"


def test_tls_flags_read_the_platform_and_the_service_variables():
    env = {"PHOTONCLOUD_TLS": "auto", "PHOTONCLOUD_TLS_DIR": "/srv/tls", "PHOTONCLOUD_TLS_SAN": "a, b",
           "CHAINFIRE_TLS_SAN": "chainfire.svc", "PHOTONCLOUD_TLS_CA": "/etc/pc/ca.pem"}
    config = load_config("chainfire", 8081, [], environ=env)
    assert (config.tls.mode, config.tls.dir, config.tls.sans) == ("auto", Path("/srv/tls"), ("chainfire.svc",))
    assert config.tls.ca_file() == Path("/etc/pc/ca.pem")  # --tls-ca wins over the directory's CA
    env = {"FLAREDB_TLS": "files", "FLAREDB_TLS_CERT": "/c.pem", "FLAREDB_TLS_KEY": "/k.pem"}
    config = load_config("flaredb", 8082, [], environ=env)
    assert (config.tls.mode, config.tls.cert, config.tls.key, config.tls.ca_file()) == (
        "files", Path("/c.pem"), Path("/k.pem"), None)
    assert load_config("flaredb", 8082, ["--tls", "off"], environ=env).tls.enabled is False


def test_files_mode_needs_a_certificate_and_a_key(capsys):
    with pytest.raises(SystemExit):
        load_config("iam", 8083, ["--tls", "files", "--tls-cert", "/c.pem"], environ={})
    assert "--tls-key" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_config("iam", 8083, ["--tls", "sometimes"], environ={})


# --- a server over TLS ---------------------------------------------------------------------------


def routes() -> RouteTable:
    table = RouteTable()

    @table.get("/api/v1/ping", "Ping", who=auth.PUBLIC)
    async def ping(request):
        return {"pong": True}

    return table


@pytest.fixture
async def tls_server(start, tmp_path):
    config = tls.TlsConfig(mode=tls.AUTO, dir=tmp_path / "tls")
    server = await start(Service("svc", "1.0", routes(), []), tls=config)
    return server, config.ca_file()


async def test_rest_health_and_metrics_over_https_verified_against_the_ca(tls_server):
    server, ca = tls_server
    context = tls.client_ssl_context(ca)
    async with aiohttp.ClientSession() as session:
        for path in ("/health", "/metrics", "/api/v1/ping"):
            async with session.get(f"https://127.0.0.1:{server.rest_port}{path}", ssl=context) as response:
                assert response.status == 200, path
        async with session.get(f"https://localhost:{server.rest_port}/health", ssl=context) as response:
            assert (await response.json())["data"]["status"] == "SERVING"
        # The system's trust store does not know the platform's CA.
        with pytest.raises(aiohttp.ClientConnectorCertificateError):
            await session.get(f"https://127.0.0.1:{server.rest_port}/health", ssl=ssl.create_default_context())
        # Plaintext on the TLS port is not served.
        with pytest.raises(aiohttp.ClientError):
            await session.get(f"http://127.0.0.1:{server.rest_port}/health")


async def test_grpc_over_tls_with_the_ca_and_refused_with_another(tls_server, tmp_path):
    server, ca = tls_server
    target = f"127.0.0.1:{server.grpc_port}"
    request = health_pb2.HealthCheckRequest(service="")
    async with grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(ca.read_bytes())) as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(request, timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    other = tls.ensure_ca(tmp_path / "other")
    for channel in (grpc.aio.secure_channel(target, grpc.ssl_channel_credentials(other.read_bytes())),
                    grpc.aio.insecure_channel(target)):
        async with channel:
            with pytest.raises(grpc.aio.AioRpcError) as error:
                await health_pb2_grpc.HealthStub(channel).Check(request, timeout=3)
            assert error.value.code() == grpc.StatusCode.UNAVAILABLE


async def test_the_process_clients_follow_the_tls_settings(tls_server, monkeypatch):
    server, ca = tls_server
    monkeypatch.setattr(tls, "_clients", tls.clients())  # put back after the test
    tls.configure_clients(tls.TlsConfig(mode=tls.AUTO, dir=ca.parent))
    async with tls.grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        reply = await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=5)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
    assert isinstance(tls.http_ssl(f"https://127.0.0.1:{server.rest_port}"), ssl.SSLContext)
    assert tls.http_ssl("http://127.0.0.1:1") is True  # plain http: nothing to verify
    tls.configure_clients(tls.TlsConfig())  # off: gRPC in plaintext, which a TLS port does not serve
    async with tls.grpc_channel(f"127.0.0.1:{server.grpc_port}") as channel:
        with pytest.raises(grpc.aio.AioRpcError):
            await health_pb2_grpc.HealthStub(channel).Check(health_pb2.HealthCheckRequest(), timeout=3)


async def test_jwks_over_https_is_verified_against_the_ca(start, tmp_path):
    mint = TokenMint()
    jwk = {**jwt.algorithms.RSAAlgorithm.to_jwk(mint.private_key.public_key(), as_dict=True),
           "kid": mint.kid, "alg": "RS256", "use": "sig"}
    table = RouteTable()

    @table.get("/.well-known/jwks.json", "Keys", raw=True, who=auth.PUBLIC)
    async def keys(request):
        return json_response({"keys": [jwk]})

    config = tls.TlsConfig(mode=tls.AUTO, dir=tmp_path / "tls")
    server = await start(Service("iam", "1.0", table, []), tls=config)
    url = f"https://127.0.0.1:{server.rest_port}/.well-known/jwks.json"
    good = auth.JwksKeys(url, clients=tls.ClientTls(ca=config.ca_file()))
    assert (await good.key(mint.kid)) is not None
    other_ca = tls.ensure_ca(tmp_path / "other")
    bad = auth.JwksKeys(url, clients=tls.ClientTls(ca=other_ca))
    with pytest.raises(errors.Unavailable, match="certificate verify failed"):
        await bad.key(mint.kid)
    revocations = auth.PolledRevocations(f"https://127.0.0.1:{server.rest_port}/api/v1/auth/revocations", 0,
                                         clients=tls.ClientTls(ca=other_ca))
    assert await revocations.is_revoked("x") is False  # the failed poll is logged, not raised


async def test_files_mode_presents_the_operators_certificate(start, tmp_path):
    made = tls.ensure_service_cert(tmp_path / "operator", "gateway", ["127.0.0.1", "gateway.example"])
    config = tls.TlsConfig(mode=tls.FILES, cert=made.cert, key=made.key)
    server = await start(Service("svc", "1.0", routes(), []), tls=config)
    context = tls.client_ssl_context(tmp_path / "operator" / "ca.crt")
    async with aiohttp.ClientSession() as session:
        async with session.get(f"https://127.0.0.1:{server.rest_port}/api/v1/ping", ssl=context) as response:
            assert response.status == 200
    _, writer = await asyncio.open_connection("127.0.0.1", server.rest_port, ssl=context)
    cert = writer.get_extra_info("peercert")
    writer.close()
    assert ("DNS", "gateway.example") in cert["subjectAltName"]
    assert not (tmp_path / "tls").exists()  # files mode makes no CA of its own
