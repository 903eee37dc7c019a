"""OAuth2's authorization code flow with PKCE (RFC 6749 section 4.1, RFC 7636), the rules of it:
which clients and redirect URIs are registered, what scope a code may carry, signing the user in
(the password grant's path: throttle, audit, disabled users), and exchanging the code once.

Clients are service accounts with redirect URIs. A client bounds the tokens issued through it to
its own org or project, so that a tenant's client never carries a token beyond its tenant (an
operator signing in through it gets a token on that tenant, not on the system); within that, the
user's own bindings decide, as for the password grant. The session is the client's: its refresh
tokens need the client's credentials and keep the session's scope (tokens.py, _refresh_client).
"""

from __future__ import annotations

from typing import Any

from photoncloud.common.auth import ORG, PROJECT, SYSTEM, Scope
from photoncloud.common.errors import InvalidArgument, NotFound, PermissionDenied, Unauthenticated

from .audit import Event
from .authcodes import S256_CHALLENGE, CodeTable, PendingCode, pkce_matches
from .commands import Insert
from .credentials import new_id
from .records import ServiceAccount, TokenFamily, User
from .rules import AUTHORIZATION_CODE, CLIENT_CREDENTIALS, MAX_CREDENTIAL_CHARS, PASSWORD, describe, within
from .tokens import Tokens
from .values import Caller, CodeRequest, Grant, IssuedToken

MAX_NONCE_CHARS = 512
# Why a code was refused at the token endpoint: the grant (invalid_grant), not the client.
INVALID_GRANT = "INVALID_GRANT"
UNKNOWN_CLIENT, REDIRECT_URI_NOT_REGISTERED = "UNKNOWN_CLIENT", "REDIRECT_URI_NOT_REGISTERED"


def client_scope(account: ServiceAccount) -> Scope:
    """The scope a client's tokens stay within: its project's, or its org's."""
    if account.project_id:
        return Scope(PROJECT, account.org_id, account.project_id)
    return Scope(ORG, account.org_id)


class CodeFlow(Tokens):
    """The authorization code flow over IAM's tokens."""

    codes: CodeTable

    async def oauth_client(self, client_id: str, redirect_uri: str) -> ServiceAccount:
        """The enabled client client_id, if redirect_uri is one it registered (exact match);
        NOT_FOUND (UNKNOWN_CLIENT) or INVALID_ARGUMENT (REDIRECT_URI_NOT_REGISTERED) otherwise:
        the user must not be sent to an address nobody registered (RFC 6749 section 4.1.2.1)."""
        account = None
        if client_id and len(client_id) <= MAX_CREDENTIAL_CHARS["client_id"]:
            account = await self.store.get(ServiceAccount, client_id)
        if account is None or not account.enabled or not account.redirect_uris:
            raise NotFound(f"no OAuth2 client {client_id[:128]!r} is registered",
                           {"reason": UNKNOWN_CLIENT, "field": "client_id"})
        if not redirect_uri or redirect_uri not in account.redirect_uris:
            raise InvalidArgument("redirect_uri is not one the client registered",
                                  {"reason": REDIRECT_URI_NOT_REGISTERED, "field": "redirect_uri"})
        return account

    async def check_code_request(self, request: CodeRequest) -> tuple[ServiceAccount, Scope]:
        """The client of an authorization request and the scope its token would have, if the request
        may go on: the client and redirect URI registered (oauth_client), PKCE for a public client
        (S256), and a scope within the client's (none asked: the client's own)."""
        account = await self.oauth_client(request.client_id, request.redirect_uri)
        if request.code_challenge and not S256_CHALLENGE.fullmatch(request.code_challenge):
            raise InvalidArgument("code_challenge must be the S256 challenge of a verifier (43 base64url characters)",
                                  {"field": "code_challenge"})
        if account.public_client and not request.code_challenge:
            raise InvalidArgument("a public client must use PKCE: give code_challenge with code_challenge_method S256",
                                  {"field": "code_challenge", "reason": "PKCE_REQUIRED"})
        if len(request.nonce) > MAX_NONCE_CHARS:
            raise InvalidArgument(f"nonce is longer than {MAX_NONCE_CHARS} characters", {"field": "nonce"})
        bound = client_scope(account)
        if request.system:
            scope = Scope(SYSTEM)
        elif request.org_id or request.project_id:
            for name in ("org_id", "project_id"):
                if len(getattr(request, name)) > MAX_CREDENTIAL_CHARS[name]:
                    raise InvalidArgument(f"{name} is too long", {"field": f"scope.{name}"})
            scope = await self._token_scope(request.org_id, request.project_id)
        else:
            scope = bound
        if not within(bound, scope):
            raise PermissionDenied(
                f"the client {account.id} signs users in on {describe(bound)} only, not on {describe(scope)}",
                {"reason": "SCOPE_BEYOND_CLIENT", "field": "scope", "scope": scope.as_dict(),
                 "client_scope": bound.as_dict()})
        return account, scope

    async def authorize_code(self, caller: Caller, request: CodeRequest, username: str, password: str) -> str:
        """Sign a user in for an authorization request, as the password grant does (same checks,
        throttle and audit); the code the client exchanges for the user's tokens."""
        account, scope = await self.check_code_request(request)
        for name, value in (("username", username), ("password", password)):
            if not value:
                raise InvalidArgument(f"{name} is required", {"field": name})
            if len(value) > MAX_CREDENTIAL_CHARS[name]:
                raise InvalidArgument(f"{name} is longer than {MAX_CREDENTIAL_CHARS[name]} characters",
                                      {"field": name})
        keys = [f"address:{caller.address}", f"user:{username.casefold()}@{caller.address}"]
        self.throttle.begin(*keys)
        try:
            async with self._audited(caller, "iam.oauth2.authorize", "", grant_type=AUTHORIZATION_CODE,
                                     username=username[:128], client_id=account.id) as event:
                who = await self._sign_in(event, Grant(PASSWORD, username=username, password=password), keys)
                event.details["scope"] = scope.as_dict()
                if not await self._roles_on(who.subject, scope):
                    raise PermissionDenied(f"{who.subject} holds no role on {describe(scope)}",
                                           {"reason": "NO_ROLE_ON_SCOPE", "scope": scope.as_dict()})
                return self.codes.issue(PendingCode(
                    account.id, request.redirect_uri, who.subject, scope, request.oidc, request.nonce,
                    request.code_challenge, auth_time=self.clock(), expires_at=0))
        finally:
            self.throttle.end(*keys)

    def _refuse_grant(self, event: Event, keys: list[str], reason: str, message: str) -> Unauthenticated:
        event.details["reason"] = reason
        self.throttle.failure(*keys)
        return Unauthenticated(message, {"reason": INVALID_GRANT})

    async def redeem_code(self, caller: Caller, client_id: str, client_secret: str, code: str, redirect_uri: str,
                          code_verifier: str) -> tuple[IssuedToken, tuple[str, ...]]:
        """Exchange a code (RFC 6749 section 4.1.3) for the user's tokens, and the OpenID Connect
        scopes asked. The client authenticates with its secret, or a public one by PKCE alone; the
        code must be its own, unused, unexpired, for this redirect_uri, and match code_verifier.
        A code used twice revokes the session it gave (section 4.1.2). UNAUTHENTICATED with
        reason INVALID_GRANT for what is wrong with the code, other reasons for the client."""
        for name, value in (("client_id", client_id), ("client_secret", client_secret)):
            if len(value) > MAX_CREDENTIAL_CHARS[name]:
                raise InvalidArgument(f"{name} is longer than {MAX_CREDENTIAL_CHARS[name]} characters",
                                      {"field": name})
        if not client_id:
            raise Unauthenticated("the client must say who it is: client_id, or HTTP Basic",
                                  {"reason": "INVALID_CREDENTIALS"})
        keys = [f"address:{caller.address}", f"client:{client_id}@{caller.address}"]
        self.throttle.begin(*keys)
        try:
            details: dict[str, Any] = {"grant_type": AUTHORIZATION_CODE, "client_id": client_id[:128]}
            async with self._audited(caller, "iam.tokens.issue", "", **details) as event:
                pending = self.codes.take(code) if len(code) <= 256 else None
                if pending is None:
                    raise self._refuse_grant(event, keys, "UNKNOWN_CODE",
                                             "the authorization code is invalid or expired")
                event.principal = pending.subject
                if pending.uses > 1:
                    await self._revoke_replayed(event, pending)
                    raise self._refuse_grant(event, keys, "CODE_REUSED", "the authorization code was already used")
                account = await self.store.get(ServiceAccount, client_id)
                if client_secret or account is None or not account.public_client:
                    # A confidential client authenticates as for client_credentials (a wrong secret counts).
                    await self._sign_in(event, Grant(CLIENT_CREDENTIALS, client_id=client_id,
                                                     client_secret=client_secret), keys)
                elif not account.enabled or not pending.code_challenge:
                    # A public client's proof is PKCE: without a challenge (it became public since) none.
                    raise self._fail_sign_in(event, keys, "PUBLIC_CLIENT_WITHOUT_PKCE", "invalid client credentials")
                if pending.client_id != client_id:
                    raise self._refuse_grant(event, keys, "OTHER_CLIENT", "the authorization code was issued to "
                                             "another client")
                if redirect_uri != pending.redirect_uri:
                    raise self._refuse_grant(event, keys, "REDIRECT_URI_MISMATCH", "redirect_uri is not the one "
                                             "of the authorization request")
                if pending.code_challenge and not pkce_matches(pending.code_challenge, code_verifier):
                    raise self._refuse_grant(event, keys, "PKCE_MISMATCH", "code_verifier does not match the "
                                             "code_challenge of the authorization request")
                if not pending.code_challenge and code_verifier:
                    raise self._refuse_grant(event, keys, "PKCE_UNEXPECTED", "code_verifier was given, but the "
                                             "authorization request had no code_challenge")
                who = await self._principal_record(pending.subject)
                if not isinstance(who, User) or not who.enabled:
                    raise self._refuse_grant(event, keys, "DISABLED", "the user can no longer sign in")
                self.throttle.success(keys[-1])
                scope = pending.scope
                async with self._lock:
                    family = TokenFamily(new_id("fam"), who.subject, scope.kind, scope.org_id, scope.project_id,
                                         pending.auth_time, pending.auth_time + self.settings.session_ttl, 0,
                                         client_id)
                    pending.family_id = family.id  # before the write: a replay racing it revokes it
                    issued = await self._issue(event, who, family, Insert(family), with_refresh=True,
                                               id_token_audience=client_id if pending.oidc else "",
                                               nonce=pending.nonce)
                return issued, pending.oidc
        finally:
            self.throttle.end(*keys)

    async def _revoke_replayed(self, event: Event, pending: PendingCode) -> None:
        """Revoke the session a replayed code gave, if it gave one."""
        if not pending.family_id:
            return
        async with self._lock:
            family = await self.store.get(TokenFamily, pending.family_id)
            if family is None or family.revoked_at:
                return
            changes, revoked = await self._revoke_families([family])
            await self._propose(*changes)
        event.details.update(family=family.id, revoked_tokens=len(revoked))
