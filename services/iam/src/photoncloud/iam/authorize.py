"""The authorization endpoint of OAuth2's code flow (RFC 6749 section 4.1, PKCE as RFC 7636 and
OAuth 2.1 want it), as browsers reach it:

- GET /oauth2/authorize: checks the client and its redirect URI, then the request; shows a small,
  self-contained sign-in page (no external assets, everything escaped, a strict
  Content-Security-Policy, never framed).
- POST /oauth2/authorize: the page's form; signs the user in through the core (the password
  grant's checks, throttle and audit) and sends the browser back to the client (303) with `code`,
  `state` and `iss` (RFC 9207); a wrong password shows the page again.

An unknown client or a redirect URI it did not register gets an error page, never a redirect (RFC
6749 section 4.1.2.1: the user must not be sent where nobody registered); other errors go back to
the redirect URI as `error`, `error_description`, `state`. The form carries an HMAC of the request's
parameters and when it was shown (with a key of this process): there is no session store, and
this binds a submitted form to the request it was shown for, for a while.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
import secrets
import time
from collections.abc import Callable, Mapping
from html import escape
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from aiohttp import web
from authlib.oauth2.rfc6749 import errors as oauth2
from authlib.oauth2.rfc6749.errors import OAuth2Error
from multidict import MultiMapping

from photoncloud.common.errors import Code, ServiceError

from .codeflow import REDIRECT_URI_NOT_REGISTERED, UNKNOWN_CLIENT
from .core import Caller, IamCore
from .oauth2 import FORM, NO_STORE, PREFIX, error_text, oauth2_error, parse_scope
from .rules import AUTHORIZATION_CODE, OAUTH2_AUTHORIZE_PATH, describe
from .values import CodeRequest

# The parameters of an authorization request this endpoint reads (others are ignored, RFC 6749 section 3.1).
PARAMETERS = ("response_type", "client_id", "redirect_uri", "scope", "state", "nonce", "code_challenge",
              "code_challenge_method", "response_mode", "prompt")
MAX_PARAMETER_CHARS = 2048
FORM_LIFETIME = 600  # seconds a shown sign-in form may be sent
# An origin safe to name in a Content-Security-Policy (the redirect URI's, for form-action).
_ORIGIN = re.compile(r"https?://[A-Za-z0-9.\-]+(:[0-9]{1,5})?|http://\[::1\](:[0-9]{1,5})?")
STYLE = ("body{font:16px system-ui,sans-serif;background:#f4f5f7;margin:0}"
         "main{max-width:22rem;margin:4rem auto;background:#fff;padding:2rem;border-radius:8px;"
         "box-shadow:0 1px 4px #0002}h1{font-size:1.4rem;margin-top:0}label{display:block;margin:1rem 0 .3rem}"
         "input{width:100%;box-sizing:border-box;padding:.5rem;font:inherit}"
         "button{margin-top:1.2rem;padding:.5rem 1rem;font:inherit}.error{color:#a00}.small{color:#555;"
         "font-size:.85rem}")


class BadRequest(Exception):
    """A request that cannot be sent back to its client: answered with an error page."""

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class LoginRequired(OAuth2Error):
    """OpenID Connect's login_required: a sign-in without the user (prompt=none) is not possible."""

    error = "login_required"


class FormSigner:
    """The sign-in form's token: when it was shown and an HMAC of that and the request's parameters."""

    def __init__(self, key: bytes | None = None, clock: Callable[[], float] = time.time):
        self.key = key or secrets.token_bytes(32)
        self.clock = clock

    def _mac(self, shown: int, params: Mapping[str, str]) -> str:
        message = json.dumps([shown, [params.get(name, "") for name in PARAMETERS]])
        return hmac.new(self.key, message.encode(), hashlib.sha256).hexdigest()

    def token(self, params: Mapping[str, str]) -> str:
        """A token for the form of params, shown now."""
        shown = int(self.clock())
        return f"{shown}.{self._mac(shown, params)}"

    def valid(self, token: str, params: Mapping[str, str]) -> bool:
        """Whether token was made here for params, less than FORM_LIFETIME ago."""
        shown, _, mac = token.partition(".")
        if not shown.isdigit() or not 0 <= self.clock() - int(shown) <= FORM_LIFETIME:
            return False
        return hmac.compare_digest(mac, self._mac(int(shown), params))


def client_of(values: MultiMapping[Any]) -> tuple[str, str]:
    """The request's client_id and redirect_uri; BadRequest when either is missing, repeated or too
    long (there is then nowhere to send an error to)."""
    found = []
    for name in ("client_id", "redirect_uri"):
        given = values.getall(name, [])
        if len(given) != 1 or not isinstance(given[0], str) or not given[0]:
            raise BadRequest(f"{name} must be given once")
        if len(given[0]) > MAX_PARAMETER_CHARS:
            raise BadRequest(f"{name} is too long")
        found.append(given[0])
    return found[0], found[1]


def single_values(values: MultiMapping[Any]) -> dict[str, str]:
    """The request's parameters that this endpoint reads (those given, in PARAMETERS' order);
    InvalidRequestError for one repeated, or too long."""
    found: dict[str, str] = {}
    for name in PARAMETERS:
        given = values.getall(name, [])
        if len(given) > 1:
            raise oauth2.InvalidRequestError(f"{name} must be given once")
        if given and isinstance(given[0], str) and given[0]:
            if len(given[0]) > MAX_PARAMETER_CHARS:
                raise oauth2.InvalidRequestError(f"{name} is longer than {MAX_PARAMETER_CHARS} characters")
            found[name] = given[0]
    return found


def code_request(params: Mapping[str, str]) -> CodeRequest:
    """The core's request for the parameters (the client and redirect URI already checked);
    OAuth2 errors for what they get wrong."""
    if params.get("response_type") != "code":
        unsupported = oauth2.UnsupportedResponseTypeError(params.get("response_type", ""))
        unsupported.description = "response_type must be code (the authorization code flow)"
        raise unsupported
    if params.get("response_mode", "query") != "query":
        raise oauth2.InvalidRequestError("response_mode must be query")
    challenge, method = params.get("code_challenge", ""), params.get("code_challenge_method", "")
    if (challenge or method) and method != "S256":
        # RFC 7636 lets plain be the default; a server that supports S256 may refuse it, and OAuth 2.1 does.
        raise oauth2.InvalidRequestError("code_challenge_method must be S256 (plain is refused)")
    if method and not challenge:
        raise oauth2.InvalidRequestError("code_challenge_method without code_challenge")
    if "none" in params.get("prompt", "").split():
        # OpenID Connect Core section 3.1.2.6: IAM keeps no browser session, so it cannot sign in silently.
        raise LoginRequired("IAM keeps no sign-in session: the user must sign in")
    asked = parse_scope(params.get("scope", ""))
    return CodeRequest(params["client_id"], params["redirect_uri"], asked.org_id, asked.project_id, asked.system,
                       asked.oidc, params.get("nonce", ""), challenge)


def redirect(uri: str, params: Mapping[str, str], status: int = 302) -> web.Response:
    """A redirect to uri with params added to its query (empty ones left out)."""
    parts = urlsplit(uri)
    query = parse_qsl(parts.query, keep_blank_values=True) + [(k, v) for k, v in params.items() if v]
    response = web.Response(status=status, headers={"Location": urlunsplit(parts._replace(query=urlencode(query))),
                                                    **NO_STORE})
    response.headers["Referrer-Policy"] = "no-referrer"
    return response


def refusal(exc: OAuth2Error, issued: Mapping[str, str]) -> dict[str, str]:
    """The redirect's parameters for an error (RFC 6749 section 4.1.2.1), with state and iss."""
    return {"error": exc.error or "server_error", "error_description": exc.description or "", **issued}


def page(title: str, body: str, status: int, form_target: str = "") -> web.Response:
    """A self-contained HTML page (its only style inline, allowed by a nonce); body is HTML already
    escaped. form_target: an origin the page's form may end up at (the client's, after our redirect)."""
    nonce = secrets.token_urlsafe(16)
    form_action = "'self'" + (f" {form_target}" if form_target and _ORIGIN.fullmatch(form_target) else "")
    policy = (f"default-src 'none'; style-src 'nonce-{nonce}'; form-action {form_action}; "
              "frame-ancestors 'none'; base-uri 'none'")
    text = ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">"
            f"<title>{escape(title)} - PhotonCloud</title><style nonce=\"{nonce}\">{STYLE}</style></head>"
            f"<body><main>{body}</main></body></html>\n")
    response = web.Response(text=text, status=status, content_type="text/html", headers=NO_STORE)
    response.headers.update({"Content-Security-Policy": policy, "X-Frame-Options": "DENY",
                             "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer"})
    return response


def error_page(message: str, status: int = 400) -> web.Response:
    """The page for a request that cannot go back to a client."""
    return page("Sign-in refused", "<h1>This sign-in request cannot be served</h1>"
                f"<p class=\"error\">{escape(message)}</p><p class=\"small\">Start again from the application "
                "you came from; if this persists, tell its administrator.</p>", status)


class Endpoint:
    """GET and POST /oauth2/authorize over the core."""

    def __init__(self, iam: IamCore, action: str, signer: FormSigner | None = None):
        self.iam = iam
        self.action = action  # where the form posts: this endpoint's path
        self.signer = signer or FormSigner()

    def sign_in_page(self, params: Mapping[str, str], client: str, where: str, username: str = "",
                     error: str = "", status: int = 200) -> web.Response:
        """The sign-in form for params, with error shown if any."""
        hidden = "".join(f"<input type=\"hidden\" name=\"{name}\" value=\"{escape(value)}\">"
                         for name, value in params.items())
        hidden += f"<input type=\"hidden\" name=\"form_token\" value=\"{self.signer.token(params)}\">"
        alert = f"<p class=\"error\" role=\"alert\">{escape(error)}</p>" if error else ""
        parts = urlsplit(params["redirect_uri"])
        body = (f"<h1>Sign in</h1><p><b>{escape(client)}</b> asks to sign you in on {escape(where)}.</p>{alert}"
                f"<form method=\"post\" action=\"{escape(self.action)}\">{hidden}"
                "<label for=\"username\">User name</label>"
                f"<input id=\"username\" name=\"username\" autocomplete=\"username\" required autofocus "
                f"value=\"{escape(username)}\">"
                "<label for=\"password\">Password</label>"
                "<input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" "
                "required><button type=\"submit\">Sign in</button> "
                "<button type=\"submit\" name=\"cancel\" value=\"1\" formnovalidate>Cancel</button></form>"
                f"<p class=\"small\">You will return to {escape(parts.scheme)}://{escape(parts.netloc)}</p>")
        return page("Sign in", body, status, f"{parts.scheme}://{parts.netloc}")

    async def handle(self, request: web.Request) -> web.Response:
        """GET shows the sign-in page for a valid request; POST signs in from it."""
        if request.method == "POST":
            if request.content_type != FORM:
                return error_page(f"the form must be sent as {FORM}", 415)
            values: MultiMapping[Any] = await request.post()
        else:
            values = request.query
        try:
            client_id, back = client_of(values)
            client = await self.iam.oauth_client(client_id, back)
        except BadRequest as exc:
            return error_page(exc.message)
        except ServiceError as exc:
            if (exc.details or {}).get("reason") in (UNKNOWN_CLIENT, REDIRECT_URI_NOT_REGISTERED):
                return error_page(exc.message)
            return error_page("IAM could not check the client; try again", 503)
        # From here on, errors go back to the client's registered redirect URI, with its state.
        state = values.getall("state", [""])
        issued = {"state": state[0] if len(state) == 1 and isinstance(state[0], str) else "",
                  "iss": self.iam.settings.issuer}
        status = 303 if request.method == "POST" else 302
        try:
            params = single_values(values)
            asked = code_request(params)
            _, scope = await self.iam.check_code_request(asked)
            if request.method != "POST":
                return self.sign_in_page(params, client.display_name or client.name, describe(scope))
            token = values.get("form_token", "")
            if not isinstance(token, str) or not self.signer.valid(token, params):
                return error_page("the sign-in form was not shown for this request, or it is too old")
            if values.get("cancel"):
                raise oauth2.AccessDeniedError("the user cancelled the sign-in")
            username, password = str(values.get("username", "")), str(values.get("password", ""))
            try:
                code = await self.iam.authorize_code(Caller(None, request.remote or ""), asked, username, password)
            except ServiceError as exc:
                again = self.again(exc)
                if again is None:
                    raise
                message, code_status = again
                response = self.sign_in_page(params, client.display_name or client.name, describe(scope),
                                             username[:256], message, code_status)
                if exc.code is Code.RESOURCE_EXHAUSTED:
                    response.headers["Retry-After"] = str((exc.details or {}).get("retry_after_seconds", 1))
                return response
        except OAuth2Error as exc:
            return redirect(back, refusal(exc, issued), status)
        except ServiceError as exc:
            error = oauth2_error(exc, AUTHORIZATION_CODE)
            if error.error == "invalid_grant":  # not a token request: the user's sign-in was refused
                error = oauth2.AccessDeniedError(error.description)
            return redirect(back, refusal(error, issued), status)
        return redirect(back, {"code": code, **issued}, 303)

    @staticmethod
    def again(exc: ServiceError) -> tuple[str, int] | None:
        """The message and status of the page shown again for a sign-in the user can retry; None
        for a refusal that goes back to the client."""
        if exc.code is Code.UNAUTHENTICATED:
            return "Invalid user name or password.", 401
        if exc.code is Code.RESOURCE_EXHAUSTED:
            return error_text(exc.message).capitalize() + ".", 429
        if exc.code is Code.INVALID_ARGUMENT and (exc.details or {}).get("field") in ("username", "password"):
            return error_text(exc.message).capitalize() + ".", 400
        return None


def add_routes(app: web.Application, iam: IamCore) -> Endpoint:
    """Serve the authorization endpoint in app, the OAuth2 application mounted at PREFIX."""
    path = OAUTH2_AUTHORIZE_PATH.removeprefix(PREFIX)
    # The form posts to where it was shown (a relative URL: right behind a proxy's path prefix too).
    endpoint = Endpoint(iam, path.rpartition("/")[2])
    app.router.add_get(path, endpoint.handle)
    app.router.add_post(path, endpoint.handle)
    return endpoint
