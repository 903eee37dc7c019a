"""`pcctl kv` (ChainFire's keys), `pcctl sql` and `pcctl table` (FlareDB)."""

from __future__ import annotations

import json
import os
import sys
from typing import Any

import click

from photoncloud.sdk import value_of

from ..context import named_project, output_option, project_option, state

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


@click.group()
def lease() -> None:
    """ChainFire's leases: keys put with --lease go when their lease is revoked or expires."""


@lease.command("grant")
@click.argument("ttl", type=int)
@output_option
def lease_grant(ttl: int) -> None:
    """Grant a lease of TTL seconds (its id is what `kv put --lease` takes)."""
    state().emit(state().client.kv.grant_lease(ttl))


@lease.command("ls")
@output_option
def lease_ls() -> None:
    """The leases of the keyspace."""
    state().emit(list(state().client.kv.leases()), [("ID", "id"), ("TTL", "ttl"), ("GRANTED_TTL", "granted_ttl")])


@lease.command("get")
@click.argument("lease_id", type=int)
@output_option
def lease_get(lease_id: int) -> None:
    """A lease's seconds left and its keys."""
    state().emit(state().client.kv.lease(lease_id, keys=True))


@lease.command("keepalive")
@click.argument("lease_id", type=int)
@output_option
def lease_keepalive(lease_id: int) -> None:
    """Start a lease's ttl over."""
    state().emit(state().client.kv.keepalive(lease_id))


@lease.command("revoke")
@click.argument("lease_id", type=int)
@output_option
def lease_revoke(lease_id: int) -> None:
    """Revoke a lease, deleting its keys."""
    state().emit(state().client.kv.revoke_lease(lease_id))


@click.group()
def cluster() -> None:
    """ChainFire's Raft cluster (the operator's)."""


@cluster.command("status")
@output_option
def cluster_status() -> None:
    """This member: its role, the leader, Raft term and index, the revision."""
    state().emit(state().client.kv.status())


@cluster.command("members")
@output_option
def cluster_members() -> None:
    """The members, where clients reach them, which one leads."""
    data = state().client.kv.members()
    state().emit(data.get("members", data), [("ID", "id"), ("PEER", "peer_address"), ("CLIENT_URLS", "client_urls"),
                                             ("LEADER", "is_leader")])


@click.command()
@click.argument("statement")
@click.option("-a", "--arg", "args", multiple=True, help="A positional parameter (`?`), JSON or text; repeatable.")
@click.option("--consistency", type=click.Choice(["none", "weak", "strong"]), default=None,
              help="Read consistency (default: the service's, weak).")
@project_option
@output_option
def sql(statement: str, args: tuple[str, ...], consistency: str | None, project: str | None) -> None:
    """Run one SQL STATEMENT on the project's FlareDB database: a query's rows as a table, a write's
    rows_affected and last_insert_id."""
    st = state()
    data = st.client.sql.execute(statement, [parse_param(a) for a in args] or None, consistency,
                                 named_project(project))
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
@project_option
@output_option
def table_ls(project: str | None) -> None:
    """The project's tables."""
    state().emit(list(state().client.sql.tables(named_project(project))), [("NAME", "name"), ("ROWS", "row_count")])


@table.command("get")
@click.argument("name")
@project_option
@output_option
def table_get(name: str, project: str | None) -> None:
    """One table: its columns and indexes."""
    state().emit(state().client.sql.table(name, named_project(project)))


@click.group()
def db() -> None:
    """FlareDB's key-value namespaces, and backups of the project's database."""


@db.command("ns-create")
@click.argument("name")
@click.option("--mode", type=click.Choice(["strong", "eventual"]), default="strong",
              help="strong: through the Raft log; eventual: faster, may lag.")
@project_option
@output_option
def db_ns_create(name: str, mode: str, project: str | None) -> None:
    """Create a key-value namespace."""
    state().emit(state().client.sql.create_namespace(name, mode, named_project(project)))


@db.command("ns-ls")
@project_option
@output_option
def db_ns_ls(project: str | None) -> None:
    """The project's key-value namespaces."""
    state().emit(list(state().client.sql.namespaces(named_project(project))), [("NAME", "name"), ("MODE", "mode")])


@db.command("put")
@click.argument("namespace")
@click.argument("key")
@click.argument("value")
@project_option
@output_option
def db_put(namespace: str, key: str, value: str, project: str | None) -> None:
    """Write KEY = VALUE in an eventual NAMESPACE (a strong one is written with `db cas`)."""
    state().emit(state().client.sql.kv_put(namespace, key, value, named_project(project)))


@db.command("cas")
@click.argument("namespace")
@click.argument("key")
@click.argument("value", required=False)
@click.option("--expected-version", type=int, required=True, help="The key's version now (0: it must not exist).")
@click.option("--delete", is_flag=True, help="Delete the key instead of writing VALUE.")
@project_option
@output_option
def db_cas(namespace: str, key: str, value: str | None, expected_version: int, delete: bool,
           project: str | None) -> None:
    """Write KEY = VALUE (or delete KEY) in NAMESPACE if its version is --expected-version; exit 3 when
    it is not (the answer shows the key's current version and value)."""
    if (value is None) != delete:
        raise click.UsageError("give VALUE, or --delete")
    result = state().client.sql.kv_cas(namespace, key, expected_version, value, delete or None,
                                       named_project(project))
    state().emit(result)
    if not result.get("succeeded"):
        raise click.exceptions.Exit(3)


@db.command("get")
@click.argument("namespace")
@click.argument("key")
@project_option
@output_option
def db_get(namespace: str, key: str, project: str | None) -> None:
    """Read KEY of NAMESPACE."""
    state().emit(state().client.sql.kv_get(namespace, key, named_project(project)))


@db.command("del")
@click.argument("namespace")
@click.argument("key")
@project_option
@output_option
def db_del(namespace: str, key: str, project: str | None) -> None:
    """Delete KEY of NAMESPACE."""
    state().emit(state().client.sql.kv_delete(namespace, key, named_project(project)))


@db.command("scan")
@click.argument("namespace")
@click.option("--start", default=None, help="The first key (default: the namespace's first).")
@click.option("--end", default=None, help="The key the scan stops before.")
@click.option("--limit", type=int, default=None)
@project_option
@output_option
def db_scan(namespace: str, start: str | None, end: str | None, limit: int | None, project: str | None) -> None:
    """The keys of NAMESPACE in [--start, --end)."""
    data = state().client.sql.kv_scan(namespace, start, end, limit, named_project(project))
    state().emit(data.get("items", data), [("KEY", "key"), ("VALUE", "value")])


@db.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, writable=True))
@click.option("-p", "--project", default=None, help="The project (an operator's token names it).")
def db_backup(file: str, project: str | None) -> None:
    """Save the project's whole database (tables and namespaces) to FILE, a SQLite file (mode 0600)."""
    data = state().client.sql.backup(named_project(project))
    with os.fdopen(os.open(file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "wb") as f:
        f.write(data)
    click.echo(f"{len(data)} bytes written to {file}", err=True)


@db.command("restore")
@click.argument("file", type=click.File("rb"))
@click.option("-p", "--project", default=None, help="The project (an operator's token names it).")
@output_option
def db_restore(file: Any, project: str | None) -> None:
    """Replace the project's database with FILE, a SQLite file (flaredb:sql:manage)."""
    state().emit(state().client.sql.restore(file.read(), named_project(project)))


def register(root: click.Group) -> None:
    """Add kv, lease, cluster, sql, table and db to root."""
    for command in (kv, lease, cluster, sql, table, db):
        root.add_command(command)
