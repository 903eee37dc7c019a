"""IAM's process: builds the core once and serves it over REST and gRPC, behind a verifier that
checks tokens against IAM's own keys and revocation list."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Callable, Mapping
from importlib.metadata import version
from pathlib import Path
from typing import Any

from photoncloud.common.config import ServerConfig
from photoncloud.common.gateway import rest_routes
from photoncloud.common.replication import LocalLog
from photoncloud.common.server import Service, run

from . import authorize, grpc_api, metrics, oauth2, rest_api
from .core import DEFAULT_ISSUER, Bootstrapped, IamCore, Settings
from .credentials import SecretHasher
from .machine import IamStateMachine
from .store import SqliteIamStore

NAME = "iam"
REST_PORT = 8083
ADMIN_PASSWORD_ENV = "PHOTONCLOUD_ADMIN_PASSWORD"
ADMIN_PASSWORD_FILE = "admin-password"
__version__ = version("photoncloud-iam")
log = logging.getLogger("photoncloud.iam")


def add_options(group: Any, default: Callable[[str, object], object]) -> None:
    """IAM's own flags (`--flag`, else `IAM_FLAG`, else the default), beside every service's."""
    defaults = Settings()
    group.add_argument("--issuer", "--public-url", dest="issuer", default=default("issuer", ""),
                       help="the tokens' `iss` and the base of the discovery URLs: the URL clients reach IAM at "
                            "(set it behind a proxy; default: where IAM serves, http(s)://<bind>:<rest port>, "
                            "127.0.0.1 for a wildcard bind)")
    group.add_argument("--access-token-ttl", type=int, default=default("access_token_ttl", defaults.access_token_ttl),
                       help="seconds an access token lives")
    group.add_argument("--refresh-token-ttl", type=int,
                       default=default("refresh_token_ttl", defaults.refresh_token_ttl),
                       help="seconds a refresh token lives (rotated on every use)")
    group.add_argument("--session-ttl", type=int, default=default("session_ttl", defaults.session_ttl),
                       help="seconds after sign-in when a session's refresh tokens stop working")
    group.add_argument("--login-failure-limit", type=int,
                       default=default("login_failure_limit", defaults.login_failure_limit),
                       help="failed sign-ins of one user from one address, within the window, before that user is "
                            "refused there for a while (never elsewhere)")
    group.add_argument("--login-failure-address-limit", type=int,
                       default=default("login_failure_address_limit", defaults.login_failure_address_limit),
                       help="failed sign-ins from one address, whoever they were for, before it is refused a while")


def serving_url(config: ServerConfig) -> str:
    """The URL IAM serves REST at, as the issuer when none is given: its scheme, bind address (the
    loopback one for a wildcard bind, as the other services' default --iam-url) and REST port."""
    if config.rest_port == 0:  # a port picked only when bound (tests): the design's address, said once
        log.warning("--rest-port 0 without --issuer: tokens name %s as their issuer", DEFAULT_ISSUER)
        return DEFAULT_ISSUER
    host = {"": "127.0.0.1", "0.0.0.0": "127.0.0.1", "::": "::1"}.get(config.bind, config.bind)
    host = f"[{host}]" if ":" in host else host
    return f"{'https' if config.tls.enabled else 'http'}://{host}:{config.rest_port}"


def settings_from(config: ServerConfig) -> Settings:
    """IAM's settings from the configuration's IAM options (the defaults where there are none)."""
    options, defaults = config.options, Settings()

    def number(name: str, default: int) -> int:
        return int(options[name]) if name in options else default

    try:
        return Settings(
            issuer=str(options.get("issuer") or serving_url(config)),
            access_token_ttl=number("access_token_ttl", defaults.access_token_ttl),
            refresh_token_ttl=number("refresh_token_ttl", defaults.refresh_token_ttl),
            session_ttl=number("session_ttl", defaults.session_ttl),
            login_failure_limit=number("login_failure_limit", defaults.login_failure_limit),
            login_failure_address_limit=number("login_failure_address_limit", defaults.login_failure_address_limit),
        )
    except ValueError as exc:
        raise SystemExit(f"iam: {exc}") from None


def announce(data_dir: Path, bootstrapped: Bootstrapped) -> None:
    """Tell the operator, once, how to sign in as admin: a generated password goes to a mode-0600
    file and to stderr (one plain line, outside the structured logs)."""
    if not bootstrapped.generated:
        print(f"IAM: created user 'admin' (id {bootstrapped.user_id}) with the password from {ADMIN_PASSWORD_ENV}",
              file=sys.stderr, flush=True)
        return
    path = data_dir / ADMIN_PASSWORD_FILE
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, (bootstrapped.password + "\n").encode())
    finally:
        os.close(fd)
    print(f"IAM: created user 'admin' with the generated password {bootstrapped.password} "
          f"(also in {path}, mode 0600; it is not shown again)", file=sys.stderr, flush=True)


async def open_core(config: ServerConfig, settings: Settings | None = None,
                    hasher: SecretHasher | None = None) -> IamCore:
    """The core over the store in config.data_dir, its writes on a log of one member, started (signing
    key and built-in roles ready)."""
    store = SqliteIamStore(config.data_dir / "iam.sqlite3")
    try:
        # As in every service: the state machine over the store, behind a log of one member.
        core = IamCore(store, settings or settings_from(config), hasher, log=LocalLog(IamStateMachine(store)))
    except BaseException:
        await store.close()
        raise
    try:
        await core.start()
    except BaseException:
        await shut(core)
        raise
    return core


async def shut(core: IamCore) -> None:
    """Stop the core's log, then close its store."""
    await core.close()
    await core.state.close()


def service(core: IamCore) -> Service:
    """The IAM service over a started core."""

    async def dependencies() -> dict[str, Any]:
        return await core.health()

    async def close() -> None:
        await shut(core)

    services = grpc_api.services(core)
    routes = rest_routes(services, rest_api.routes(core))  # the contract's, but where rest_api writes one by hand
    oauth = oauth2.application(core)
    authorize.add_routes(oauth, core)
    return Service(NAME, __version__, routes, services, dependencies, close, verifier=core.verifier,
                   mounts={oauth2.PREFIX: oauth},
                   domain_metrics=metrics.reader(NAME, core))


async def build(config: ServerConfig, settings: Settings | None = None, *, hasher: SecretHasher | None = None,
                environ: Mapping[str, str] | None = None) -> Service:
    """The IAM service over the store in config.data_dir, bootstrapped on its first start."""
    env = os.environ if environ is None else environ
    core = await open_core(config, settings, hasher)
    try:
        bootstrapped = await core.bootstrap(env.get(ADMIN_PASSWORD_ENV))
        if bootstrapped is not None:
            announce(config.data_dir, bootstrapped)
    except BaseException:
        await shut(core)
        raise
    return service(core)


def main(argv: list[str] | None = None) -> None:
    """Run IAM until SIGTERM or SIGINT."""
    run(NAME, REST_PORT, build, sys.argv[1:] if argv is None else argv, add_options)
