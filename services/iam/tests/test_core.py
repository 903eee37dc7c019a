"""The IAM core on an in-memory store: identities, roles, bindings, scopes, tokens, throttling, audit."""

from __future__ import annotations

import json

import jwt
import pytest

from photoncloud.common.auth import AUDIENCE, Verifier
from photoncloud.common.errors import Code, ServiceError
from photoncloud.iam.core import (
    AuditEvent,
    Binding,
    Caller,
    Grant,
    Question,
    User,
    view,
)

PASSWORD = "a long enough password"


async def fails(code: Code, awaitable, **details) -> ServiceError:
    """The ServiceError awaitable raises, checked to have code (and details)."""
    with pytest.raises(ServiceError) as raised:
        await awaitable
    assert raised.value.code is code, raised.value
    for key, value in details.items():
        assert raised.value.details[key] == value, raised.value.details
    return raised.value


async def login(iam, name: str, password: str = PASSWORD, address: str = "10.0.0.1", **scope) -> Caller:
    """Sign in with a password; the caller the issued token stands for."""
    issued = await iam.issue_token(Caller(address=address), Grant("password", name, password, **scope))
    return Caller(await iam.verifier.verify(issued.access_token), address)


@pytest.fixture
async def tenant(iam, root):
    """org acme with projects web and db; user alice (member on web) and bob (admin on acme)."""
    org = await iam.create_org(root, "acme")
    web = await iam.create_project(root, org.id, "web")
    db = await iam.create_project(root, org.id, "db")
    alice = await iam.create_user(root, "alice", PASSWORD, email="alice@example.com")
    bob = await iam.create_user(root, "bob", PASSWORD)
    await iam.create_binding(root, alice.subject, "member", "project", project_id=web.id)
    await iam.create_binding(root, bob.subject, "admin", "org", org_id=org.id)
    return type("Tenant", (), dict(org=org, web=web, db=db, alice=alice, bob=bob))


async def test_bootstrap_creates_the_default_tenancy_and_admin_once(iam, root, admin_password):
    done = iam.bootstrapped
    orgs = (await iam.list_orgs(root)).items
    assert [o.name for o in orgs] == ["default"]
    assert [(p.name, p.org_id) for p in (await iam.list_projects(root)).items] == [("default", orgs[0].id)]
    bindings = (await iam.list_bindings(root, principal=f"user:{done.user_id}")).items
    assert [(b.role, b.scope_type) for b in bindings] == [("admin", "system")]
    caller = await login(iam, "admin", admin_password)
    assert caller.principal.scope.kind == "system" and caller.principal.can("anything:at:all")
    assert await iam.bootstrap("another password here") is None


async def test_builtin_roles_are_fixed_and_custom_roles_are_validated(iam, root):
    roles = {r.name: r for r in (await iam.list_roles(root, builtin=True)).items}
    assert {n: r.permissions for n, r in roles.items()} == {
        "admin": ("*",), "member": ("*:*:read", "*:*:write"), "viewer": ("*:*:read",)}
    await fails(Code.FAILED_PRECONDITION, iam.update_role(root, "viewer", {"permissions": ["*"]}),
                reason="BUILTIN_ROLE")
    await fails(Code.FAILED_PRECONDITION, iam.delete_role(root, "admin"), reason="BUILTIN_ROLE")
    await fails(Code.ALREADY_EXISTS, iam.create_role(root, "member", ["a:b:read"]), field="name")
    await fails(Code.INVALID_ARGUMENT, iam.create_role(root, "ops", ["compute:create"]), field="permissions")
    await fails(Code.INVALID_ARGUMENT, iam.create_role(root, "ops", []), field="permissions")
    role = await iam.create_role(root, "ops", ["compute:instances:create", "compute:*:read",
                                               "compute:instances:create"])
    assert role.permissions == ("compute:instances:create", "compute:*:read") and not role.builtin
    role = await iam.update_role(root, "ops", {"description": "operators"})
    assert (role.description, role.permissions) == ("operators", ("compute:instances:create", "compute:*:read"))


async def test_org_and_project_crud_with_unique_names_and_pages(iam, root):
    orgs = [await iam.create_org(root, f"org{i}", display_name=f"Org {i}") for i in range(5)]
    await fails(Code.ALREADY_EXISTS, iam.create_org(root, "org1"), field="name")
    await fails(Code.INVALID_ARGUMENT, iam.create_org(root, "-bad name"), field="name")
    seen, token = [], ""
    while True:
        page = await iam.list_orgs(root, page_size=2, page_token=token)
        assert len(page.items) <= 2
        seen += [o.name for o in page.items]
        token = page.next_page_token
        if not token:
            break
    assert sorted(seen) == sorted(["default"] + [o.name for o in orgs])
    await fails(Code.INVALID_ARGUMENT, iam.list_orgs(root, page_token="garbage"), field="page_token")
    await fails(Code.INVALID_ARGUMENT, iam.list_projects(root, page_token=page_token_of_orgs(iam)), field="page_token")
    assert [o.name for o in (await iam.list_orgs(root, name="org3")).items] == ["org3"]

    project = await iam.create_project(root, orgs[0].id, "web")
    await fails(Code.ALREADY_EXISTS, iam.create_project(root, orgs[0].id, "web"), field="name")
    assert (await iam.create_project(root, orgs[1].id, "web")).name == "web"  # unique per org only
    await fails(Code.NOT_FOUND, iam.create_project(root, "org-missing", "x"))
    updated = await iam.update_project(root, project.id, {"display_name": "Web tier"})
    assert updated.display_name == "Web tier" and updated.updated_at >= project.updated_at
    await fails(Code.INVALID_ARGUMENT, iam.update_project(root, project.id, {"org_id": "x"}), field="org_id")
    await fails(Code.FAILED_PRECONDITION, iam.delete_org(root, orgs[0].id), reason="ORG_NOT_EMPTY")
    assert (await iam.delete_project(root, project.id)).id == project.id
    assert (await iam.delete_org(root, orgs[0].id)).id == orgs[0].id
    await fails(Code.NOT_FOUND, iam.get_org(root, orgs[0].id))


def page_token_of_orgs(iam) -> str:
    from photoncloud.common import paging

    return paging.encode_token({"kind": "Organization", "after": "x"})


async def test_password_rules(iam, root):
    for password, reason in (("short", "PASSWORD_TOO_SHORT"), ("x" * 257, "PASSWORD_TOO_LONG"),
                             ("Carol-the-Admin", "PASSWORD_EQUALS_NAME")):
        error = await fails(Code.INVALID_ARGUMENT, iam.create_user(root, "carol-the-admin", password),
                            field="password", reason=reason)
        assert password not in error.message
    user = await iam.create_user(root, "carol", PASSWORD)
    await fails(Code.INVALID_ARGUMENT, iam.set_password(root, user.id, "CAROL"), field="password")
    await fails(Code.ALREADY_EXISTS, iam.create_user(root, "CAROL", PASSWORD), field="name")  # case-insensitive
    stored = await iam.store.get(User, user.id)
    assert stored.password_hash.startswith("$argon2id$") and PASSWORD not in stored.password_hash


async def test_tokens_carry_exactly_the_claims_the_verifier_expects(iam, tenant):
    issued = await iam.issue_token(Caller(address="10.0.0.1"),
                                   Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    assert issued.roles == ("member",) and issued.refresh_token and issued.expires_in == 3600
    header = jwt.get_unverified_header(issued.access_token)
    assert header["alg"] == "RS256" and header["kid"] in {k["kid"] for k in iam.jwks()}
    claims = jwt.decode(issued.access_token, iam.verification_key(header["kid"]), algorithms=["RS256"],
                        audience=AUDIENCE, issuer=iam.settings.issuer)
    assert set(claims) == {"iss", "aud", "sub", "name", "iat", "nbf", "exp", "jti", "scope", "roles", "permissions"}
    assert claims["sub"] == tenant.alice.subject and claims["name"] == "alice"
    assert claims["scope"] == {"type": "project", "org_id": tenant.org.id, "project_id": tenant.web.id}
    assert (claims["roles"], claims["permissions"]) == (["member"], ["*:*:read", "*:*:write"])
    assert claims["exp"] - claims["iat"] == 3600 and len(claims["jti"]) == 32
    verified = await Verifier(type("Keys", (), {"key": lambda self, kid: _async(iam.verification_key(kid))})(),
                              iam.settings.issuer).verify(issued.access_token)
    assert verified.subject == tenant.alice.subject


async def _async(value):
    return value


async def test_token_scopes_follow_the_bindings(iam, root, tenant):
    await fails(Code.PERMISSION_DENIED, login(iam, "alice"), reason="NO_ROLE_ON_SCOPE")  # system: no binding
    await fails(Code.PERMISSION_DENIED, login(iam, "alice", project_id=tenant.db.id))
    await fails(Code.PERMISSION_DENIED, login(iam, "alice", org_id=tenant.org.id))  # a project role is not an org one
    await fails(Code.NOT_FOUND, login(iam, "alice", project_id="proj-missing"))
    await fails(Code.INVALID_ARGUMENT, login(iam, "a" * 300), field="username")
    await fails(Code.INVALID_ARGUMENT, login(iam, "alice", org_id="org-other", project_id=tenant.web.id))
    # An org binding covers the org's projects; roles add up over the scope and its parents.
    await iam.create_binding(root, tenant.alice.subject, "viewer", "org", org_id=tenant.org.id)
    on_web = await login(iam, "alice", project_id=tenant.web.id)
    assert on_web.principal.roles == ("member", "viewer")
    on_db = await login(iam, "alice", project_id=tenant.db.id)
    assert (on_db.principal.roles, on_db.principal.permissions) == (("viewer",), ("*:*:read",))
    assert (await login(iam, "alice", org_id=tenant.org.id)).principal.scope.kind == "org"


async def test_reads_are_confined_to_the_token_scope(iam, root, tenant):
    other = await iam.create_org(root, "other")
    await iam.create_project(root, other.id, "elsewhere")
    alice = await login(iam, "alice", project_id=tenant.web.id)
    bob = await login(iam, "bob", org_id=tenant.org.id)
    assert [p.name for p in (await iam.list_projects(alice)).items] == ["web"]
    assert sorted(p.name for p in (await iam.list_projects(bob)).items) == ["db", "web"]
    assert [o.name for o in (await iam.list_orgs(alice)).items] == ["acme"]
    assert (await iam.get_org(alice, tenant.org.id)).name == "acme"  # the org its project lies in
    await fails(Code.PERMISSION_DENIED, iam.get_org(bob, other.id), reason="OUT_OF_SCOPE")
    await fails(Code.PERMISSION_DENIED, iam.get_project(alice, tenant.db.id), reason="OUT_OF_SCOPE")
    # Users: oneself and those bound inside the scope; bindings: those on the scope.
    assert [u.name for u in (await iam.list_users(alice)).items] == ["alice"]
    assert sorted(u.name for u in (await iam.list_users(bob)).items) == ["alice", "bob"]
    await fails(Code.PERMISSION_DENIED, iam.get_user(alice, tenant.bob.id))
    assert [b.role for b in (await iam.list_bindings(alice)).items] == ["member"]
    assert len((await iam.list_bindings(bob)).items) == 2
    assert (await iam.current_user(alice)).id == tenant.alice.id
    await fails(Code.PERMISSION_DENIED, iam.list_audit(bob), reason="SYSTEM_SCOPE_REQUIRED")


async def test_changes_need_manage_on_a_covering_scope(iam, root, tenant):
    alice = await login(iam, "alice", project_id=tenant.web.id)
    bob = await login(iam, "bob", org_id=tenant.org.id)
    await fails(Code.PERMISSION_DENIED, iam.create_project(alice, tenant.org.id, "x"), reason="MISSING_PERMISSION")
    await fails(Code.PERMISSION_DENIED, iam.create_user(bob, "eve", PASSWORD), reason="SYSTEM_SCOPE_REQUIRED")
    await fails(Code.PERMISSION_DENIED, iam.create_org(bob, "mine"), reason="SYSTEM_SCOPE_REQUIRED")
    # An org admin runs its org: projects, service accounts, bindings inside it.
    project = await iam.create_project(bob, tenant.org.id, "batch")
    binding = await iam.create_binding(bob, tenant.alice.subject, "viewer", "project", project_id=project.id)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(bob, tenant.alice.subject, "admin", "system"))
    other = await iam.create_org(root, "other")
    await fails(Code.PERMISSION_DENIED, iam.create_project(bob, other.id, "x"), reason="OUT_OF_SCOPE")
    await iam.delete_binding(bob, binding.id)
    await fails(Code.ALREADY_EXISTS, iam.create_binding(root, tenant.alice.subject, "member", "project",
                                                        project_id=tenant.web.id))
    await fails(Code.INVALID_ARGUMENT, iam.create_binding(root, "alice", "member", "system"), field="principal")
    await fails(Code.NOT_FOUND, iam.create_binding(root, "user:user-missing", "member", "system"))
    await fails(Code.INVALID_ARGUMENT, iam.create_binding(root, tenant.alice.subject, "member", "org"),
                field="scope.org_id")


async def test_a_binding_cannot_grant_more_than_its_creator_holds(iam, root, tenant):
    await iam.create_role(root, "binder", ["iam:bindings:manage", "iam:bindings:read"])
    await iam.create_binding(root, tenant.alice.subject, "binder", "project", project_id=tenant.web.id)
    alice = await login(iam, "alice", project_id=tenant.web.id)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(alice, tenant.alice.subject, "admin", "project",
                                                           project_id=tenant.web.id), reason="ROLE_EXCEEDS_CALLER")
    carol = await iam.create_user(root, "carol", PASSWORD)  # bob, an org admin, is out of alice's reach
    await iam.create_binding(alice, carol.subject, "viewer", "project", project_id=tenant.web.id)


async def test_deleting_a_principal_deletes_its_bindings_and_the_last_admin_stays(iam, root, tenant):
    deleted = await iam.delete_user(root, tenant.alice.id)
    assert deleted.deleted_bindings == 1
    assert not (await iam.list_bindings(root, principal=tenant.alice.subject)).items
    admin_id = iam.bootstrapped.user_id
    system_admin = (await iam.list_bindings(root, principal=f"user:{admin_id}")).items[0]
    await fails(Code.FAILED_PRECONDITION, iam.delete_user(root, admin_id), reason="LAST_ADMIN")
    await fails(Code.FAILED_PRECONDITION, iam.update_user(root, admin_id, {"enabled": False}), reason="LAST_ADMIN")
    await fails(Code.FAILED_PRECONDITION, iam.delete_binding(root, system_admin.id), reason="LAST_ADMIN")
    await iam.create_binding(root, tenant.bob.subject, "admin", "system")
    await iam.delete_binding(root, system_admin.id)  # bob is an admin now


async def test_disabling_and_password_changes_end_sessions(iam, root, tenant):
    alice = await login(iam, "alice", project_id=tenant.web.id)
    await iam.update_user(root, tenant.alice.id, {"enabled": False})
    assert await iam.is_revoked(alice.principal.token_id)
    await fails(Code.UNAUTHENTICATED, login(iam, "alice", project_id=tenant.web.id), reason="INVALID_CREDENTIALS")
    await iam.update_user(root, tenant.alice.id, {"enabled": True})
    alice = await login(iam, "alice", project_id=tenant.web.id)
    # Users change their own password with the current one; admins set anyone's.
    await fails(Code.INVALID_ARGUMENT, iam.set_password(alice, tenant.alice.id, "a new long password"),
                field="current_password")
    await fails(Code.INVALID_ARGUMENT, iam.set_password(alice, tenant.alice.id, "a new long password",
                                                        "not the password"), reason="WRONG_PASSWORD")
    await fails(Code.PERMISSION_DENIED, iam.set_password(alice, tenant.bob.id, "a new long password"))
    await iam.set_password(alice, tenant.alice.id, "a new long password", PASSWORD)
    assert await iam.is_revoked(alice.principal.token_id)
    await login(iam, "alice", "a new long password", project_id=tenant.web.id)
    await iam.set_password(root, tenant.alice.id, "reset by the admin")
    await login(iam, "alice", "reset by the admin", project_id=tenant.web.id)


async def test_refresh_tokens_rotate_and_reuse_revokes_the_family(iam, root, tenant):
    anonymous = Caller(address="10.0.0.2")
    first = await iam.issue_token(anonymous, Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    second = await iam.issue_token(anonymous, Grant("refresh_token", refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token and second.scope == first.scope
    third = await iam.issue_token(anonymous, Grant("refresh_token", refresh_token=second.refresh_token))
    # Presenting a used refresh token again: the whole family is revoked, the newest tokens too.
    await fails(Code.UNAUTHENTICATED, iam.issue_token(anonymous, Grant("refresh_token",
                                                                       refresh_token=first.refresh_token)))
    await fails(Code.UNAUTHENTICATED, iam.issue_token(anonymous, Grant("refresh_token",
                                                                       refresh_token=third.refresh_token)))
    for token in (first, second, third):
        assert await iam.verify_token(token.access_token) is None
    events = (await iam.list_audit(root, action="iam.tokens.issue", page_size=2)).items
    assert [(e.outcome, e.details["reason"]) for e in events] == \
        [("FAILURE", "UNKNOWN_REFRESH_TOKEN"), ("FAILURE", "REFRESH_TOKEN_REUSED")]
    assert events[1].details["revoked_tokens"] == 3


async def test_refresh_can_switch_to_another_scope_the_principal_holds(iam, root, tenant):
    await iam.create_binding(root, tenant.alice.subject, "viewer", "project", project_id=tenant.db.id)
    anonymous = Caller(address="10.0.0.3")
    first = await iam.issue_token(anonymous, Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    moved = await iam.issue_token(anonymous, Grant("refresh_token", refresh_token=first.refresh_token,
                                                   project_id=tenant.db.id))
    assert (moved.scope.project_id, moved.roles) == (tenant.db.id, ("viewer",))


async def test_failed_sign_ins_are_throttled_per_user_at_an_address_and_per_address(iam, clock, tenant):
    for _ in range(5):
        await fails(Code.UNAUTHENTICATED, login(iam, "alice", "wrong password!", address="10.1.1.1"))
    error = await fails(Code.RESOURCE_EXHAUSTED, login(iam, "alice", address="10.1.1.1"),
                        reason="TOO_MANY_FAILED_LOGINS")
    assert 1 <= error.details["retry_after_seconds"] <= 60
    # Someone else's failures lock nobody out: alice's right password from another address gets in.
    await login(iam, "alice", address="10.1.1.2", project_id=tenant.web.id)
    await login(iam, "bob", address="10.1.1.1", org_id=tenant.org.id)  # nor other users from that address
    # One address guessing many names is throttled for everyone there (unknown names count).
    for i in range(20):
        await fails(Code.UNAUTHENTICATED, login(iam, f"u{i}", address="10.9.9.9"))
    await fails(Code.RESOURCE_EXHAUSTED, login(iam, "bob", address="10.9.9.9", org_id=tenant.org.id))
    await login(iam, "bob", address="10.9.9.8", org_id=tenant.org.id)
    clock.advance(61)
    iam.clock = lambda: clock.now - 61  # tokens keep real timestamps; only the throttle's time moved
    await login(iam, "alice", address="10.1.1.1", project_id=tenant.web.id)
    await login(iam, "bob", address="10.9.9.9", org_id=tenant.org.id)


async def test_service_accounts_secret_shown_once_and_rotated(iam, root, tenant, make_principal):
    created = await iam.create_service_account(root, tenant.org.id, "deployer", project_id=tenant.web.id)
    account = created.service_account
    assert not {"secret_hash", "client_secret"} & set(view(account)) and account.project_id == tenant.web.id
    await iam.create_binding(root, account.subject, "member", "project", project_id=tenant.web.id)
    grant = Grant("client_credentials", client_id=account.id, client_secret=created.client_secret,
                  project_id=tenant.web.id)
    issued = await iam.issue_token(Caller(address="10.0.0.4"), grant)
    assert issued.refresh_token == "" and issued.roles == ("member",)
    claims = await iam.verify_token(issued.access_token)
    assert (claims["sub"], claims["name"]) == (account.subject, "deployer")
    rotated = await iam.rotate_secret(root, account.id)
    assert rotated.client_secret != created.client_secret
    assert await iam.verify_token(issued.access_token) is None
    await fails(Code.UNAUTHENTICATED, iam.issue_token(Caller(address="10.0.0.4"), grant))
    await iam.issue_token(Caller(address="10.0.0.4"), Grant("client_credentials", client_id=account.id,
                                                            client_secret=rotated.client_secret,
                                                            project_id=tenant.web.id))
    await fails(Code.FAILED_PRECONDITION, iam.delete_project(root, tenant.web.id), reason="PROJECT_NOT_EMPTY")
    assert (await iam.delete_service_account(root, account.id)).deleted_bindings == 1
    await fails(Code.NOT_FOUND, iam.current_user(Caller(make_principal(account.subject))), reason="NOT_A_USER")


async def test_authorize_explains_its_decisions(iam, root, tenant):
    alice = await login(iam, "alice", project_id=tenant.web.id)
    allowed = await iam.authorize(alice, Question(tenant.alice.subject, "compute:instances:write",
                                                  project_id=tenant.web.id))
    binding = (await iam.list_bindings(root, principal=tenant.alice.subject)).items[0]
    assert (allowed.allowed, allowed.matched_binding, allowed.matched_role) == (True, binding.id, "member")
    denied = await iam.authorize(alice, Question(tenant.alice.subject, "iam:users:manage", project_id=tenant.web.id))
    assert not denied.allowed and denied.matched_role == "" and "no role" in denied.reason
    # An org binding covers its projects; the system binding covers everything.
    decisions = await iam.authorize_batch(root, [
        Question(tenant.bob.subject, "iam:users:manage", project_id=tenant.db.id),
        Question(tenant.bob.subject, "iam:users:manage"),
        Question(f"user:{iam.bootstrapped.user_id}", "compute:instances:delete", org_id=tenant.org.id),
        Question("user:user-missing", "compute:instances:read"),
        Question(tenant.alice.subject, "compute:instances:read", project_id="proj-missing"),
    ])
    assert [d.allowed for d in decisions] == [True, False, True, False, False]
    assert decisions[0].matched_role == "admin"
    await fails(Code.PERMISSION_DENIED, iam.authorize(alice, Question(tenant.alice.subject, "a:b:read",
                                                                      project_id=tenant.db.id)))
    await fails(Code.PERMISSION_DENIED, iam.authorize(alice, Question(tenant.alice.subject, "a:b:read")))
    await fails(Code.INVALID_ARGUMENT, iam.authorize(root, Question(tenant.alice.subject, "compute:*:read")),
                field="action")
    await fails(Code.INVALID_ARGUMENT, iam.authorize_batch(root, [Question(tenant.alice.subject, "a:b:c")] * 101))


async def test_changes_and_sign_ins_are_audited_without_secrets(iam, root, tenant, admin_password):
    await fails(Code.UNAUTHENTICATED, login(iam, "alice", "a wrong password", address="10.7.7.7"))
    caller = await login(iam, "alice", project_id=tenant.web.id, address="10.7.7.7")
    created = await iam.create_service_account(root, tenant.org.id, "ci")
    await fails(Code.PERMISSION_DENIED, iam.create_org(caller, "nope"))
    events = await iam.store.find(AuditEvent)
    actions = [(e.action, e.outcome) for e in events]
    for expected in [("iam.bootstrap", "SUCCESS"), ("iam.orgs.create", "SUCCESS"), ("iam.users.create", "SUCCESS"),
                     ("iam.bindings.create", "SUCCESS"), ("iam.tokens.issue", "FAILURE"),
                     ("iam.tokens.issue", "SUCCESS"), ("iam.serviceaccounts.create", "SUCCESS"),
                     ("iam.orgs.create", "FAILURE")]:
        assert expected in actions
    failure = next(e for e in events if e.action == "iam.tokens.issue" and e.outcome == "FAILURE")
    assert (failure.principal, failure.client_address, failure.details["reason"]) == \
        (tenant.alice.subject, "10.7.7.7", "WRONG_SECRET")
    dumped = json.dumps([view(e) for e in events])
    for secret in (PASSWORD, admin_password, "a wrong password", created.client_secret):
        assert secret not in dumped
    recent = await iam.list_audit(root, principal=tenant.alice.subject, action="iam.tokens")
    assert [e.outcome for e in recent.items] == ["SUCCESS", "FAILURE"]  # newest first
    await fails(Code.INVALID_ARGUMENT, iam.list_audit(root, since="yesterday"), field="since")
    assert not (await iam.list_audit(root, since="2999-01-01T00:00:00Z")).items


async def test_key_rotation_keeps_old_tokens_valid_until_they_expire(iam, root, tenant, clock):
    before = await iam.issue_token(Caller(), Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    old_kid = jwt.get_unverified_header(before.access_token)["kid"]
    key = await iam.rotate_signing_key(root)
    assert key.kid != old_kid and [k["kid"] for k in iam.jwks()] == [key.kid, old_kid]
    after = await iam.issue_token(Caller(), Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    assert jwt.get_unverified_header(after.access_token)["kid"] == key.kid
    assert await iam.verify_token(before.access_token) is not None
    statuses = {k.kid: view(k, clock())["status"] for k in await iam.list_signing_keys(root)}
    assert statuses == {key.kid: "ACTIVE", old_kid: "RETIRED"}
    clock.advance(3600 + 120)  # every token the old key signed has expired: it leaves the JWK set
    assert [k["kid"] for k in iam.jwks()] == [key.kid]
    assert {k.kid: view(k, clock())["status"] for k in await iam.list_signing_keys(root)}[old_kid] == "EXPIRED"


async def test_revocations_list_a_cursor_and_only_live_tokens(iam, tenant, clock):
    assert await iam.revocations(0) == ([], 0)
    caller = await login(iam, "alice", project_id=tenant.web.id)
    revoked = await iam.revoke_token(caller)
    items, cursor = await iam.revocations(0)
    assert [r.token_id for r in items] == revoked == [caller.principal.token_id] and cursor == 1
    assert await iam.revocations(cursor) == ([], 1)
    assert (await iam.revocations(99))[0] == items  # a cursor from another store starts over
    clock.advance(3700)
    assert await iam.revocations(0) == ([], 1)  # expired tokens need no revocation
    await fails(Code.INVALID_ARGUMENT, iam.revocations(-1), field="since")


async def test_deleting_a_binding_revokes_the_access_it_gave(iam, root, tenant):
    caller = await login(iam, "alice", project_id=tenant.web.id)
    binding = (await iam.list_bindings(root, principal=tenant.alice.subject)).items[0]
    await iam.delete_binding(root, binding.id)
    assert await iam.is_revoked(caller.principal.token_id)
    assert await iam.store.count(Binding, [("principal", tenant.alice.subject)]) == 0
