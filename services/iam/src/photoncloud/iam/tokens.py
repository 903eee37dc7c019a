"""IAM's tokens: signing keys, the grants that issue tokens, refresh, revocation and discovery,
and the sources IAM's own verifier checks tokens against."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import replace
from typing import Any

import jwt

from photoncloud.common.auth import AUDIENCE, ORG, PROJECT, REVOKED_KEPT_AFTER_EXPIRY, SYSTEM, Scope
from photoncloud.common.errors import Aborted, InvalidArgument, PermissionDenied, ServiceError, Unauthenticated

from .audit import Event
from .commands import Change, Cmp, Delete, Expect, Guard, Insert, Update
from .credentials import (ALGORITHM, generate_key, load_private_key, new_id, new_refresh_token, public_key, sign,
                          token_digest)
from .facade import Facade
from .records import (ACTIVE, EXPIRED, AccessToken, Binding, Organization, Project, RefreshToken, Revocation, Role,
                      ServiceAccount, SigningKey, TokenFamily, User)
from .rules import (CLIENT_AUTH_METHODS, CLIENT_CREDENTIALS, GRANT_TYPES, JWKS_PATH, OAUTH2_AUTHORIZE_PATH,
                    OAUTH2_GRANT_TYPES, OAUTH2_REVOKE_PATH, OAUTH2_TOKEN_PATH, KEY_RETIREMENT_MARGIN, KEYS_MANAGE,
                    KEYS_READ, MAX_CREDENTIAL_CHARS, MAX_TOKEN_CHARS, OPENID, PASSWORD, PURGE_INTERVAL, REFRESH_TOKEN,
                    SPECIFICITY, authenticated, binding_applies, describe, newest_first, require_system)
from .values import Caller, Grant, IssuedToken


class Tokens(Facade):
    """Tokens: signing keys, issuance, refresh, revocation and discovery."""

    _keys: dict[str, SigningKey]
    _private: dict[str, Any]
    _public: dict[str, Any]
    _purged_at: float

    def _load_keys(self, keys: Sequence[SigningKey]) -> None:
        now = self.clock()
        self._keys = {k.kid: k for k in keys if k.status(now) != EXPIRED}
        self._private = {k.kid: load_private_key(k.private_pem) for k in self._keys.values()
                         if k.status(now) == ACTIVE}
        self._public = {k.kid: public_key(k.public_jwk) for k in self._keys.values()}

    def _active_kid(self) -> str:
        return next(iter(self._private), "")

    def verification_key(self, kid: str) -> Any:
        """The public key of a published key id; UNAUTHENTICATED for any other."""
        key = self._keys.get(kid)
        if key is None or key.status(self.clock()) == EXPIRED:
            raise Unauthenticated("the token is signed with an unknown key", {"reason": "UNKNOWN_KEY"})
        return self._public[kid]

    async def is_revoked(self, token_id: str) -> bool:
        """Whether a token ID is on the revocation list."""
        return bool(await self.store.find(Revocation, [("token_id", token_id)], limit=1))

    async def _revoke_families(self, families: Sequence[TokenFamily],
                               refresh: bool = True) -> tuple[list[Change], list[str]]:
        """The changes that revoke the live access tokens of families (and, with refresh, the
        families themselves); and the revoked token IDs."""
        now = self.clock()
        changes: list[Change] = []
        revoked: list[str] = []
        for family in families:
            if refresh:
                changes += [Update(replace(family, revoked_at=now)), Delete(RefreshToken, [("family_id", family.id)])]
            for token in await self.store.find(AccessToken, [("family_id", family.id)]):
                if token.expires_at + REVOKED_KEPT_AFTER_EXPIRY >= now:  # a verifier may still take it
                    changes.append(Insert(Revocation(token.jti, token.expires_at, now)))
                    revoked.append(token.jti)
                changes.append(Delete(AccessToken, [("jti", token.jti)]))
        return changes, revoked

    async def _revoke_principal(self, subject: str) -> tuple[list[Change], list[str]]:
        return await self._revoke_families(
            await self.store.find(TokenFamily, [("principal", subject), ("revoked_at", 0)]))

    async def _revoke_access_for(self, binding: Binding) -> list[Change]:
        """Revoke the access tokens whose roles a binding contributed to (their sessions live on:
        a refresh gets the roles that hold now)."""
        families = await self.store.find(TokenFamily, [("principal", binding.principal), ("revoked_at", 0)])
        changes, _ = await self._revoke_families([f for f in families if binding_applies(binding, f.scope)],
                                                 refresh=False)
        return changes

    async def _token_scope(self, org_id: str, project_id: str) -> Scope:
        if project_id:
            project = await self._get(Project, project_id, "project")
            if org_id and org_id != project.org_id:
                raise InvalidArgument(f"project {project_id!r} is not in org {org_id!r}", {"field": "scope.org_id"})
            return Scope(PROJECT, project.org_id, project.id)
        if org_id:
            await self._get(Organization, org_id, "organization")
            return Scope(ORG, org_id)
        return Scope(SYSTEM)

    async def _roles_on(self, subject: str, scope: Scope) -> list[Binding]:
        """The principal's bindings that apply on scope, most specific first."""
        bindings = await self.store.find(Binding, [("principal", subject)])
        applicable = [b for b in bindings if binding_applies(b, scope)]
        return sorted(applicable, key=lambda b: (SPECIFICITY[b.scope_type], b.created_at, b.id))

    async def _permissions(self, roles: Iterable[str]) -> list[str]:
        granted: dict[str, None] = {}
        for name in roles:
            role = await self.store.get(Role, name)
            if role is not None:
                granted.update(dict.fromkeys(role.permissions))
        return sorted(granted)

    def _fail_sign_in(self, event: Event, keys: Sequence[str], reason: str, message: str) -> Unauthenticated:
        event.details["reason"] = reason
        if self.throttle.failure(*keys):
            event.details["throttled"] = True
        return Unauthenticated(message, {"reason": "INVALID_CREDENTIALS"})

    async def issue_token(self, caller: Caller, grant: Grant) -> IssuedToken:
        """Authenticate a grant and issue an access token (and a refresh token) for a scope on which
        the principal holds a role."""
        if grant.grant_type not in GRANT_TYPES:
            raise InvalidArgument(f"grant_type must be one of {', '.join(GRANT_TYPES)}",
                                  {"field": "grant_type", "allowed": list(GRANT_TYPES)})
        needed = {PASSWORD: ("username", "password"), CLIENT_CREDENTIALS: ("client_id", "client_secret"),
                  REFRESH_TOKEN: ("refresh_token",)}[grant.grant_type]
        for name in needed:
            if not getattr(grant, name):
                raise InvalidArgument(f"{name} is required with grant_type {grant.grant_type}", {"field": name})
        for name, limit in MAX_CREDENTIAL_CHARS.items():
            if len(getattr(grant, name)) > limit:  # also bounds what the throttle keeps in memory
                raise InvalidArgument(f"{name} is longer than {limit} characters", {"field": name})
        keys = [f"address:{caller.address}"]
        if grant.grant_type == PASSWORD:
            keys.append(f"user:{grant.username.casefold()}@{caller.address}")
        elif grant.grant_type == CLIENT_CREDENTIALS:
            keys.append(f"client:{grant.client_id}@{caller.address}")
        self.throttle.begin(*keys)
        try:
            await self._purge_expired()
            details: dict[str, Any] = {"grant_type": grant.grant_type}
            if grant.grant_type == PASSWORD:
                details["username"] = grant.username[:128]
            elif grant.grant_type == CLIENT_CREDENTIALS:
                details["client_id"] = grant.client_id[:128]
            async with self._audited(caller, "iam.tokens.issue", "", **details) as event:
                if grant.grant_type == REFRESH_TOKEN:
                    # Outside the lock (a secret is hashed): a session's client never changes.
                    if await self._refresh_client(event, grant, keys):
                        grant = replace(grant, within_session=True)
                    async with self._lock:
                        return await self._refresh(event, grant, keys)
                who = await self._sign_in(event, grant, keys)
                scope = await self._token_scope(grant.org_id, grant.project_id)
                async with self._lock:
                    now = self.clock()
                    family = TokenFamily(new_id("fam"), who.subject, scope.kind, scope.org_id, scope.project_id,
                                         now, now + self.settings.session_ttl, 0)
                    return await self._issue(event, who, family, Insert(family),
                                             with_refresh=grant.grant_type == PASSWORD,
                                             id_token_audience=grant.id_token_audience)
        finally:
            self.throttle.end(*keys)

    async def _sign_in(self, event: Event, grant: Grant, keys: Sequence[str]) -> User | ServiceAccount:
        """The user or service account whose credentials the grant holds; UNAUTHENTICATED otherwise."""
        if grant.grant_type == PASSWORD:
            found = await self.store.find(User, [("name", grant.username)], limit=1)
            if not found:
                await self.hasher.waste(grant.password)
                raise self._fail_sign_in(event, keys, "UNKNOWN_USER", "invalid username or password")
            who: User | ServiceAccount = found[0]
            stored, secret, message = found[0].password_hash, grant.password, "invalid username or password"
        else:
            account = await self.store.get(ServiceAccount, grant.client_id)
            if account is None:
                await self.hasher.waste(grant.client_secret)
                raise self._fail_sign_in(event, keys, "UNKNOWN_CLIENT", "invalid client credentials")
            who = account
            stored, secret, message = account.secret_hash, grant.client_secret, "invalid client credentials"
        event.principal, event.target = who.subject, f"{type(who).__name__.lower()}s/{who.id}"
        matches, stale = await self.hasher.verify(stored, secret)
        if not matches:
            raise self._fail_sign_in(event, keys, "WRONG_SECRET", message)
        if not who.enabled:
            raise self._fail_sign_in(event, keys, "DISABLED", message)
        self.throttle.success(keys[-1])
        if stale and isinstance(who, User):  # argon2 parameters were raised: store the stronger hash
            rehashed = await self.hasher.hash(secret)
            async with self._lock:
                current = await self.store.get(User, who.id)
                if current is not None and current.password_hash == who.password_hash:
                    try:
                        await self._propose(Update(replace(current, password_hash=rehashed)),
                                            expect=[Expect(User, who.id, current)])
                    except Aborted:  # the user changed meanwhile (a new password): that one stands
                        pass
        return who

    async def _refresh_client(self, event: Event, grant: Grant, keys: Sequence[str]) -> bool:
        """Whether the refresh token is of a session an OAuth2 client got through the authorization
        code flow; if so, that client must present it (RFC 6749 section 6: a refresh token is bound
        to its client), with its secret unless it is public. Such a session keeps to its scope, the
        client's, on every token endpoint."""
        token = await self.store.get(RefreshToken, token_digest(grant.refresh_token))
        family = await self.store.get(TokenFamily, token.family_id) if token else None
        if family is None or not family.client_id:
            return False
        if grant.client_id != family.client_id:
            raise self._fail_sign_in(event, keys, "OTHER_CLIENT", "invalid refresh token: it is another client's")
        account = await self.store.get(ServiceAccount, family.client_id)
        if account is None or not account.enabled:
            raise self._fail_sign_in(event, keys, "UNKNOWN_CLIENT", "invalid refresh token")
        if grant.client_secret or not account.public_client:
            matches, _ = await self.hasher.verify(account.secret_hash, grant.client_secret)
            if not matches:
                raise self._fail_sign_in(event, keys, "WRONG_SECRET", "invalid client credentials")
        return True

    async def _refresh(self, event: Event, grant: Grant, keys: Sequence[str]) -> IssuedToken:
        """Exchange a refresh token (under the lock): rotate it, or on reuse revoke its whole family."""
        now = self.clock()
        token = await self.store.get(RefreshToken, token_digest(grant.refresh_token))
        family = await self.store.get(TokenFamily, token.family_id) if token else None
        if token is None or family is None:
            raise self._fail_sign_in(event, keys, "UNKNOWN_REFRESH_TOKEN", "invalid refresh token")
        event.principal = family.principal
        if token.used_at:
            changes, revoked = await self._revoke_families([family])
            await self._propose(*changes)
            event.details.update(family=family.id, revoked_tokens=len(revoked))
            raise self._fail_sign_in(event, keys, "REFRESH_TOKEN_REUSED", "invalid refresh token")
        if family.revoked_at or min(token.expires_at, family.expires_at) <= now:
            raise self._fail_sign_in(event, keys, "REFRESH_TOKEN_EXPIRED", "invalid refresh token")
        who = await self._principal_record(family.principal)
        event.target = family.principal
        if who is None or not who.enabled:
            raise self._fail_sign_in(event, keys, "DISABLED", "invalid refresh token")
        scope = family.scope
        if grant.org_id or grant.project_id or grant.system:
            scope = await self._token_scope(grant.org_id, grant.project_id)
            if grant.within_session and not binding_applies(family, scope):
                raise PermissionDenied(
                    f"a refresh may keep or narrow its session's scope ({describe(family.scope)}), "
                    f"not widen it to {describe(scope)}",
                    {"reason": "SCOPE_BEYOND_SESSION", "scope": scope.as_dict(),
                     "session_scope": family.scope.as_dict()},
                )
        read, family = family, replace(family, scope_type=scope.kind, org_id=scope.org_id, project_id=scope.project_id)
        # A refresh token is exchanged once: the command holds only if it is still unused (and its
        # session unrevoked) when applied, so two exchanges of one token can never both succeed.
        return await self._issue(event, who, family, Update(family), Update(replace(token, used_at=now)),
                                 with_refresh=True, expect=[Expect(RefreshToken, token.token_hash, token),
                                                            Expect(TokenFamily, read.id, read)],
                                 id_token_audience=grant.id_token_audience)

    async def _issue(self, event: Event, who: User | ServiceAccount, family: TokenFamily, *changes: Change,
                     with_refresh: bool, expect: Sequence[Guard] = (), id_token_audience: str = "",
                     nonce: str = "") -> IssuedToken:
        """Sign an access token for who on the family's scope (under the lock), and an ID token for
        id_token_audience when there is one (with the nonce of the authorization request, if any)."""
        scope = family.scope
        event.principal, event.details["scope"] = who.subject, scope.as_dict()
        bindings = await self._roles_on(who.subject, scope)
        if not bindings:
            raise PermissionDenied(
                f"{who.subject} holds no role on {describe(scope)}"
                + ("; ask for an org or project scope" if scope.kind == SYSTEM else ""),
                {"reason": "NO_ROLE_ON_SCOPE", "scope": scope.as_dict()},
            )
        roles = sorted({b.role for b in bindings})
        now = int(self.clock())
        expires = now + self.settings.access_token_ttl
        claims: dict[str, Any] = {
            "iss": self.settings.issuer, "aud": AUDIENCE, "sub": who.subject, "name": who.name,
            "iat": now, "nbf": now, "exp": expires, "jti": uuid.uuid4().hex,
            "scope": scope.as_dict(), "roles": roles, "permissions": await self._permissions(roles),
        }
        kid = self._active_kid()
        access = sign(claims, kid, self._private[kid])
        id_token = ""
        if id_token_audience:
            # OpenID Connect Core section 2: who signed in and when, for the client; no scope or
            # permissions, so that no service takes it for an access token (their audience is AUDIENCE).
            identity: dict[str, Any] = {
                "iss": self.settings.issuer, "sub": who.subject, "aud": id_token_audience, "iat": now,
                "exp": expires, "auth_time": int(family.created_at), "name": who.name,
            }
            if isinstance(who, User) and who.email:
                identity["email"] = who.email
            if nonce:
                identity["nonce"] = nonce  # OpenID Connect Core section 3.1.3.7: the client checks it
            id_token = sign(identity, kid, self._private[kid])
        refresh, refresh_expires = "", 0
        writes: list[Change] = [*changes, Insert(AccessToken(claims["jti"], family.id, who.subject, expires))]
        if with_refresh:
            refresh = new_refresh_token()
            refresh_expires = int(min(now + self.settings.refresh_token_ttl, family.expires_at))
            writes.append(Insert(RefreshToken(token_digest(refresh), family.id, now, refresh_expires, 0)))
        event.details.update(token_id=claims["jti"], family=family.id, roles=roles)
        await self._commit(event, *writes, expect=expect)
        return IssuedToken(access, expires - now, refresh, max(0, refresh_expires - now) if refresh else 0,
                           scope, tuple(roles), id_token)

    async def _purge_expired(self) -> None:
        """Forget expired sessions, tokens, revocations and keys (at most once a minute)."""
        if time.monotonic() - self._purged_at < PURGE_INTERVAL:
            return
        self._purged_at = time.monotonic()
        now = self.clock()
        margin = REVOKED_KEPT_AFTER_EXPIRY + KEY_RETIREMENT_MARGIN
        async with self._lock:
            changes: list[Change] = [
                Delete(AccessToken, [("expires_at", Cmp("<", now - margin))]),
                Delete(RefreshToken, [("expires_at", Cmp("<", now))]),
                Delete(TokenFamily, [("expires_at", Cmp("<", now))]),
                Delete(Revocation, [("expires_at", Cmp("<", now - margin))]),
            ]
            for key in await self.store.find(SigningKey):
                if key.status(now) == EXPIRED and key.private_pem:
                    changes.append(Update(replace(key, private_pem="")))
            await self._propose(*changes)
            self._load_keys(await self.store.find(SigningKey))

    async def revoke_token(self, caller: Caller) -> list[str]:
        """Log out: revoke the caller's access token and every token of its session."""
        principal = authenticated(caller)
        async with self._audited(caller, "iam.tokens.revoke", f"tokens/{principal.token_id}") as event:
            async with self._lock:
                access = await self.store.get(AccessToken, principal.token_id)
                family = await self.store.get(TokenFamily, access.family_id) if access else None
                changes, revoked = await self._revoke_families([family] if family else [])
                if principal.token_id not in revoked and not await self.is_revoked(principal.token_id):
                    changes.append(Insert(Revocation(principal.token_id, principal.expires_at, self.clock())))
                    revoked.append(principal.token_id)
                event.details["revoked_tokens"] = len(revoked)
                await self._commit(event, *changes)
            return revoked

    async def revoke_presented(self, caller: Caller, token: str) -> list[str]:
        """End the session of a token presented to RFC 7009's revocation endpoint: a refresh token
        or an access token IAM issued (holding the token is the right to end it). Anything else
        revokes nothing and is no error (RFC 7009 section 2.2); returns the revoked access tokens."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return []
        async with self._lock:
            family: TokenFamily | None = None
            claims: dict[str, Any] | None = None
            refresh = await self.store.get(RefreshToken, token_digest(token))
            if refresh is not None:
                family = await self.store.get(TokenFamily, refresh.family_id)
            elif (claims := await self.verify_token(token)) is not None:
                access = await self.store.get(AccessToken, claims["jti"])
                family = await self.store.get(TokenFamily, access.family_id) if access else None
            if family is None and claims is None:
                return []
            target = f"sessions/{family.id}" if family else f"tokens/{claims['jti'] if claims else ''}"
            async with self._audited(caller, "iam.tokens.revoke", target) as event:
                changes, revoked = await self._revoke_families([family] if family else [])
                if claims and claims["jti"] not in revoked and not await self.is_revoked(claims["jti"]):
                    changes.append(Insert(Revocation(claims["jti"], int(claims["exp"]), self.clock())))
                    revoked.append(claims["jti"])
                event.principal = family.principal if family else str(claims["sub"] if claims else "")
                event.details["revoked_tokens"] = len(revoked)
                await self._commit(event, *changes)
            return revoked

    async def verify_token(self, token: str) -> dict[str, Any] | None:
        """The claims of a valid, live token; None for anything else."""
        if not isinstance(token, str) or not token or len(token) > MAX_TOKEN_CHARS:
            return None
        try:
            await self.verifier.verify(token)
        except ServiceError:
            return None
        return jwt.decode(token, options={"verify_signature": False})

    async def revocations(self, since: int) -> tuple[list[Revocation], int]:
        """The revocations after cursor since whose tokens have not expired (or only just: a
        verifier's leeway), and the next cursor. A cursor from the future (a store that was reset)
        starts over."""
        if since < 0:
            raise InvalidArgument("since must be a cursor from a previous answer, or 0", {"field": "since"})
        latest = await self.store.find(Revocation, limit=1, descending=True)
        top = latest[0].seq if latest else 0
        if since > top:
            since = 0
        horizon = int(self.clock()) - REVOKED_KEPT_AFTER_EXPIRY
        items = await self.store.find(Revocation, [("seq", Cmp(">", since)), ("expires_at", Cmp(">=", horizon))])
        return items, max([top, *(r.seq for r in items)])

    def jwks(self) -> list[dict[str, Any]]:
        """The published public keys (the signing one and the retired ones still needed)."""
        now = self.clock()
        keys = sorted((k for k in self._keys.values() if k.status(now) != EXPIRED), key=newest_first)
        return [dict(k.public_jwk) for k in keys]

    def openid_configuration(self) -> dict[str, Any]:
        """OpenID Connect discovery (and RFC 8414 authorization server metadata) for this issuer:
        the authorization code flow with PKCE (S256) at the authorization endpoint, answered in the
        redirect's query with `iss` (RFC 9207), and the token endpoint's grants."""
        issuer = self.settings.issuer
        return {
            "issuer": issuer,
            "authorization_endpoint": f"{issuer}{OAUTH2_AUTHORIZE_PATH}",
            "token_endpoint": f"{issuer}{OAUTH2_TOKEN_PATH}",
            "revocation_endpoint": f"{issuer}{OAUTH2_REVOKE_PATH}",
            "jwks_uri": f"{issuer}{JWKS_PATH}",
            "response_types_supported": ["code"],
            "response_modes_supported": ["query"],
            "code_challenge_methods_supported": ["S256"],
            "authorization_response_iss_parameter_supported": True,
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": [ALGORITHM],
            "grant_types_supported": list(OAUTH2_GRANT_TYPES),
            # "none": a public client of the code flow, which proves itself with PKCE.
            "token_endpoint_auth_methods_supported": [*CLIENT_AUTH_METHODS, "none"],
            # Holding a token is the right to end it: revocation authenticates no client.
            "revocation_endpoint_auth_methods_supported": ["none"],
            # openid asks for an ID token as well; org:<id> and project:<id> name resources, so they cannot
            # be listed (RFC 8414 lets a server leave out scopes it supports); the guide gives the syntax.
            "scopes_supported": [OPENID, SYSTEM],
            "claims_supported": ["iss", "aud", "sub", "name", "email", "iat", "nbf", "exp", "auth_time", "jti", "nonce",
                                 "scope", "roles", "permissions"],
        }

    async def rotate_signing_key(self, caller: Caller) -> SigningKey:
        """A new key signs from now on; the previous one stays published until its tokens expired."""
        async with self._audited(caller, "iam.keys.rotate", "keys") as event:
            require_system(caller, KEYS_MANAGE)
            material = await generate_key()
            async with self._lock:
                now = self.clock()
                retire_until = now + self.settings.access_token_ttl + self.verifier.leeway + KEY_RETIREMENT_MARGIN
                key = SigningKey(material.kid, material.private_pem, material.public_jwk, now, 0, 0)
                keys = await self.store.find(SigningKey)
                active = [k for k in keys if k.status(now) == ACTIVE]
                retiring = [replace(k, retired_at=now, expires_at=retire_until) for k in active]
                event.target = f"keys/{key.kid}"
                event.details["retired"] = [k.kid for k in retiring]
                await self._commit(event, Insert(key), *(Update(k) for k in retiring),
                                   expect=[Expect(SigningKey, k.kid, k) for k in active])
                self._load_keys(await self.store.find(SigningKey))
            return key

    async def list_signing_keys(self, caller: Caller) -> list[SigningKey]:
        """Every signing key IAM has had: the active one, then the others newest first."""
        authenticated(caller).require(KEYS_READ)
        return sorted(await self.store.find(SigningKey), key=newest_first)


class LocalKeys:
    """The KeySource of IAM's own verifier: the published keys, from memory."""

    def __init__(self, core: Tokens):
        self.core = core

    async def key(self, kid: str) -> Any:
        return self.core.verification_key(kid)


class LocalRevocations:
    """The RevocationSource of IAM's own verifier: the revocation list in the store."""

    def __init__(self, core: Tokens):
        self.core = core

    async def is_revoked(self, token_id: str) -> bool:
        return await self.core.is_revoked(token_id)
