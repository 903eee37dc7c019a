"""CreditService: `pcctl wallet`, `reservation` and `quota`."""

from __future__ import annotations

import click

from ..context import output_option, state

WALLET_COLUMNS = [("PROJECT", "project_id"), ("BALANCE", "balance"), ("RESERVED", "reserved"),
                  ("AVAILABLE", "available"), ("STATUS", "status")]
TRANSACTION_COLUMNS = [("ID", "id"), ("TYPE", "type"), ("AMOUNT", "amount"), ("DESCRIPTION", "description"),
                       ("CREATED", "created_at")]
RESERVATION_COLUMNS = [("ID", "id"), ("AMOUNT", "amount"), ("STATUS", "status"), ("RESOURCE", "resource_type"),
                       ("DESCRIPTION", "description"), ("EXPIRES", "expires_at")]
QUOTA_COLUMNS = [("RESOURCE", "resource_type"), ("LIMIT", "limit"), ("USED", "used")]


@click.group()
def wallet() -> None:
    """CreditService's wallets (a project's credits)."""


@wallet.command("get")
@click.argument("project_id", required=False)
@output_option
def wallet_get(project_id: str | None) -> None:
    """A project's wallet (default: the signed-in project's)."""
    st = state()
    st.emit(st.client.credit.get_wallet(st.project(project_id)))


@wallet.command("ls")
@output_option
def wallet_ls() -> None:
    """The wallets the token sees."""
    state().emit(list(state().client.credit.wallets()), WALLET_COLUMNS)


@wallet.command("create")
@click.argument("project_id")
@click.option("--balance", "initial_balance", type=int, default=None, help="Credits to start with.")
@output_option
def wallet_create(project_id: str, initial_balance: int | None) -> None:
    """Create a project's wallet (the operator's)."""
    state().emit(state().client.credit.create_wallet(project_id, initial_balance))


@wallet.command("topup")
@click.argument("project_id")
@click.argument("amount", type=int)
@click.option("--description", default=None)
@output_option
def wallet_topup(project_id: str, amount: int, description: str | None) -> None:
    """Add AMOUNT credits to a project's wallet (the operator's)."""
    state().emit(state().client.credit.topup(project_id, amount, description))


@wallet.command("transactions")
@click.argument("project_id", required=False)
@output_option
def wallet_transactions(project_id: str | None) -> None:
    """A wallet's ledger entries."""
    st = state()
    st.emit(list(st.client.credit.transactions(st.project(project_id))), TRANSACTION_COLUMNS)


@click.group()
def reservation() -> None:
    """CreditService's reservations: credits held for a resource until committed, released or expired."""


@reservation.command("create")
@click.argument("amount", type=int)
@click.option("--project", "project_id", default=None, help="The wallet's project (default: the signed-in one).")
@click.option("--resource-type", default=None, help="What the credits are for (vm, ...): its quota is held too.")
@click.option("--description", default=None)
@click.option("--ttl", "ttl_seconds", type=int, default=None, help="Seconds until it expires unless committed.")
@output_option
def reservation_create(amount: int, project_id: str | None, resource_type: str | None, description: str | None,
                       ttl_seconds: int | None) -> None:
    """Hold AMOUNT credits of a wallet."""
    st = state()
    more = {k: v for k, v in (("resource_type", resource_type), ("description", description),
                              ("ttl_seconds", ttl_seconds)) if v is not None}
    st.emit(st.client.credit.reserve(st.project(project_id), amount, **more))


@reservation.command("ls")
@click.argument("project_id", required=False)
@click.option("--status", default=None, help="PENDING, COMMITTED, RELEASED or EXPIRED.")
@output_option
def reservation_ls(project_id: str | None, status: str | None) -> None:
    """A project's reservations."""
    st = state()
    st.emit(list(st.client.credit.reservations(st.project(project_id), status)), RESERVATION_COLUMNS)


@reservation.command("commit")
@click.argument("reservation_id")
@click.option("--actual", "actual_amount", type=int, default=None, help="What it cost (default: the amount held).")
@click.option("--resource-id", default=None, help="The resource charged for.")
@output_option
def reservation_commit(reservation_id: str, actual_amount: int | None, resource_id: str | None) -> None:
    """Charge a reservation (at most its amount) and free the rest."""
    more = {k: v for k, v in (("actual_amount", actual_amount), ("resource_id", resource_id)) if v is not None}
    state().emit(state().client.credit.commit(reservation_id, **more))


@reservation.command("release")
@click.argument("reservation_id")
@output_option
def reservation_release(reservation_id: str) -> None:
    """Give a reservation's credits back."""
    state().emit(state().client.credit.release(reservation_id))


@click.group()
def quota() -> None:
    """CreditService's quotas."""


@quota.command("ls")
@click.argument("project_id", required=False)
@output_option
def quota_ls(project_id: str | None) -> None:
    """A project's quotas."""
    st = state()
    data = st.client.credit.quotas(st.project(project_id))
    st.emit(data.get("items", []), QUOTA_COLUMNS)


@quota.command("set")
@click.argument("project_id")
@click.argument("resource_type")
@click.argument("limit", type=int)
@output_option
def quota_set(project_id: str, resource_type: str, limit: int) -> None:
    """Set a project's limit of RESOURCE_TYPE (the operator's)."""
    state().emit(state().client.credit.set_quota(project_id, resource_type, limit))


def register(root: click.Group) -> None:
    """Add wallet, reservation and quota to root."""
    for command in (wallet, reservation, quota):
        root.add_command(command)
