"""`pcctl kv` (ChainFire's keys), `pcctl sql` and `pcctl table` (FlareDB)."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from photoncloud.sdk import value_of

from ..context import output_option, state

KV_COLUMNS = [("KEY", "key"), ("VALUE", "value"), ("VERSION", "version"), ("MOD_REVISION", "mod_revision"),
              ("LEASE", "lease")]


@click.group()
def kv() -> None:
    """ChainFire's keys: in the signed-in project's keyspace (a system token: the raw keyspace)."""


@kv.command("put")
@click.argument("key")
@click.argument("value")
@click.option("--lease", type=int, default=None, help="Attach the key to this lease.")
@output_option
def kv_put(key: str, value: str, lease: int | None) -> None:
    """Write KEY = VALUE (`-`: the value is stdin's bytes)."""
    data: str | bytes = sys.stdin.buffer.read() if value == "-" else value
    state().emit(state().client.kv.put(key, data, lease=lease))


@kv.command("get")
@click.argument("key")
@click.option("--revision", type=int, default=None, help="Read the key as it was at this revision.")
@click.option("--value-only", is_flag=True, help="Print the value's bytes alone.")
@output_option
def kv_get(key: str, revision: int | None, value_only: bool) -> None:
    """Read KEY."""
    item = state().client.kv.get(key, revision=revision)
    if value_only:
        sys.stdout.buffer.write(value_of(item))
        sys.stdout.flush()
        return
    state().emit(item)


@kv.command("del")
@click.argument("key")
@click.option("--prefix", is_flag=True, help="Delete every key that starts with KEY.")
@output_option
def kv_del(key: str, prefix: bool) -> None:
    """Delete KEY (or every key under it, with --prefix): how many went."""
    state().emit(state().client.kv.delete(key, prefix=prefix or None))


@kv.command("ls")
@click.argument("prefix", default="")
@output_option
def kv_ls(prefix: str) -> None:
    """List the keys that start with PREFIX (every key without one)."""
    state().emit(list(state().client.kv.iterate(prefix or None)), KV_COLUMNS)


def parse_param(value: str) -> Any:
    """A SQL parameter: JSON when it parses as JSON (42, 1.5, null, "text"), else the text as it is."""
    try:
        return json.loads(value)
    except ValueError:
        return value


@click.command()
@click.argument("statement")
@click.option("-a", "--arg", "args", multiple=True, help="A positional parameter (`?`), JSON or text; repeatable.")
@click.option("--consistency", type=click.Choice(["none", "weak", "strong"]), default=None,
              help="Read consistency (default: the service's, weak).")
@output_option
def sql(statement: str, args: tuple[str, ...], consistency: str | None) -> None:
    """Run one SQL STATEMENT on the project's FlareDB database: a query's rows as a table, a write's
    rows_affected and last_insert_id."""
    st = state()
    data = st.client.sql.execute(statement, [parse_param(a) for a in args] or None, consistency)
    if st.output != "table":
        st.emit(data)
        return
    for result in data.get("results", []):
        if "columns" in result:
            columns = [(name.upper(), str(i)) for i, name in enumerate(result["columns"])]
            st.emit([{str(i): v for i, v in enumerate(row)} for row in result.get("rows", [])], columns)
        else:
            st.emit(result)


@click.group()
def table() -> None:
    """FlareDB's tables."""


@table.command("ls")
@output_option
def table_ls() -> None:
    """The project's tables."""
    state().emit(list(state().client.sql.tables()), [("NAME", "name"), ("ROWS", "row_count")])


@table.command("get")
@click.argument("name")
@output_option
def table_get(name: str) -> None:
    """One table: its columns and indexes."""
    state().emit(state().client.sql.table(name))


def register(root: click.Group) -> None:
    """Add kv, sql and table to root."""
    for command in (kv, sql, table):
        root.add_command(command)
