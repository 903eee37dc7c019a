"""IAM's OAuth2 endpoints on the wire the standards define, for OAuth2 and OpenID Connect clients:

- GET and POST /oauth2/authorize: the authorization code flow's sign-in page (authorize.py).
- POST /oauth2/token (RFC 6749 section 3.2): a form body (application/x-www-form-urlencoded) with
  the authorization_code (PKCE: RFC 7636), password, client_credentials or refresh_token grant;
  the answer is RFC 6749's top-level JSON
  (access_token, token_type, expires_in, refresh_token, scope; id_token with openid) with
  Cache-Control: no-store and Pragma: no-cache, and errors are section 5.2's
  `{"error": ..., "error_description": ...}`.
- POST /oauth2/revoke (RFC 7009): ends the session of a refresh or access token.

Served as an application of its own under /oauth2, since its wire format is not the platform's
envelope; the JSON endpoint POST /api/v1/auth/token stays as it is for curl. Both call the same core
operations. The `scope` parameter names the token's scope: `system`, `org:<org_id>` or
`project:<project_id>` (one of them; none: the system, or on a refresh the session's), and with
`openid` (OpenID Connect) the answer has an ID token for the client too.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any
from urllib.parse import parse_qsl, unquote_plus

from aiohttp import web
from authlib.oauth2.rfc6749 import errors as oauth2
from authlib.oauth2.rfc6749.errors import OAuth2Error

from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Scope
from photoncloud.common.errors import Code, ServiceError

from .codeflow import INVALID_GRANT
from .core import Caller, Grant, IamCore, IssuedToken
from .rules import (AUTHORIZATION_CODE, CLIENT_CREDENTIALS, GRANT_TYPES, OAUTH2_GRANT_TYPES, OAUTH2_REVOKE_PATH,
                    OAUTH2_TOKEN_PATH, OPENID, PASSWORD)

PREFIX = "/oauth2"
FORM = "application/x-www-form-urlencoded"
MAX_FORM_BYTES = 64 * 1024  # a token request is a few hundred bytes
MAX_FORM_FIELDS = 32
OIDC_SCOPES = (OPENID, "profile", "email")  # OpenID Connect's, in the order an answer names them
SCOPE_FIELDS = ("org_id", "project_id")  # the grant's fields the scope parameter fills
NO_STORE = {"Cache-Control": "no-store", "Pragma": "no-cache"}  # RFC 6749 section 5.1


class TemporarilyUnavailable(OAuth2Error):
    """Too many failed sign-ins from here: retry after a while (429, with Retry-After)."""

    error = "temporarily_unavailable"
    status_code = 429


class ServerError(OAuth2Error):
    """IAM could not answer (its store, its log)."""

    error = "server_error"
    status_code = 500


def error_text(text: str) -> str:
    """text as an error_description may carry it (RFC 6749 allows printable ASCII but `"` and `\\`)."""
    return "".join(c if 0x20 <= ord(c) <= 0x7E and c not in '"\\' else "?" for c in text)


@dataclass(frozen=True)
class RequestedScope:
    """What a `scope` parameter asks for: one of the platform's scopes and OpenID Connect's values."""

    org_id: str = ""
    project_id: str = ""
    system: bool = False
    oidc: tuple[str, ...] = ()  # openid, with profile and email if asked (its ID token has those claims)


def parse_scope(value: str) -> RequestedScope:
    """The scope parameter's request; invalid_scope unless it is at most one of `system`,
    `org:<org_id>`, `project:<project_id>`, with `openid` (and `profile`, `email`) or not."""
    values = value.split()
    oidc = tuple(v for v in OIDC_SCOPES if v in values)
    if oidc and OPENID not in oidc:
        raise oauth2.InvalidScopeError("profile and email come with openid")
    platform = [v for v in values if v not in OIDC_SCOPES]
    if len(platform) > 1:
        raise oauth2.InvalidScopeError(error_text(
            "a token has one scope: give one of system, org:<org_id>, project:<project_id> "
            f"(got {len(platform)})"))
    if not platform:
        return RequestedScope(oidc=oidc)
    kind, _, ident = platform[0].partition(":")
    if platform[0] == SYSTEM:
        return RequestedScope(system=True, oidc=oidc)
    if kind == ORG and ident:
        return RequestedScope(org_id=ident, oidc=oidc)
    if kind == PROJECT and ident:
        return RequestedScope(project_id=ident, oidc=oidc)
    raise oauth2.InvalidScopeError(error_text(
        f"unknown scope {platform[0]!r}: give system, org:<org_id> or project:<project_id> (and openid)"))


def format_scope(scope: Scope) -> str:
    """A token's scope as the `scope` parameter writes it."""
    if scope.kind == ORG:
        return f"{ORG}:{scope.org_id}"
    if scope.kind == PROJECT:
        return f"{PROJECT}:{scope.project_id}"
    return SYSTEM


async def read_form(request: web.Request) -> dict[str, str]:
    """The request's form parameters; invalid_request unless the body is a UTF-8 form whose
    parameters each appear once (RFC 6749 section 3.2 and appendix B). A parameter sent without a
    value counts as omitted."""
    if request.content_type != FORM:
        raise oauth2.InvalidRequestError(error_text(
            f"the body must be {FORM} (RFC 6749 section 3.2), not {request.content_type or 'empty'}"))
    body = await request.content.read(MAX_FORM_BYTES + 1)
    if len(body) > MAX_FORM_BYTES:
        raise oauth2.InvalidRequestError(f"the body is larger than {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode(), keep_blank_values=True, errors="strict", max_num_fields=MAX_FORM_FIELDS)
    except (UnicodeDecodeError, ValueError):  # not UTF-8, or too many fields
        raise oauth2.InvalidRequestError("the form is not UTF-8 text of at most "
                                         f"{MAX_FORM_FIELDS} parameters") from None
    names = [name for name, _ in pairs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise oauth2.InvalidRequestError(error_text(f"parameters must not repeat: {', '.join(repeated)}"))
    return {name: value for name, value in pairs if value}


def client_credentials(request: web.Request, form: Mapping[str, str]) -> tuple[str, str, bool]:
    """(client_id, client_secret, whether they came in HTTP Basic) from client_secret_basic or
    client_secret_post (RFC 6749 section 2.3.1); invalid_request when both are used."""
    header = request.headers.get("Authorization", "")
    if not header:
        return form.get("client_id", ""), form.get("client_secret", ""), False
    if "client_secret" in form:
        raise oauth2.InvalidRequestError("authenticate the client one way: HTTP Basic or the form, not both")
    scheme, _, encoded = header.strip().partition(" ")
    try:
        if scheme.lower() != "basic":
            raise ValueError(scheme)
        client_id, colon, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        if not colon:
            raise ValueError("no colon")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise unauthenticated_client("the Authorization header must be HTTP Basic with the client's id and secret") \
            from None
    return unquote_plus(client_id), unquote_plus(secret), True


def unauthenticated_client(description: str) -> oauth2.InvalidClientError:
    """invalid_client with 401 and WWW-Authenticate: Basic (RFC 6749 section 5.2)."""
    return oauth2.InvalidClientError(error_text(description), status_code=401)


def grant_of(request: web.Request, form: Mapping[str, str]) -> tuple[Grant, RequestedScope]:
    """The core's grant for a token request, and the scope it asked for; OAuth2 errors for what the
    form gets wrong."""
    grant_type = form.get("grant_type", "")
    if not grant_type:
        raise oauth2.InvalidRequestError("grant_type is required")
    if grant_type not in GRANT_TYPES:
        unsupported = oauth2.UnsupportedGrantTypeError(grant_type)
        unsupported.description = error_text(f"grant_type {grant_type!r} is not supported: use one of "
                                           f"{', '.join(OAUTH2_GRANT_TYPES)}")
        raise unsupported
    asked = parse_scope(form.get("scope", ""))
    scoped = Grant(grant_type, org_id=asked.org_id, project_id=asked.project_id, system=asked.system)
    client_id, client_secret, _ = client_credentials(request, form)
    if grant_type == CLIENT_CREDENTIALS:
        if not client_id or not client_secret:
            raise unauthenticated_client("client_credentials takes the client's id and secret "
                                         "(HTTP Basic, or client_id and client_secret in the form)")
        if asked.oidc:
            raise oauth2.InvalidScopeError("openid is for a user's sign-in; a service account gets no ID token")
        return replace(scoped, client_id=client_id, client_secret=client_secret), asked
    # IAM registers no clients for users' sign-in: a client there is public (RFC 6749 section 2.1),
    # its client_id taken as given and a secret it sends not checked.
    needed = ("username", "password") if grant_type == PASSWORD else ("refresh_token",)
    for name in needed:
        if name not in form:
            raise oauth2.InvalidRequestError(f"{name} is required with grant_type {grant_type}")
    if asked.oidc and not client_id:
        raise oauth2.InvalidRequestError("openid takes the client's client_id: the ID token's audience")
    audience = client_id if asked.oidc else ""
    if grant_type == PASSWORD:
        return replace(scoped, username=form["username"], password=form["password"],
                       id_token_audience=audience), asked
    # The client's credentials too: a code flow's session is its client's (tokens.py checks them then).
    return replace(scoped, refresh_token=form["refresh_token"], within_session=True, id_token_audience=audience,
                   client_id=client_id, client_secret=client_secret), asked


async def redeem(iam: IamCore, request: web.Request, form: Mapping[str, str]) -> web.Response:
    """The token response for an authorization code (RFC 6749 section 4.1.3, RFC 7636 section 4.5)."""
    for name in ("code", "redirect_uri"):
        if name not in form:
            raise oauth2.InvalidRequestError(f"{name} is required with grant_type {AUTHORIZATION_CODE}")
    client_id, client_secret, basic = client_credentials(request, form)
    if basic and form.get("client_id", client_id) != client_id:
        raise oauth2.InvalidRequestError("client_id in the form is not the client of HTTP Basic")
    issued, oidc = await iam.redeem_code(Caller(None, request.remote or ""), client_id, client_secret, form["code"],
                                         form["redirect_uri"], form.get("code_verifier", ""))
    return token_response(issued, oidc)


def oauth2_error(exc: ServiceError, grant_type: str) -> OAuth2Error:
    """The RFC 6749 section 5.2 error for what the core refused."""
    message, details = error_text(exc.message), exc.details or {}
    if exc.code is Code.UNAUTHENTICATED:
        # The client's own credentials are invalid_client; a code's problems, or a user's, invalid_grant.
        if grant_type == CLIENT_CREDENTIALS or (grant_type == AUTHORIZATION_CODE
                                                and details.get("reason") != INVALID_GRANT):
            return unauthenticated_client(message)
        return oauth2.InvalidGrantError(message)
    field = str(details.get("field", ""))
    if exc.code in (Code.PERMISSION_DENIED, Code.NOT_FOUND) or field.startswith("scope") or field in SCOPE_FIELDS:
        return oauth2.InvalidScopeError(message)  # no role there, beyond the session, no such org or project
    if exc.code is Code.INVALID_ARGUMENT:
        return oauth2.InvalidRequestError(message)
    if exc.code is Code.RESOURCE_EXHAUSTED:
        return TemporarilyUnavailable(message)
    if exc.code is Code.UNAVAILABLE:
        return TemporarilyUnavailable(message, status_code=503)
    return ServerError("IAM could not answer; see its log")


def error_response(exc: OAuth2Error, retry_after: Any = None) -> web.Response:
    """exc as RFC 6749 section 5.2 writes it."""
    status, body, headers = exc()
    response = web.json_response(body, status=status)
    for name, value in headers:
        if name != "Content-Type":
            response.headers[name] = value
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    return response


def token_response(issued: IssuedToken, oidc: tuple[str, ...]) -> web.Response:
    """A successful token response (RFC 6749 section 5.1; OpenID Connect Core section 3.1.3.3)."""
    body: dict[str, Any] = {"access_token": issued.access_token, "token_type": "Bearer",
                            "expires_in": issued.expires_in, "scope": " ".join([*oidc, format_scope(issued.scope)])}
    if issued.refresh_token:
        body["refresh_token"] = issued.refresh_token
    if issued.id_token:
        body["id_token"] = issued.id_token
    return web.json_response(body, headers=NO_STORE)


def application(iam: IamCore) -> web.Application:
    """The OAuth2 endpoints over iam, to be mounted at PREFIX."""
    app = web.Application(client_max_size=MAX_FORM_BYTES)

    async def token(request: web.Request) -> web.Response:
        grant_type = ""
        try:
            form = await read_form(request)
            grant_type = form.get("grant_type", "")
            if grant_type == AUTHORIZATION_CODE:
                return await redeem(iam, request, form)
            grant, asked = grant_of(request, form)
            issued = await iam.issue_token(Caller(None, request.remote or ""), grant)
        except OAuth2Error as exc:
            return error_response(exc)
        except ServiceError as exc:
            return error_response(oauth2_error(exc, grant_type), (exc.details or {}).get("retry_after_seconds"))
        return token_response(issued, asked.oidc)

    async def revoke(request: web.Request) -> web.Response:
        try:
            form = await read_form(request)
            if "token" not in form:
                raise oauth2.InvalidRequestError("token is required")
            await iam.revoke_presented(Caller(None, request.remote or ""), form["token"])
        except OAuth2Error as exc:
            return error_response(exc)
        except ServiceError as exc:
            return error_response(oauth2_error(exc, ""))
        return web.Response(status=200, headers=NO_STORE)

    app.router.add_post(OAUTH2_TOKEN_PATH.removeprefix(PREFIX), token)
    app.router.add_post(OAUTH2_REVOKE_PATH.removeprefix(PREFIX), revoke)
    return app
