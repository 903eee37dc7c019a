"""IAM's state on the log: it survives a restart, and the same commands give the same state anywhere."""

from __future__ import annotations

import sqlite3
from typing import Any

from argon2 import PasswordHasher

from photoncloud.common.errors import Code, ServiceError
from photoncloud.common.replication import LocalLog
from photoncloud.iam.commands import Commit, Expect, Insert
from photoncloud.iam.core import Caller, Grant, IamCore, Settings
from photoncloud.iam.credentials import SecretHasher
from photoncloud.iam.machine import IamStateMachine
from photoncloud.iam.records import Meta, Organization, Project, User
from photoncloud.iam.store import SqliteIamStore

PASSWORD = "a long enough password"


class RecordingLog(LocalLog):
    """A log of one member that keeps every command proposed to it."""

    def __init__(self, machine: IamStateMachine):
        super().__init__(machine)
        self.commands: list[Any] = []

    async def propose(self, command: Any) -> Any:
        self.commands.append(command)
        return await super().propose(command)


def dump(store: SqliteIamStore) -> dict[str, list[tuple]]:
    """Every row of every table, in order: the whole state."""
    tables = [row[0] for row in store.db.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: [tuple(row) for row in store.db.execute(f"SELECT * FROM {t} ORDER BY rowid")] for t in tables}


async def admin_of(core: IamCore, make_principal) -> Caller:
    """The bootstrap admin, on a system-scoped token."""
    (admin,) = await core.store.find(User, [("name", "admin")])
    return Caller(make_principal(f"user:{admin.id}"), "127.0.0.1")


async def test_state_survives_a_restart_through_the_log(start, tmp_path, make_principal):
    running = await start(tmp_path / "iam")
    try:
        core = running.iam
        root = await admin_of(core, make_principal)
        org = await core.create_org(root, "acme")
        project = await core.create_project(root, org.id, "web")
        user = await core.create_user(root, "alice", PASSWORD)
        await core.create_binding(root, user.subject, "member", "project", project_id=project.id)
        applied = await core.log.read(core.state.applied_index)
        assert applied > 0  # the writes went through the log
    finally:
        await running.stop()

    again = await start(tmp_path / "iam")
    try:
        core = again.iam
        root = await admin_of(core, make_principal)
        assert (await core.get_org(root, org.id)).name == "acme"
        assert await core.get_project(root, project.id) == project
        assert await core.get_user(root, user.id) == user
        assert await core.log.read(core.state.applied_index) >= applied  # nothing was applied twice
        token = await core.issue_token(Caller(address="127.0.0.1"),
                                       Grant("password", username="alice", password=PASSWORD, project_id=project.id))
        assert token.roles == ("member",)
    finally:
        await again.stop()


async def run_scenario(core: IamCore, make_principal, admin_password: str) -> None:
    """Most kinds of change IAM makes, a refused one among them."""
    await core.start()
    await core.bootstrap(admin_password)
    root = await admin_of(core, make_principal)
    org = await core.create_org(root, "acme", "Acme", "a tenant")
    project = await core.create_project(root, org.id, "web")
    user = await core.create_user(root, "alice", PASSWORD, email="alice@example.com")
    await core.create_role(root, "deployer", ["compute:instances:create", "compute:instances:read"])
    binding = await core.create_binding(root, user.subject, "deployer", "project", project_id=project.id)
    credentials = await core.create_service_account(root, org.id, "ci", project_id=project.id)
    await core.create_binding(root, credentials.service_account.subject, "viewer", "org", org_id=org.id)
    anyone = Caller(address="127.0.0.1")
    issued = await core.issue_token(anyone, Grant("password", username="alice", password=PASSWORD,
                                                  project_id=project.id))
    await core.issue_token(anyone, Grant("refresh_token", refresh_token=issued.refresh_token))
    await core.issue_token(anyone, Grant("client_credentials", client_id=credentials.service_account.id,
                                         client_secret=credentials.client_secret, org_id=org.id))
    try:
        await core.create_org(root, "acme")
    except ServiceError as exc:
        assert exc.code is Code.ALREADY_EXISTS
    await core.update_user(root, user.id, {"display_name": "Alice"})
    await core.rotate_signing_key(root)
    await core.delete_binding(root, binding.id)
    await core.rotate_secret(root, credentials.service_account.id)
    await core.set_password(root, user.id, PASSWORD + "!")


async def test_the_same_commands_give_the_same_state(clock, make_principal, admin_password):
    store = SqliteIamStore(":memory:")
    log = RecordingLog(IamStateMachine(store))
    hasher = SecretHasher(PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1))  # cheap: a fast test
    core = IamCore(store, Settings(), hasher, clock=clock, monotonic=clock.monotonic, log=log)
    try:
        await run_scenario(core, make_principal, admin_password)
    finally:
        await core.close()
    commands = log.commands
    assert len(commands) > 15 and all(isinstance(c, Commit) for c in commands)

    # Applied one by one on one member and in a single batch on another: the same results, the same state.
    one, other = SqliteIamStore(":memory:"), SqliteIamStore(":memory:")
    entries = list(enumerate(commands, 1))
    singly = [IamStateMachine(one).apply(index, command) for index, command in entries]
    together = IamStateMachine(other).apply_batch(entries)
    assert [repr(r) for r in singly] == [repr(r) for r in together]
    assert any(isinstance(r, ServiceError) and r.code is Code.ALREADY_EXISTS for r in singly)
    assert dump(one) == dump(other) == dump(store)
    assert one.applied_index() == len(commands)
    for s in (store, one, other):
        await s.close()


def test_a_command_decided_on_an_old_state_is_aborted():
    store = SqliteIamStore(":memory:")
    machine = IamStateMachine(store)
    org = Organization("org-1", "acme", "", "", 1.0, 1.0)
    assert machine.apply(1, Commit((Insert(org),))) == [1]
    project = Project("proj-1", org.id, "web", "", "", 2.0, 2.0)
    stale = Commit((Insert(project),), None, (Expect(Organization, org.id, None),))
    refused = machine.apply(2, stale)
    assert isinstance(refused, ServiceError) and refused.code is Code.ABORTED
    assert store.get(Project, project.id) is None and store.applied_index() == 2


def test_a_store_from_before_the_log_opens_and_counts_its_commands(tmp_path):
    # IAM's own meta table kept its values as text; the applied index lands there too.
    path = tmp_path / "iam.sqlite3"
    old = sqlite3.connect(path)
    old.execute("CREATE TABLE meta (name TEXT PRIMARY KEY, value TEXT NOT NULL)")
    old.execute("INSERT INTO meta VALUES ('bootstrapped', '2026-01-01T00:00:00Z')")
    old.commit()
    old.close()
    store = SqliteIamStore(path)
    machine = IamStateMachine(store)
    assert machine.applied_index() == 0
    assert machine.apply(1, Commit((Insert(Organization("org-1", "acme", "", "", 1.0, 1.0)),))) == [1]
    assert machine.applied_index() == 1
    assert store.get(Meta, "bootstrapped").value == "2026-01-01T00:00:00Z"
    store.db.close()
