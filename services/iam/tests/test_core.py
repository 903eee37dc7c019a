"""The IAM core on an in-memory store: identities, roles, bindings, scopes, tokens, throttling, audit."""

from __future__ import annotations

import json

import jwt
import pytest

from photoncloud.common.auth import AUDIENCE, Verifier
from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.protojson import to_json
from photoncloud.iam.core import (
    AuditEvent,
    Binding,
    Caller,
    Grant,
    Question,
    User,
)
from photoncloud.iam import convert

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


async def test_a_refresh_within_its_session_cannot_widen_it_but_may_narrow_it(iam, root, tenant):
    anonymous = Caller(address="10.0.0.4")
    await iam.create_binding(root, tenant.alice.subject, "viewer", "org", org_id=tenant.org.id)
    first = await iam.issue_token(anonymous, Grant("password", "alice", PASSWORD, project_id=tenant.web.id))
    for wider in ({"org_id": tenant.org.id}, {"project_id": tenant.db.id}, {"system": True}):
        await fails(Code.PERMISSION_DENIED, iam.issue_token(anonymous, Grant(
            "refresh_token", refresh_token=first.refresh_token, within_session=True, **wider)),
            reason="SCOPE_BEYOND_SESSION")
    kept = await iam.issue_token(anonymous, Grant("refresh_token", refresh_token=first.refresh_token,
                                                  within_session=True, project_id=tenant.web.id))
    assert kept.scope.project_id == tenant.web.id  # the refusals used nothing up
    org = await iam.issue_token(anonymous, Grant("password", "alice", PASSWORD, org_id=tenant.org.id))
    narrowed = await iam.issue_token(anonymous, Grant("refresh_token", refresh_token=org.refresh_token,
                                                      within_session=True, project_id=tenant.db.id))
    assert (narrowed.scope.kind, narrowed.scope.project_id, narrowed.roles) == ("project", tenant.db.id, ("viewer",))


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
    assert not {"secret_hash", "client_secret"} & set(to_json(convert.service_account(account)))
    assert account.project_id == tenant.web.id
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
    dumped = json.dumps([to_json(convert.audit_event(e)) for e in events])
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
    statuses = {k.kid: convert.signing_key(k, clock()).status for k in await iam.list_signing_keys(root)}
    assert statuses == {key.kid: "ACTIVE", old_kid: "RETIRED"}
    clock.advance(3600 + 120)  # every token the old key signed has expired: it leaves the JWK set
    assert [k["kid"] for k in iam.jwks()] == [key.kid]
    keys = await iam.list_signing_keys(root)
    assert {k.kid: convert.signing_key(k, clock()).status for k in keys}[old_kid] == "EXPIRED"


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


# --- no path up: managing a principal never yields more than the caller holds ---------------------


OUTRANKS = "PRINCIPAL_OUTRANKS_CALLER"


async def client_token(iam, client_id: str, secret: str, **scope):
    """A client_credentials token of a service account."""
    return await iam.issue_token(Caller(address="10.0.0.9"), Grant("client_credentials", client_id=client_id,
                                                                   client_secret=secret, **scope))


@pytest.fixture
async def operator_sa(iam, root):
    """In org `default`: the node agent's account, bound on the system (and viewer on the org), the
    operator's user sysop (system viewer, member on the default project), and dora, the org's admin,
    signed in on the org."""
    org_id, project_id = iam.bootstrapped.org_id, iam.bootstrapped.project_id
    await iam.create_role(root, "node-agent", ["k8shost:nodes:write", "k8shost:pods:read"])
    made = await iam.create_service_account(root, org_id, "k8shost-agent-node1")
    agent = made.service_account
    await iam.create_binding(root, agent.subject, "node-agent", "system")
    in_org = await iam.create_binding(root, agent.subject, "viewer", "org", org_id=org_id)
    sysop = await iam.create_user(root, "sysop", PASSWORD)
    await iam.create_binding(root, sysop.subject, "viewer", "system")
    sysop_member = await iam.create_binding(root, sysop.subject, "member", "project", project_id=project_id)
    dora = await iam.create_user(root, "dora", PASSWORD)
    await iam.create_binding(root, dora.subject, "admin", "org", org_id=org_id)
    return type("Operator", (), dict(org_id=org_id, project_id=project_id, agent=agent, secret=made.client_secret,
                                     agent_in_org=in_org, sysop=sysop, sysop_member=sysop_member,
                                     dora=await login(iam, "dora", org_id=org_id)))


async def test_an_org_admin_cannot_take_over_or_switch_off_a_system_bound_account(iam, root, operator_sa):
    op, dora = operator_sa, operator_sa.dora
    denied = await fails(Code.PERMISSION_DENIED, iam.rotate_secret(dora, op.agent.id), reason=OUTRANKS)
    assert denied.details["principal"] == op.agent.subject
    await fails(Code.PERMISSION_DENIED, iam.update_service_account(dora, op.agent.id, {"enabled": False}),
                reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, iam.update_service_account(dora, op.agent.id, {"name": "mine"}),
                reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, iam.delete_service_account(dora, op.agent.id), reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(dora, op.agent.subject, "admin", "org",
                                                           org_id=op.org_id), reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, iam.delete_binding(dora, op.agent_in_org.id), reason=OUTRANKS)
    # Nothing changed: the agent's secret still signs it in on the system, with the same bindings.
    issued = await client_token(iam, op.agent.id, op.secret)
    assert (issued.scope.kind, issued.roles) == ("system", ("node-agent",))
    assert (await iam.get_service_account(root, op.agent.id)).name == "k8shost-agent-node1"
    assert len((await iam.list_bindings(root, principal=op.agent.subject)).items) == 2
    events = (await iam.list_audit(root, action="iam.serviceaccounts.rotate_secret")).items
    assert [(e.outcome, e.details["reason"]) for e in events] == [("FAILURE", OUTRANKS)]
    # The operator manages it as before.
    rotated = await iam.rotate_secret(root, op.agent.id)
    assert (await client_token(iam, op.agent.id, rotated.client_secret)).scope.kind == "system"


async def test_an_org_admin_cannot_bind_or_unbind_a_system_bound_user(iam, root, operator_sa):
    op, dora = operator_sa, operator_sa.dora
    await fails(Code.PERMISSION_DENIED, iam.create_binding(dora, op.sysop.subject, "viewer", "project",
                                                           project_id=op.project_id), reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, iam.delete_binding(dora, op.sysop_member.id), reason=OUTRANKS)
    assert {b.role for b in (await iam.list_bindings(root, principal=op.sysop.subject)).items} == \
        {"viewer", "member"}


async def test_a_principal_bound_in_another_tenant_is_out_of_reach(iam, root, tenant, operator_sa):
    op, dora = operator_sa, operator_sa.dora
    # bob is acme's admin: org default's admin may not bind him, nor he touch default's accounts.
    await fails(Code.PERMISSION_DENIED, iam.create_binding(dora, tenant.bob.subject, "viewer", "org",
                                                           org_id=op.org_id), reason=OUTRANKS)
    made = await iam.create_service_account(root, op.org_id, "shared")
    await iam.create_binding(root, made.service_account.subject, "viewer", "project", project_id=tenant.web.id)
    await fails(Code.PERMISSION_DENIED, iam.rotate_secret(dora, made.service_account.id), reason=OUTRANKS)
    # A project's token reaches neither the org's bindings nor another project's.
    await iam.create_binding(root, tenant.alice.subject, "admin", "project", project_id=tenant.web.id)
    alice = await login(iam, "alice", project_id=tenant.web.id)
    web_only = await iam.create_user(root, "wendy", PASSWORD)
    await iam.create_binding(root, web_only.subject, "viewer", "project", project_id=tenant.db.id)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(alice, web_only.subject, "viewer", "project",
                                                           project_id=tenant.web.id), reason=OUTRANKS)


async def test_managing_an_account_never_hands_over_permissions_the_caller_lacks(iam, root, tenant):
    await iam.create_role(root, "keeper", ["iam:serviceaccounts:manage", "iam:serviceaccounts:read",
                                           "iam:bindings:manage", "compute:*:read"])
    await iam.create_role(root, "compute-reader", ["compute:instances:read"])
    keeper = await iam.create_user(root, "keeper", PASSWORD)
    await iam.create_binding(root, keeper.subject, "keeper", "org", org_id=tenant.org.id)
    caller = await login(iam, "keeper", org_id=tenant.org.id)
    strong = (await iam.create_service_account(root, tenant.org.id, "strong")).service_account
    await iam.create_binding(root, strong.subject, "admin", "project", project_id=tenant.web.id)
    denied = await fails(Code.PERMISSION_DENIED, iam.rotate_secret(caller, strong.id), reason=OUTRANKS)
    assert denied.details["permissions"] == ["*"]
    await fails(Code.PERMISSION_DENIED, iam.delete_service_account(caller, strong.id), reason=OUTRANKS)
    weak = (await iam.create_service_account(caller, tenant.org.id, "weak")).service_account
    await iam.create_binding(caller, weak.subject, "compute-reader", "project", project_id=tenant.web.id)
    rotated = await iam.rotate_secret(caller, weak.id)
    assert (await client_token(iam, weak.id, rotated.client_secret, project_id=tenant.web.id)).roles == \
        ("compute-reader",)


async def test_a_project_admin_cannot_bind_a_role_beyond_its_own(iam, root, tenant):
    await iam.create_role(root, "web-admin", ["iam:bindings:manage", "iam:bindings:read",
                                              "compute:instances:read", "compute:instances:write"])
    await iam.create_role(root, "compute-writer", ["compute:instances:write"])
    pam = await iam.create_user(root, "pam", PASSWORD)
    await iam.create_binding(root, pam.subject, "web-admin", "project", project_id=tenant.web.id)
    caller = await login(iam, "pam", project_id=tenant.web.id)
    newcomer = await iam.create_user(root, "newcomer", PASSWORD)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(caller, newcomer.subject, "admin", "project",
                                                           project_id=tenant.web.id), reason="ROLE_EXCEEDS_CALLER")
    denied = await fails(Code.PERMISSION_DENIED, iam.create_binding(caller, newcomer.subject, "member", "project",
                                                                    project_id=tenant.web.id))
    assert denied.details == {"reason": "ROLE_EXCEEDS_CALLER", "permissions": ["*:*:read", "*:*:write"]}
    for scope in ({"scope_type": "org", "org_id": tenant.org.id},
                  {"scope_type": "project", "project_id": tenant.db.id},
                  {"scope_type": "system"}):
        await fails(Code.PERMISSION_DENIED, iam.create_binding(caller, newcomer.subject, "compute-writer", **scope))
    assert not (await iam.list_bindings(root, principal=newcomer.subject)).items
    made = await iam.create_binding(caller, newcomer.subject, "compute-writer", "project", project_id=tenant.web.id)
    assert [b.id for b in (await iam.list_bindings(root, principal=newcomer.subject)).items] == [made.id]
    await iam.delete_binding(caller, made.id)


async def test_an_org_admin_still_runs_its_own_orgs_plain_accounts(iam, root, operator_sa):
    op, dora = operator_sa, operator_sa.dora
    made = await iam.create_service_account(dora, op.org_id, "builder")
    account = made.service_account
    binding = await iam.create_binding(dora, account.subject, "member", "project", project_id=op.project_id)
    assert (await client_token(iam, account.id, made.client_secret, project_id=op.project_id)).roles == ("member",)
    rotated = await iam.rotate_secret(dora, account.id)
    await fails(Code.UNAUTHENTICATED, client_token(iam, account.id, made.client_secret, project_id=op.project_id))
    await client_token(iam, account.id, rotated.client_secret, project_id=op.project_id)
    assert (await iam.update_service_account(dora, account.id, {"display_name": "Builder"})).display_name == "Builder"
    assert not (await iam.update_service_account(dora, account.id, {"enabled": False})).enabled
    await iam.update_service_account(dora, account.id, {"enabled": True})
    await iam.delete_binding(dora, binding.id)
    await iam.create_binding(dora, account.subject, "viewer", "org", org_id=op.org_id)
    assert (await iam.delete_service_account(dora, account.id)).deleted_bindings == 1
    # And users bound only inside the org.
    member = await iam.create_user(root, "member1", PASSWORD)
    bound = await iam.create_binding(dora, member.subject, "viewer", "project", project_id=op.project_id)
    await iam.delete_binding(dora, bound.id)


async def test_a_service_account_gets_tokens_only_where_it_is_bound(iam, root, tenant):
    other = await iam.create_org(root, "other")
    made = await iam.create_service_account(root, tenant.org.id, "reader", project_id=tenant.web.id)
    account = made.service_account
    await iam.create_binding(root, account.subject, "viewer", "project", project_id=tenant.web.id)
    for scope in ({}, {"org_id": tenant.org.id}, {"project_id": tenant.db.id}, {"org_id": other.id}):
        await fails(Code.PERMISSION_DENIED, client_token(iam, account.id, made.client_secret, **scope),
                    reason="NO_ROLE_ON_SCOPE")
    issued = await client_token(iam, account.id, made.client_secret, project_id=tenant.web.id)
    assert (issued.scope.project_id, issued.roles) == (tenant.web.id, ("viewer",))
    # Nor can another tenant's admin pull it in: it is bound in acme, outside org other.
    eve = await iam.create_user(root, "eve", PASSWORD)
    await iam.create_binding(root, eve.subject, "admin", "org", org_id=other.id)
    eve = await login(iam, "eve", org_id=other.id)
    await fails(Code.PERMISSION_DENIED, iam.create_binding(eve, account.subject, "admin", "org", org_id=other.id),
                reason=OUTRANKS)
    await fails(Code.PERMISSION_DENIED, client_token(iam, account.id, made.client_secret, org_id=other.id),
                reason="NO_ROLE_ON_SCOPE")
