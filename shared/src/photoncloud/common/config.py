"""Server configuration from flags and environment variables (flags win)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .logs import AUTO, FORMATS
from .tls import MODES, OFF, TlsConfig, parse_sans


@dataclass(frozen=True)
class ServerConfig:
    """Where a service listens and keeps its data."""

    service: str
    bind: str
    rest_port: int
    grpc_port: int
    data_dir: Path
    log_level: str = "INFO"
    log_format: str = AUTO  # json, text, or auto: text when stderr is a terminal
    shutdown_grace: float = 10.0
    max_body_bytes: int = 4 * 1024 * 1024
    iam_url: str = "http://127.0.0.1:8083"
    iam_issuer: str = ""  # the `iss` IAM's tokens carry; empty: iam_url
    revocation_poll_seconds: float = 5.0
    tls: TlsConfig = field(default_factory=TlsConfig)  # off unless --tls says otherwise
    options: Mapping[str, Any] = field(default_factory=dict)  # the service's own flags, by dest name

    @property
    def expected_issuer(self) -> str:
        """The issuer a token must name."""
        return self.iam_issuer or self.iam_url


def grpc_port_for(rest_port: int) -> int:
    """The platform rule: the gRPC port is 50050 plus the last digit of the REST port."""
    return 50050 + rest_port % 10


# Adds a service's own flags to the parser; `default(name, fallback)` reads `<SERVICE>_NAME`.
AddOptions = Callable[[Any, Callable[[str, object], object]], None]  # (an argparse group, default)


def load_config(
    service: str,
    rest_port: int,
    argv: Sequence[str] | None = None,
    environ: Mapping[str, str] | None = None,
    add_options: AddOptions | None = None,
) -> ServerConfig:
    """Read a service's configuration: `--flag`, else `<SERVICE>_FLAG`, else the default.

    Settings every service shares (where IAM is, the log level) also read `PHOTONCLOUD_FLAG`.
    The data directory defaults to `$PHOTONCLOUD_DATA_DIR/<service>` (`./.data/<service>`).
    add_options adds the service's own flags, whose values land in `ServerConfig.options`.
    """
    env = os.environ if environ is None else environ
    prefix = service.upper() + "_"

    def default(name: str, fallback: object, platform_wide: bool = False) -> object:
        if platform_wide:
            fallback = env.get("PHOTONCLOUD_" + name.upper(), fallback)
        return env.get(prefix + name.upper(), fallback)

    base_dir = Path(env.get("PHOTONCLOUD_DATA_DIR", ".data"))
    parser = argparse.ArgumentParser(prog=service, description=f"Run the {service} service.")
    parser.add_argument("--bind", default=default("bind", "127.0.0.1"), help="address to listen on")
    parser.add_argument("--rest-port", type=int, default=default("rest_port", rest_port))
    parser.add_argument("--grpc-port", type=int, default=default("grpc_port", grpc_port_for(rest_port)))
    parser.add_argument("--data-dir", type=Path, default=default("data_dir", base_dir / service))
    parser.add_argument("--log-level", default=default("log_level", "INFO", platform_wide=True))
    parser.add_argument("--log-format", choices=FORMATS, default=default("log_format", AUTO, platform_wide=True),
                        help="json: one JSON object per line; text: one readable line per record; "
                             "auto (default): text when stderr is a terminal, JSON otherwise (files, containers)")
    parser.add_argument("--shutdown-grace", type=float, default=default("shutdown_grace", 10.0),
                        help="seconds in-flight requests get to finish on SIGTERM")
    parser.add_argument("--max-body-bytes", type=int, default=default("max_body_bytes", 4 * 1024 * 1024))
    parser.add_argument("--iam-url", default=default("iam_url", "http://127.0.0.1:8083", platform_wide=True),
                        help="IAM's REST base URL, where signing keys and revocations are fetched")
    parser.add_argument("--iam-issuer", default=default("iam_issuer", "", platform_wide=True),
                        help="the issuer IAM's tokens name (default: --iam-url)")
    parser.add_argument("--revocation-poll-seconds", type=float,
                        default=default("revocation_poll_seconds", 5.0, platform_wide=True),
                        help="how often IAM's revoked tokens are fetched: a revoked token is refused within this delay")
    parser.add_argument("--tls", choices=MODES, default=default("tls", OFF, platform_wide=True),
                        help="TLS on the REST and gRPC ports: off; auto (the platform's own CA and a certificate "
                             "per service, made on first start in --tls-dir); files (--tls-cert and --tls-key)")
    parser.add_argument("--tls-cert", type=Path, default=default("tls_cert", None),
                        help="files mode: the server certificate (PEM, chain after it)")
    parser.add_argument("--tls-key", type=Path, default=default("tls_key", None),
                        help="files mode: the server certificate's private key (PEM)")
    parser.add_argument("--tls-ca", type=Path, default=default("tls_ca", None, platform_wide=True),
                        help="the CA bundle other services are verified with (default: auto mode's CA in "
                             "--tls-dir; files mode: the system's trust store)")
    parser.add_argument("--tls-dir", type=Path, default=default("tls_dir", None, platform_wide=True),
                        help="auto mode: where the CA and the certificates are kept "
                             "(default: tls beside the data directory, shared by the machine's services)")
    parser.add_argument("--tls-san", default=default("tls_san", "", platform_wide=True),
                        help="auto mode: extra host names or addresses for the certificate, comma-separated "
                             "(localhost, 127.0.0.1, ::1, the service name and this host are always in it)")
    common = {action.dest for action in parser._actions}  # noqa: SLF001 - argparse has no public view
    if add_options is not None:
        add_options(parser.add_argument_group(f"{service} options"), default)
    args = parser.parse_args(argv)
    if args.log_format not in FORMATS:  # argparse checks the choices of flags, not of defaults from the environment
        parser.error(f"--log-format: {args.log_format!r} is not one of {', '.join(FORMATS)}")
    if args.tls == "files" and (args.tls_cert is None or args.tls_key is None):
        parser.error("--tls files takes --tls-cert and --tls-key")
    data_dir = Path(args.data_dir)
    tls = TlsConfig(mode=args.tls, cert=args.tls_cert and Path(args.tls_cert), key=args.tls_key and Path(args.tls_key),
                    ca=args.tls_ca and Path(args.tls_ca),
                    dir=Path(args.tls_dir) if args.tls_dir else data_dir.parent / "tls",
                    sans=parse_sans(str(args.tls_san or "")))
    return ServerConfig(
        service=service,
        bind=args.bind,
        rest_port=int(args.rest_port),
        grpc_port=int(args.grpc_port),
        data_dir=data_dir,
        log_level=str(args.log_level).upper(),
        log_format=str(args.log_format),
        shutdown_grace=float(args.shutdown_grace),
        max_body_bytes=int(args.max_body_bytes),
        iam_url=str(args.iam_url).rstrip("/"),
        iam_issuer=str(args.iam_issuer),
        revocation_poll_seconds=float(args.revocation_poll_seconds),
        tls=tls,
        options={k: v for k, v in vars(args).items() if k not in common},
    )
