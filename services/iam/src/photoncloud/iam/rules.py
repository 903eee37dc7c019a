"""Who may do what in IAM: the permissions of its operations, the built-in roles, and the small
rules (names, scopes, reach) every operation applies before it reads or proposes anything."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Principal, Scope
from photoncloud.common.errors import InvalidArgument, PermissionDenied, Unauthenticated

from .records import Binding, SigningKey, TokenFamily
from .values import Caller

# Permissions of IAM's own operations.
ORGS_READ, ORGS_MANAGE = "iam:orgs:read", "iam:orgs:manage"
PROJECTS_READ, PROJECTS_MANAGE = "iam:projects:read", "iam:projects:manage"
USERS_READ, USERS_MANAGE = "iam:users:read", "iam:users:manage"
SERVICE_ACCOUNTS_READ, SERVICE_ACCOUNTS_MANAGE = "iam:serviceaccounts:read", "iam:serviceaccounts:manage"
ROLES_READ, ROLES_MANAGE = "iam:roles:read", "iam:roles:manage"
BINDINGS_READ, BINDINGS_MANAGE = "iam:bindings:read", "iam:bindings:manage"
KEYS_READ, KEYS_MANAGE = "iam:keys:read", "iam:keys:manage"
AUTHORIZE_READ = "iam:authorize:read"
AUDIT_READ = "iam:audit:read"

# Why a caller may not manage a principal: the principal holds grants beyond the caller's.
PRINCIPAL_OUTRANKS_CALLER = "PRINCIPAL_OUTRANKS_CALLER"

ADMIN, MEMBER, VIEWER = "admin", "member", "viewer"
BUILTIN_ROLES: dict[str, tuple[str, tuple[str, ...]]] = {
    ADMIN: ("Every permission on the resources of its scope, administration included", ("*",)),
    MEMBER: ("Read and change the resources of its scope", ("*:*:read", "*:*:write")),
    VIEWER: ("Read the resources of its scope", ("*:*:read",)),
}

PASSWORD, CLIENT_CREDENTIALS, REFRESH_TOKEN = "password", "client_credentials", "refresh_token"
GRANT_TYPES = (PASSWORD, CLIENT_CREDENTIALS, REFRESH_TOKEN)
# The authorization code grant exists on the OAuth2 endpoint only: its code comes from a browser's sign-in there.
AUTHORIZATION_CODE = "authorization_code"
OAUTH2_GRANT_TYPES = (AUTHORIZATION_CODE, *GRANT_TYPES)
# How a client authenticates at the OAuth2 endpoints (RFC 6749 section 2.3.1: HTTP Basic, or the form's fields).
CLIENT_AUTH_METHODS = ("client_secret_basic", "client_secret_post")
# Where IAM serves its keys and its OAuth2 endpoints (RFC 6749's token, RFC 7009's revocation), under the issuer.
JWKS_PATH = "/.well-known/jwks.json"
OAUTH2_TOKEN_PATH, OAUTH2_REVOKE_PATH = "/oauth2/token", "/oauth2/revoke"
OAUTH2_AUTHORIZE_PATH = "/oauth2/authorize"
OPENID = "openid"  # the scope value that asks for an OpenID Connect ID token too

MAX_BATCH = 100  # questions in one authorization batch
MAX_TOKEN_CHARS = 16 * 1024
MAX_CREDENTIAL_CHARS = {"username": 256, "client_id": 256, "password": 1024, "client_secret": 1024,
                        "refresh_token": 1024, "org_id": 256, "project_id": 256, "id_token_audience": 256}
MAX_REDIRECT_URIS, MAX_REDIRECT_URI_CHARS = 16, 2048
# Hosts an http redirect URI may name: the loopback interface of the user's own machine (RFC 8252 section 7.3).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})
# How long a retired key stays published beyond the lifetime of the last token it signed.
KEY_RETIREMENT_MARGIN = 60
PURGE_INTERVAL = 60.0  # seconds between two purges of what expired

# Names of orgs, projects, roles and service accounts; user names may be e-mail addresses.
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
USER_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}")
_EMAIL = re.compile(r"[^@\s]{1,64}@[^@\s]+\.[^@\s]+")
_PRINCIPAL = re.compile(r"(user|serviceaccount):[A-Za-z0-9_-]{1,128}")


def check_name(value: str, field_name: str, pattern: Any = _NAME) -> str:
    """value, if it is a valid name (pattern: USER_NAME for users); INVALID_ARGUMENT otherwise."""
    if not isinstance(value, str) or not pattern.fullmatch(value):
        raise InvalidArgument(
            f"{field_name} {value!r} is not valid: start with a letter or digit, then letters, digits, "
            f"'.', '_' or '-' ({'128' if pattern is USER_NAME else '63'} at most)",
            {"field": field_name},
        )
    return value


def check_text(value: str, field_name: str, limit: int) -> str:
    """value, if it is at most limit printable characters; INVALID_ARGUMENT otherwise."""
    if len(value) > limit or any(ord(c) < 32 for c in value):
        raise InvalidArgument(f"{field_name} must be at most {limit} printable characters", {"field": field_name})
    return value


def check_labels(fields: Mapping[str, Any]) -> None:
    """The rules for the name, display name and description of orgs, projects and service accounts
    (those of fields: a create gives all three, an update the ones it changes)."""
    if "name" in fields:
        check_name(fields["name"], "name")
    check_text(fields.get("display_name", ""), "display_name", 256)
    check_text(fields.get("description", ""), "description", 1024)


def check_redirect_uri(value: Any, field_name: str = "redirect_uris") -> str:
    """value, if a client may register it as a redirect URI: an absolute https URI, or http on a
    loopback host (RFC 8252 section 7.3), without a fragment (RFC 6749 section 3.1.2) or user
    information; INVALID_ARGUMENT otherwise."""
    problem = ""
    if not isinstance(value, str) or not value or len(value) > MAX_REDIRECT_URI_CHARS \
            or any(ord(c) <= 0x20 or ord(c) >= 0x7F for c in value):
        problem = f"must be printable ASCII without spaces, at most {MAX_REDIRECT_URI_CHARS} characters"
    else:
        try:
            parts = urlsplit(value)
            host = parts.hostname or ""
            parts.port  # noqa: B018 - raises on a port that is not one
        except ValueError:
            parts, host, problem = None, "", "is not a URI"
        if parts is None:
            pass
        elif parts.scheme not in ("https", "http") or not host:
            problem = "must be an absolute https URI (or http on a loopback host)"
        elif parts.scheme == "http" and host not in LOOPBACK_HOSTS:
            problem = "may use http only on a loopback host (127.0.0.1, [::1], localhost); use https"
        elif parts.fragment or "#" in value:
            problem = "must not have a fragment"
        elif "@" in parts.netloc:
            problem = "must not carry user information"
    if problem:
        raise InvalidArgument(f"redirect URI {str(value)[:200]!r} {problem}", {"field": field_name})
    return value


def check_redirect_uris(values: Any) -> tuple[str, ...]:
    """The redirect URIs a client registers (each as check_redirect_uri allows, at most
    MAX_REDIRECT_URIS, no repeats), in the order given."""
    if isinstance(values, str) or not isinstance(values, (list, tuple)):
        raise InvalidArgument("redirect_uris must be a list of URIs", {"field": "redirect_uris"})
    if len(values) > MAX_REDIRECT_URIS:
        raise InvalidArgument(f"a client registers at most {MAX_REDIRECT_URIS} redirect URIs",
                              {"field": "redirect_uris"})
    uris = tuple(check_redirect_uri(v) for v in values)
    if len(set(uris)) != len(uris):
        raise InvalidArgument("redirect_uris must not repeat", {"field": "redirect_uris"})
    return uris


def within(outer: Scope, inner: Scope) -> bool:
    """Whether scope outer contains scope inner (the system everything, an org its projects)."""
    if outer.kind == SYSTEM:
        return True
    if outer.kind == ORG:
        return inner.kind in (ORG, PROJECT) and inner.org_id == outer.org_id
    return inner.kind == PROJECT and inner.project_id == outer.project_id


def check_email(value: str) -> str:
    """value, if it is empty or an e-mail address; INVALID_ARGUMENT otherwise."""
    if value and (len(value) > 254 or not _EMAIL.fullmatch(value)):
        raise InvalidArgument(f"email {value!r} is not a valid address", {"field": "email"})
    return value


def check_principal(value: str, field_name: str = "principal") -> tuple[str, str]:
    """(kind, id) of `user:<id>` or `serviceaccount:<id>`; INVALID_ARGUMENT otherwise."""
    if not isinstance(value, str) or not _PRINCIPAL.fullmatch(value):
        raise InvalidArgument(f"{field_name} must be user:<id> or serviceaccount:<id>", {"field": field_name})
    kind, _, ident = value.partition(":")
    return kind, ident


def allowed_changes(given: Mapping[str, Any], allowed: Sequence[str]) -> dict[str, Any]:
    """The changes given, if they touch only allowed fields; INVALID_ARGUMENT naming the first other."""
    unknown = sorted(set(given) - set(allowed))
    if unknown:
        raise InvalidArgument(f"field {unknown[0]!r} cannot be changed", {"field": unknown[0]})
    return dict(given)


def binding_applies(binding: Binding | TokenFamily, scope: Scope) -> bool:
    """Whether a binding's (or session's) scope contains scope: system contains everything, an org
    its projects, a project only itself."""
    if binding.scope_type == SYSTEM:
        return True
    if binding.scope_type == ORG:
        return scope.kind in (ORG, PROJECT) and scope.org_id == binding.org_id
    return scope.kind == PROJECT and scope.project_id == binding.project_id


# The order in which bindings apply: the most specific scope first.
SPECIFICITY = {PROJECT: 0, ORG: 1, SYSTEM: 2}


def newest_first(key: SigningKey) -> tuple[bool, float]:
    """The active key first, then by retirement and creation, newest first."""
    return bool(key.retired_at), -max(key.retired_at, key.created_at)


def describe(scope: Scope) -> str:
    """A scope in words, for error messages and decisions."""
    if scope.kind == SYSTEM:
        return "the system"
    if scope.kind == ORG:
        return f"org {scope.org_id}"
    return f"project {scope.project_id}"


def authenticated(caller: Caller) -> Principal:
    """The caller's principal; UNAUTHENTICATED on a call without a token."""
    if caller.principal is None:
        raise Unauthenticated("a bearer token is required")
    return caller.principal


def require(caller: Caller, action: str, org_id: str = "", project_id: str = "") -> Principal:
    """The caller's principal, if it holds action on the resource of org_id/project_id; a resource
    of neither (the system, a user, a role) needs a system-scoped token."""
    principal = authenticated(caller)
    if not org_id and not project_id:
        return require_system(caller, action)
    principal.require(action, org_id, project_id)
    return principal


def require_system(caller: Caller, action: str) -> Principal:
    """The caller's principal, if it holds action on a system-scoped token."""
    principal = authenticated(caller)
    principal.require(action)
    if principal.scope.kind != SYSTEM:
        raise PermissionDenied(
            f"{action} needs a system-scoped token",
            {"reason": "SYSTEM_SCOPE_REQUIRED", "action": action, "scope": principal.scope.as_dict()},
        )
    return principal


def visible(principal: Principal, org_field: str = "org_id", project_field: str = "project_id") -> list:
    """The conditions that keep a listing inside principal's scope."""
    scope = principal.scope
    if scope.kind == SYSTEM:
        return []
    if scope.kind == ORG:
        return [(org_field, scope.org_id)]
    return [(project_field, scope.project_id)]
