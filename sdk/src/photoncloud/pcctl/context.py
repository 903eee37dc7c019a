"""What every pcctl command shares: the endpoints and the client (signed in from the credentials
file), the output format, the project a command works in, and errors printed from their envelope."""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import click
import yaml

from photoncloud.sdk import ApiError, Client, Endpoints

from .output import FORMATS, Column, emit
from .store import CredentialStore

F = TypeVar("F", bound=Callable[..., Any])


@dataclass
class State:
    """The root command's options, and the client made from them on first use."""

    store: CredentialStore
    endpoints: Endpoints
    token: str | None = None
    verify: bool | str = True
    output: str = "table"
    _client: Client | None = field(default=None, repr=False)

    @property
    def client(self) -> Client:
        """The client: with the --token given, or the stored sign-in (kept fresh in the file)."""
        if self._client is None:
            tokens = None if self.token else self.store.tokens()
            self._client = Client(self.endpoints, token=self.token, tokens=tokens,
                                  on_tokens=lambda new: self.store.save(new), verify=self.verify,
                                  shared=self.store)
        return self._client

    def signed_out_client(self) -> Client:
        """A client with no token, whatever the file holds (to sign in anew)."""
        self._client = Client(self.endpoints, verify=self.verify)
        return self._client

    def project(self, given: str | None) -> str:
        """The project a command works in: the one given, else the signed-in token's project."""
        project = given or os.environ.get("PHOTONCLOUD_PROJECT")
        if project:
            return project
        tokens = self.client.auth.tokens
        scope = tokens.scope if tokens else token_scope(self.token or "")
        scoped = scope.get("project_id")
        if not scoped:
            raise click.UsageError("no project: give --project (the signed-in token is not scoped to one)")
        return str(scoped)

    def emit(self, data: Any, columns: Sequence[Column] | None = None) -> None:
        """Print a result in the chosen output format."""
        emit(data, self.output, columns)


def token_scope(token: str) -> dict[str, Any]:
    """The scope claim of a JWT, read without verifying it: only to pick the project a command defaults
    to (the services verify the token)."""
    try:
        payload = token.split(".")[1]
        claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    except (IndexError, ValueError):
        return {}
    scope = claims.get("scope") if isinstance(claims, dict) else None
    return scope if isinstance(scope, dict) else {}


def state() -> State:
    """The running command's State."""
    obj = click.get_current_context().find_root().obj
    assert isinstance(obj, State)
    return obj


def _set_output(ctx: click.Context, _param: click.Parameter, value: str | None) -> None:
    if value is not None and isinstance(ctx.find_root().obj, State):
        ctx.find_root().obj.output = value


def output_option(f: F) -> F:
    """-o/--output on a command, overriding the root's."""
    return click.option("-o", "--output", type=click.Choice(FORMATS), expose_value=False, callback=_set_output,
                        is_eager=False, help="Output format (default: the root's -o, else table).")(f)


def named_project(given: str | None) -> str | None:
    """The project a command names for a system token: the one given, else PHOTONCLOUD_PROJECT, else None
    (a project token's own)."""
    return given or os.environ.get("PHOTONCLOUD_PROJECT") or None


def project_option(f: F) -> F:
    """--project: the project to work in (default: PHOTONCLOUD_PROJECT, else the token's)."""
    return click.option("-p", "--project", "project", default=None,
                        help="Project ID (default: PHOTONCLOUD_PROJECT, else the signed-in project).")(f)


def report(error: ApiError, fmt: str) -> None:
    """An API error on stderr: the envelope in json/yaml, else its message, code, details and request ID."""
    if fmt == "json":
        click.echo(json.dumps(error.envelope(), indent=2), err=True)
    elif fmt == "yaml":
        click.echo(yaml.safe_dump(error.envelope(), sort_keys=False).rstrip("\n"), err=True)
    else:
        line = f"Error: {error.message} ({error.code})"
        if error.details:
            line += " " + json.dumps(error.details, separators=(", ", ": "))
        if error.request_id:
            line += f" [request {error.request_id}]"
        click.echo(line, err=True)
        if error.code == "UNAUTHENTICATED":
            click.echo("Sign in with `pcctl login` (or give a token with --token).", err=True)


def pairs(values: Sequence[str], what: str) -> dict[str, str]:
    """KEY=VALUE options as a dict (a UsageError for one without `=`)."""
    result = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{value!r} is not KEY=VALUE", param_hint=what)
        result[key] = rest
    return result

