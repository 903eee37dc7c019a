"""The `pcctl` command: the root group with its global options, signing in and out, shell
completion, and every service's commands (in commands/)."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any

import click

from photoncloud.sdk import ApiError, Endpoints
from photoncloud.sdk.endpoints import PORTS

from .commands import compute, data, identity, kube, money, network
from .context import State, output_option, pairs, report, state
from .output import FORMATS
from .store import CredentialsError, CredentialStore, config_dir


class Root(click.Group):
    """The root group: an API error of any command is printed from its envelope, exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except ApiError as error:
            obj = ctx.obj
            report(error, obj.output if isinstance(obj, State) else "table")
            ctx.exit(1)
        except CredentialsError as error:
            raise click.ClickException(str(error)) from None


@click.group(cls=Root, context_settings={"help_option_names": ["-h", "--help"], "show_default": True})
@click.option("--url", envvar="PHOTONCLOUD_URL", default=None,
              help="The platform's base URL; each service on its default port (8081-8087) unless the URL names one."
                   "  [env: PHOTONCLOUD_URL; default: the signed-in one, else http://127.0.0.1]")
@click.option("--endpoint", "endpoint", multiple=True, metavar="SERVICE=URL",
              help=f"One service's URL ({', '.join(PORTS)}); also PHOTONCLOUD_<SERVICE>_URL.")
@click.option("--token", envvar="PHOTONCLOUD_TOKEN", default=None,
              help="A bearer token to send instead of the signed-in one.  [env: PHOTONCLOUD_TOKEN]")
@click.option("--ca-file", envvar="PHOTONCLOUD_CA_FILE", default=None, type=click.Path(dir_okay=False),
              help="CA bundle the services' TLS certificates are verified against.  [env: PHOTONCLOUD_CA_FILE]")
@click.option("--config-dir", "config_path", envvar="PHOTONCLOUD_CONFIG_DIR", default=None,
              type=click.Path(file_okay=False),
              help="Where the sign-in is kept.  [env: PHOTONCLOUD_CONFIG_DIR; default: ~/.config/photoncloud]")
@click.option("-o", "--output", type=click.Choice(FORMATS), envvar="PHOTONCLOUD_OUTPUT", default="table",
              help="Output format.")
@click.pass_context
def cli(ctx: click.Context, url: str | None, endpoint: tuple[str, ...], token: str | None, ca_file: str | None,
        config_path: str | None, output: str) -> None:
    """PhotonCloud from the command line: sign in once with `pcctl login`, then a verb per resource
    of every service (kv, sql, project, user, vm, pod, svc, vpc, subnet, port, wallet, ...)."""
    store = CredentialStore(Path(config_path) if config_path else config_dir())
    env = Endpoints.from_env()
    # A URL given (flag or PHOTONCLOUD_URL) names another platform: none of the signed-in one's endpoints apply.
    stored = store.endpoints() if url is None else None
    overrides = pairs(endpoint, "--endpoint")
    try:
        endpoints = (stored or env).with_overrides(url, {**env.overrides, **overrides})
    except ValueError as error:  # a service that does not exist
        raise click.BadParameter(str(error), param_hint="--endpoint or PHOTONCLOUD_<SERVICE>_URL") from None
    ctx.obj = State(store, endpoints, token, ca_file or True, output)


@cli.command()
@click.option("-u", "--username", envvar="PHOTONCLOUD_USERNAME", default=None, help="User name (prompted).")
@click.option("--password-stdin", is_flag=True, help="Read the password from the first line of stdin.")
@click.option("--client-id", default=None, help="Sign in as a service account (client-credentials grant).")
@click.option("--project", "project_id", default=None, help="Scope the token to this project.")
@click.option("--org", "org_id", default=None, help="Scope the token to this organization.")
@output_option
def login(username: str | None, password_stdin: bool, client_id: str | None, project_id: str | None,
          org_id: str | None) -> None:
    """Sign in with IAM and keep the token and refresh token (mode 0600) for the next commands; the
    password comes from PHOTONCLOUD_PASSWORD, stdin or a prompt (a client secret from
    PHOTONCLOUD_CLIENT_SECRET or a prompt)."""
    st = state()
    auth = st.signed_out_client().auth  # kept below, with the endpoints it was made against
    if client_id:
        secret = os.environ.get("PHOTONCLOUD_CLIENT_SECRET") or secret_input("Client secret", password_stdin)
        tokens = auth.login_client(client_id, secret, project_id, org_id)
    else:
        username = username or click.prompt("Username")
        password = os.environ.get("PHOTONCLOUD_PASSWORD") or secret_input("Password", password_stdin)
        tokens = auth.login(username, password, project_id, org_id)
    st.store.save(tokens, st.endpoints)
    scope = tokens.scope or {"type": "system"}
    st.emit({"scope": scope, "roles": tokens.roles, "expires_in": round(tokens.expires_at - tokens.issued_at),
             "credentials": str(st.store.path)})


def secret_input(prompt: str, from_stdin: bool) -> str:
    """A secret from stdin's first line, or a prompt that does not echo it."""
    if from_stdin:
        return sys.stdin.readline().rstrip("\n")
    value: str = click.prompt(prompt, hide_input=True)
    return value


@cli.command()
def logout() -> None:
    """Revoke the signed-in token's session and forget it."""
    st = state()
    if st.client.auth.tokens is None and not st.token:
        raise click.ClickException("not signed in")
    revoked = st.client.auth.logout()
    click.echo(f"signed out ({len(revoked)} token(s) revoked)", err=True)


@cli.command()
@output_option
def whoami() -> None:
    """The signed-in principal, its scope and roles, and when the token expires."""
    st = state()
    token = st.client.auth.access_token()
    if not token:
        raise click.ClickException("not signed in: run `pcctl login`")
    data = st.client.iam.verify(token)
    if not data.get("active"):
        raise click.ClickException("the token is not live any more: run `pcctl login`")
    claims = data["claims"]
    st.emit({k: claims.get(k) for k in ("sub", "name", "scope", "roles", "exp")})


@cli.command()
def token() -> None:
    """Print a live access token (refreshed if it was about to expire), e.g. for curl."""
    value = state().client.auth.access_token()
    if not value:
        raise click.ClickException("not signed in: run `pcctl login`")
    click.echo(value)


@cli.command()
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion(shell: str) -> None:
    """Print the shell completion script: `eval "$(pcctl completion bash)"` (in ~/.bashrc)."""
    from click.shell_completion import get_completion_class

    cls = get_completion_class(shell)
    assert cls is not None
    click.echo(cls(cli, {}, "pcctl", "_PCCTL_COMPLETE").source())


for module in (data, identity, compute, kube, network, money):
    module.register(cli)


def main() -> None:
    """The console script."""
    cli(prog_name="pcctl")
