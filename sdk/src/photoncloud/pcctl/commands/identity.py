"""IAM's resources: `pcctl org`, `project`, `user`, `role`, `binding`, `sa` (service accounts)."""

from __future__ import annotations

import os

import click

from photoncloud.sdk import ApiError

from ..context import output_option, state

ORG_COLUMNS = [("ID", "id"), ("NAME", "name"), ("DISPLAY_NAME", "display_name"), ("CREATED", "created_at")]
PROJECT_COLUMNS = [("ID", "id"), ("NAME", "name"), ("ORG", "org_id"), ("DISPLAY_NAME", "display_name")]
USER_COLUMNS = [("ID", "id"), ("NAME", "name"), ("EMAIL", "email"), ("ENABLED", "enabled")]
ROLE_COLUMNS = [("NAME", "name"), ("BUILTIN", "builtin"), ("PERMISSIONS", "permissions")]
BINDING_COLUMNS = [("ID", "id"), ("PRINCIPAL", "principal"), ("ROLE", "role"), ("SCOPE", "scope")]
AUDIT_COLUMNS = [("TIME", "time"), ("PRINCIPAL", "principal"), ("ACTION", "action"), ("TARGET", "target"),
                 ("OUTCOME", "outcome")]
SA_COLUMNS = [("ID", "id"), ("NAME", "name"), ("PROJECT", "project_id"), ("ENABLED", "enabled")]


def org_id(given: str) -> str:
    """An organization's ID from its ID or its name."""
    try:
        found = list(state().client.iam.orgs(name=given))
    except ApiError:  # a tenant may not list organizations: take it as an ID
        return given
    return str(found[0]["id"]) if found else given


@click.group()
def org() -> None:
    """IAM's organizations."""


@org.command("ls")
@output_option
def org_ls() -> None:
    """The organizations the token sees."""
    state().emit(list(state().client.iam.orgs()), ORG_COLUMNS)


@org.command("get")
@click.argument("org")
@output_option
def org_get(org: str) -> None:
    """One organization (by ID or name)."""
    state().emit(state().client.iam.get_org(org_id(org)))


@org.command("create")
@click.argument("name")
@click.option("--display-name", default=None)
@output_option
def org_create(name: str, display_name: str | None) -> None:
    """Create an organization (the operator's)."""
    state().emit(state().client.iam.create_org(name, display_name))


@org.command("delete")
@click.argument("org")
@output_option
def org_delete(org: str) -> None:
    """Delete an organization (by ID or name)."""
    state().emit(state().client.iam.delete_org(org_id(org)))


@click.group()
def project() -> None:
    """IAM's projects."""


@project.command("ls")
@click.option("--org", default=None, help="Only this organization's (ID or name).")
@output_option
def project_ls(org: str | None) -> None:
    """The projects the token sees."""
    state().emit(list(state().client.iam.projects(org_id(org) if org else None)), PROJECT_COLUMNS)


@project.command("get")
@click.argument("project_id")
@output_option
def project_get(project_id: str) -> None:
    """One project."""
    state().emit(state().client.iam.get_project(project_id))


@project.command("create")
@click.argument("name")
@click.option("--org", default="default", help="The organization (ID or name).")
@click.option("--display-name", default=None)
@click.option("--description", default=None)
@output_option
def project_create(name: str, org: str, display_name: str | None, description: str | None) -> None:
    """Create a project in an organization."""
    state().emit(state().client.iam.create_project(org_id(org), name, display_name, description))


@project.command("delete")
@click.argument("project_id")
@output_option
def project_delete(project_id: str) -> None:
    """Delete a project."""
    state().emit(state().client.iam.delete_project(project_id))


@click.group()
def user() -> None:
    """IAM's users (creating and deleting them is the operator's)."""


@user.command("ls")
@output_option
def user_ls() -> None:
    """The users."""
    state().emit(list(state().client.iam.users()), USER_COLUMNS)


@user.command("get")
@click.argument("user_id")
@output_option
def user_get(user_id: str) -> None:
    """One user (`me`: the signed-in one)."""
    iam = state().client.iam
    state().emit(iam.me() if user_id == "me" else iam.get_user(user_id))


@user.command("create")
@click.argument("name")
@click.option("--email", default=None)
@click.option("--display-name", default=None)
@output_option
def user_create(name: str, email: str | None, display_name: str | None) -> None:
    """Create a user; the password comes from PHOTONCLOUD_NEW_PASSWORD or a prompt."""
    password = os.environ.get("PHOTONCLOUD_NEW_PASSWORD") or click.prompt(
        "Password", hide_input=True, confirmation_prompt=True)
    state().emit(state().client.iam.create_user(name, password, email, display_name))


@user.command("delete")
@click.argument("user_id")
@output_option
def user_delete(user_id: str) -> None:
    """Delete a user."""
    state().emit(state().client.iam.delete_user(user_id))


@click.group()
def role() -> None:
    """IAM's roles."""


@role.command("ls")
@output_option
def role_ls() -> None:
    """The roles."""
    state().emit(list(state().client.iam.roles()), ROLE_COLUMNS)


@role.command("get")
@click.argument("name")
@output_option
def role_get(name: str) -> None:
    """One role."""
    state().emit(state().client.iam.get_role(name))


@role.command("create")
@click.argument("name")
@click.option("--permission", "permissions", multiple=True, required=True,
              help="A permission it grants (service:resource:action, * for any part); repeat for more.")
@click.option("--description", default=None)
@output_option
def role_create(name: str, permissions: tuple[str, ...], description: str | None) -> None:
    """Create a custom role (the operator's)."""
    state().emit(state().client.iam.create_role(name, list(permissions), description))


@role.command("delete")
@click.argument("name")
@output_option
def role_delete(name: str) -> None:
    """Delete a custom role."""
    state().emit(state().client.iam.delete_role(name))


@click.command()
@click.option("--action", default=None, help="An action (iam.users.create) or a prefix of actions (iam.users).")
@click.option("--principal", default=None, help="Who did it (user:<id>, ...).")
@click.option("--since", default=None, help="From this RFC 3339 time.")
@click.option("--until", default=None, help="Until this RFC 3339 time.")
@output_option
def audit(action: str | None, principal: str | None, since: str | None, until: str | None) -> None:
    """IAM's audit log, newest first (the operator's)."""
    params = {k: v for k, v in (("action", action), ("principal", principal), ("since", since),
                                ("until", until)) if v is not None}
    state().emit(list(state().client.iam.audit(**params)), AUDIT_COLUMNS)


@click.group()
def binding() -> None:
    """IAM's bindings: a principal's role on a scope."""


@binding.command("ls")
@output_option
def binding_ls() -> None:
    """The bindings in the token's scope."""
    state().emit(list(state().client.iam.bindings()), BINDING_COLUMNS)


@binding.command("create")
@click.option("--user", "user_id", default=None, help="The user's ID.")
@click.option("--service-account", default=None, help="The service account's ID.")
@click.option("--role", "role_name", required=True)
@click.option("--project", "project_id", default=None, help="On this project.")
@click.option("--org", "org", default=None, help="On this organization (ID or name).")
@output_option
def binding_create(user_id: str | None, service_account: str | None, role_name: str, project_id: str | None,
                   org: str | None) -> None:
    """Give a user or a service account a role on a project, an org, or (neither) the system."""
    if bool(user_id) == bool(service_account):
        raise click.UsageError("give one of --user and --service-account")
    principal = f"user:{user_id}" if user_id else f"service_account:{service_account}"
    scope = ({"type": "project", "project_id": project_id} if project_id
             else {"type": "org", "org_id": org_id(org)} if org else {"type": "system"})
    state().emit(state().client.iam.create_binding(principal, role_name, scope))


@binding.command("delete")
@click.argument("binding_id")
@output_option
def binding_delete(binding_id: str) -> None:
    """Delete a binding."""
    state().emit(state().client.iam.delete_binding(binding_id))


@click.group()
def sa() -> None:
    """IAM's service accounts."""


@sa.command("ls")
@output_option
def sa_ls() -> None:
    """The service accounts the token sees."""
    state().emit(list(state().client.iam.service_accounts()), SA_COLUMNS)


@sa.command("create")
@click.argument("name")
@click.option("-p", "--project", "project_id", default=None, help="The project (default: the signed-in one).")
@output_option
def sa_create(name: str, project_id: str | None) -> None:
    """Create a service account in a project (its secret is printed once)."""
    st = state()
    st.emit(st.client.iam.create_service_account(name, project_id=st.project(project_id)))


@sa.command("delete")
@click.argument("service_account_id")
@output_option
def sa_delete(service_account_id: str) -> None:
    """Delete a service account."""
    state().emit(state().client.iam.delete_service_account(service_account_id))


def register(root: click.Group) -> None:
    """Add IAM's groups to root."""
    for command in (org, project, user, role, binding, sa, audit):
        root.add_command(command)
