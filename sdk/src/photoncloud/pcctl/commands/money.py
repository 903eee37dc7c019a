"""CreditService: `pcctl wallet` and `quota`."""

from __future__ import annotations

import click

from ..context import output_option, state

WALLET_COLUMNS = [("PROJECT", "project_id"), ("BALANCE", "balance"), ("RESERVED", "reserved"),
                  ("AVAILABLE", "available"), ("STATUS", "status")]
TRANSACTION_COLUMNS = [("ID", "id"), ("TYPE", "type"), ("AMOUNT", "amount"), ("DESCRIPTION", "description"),
                       ("CREATED", "created_at")]
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
    """Add wallet and quota to root."""
    for command in (wallet, quota):
        root.add_command(command)
