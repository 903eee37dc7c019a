"""TLS for every REST and gRPC port, and for the calls services make to each other.

Three modes (`--tls`):

- `off`: plaintext (the default; `make run` on loopback).
- `auto`: as k3s and etcd's auto-TLS do, the platform makes its own CA on first start, in the TLS
  directory every service of one machine shares (`--tls-dir`, default `<data dir>/../tls`), and a
  server certificate per service signed by it; later starts reuse both. Clients verify peers
  against that CA (`ca.crt`), unless `--tls-ca` names another bundle.
- `files`: the operator's certificate and key (`--tls-cert`, `--tls-key`); peers are verified
  against `--tls-ca` (the system's trust store without it).

Files of the TLS directory (directory 0700, every file 0600):

    ca.crt  ca.key               the platform's CA (EC P-256, ten years)
    <service>.crt <service>.key  the service's certificate (one year, renewed when due or when its
                                 names change) and key

Several services starting at once make one CA: the directory is locked (flock) while it is read or
written, and every file is written to a temporary name and renamed into place.

Clients: a service's calls to other services (IAM's keys and revocations, IAM projects, ChainFire's
etcd Authenticate, gRPC to PrismNET and CreditService) use `http_ssl(url)` and `grpc_channel()`,
which follow the process's client settings (`configure_clients`, done once at start): an `https://`
URL is verified against the CA; gRPC goes over TLS when the service's own TLS is on.
"""

from __future__ import annotations

import argparse
import datetime
import fcntl
import ipaddress
import os
import socket
import ssl
import sys
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

if TYPE_CHECKING:  # imported where used at run time, so that a process without TLS never loads them
    import aiohttp
    import grpc
    from cryptography import x509
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.hazmat.primitives.asymmetric.types import CertificateIssuerPrivateKeyTypes

OFF, AUTO, FILES = "off", "auto", "files"
MODES = (OFF, AUTO, FILES)
CA_CERT, CA_KEY, LOCK = "ca.crt", "ca.key", ".lock"
CA_DAYS = 3650
CERT_DAYS = 365
RENEW_BEFORE_DAYS = 30  # a certificate this close to expiry is issued again on start


@dataclass(frozen=True)
class TlsConfig:
    """How a service serves TLS and verifies its peers."""

    mode: str = OFF
    cert: Path | None = None  # files mode: the server certificate (chain) in PEM
    key: Path | None = None  # files mode: its private key in PEM
    ca: Path | None = None  # the bundle peers are verified with (auto mode: the TLS directory's CA)
    dir: Path | None = None  # auto mode: where the CA and the certificates are kept
    sans: tuple[str, ...] = ()  # auto mode: extra names for the certificate (e.g. compose service names)

    @property
    def enabled(self) -> bool:
        """Whether the service's ports serve TLS."""
        return self.mode != OFF

    def ca_file(self) -> Path | None:
        """The bundle peers are verified with: --tls-ca, else in auto mode the directory's CA."""
        if self.ca is not None:
            return self.ca
        if self.mode == AUTO and self.dir is not None:
            return self.dir / CA_CERT
        return None


@dataclass(frozen=True)
class ServerFiles:
    """The PEM files a server presents."""

    cert: Path
    key: Path


def parse_sans(text: str | Iterable[str]) -> tuple[str, ...]:
    """Names from a comma-separated list (or several), empty ones left out."""
    items = [text] if isinstance(text, str) else list(text)
    return tuple(name.strip() for item in items for name in item.split(",") if name.strip())


def default_names(service: str, extra: Iterable[str] = ()) -> list[str]:
    """The names a service's certificate covers: loopback, the service name, this host, extra."""
    names = ["localhost", "127.0.0.1", "::1", service, socket.gethostname(), socket.getfqdn(), *extra]
    seen: list[str] = []
    for name in names:
        if name and name not in seen:
            seen.append(name)
    return seen


# ---------------------------------------------------------------------------------------- files


def _write_private(path: Path, data: bytes) -> None:
    """data into path, 0600, atomically (a temporary file renamed into place)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    os.replace(tmp, path)


@contextmanager
def _locked(directory: Path) -> Iterator[None]:
    """directory (made 0700 if missing) locked against other processes doing the same."""
    directory.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(directory, 0o700)
    fd = os.open(directory / LOCK, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _not_after(cert: x509.Certificate) -> datetime.datetime:
    after: datetime.datetime | None = getattr(cert, "not_valid_after_utc", None)  # cryptography 42 and later
    return after if after is not None else cert.not_valid_after.replace(tzinfo=datetime.UTC)


def _new_key() -> ec.EllipticCurvePrivateKey:
    from cryptography.hazmat.primitives.asymmetric import ec

    return ec.generate_private_key(ec.SECP256R1())


def _key_pem(key: CertificateIssuerPrivateKeyTypes) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _cert_pem(cert: x509.Certificate) -> bytes:
    from cryptography.hazmat.primitives import serialization

    return cert.public_bytes(serialization.Encoding.PEM)


def _make_ca() -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import NameOID

    key = _new_key()
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PhotonCloud"),
                      x509.NameAttribute(NameOID.COMMON_NAME, f"PhotonCloud CA {os.urandom(4).hex()}")])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _general_names(names: Iterable[str]) -> list[x509.GeneralName]:
    from cryptography import x509

    general: list[x509.GeneralName] = []
    for name in names:
        try:
            general.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            general.append(x509.DNSName(name))
    return general


def _issue(ca_cert: x509.Certificate, ca_key: CertificateIssuerPrivateKeyTypes, service: str,
           names: Sequence[str]) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    key = _new_key()
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "PhotonCloud"),
                                     x509.NameAttribute(NameOID.COMMON_NAME, service)]))
            .issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + datetime.timedelta(days=CERT_DAYS), _not_after(ca_cert)))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_encipherment=True, content_commitment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH, ExtendedKeyUsageOID.CLIENT_AUTH]),
                           critical=False)
            .add_extension(x509.SubjectAlternativeName(_general_names(names)), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return cert, key


def _still_good(cert_path: Path, key_path: Path, ca_cert: x509.Certificate, names: Sequence[str]) -> bool:
    """Whether the certificate on disk was signed by ca_cert, covers names and is not due."""
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key_path.stat()
        cert.verify_directly_issued_by(ca_cert)
        sans = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except Exception:  # noqa: BLE001 - missing, unreadable, or not this CA's: issue it again
        return False
    return (set(_general_names(names)) <= set(sans)
            and _not_after(cert) - _now() > datetime.timedelta(days=RENEW_BEFORE_DAYS))


def ensure_ca(directory: Path) -> Path:
    """The CA of directory, made on the first call (safe when several processes call at once)."""
    with _locked(directory):
        _load_or_make_ca(directory)
    return directory / CA_CERT


def _load_or_make_ca(directory: Path) -> tuple[x509.Certificate, CertificateIssuerPrivateKeyTypes]:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    cert_path, key_path = directory / CA_CERT, directory / CA_KEY
    if cert_path.exists() and key_path.exists():
        # The key is the one _make_ca wrote (an EC key, which signs): no other kind is loaded here.
        return (x509.load_pem_x509_certificate(cert_path.read_bytes()),
                cast("CertificateIssuerPrivateKeyTypes",
                     serialization.load_pem_private_key(key_path.read_bytes(), password=None)))
    if cert_path.exists() or key_path.exists():
        raise SystemExit(f"{directory}: one of {CA_CERT} and {CA_KEY} is missing; restore it or remove both "
                         "(every certificate will be issued again, by a new CA)")
    cert, key = _make_ca()
    _write_private(key_path, _key_pem(key))  # the key first: a CA certificate never lacks its key
    _write_private(cert_path, _cert_pem(cert))
    return cert, key


def ensure_service_cert(directory: Path, service: str, names: Sequence[str]) -> ServerFiles:
    """directory's certificate and key for service covering names, issued by its CA (made if
    missing) unless a good one is there."""
    files = ServerFiles(directory / f"{service}.crt", directory / f"{service}.key")
    with _locked(directory):
        ca_cert, ca_key = _load_or_make_ca(directory)
        if not _still_good(files.cert, files.key, ca_cert, names):
            cert, key = _issue(ca_cert, ca_key, service, names)
            _write_private(files.key, _key_pem(key))
            _write_private(files.cert, _cert_pem(cert))
    return files


def server_files(config: TlsConfig, service: str) -> ServerFiles:
    """The certificate and key a service presents: the operator's, or in auto mode its own."""
    if config.mode == FILES:
        if config.cert is None or config.key is None:
            raise ValueError("--tls files takes --tls-cert and --tls-key")
        return ServerFiles(config.cert, config.key)
    if config.mode == AUTO:
        if config.dir is None:
            raise ValueError("--tls auto takes a TLS directory (--tls-dir)")
        return ensure_service_cert(config.dir, service, default_names(service, config.sans))
    raise ValueError("TLS is off")


# ------------------------------------------------------------------------------------- contexts


def server_ssl_context(files: ServerFiles) -> ssl.SSLContext:
    """An HTTPS server context presenting files (TLS 1.2 or later)."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_cert_chain(str(files.cert), str(files.key))
    return context


def grpc_server_credentials(files: ServerFiles) -> grpc.ServerCredentials:
    """gRPC server credentials presenting files."""
    import grpc

    return grpc.ssl_server_credentials([(files.key.read_bytes(), files.cert.read_bytes())])


def client_ssl_context(ca: Path | None) -> ssl.SSLContext:
    """An HTTPS client context that verifies servers against ca (the system's store when None)."""
    context = ssl.create_default_context(cafile=str(ca) if ca is not None else None)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    return context


@dataclass
class ClientTls:
    """How this process calls other services: whether gRPC goes over TLS, and the CA it trusts."""

    grpc_tls: bool = False
    ca: Path | None = None
    _context: ssl.SSLContext | None = field(default=None, repr=False)

    def http_ssl(self, url: str) -> ssl.SSLContext | bool:
        """aiohttp's `ssl=` for url: for https, a context verifying against the CA."""
        if not url.lower().startswith("https://"):
            return True  # plain http: nothing to verify
        return self.context()

    def context(self) -> ssl.SSLContext:
        """The HTTPS client context verifying against the CA (made once)."""
        if self._context is None:
            self._context = client_ssl_context(self.ca)
        return self._context

    def connector(self) -> aiohttp.TCPConnector:
        """An aiohttp connector whose https requests verify against the CA (for a long-lived session)."""
        import aiohttp

        return aiohttp.TCPConnector(ssl=self.context())

    def channel_credentials(self) -> grpc.ChannelCredentials:
        """gRPC channel credentials trusting the CA (the system's roots when there is none)."""
        import grpc

        return grpc.ssl_channel_credentials(self.ca.read_bytes() if self.ca is not None else None)


_clients = ClientTls()


def configure_clients(config: TlsConfig) -> ClientTls:
    """Set how this process's clients reach other services (done once, when a service starts)."""
    global _clients
    _clients = ClientTls(grpc_tls=config.enabled, ca=config.ca_file())
    return _clients


def clients() -> ClientTls:
    """This process's client settings."""
    return _clients


def http_ssl(url: str) -> ssl.SSLContext | bool:
    """aiohttp's `ssl=` argument for a call to url from this process."""
    return _clients.http_ssl(url)


def grpc_channel(target: str, options: Sequence[tuple[str, Any]] = (),
                 interceptors: Sequence[grpc.aio.ClientInterceptor] = ()) -> grpc.aio.Channel:
    """A grpc.aio channel to another service: TLS verified against the CA when this process's TLS is on."""
    import grpc

    if _clients.grpc_tls:
        return grpc.aio.secure_channel(target, _clients.channel_credentials(), options=list(options),
                                       interceptors=list(interceptors))
    return grpc.aio.insecure_channel(target, options=list(options), interceptors=list(interceptors))


# ------------------------------------------------------------------------------------------ CLI


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m photoncloud.common.tls --tls-dir DIR SERVICE...`: make the CA and the services'
    certificates ahead of time (e.g. in an init container), as auto mode would on start."""
    parser = argparse.ArgumentParser(prog="python -m photoncloud.common.tls", description=main.__doc__)
    parser.add_argument("--tls-dir", type=Path, required=True, help="the TLS directory the services share")
    parser.add_argument("--tls-san", action="append", default=[],
                        help="extra names for every certificate (comma-separated; repeatable)")
    parser.add_argument("services", nargs="*", help="services to issue certificates for (none: the CA only)")
    args = parser.parse_args(argv)
    os.umask(0o077)
    print(ensure_ca(args.tls_dir))
    for service in args.services:
        files = ensure_service_cert(args.tls_dir, service, default_names(service, parse_sans(args.tls_san)))
        print(files.cert)
    return 0


if __name__ == "__main__":
    sys.exit(main())
