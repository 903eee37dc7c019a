"""CreditService's store: the ledger, wallets, reservations, quotas and idempotency records in SQLite.

The state machine is the only writer (see photoncloud.common.sqlite for durability). Wallet
balances are kept next to the ledger for fast reads; the audit recomputes them from the postings.
"""

from __future__ import annotations

from typing import Any

from photoncloud.common.sqlite import SqliteState

from .records import (Posting, Quota, Reservation, ReservationStatus, Transaction, TransactionType, Wallet,
                      WalletStatus)

SCHEMA = """
CREATE TABLE IF NOT EXISTS wallets (
    project_id TEXT PRIMARY KEY,
    org_id TEXT NOT NULL,
    status TEXT NOT NULL,
    balance INTEGER NOT NULL,
    reserved INTEGER NOT NULL CHECK (reserved >= 0 AND reserved <= balance),
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS transactions (
    id INTEGER PRIMARY KEY,
    project_id TEXT NOT NULL,
    type TEXT NOT NULL,
    amount INTEGER NOT NULL,
    description TEXT NOT NULL,
    reservation_id TEXT NOT NULL,
    balance_after INTEGER NOT NULL,
    reserved_after INTEGER NOT NULL,
    created_at REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS transactions_by_project ON transactions (project_id, id);
CREATE TABLE IF NOT EXISTS postings (
    transaction_id INTEGER NOT NULL REFERENCES transactions (id),
    account TEXT NOT NULL,
    amount INTEGER NOT NULL,
    PRIMARY KEY (transaction_id, account)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reservations (
    id TEXT PRIMARY KEY,
    project_id TEXT NOT NULL,
    amount INTEGER NOT NULL,
    description TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    quantity INTEGER NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    resolved_at REAL NOT NULL,
    actual_amount INTEGER NOT NULL,
    resource_id TEXT NOT NULL,
    reason TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS reservations_by_project ON reservations (project_id, created_at, id);
CREATE INDEX IF NOT EXISTS pending_by_deadline ON reservations (expires_at) WHERE status = 'PENDING';
CREATE TABLE IF NOT EXISTS quotas (
    project_id TEXT NOT NULL,
    resource_type TEXT NOT NULL,
    quota_limit INTEGER NOT NULL,
    usage INTEGER NOT NULL CHECK (usage >= 0),
    updated_at REAL NOT NULL,
    PRIMARY KEY (project_id, resource_type)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS idempotency (
    subject TEXT NOT NULL,
    key TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    result BLOB NOT NULL,
    created_at REAL NOT NULL,
    PRIMARY KEY (subject, key)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS idempotency_by_age ON idempotency (created_at);
"""

_WALLET = "project_id, org_id, status, balance, reserved, created_at, updated_at"
_RESERVATION = ("id, project_id, amount, description, resource_type, quantity, status, created_at, expires_at, "
                "resolved_at, actual_amount, resource_id, reason")
_TRANSACTION = "id, project_id, type, amount, description, reservation_id, balance_after, reserved_after, created_at"


def _wallet(row: tuple[Any, ...]) -> Wallet:
    return Wallet(row[0], row[1], WalletStatus(row[2]), *row[3:])


def _reservation(row: tuple[Any, ...]) -> Reservation:
    id, project_id, amount, description, resource_type, quantity, status, *resolution = row
    return Reservation(id, project_id, amount, description, resource_type, quantity, ReservationStatus(status),
                       *resolution)


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


class SqliteCreditStore(SqliteState):
    """The store on one SQLite file (":memory:" for tests)."""

    SCHEMA = SCHEMA

    # Wallets

    def wallet(self, project_id: str) -> Wallet | None:
        """A project's wallet."""
        row = self.db.execute(f"SELECT {_WALLET} FROM wallets WHERE project_id = ?", (project_id,)).fetchone()
        return _wallet(row) if row else None

    def wallets(self, after: str, limit: int, org_id: str = "", project_id: str = "") -> list[Wallet]:
        """Wallets by project id after `after`, optionally of one org or one project."""
        rows = self.db.execute(
            f"SELECT {_WALLET} FROM wallets WHERE project_id > ? AND (? = '' OR org_id = ?)"
            " AND (? = '' OR project_id = ?) ORDER BY project_id LIMIT ?",
            (after, org_id, org_id, project_id, project_id, limit)).fetchall()
        return [_wallet(row) for row in rows]

    def save_wallet(self, wallet: Wallet) -> None:
        """Insert or replace a wallet."""
        self.db.execute(f"INSERT OR REPLACE INTO wallets ({_WALLET}) VALUES (?, ?, ?, ?, ?, ?, ?)",
                        (wallet.project_id, wallet.org_id, wallet.status.value, wallet.balance, wallet.reserved,
                         wallet.created_at, wallet.updated_at))

    # The ledger

    def add_transaction(self, project_id: str, type: TransactionType, amount: int, description: str,
                        reservation_id: str, postings: tuple[Posting, ...], wallet: Wallet, now: float) -> Transaction:
        """Append a transaction and its postings; the wallet is as it stands after it."""
        cursor = self.db.execute(
            "INSERT INTO transactions (project_id, type, amount, description, reservation_id, balance_after,"
            " reserved_after, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            (project_id, type.value, amount, description, reservation_id, wallet.balance, wallet.reserved, now))
        transaction_id = cursor.lastrowid
        if transaction_id is None:  # sqlite3 sets it after every INSERT
            raise RuntimeError("the transaction was not given an id")
        self.db.executemany("INSERT INTO postings (transaction_id, account, amount) VALUES (?, ?, ?)",
                            [(transaction_id, p.account, p.amount) for p in postings])
        return Transaction(transaction_id, project_id, type, amount, description, reservation_id, postings,
                           wallet.balance, wallet.reserved, now)

    def transactions(self, project_id: str, before: int, limit: int, type: str = "", reservation_id: str = "",
                     since: float = 0.0, until: float = 0.0) -> list[Transaction]:
        """A project's transactions, newest first, with ids below `before` (0: from the newest)."""
        rows = self.db.execute(
            f"SELECT {_TRANSACTION} FROM transactions WHERE project_id = ? AND (? = 0 OR id < ?)"
            " AND (? = '' OR type = ?) AND (? = '' OR reservation_id = ?)"
            " AND created_at >= ? AND (? = 0 OR created_at < ?) ORDER BY id DESC LIMIT ?",
            (project_id, before, before, type, type, reservation_id, reservation_id, since, until, until, limit),
        ).fetchall()
        postings: dict[int, list[Posting]] = {}
        if rows:
            marks = ",".join("?" * len(rows))
            for tid, account, amount in self.db.execute(
                    f"SELECT transaction_id, account, amount FROM postings WHERE transaction_id IN ({marks})"
                    " ORDER BY transaction_id, account", [r[0] for r in rows]):
                postings.setdefault(tid, []).append(Posting(account, amount))
        return [Transaction(r[0], r[1], TransactionType(r[2]), r[3], r[4], r[5], tuple(postings.get(r[0], ())),
                            *r[6:]) for r in rows]

    def account_sums(self) -> dict[str, int]:
        """Every account's balance, summed from the postings."""
        return dict(self.db.execute("SELECT account, SUM(amount) FROM postings GROUP BY account"))

    def unbalanced_transactions(self) -> list[int]:
        """Transactions whose postings do not sum to zero (there must be none)."""
        return [row[0] for row in self.db.execute(
            "SELECT t.id FROM transactions t LEFT JOIN postings p ON p.transaction_id = t.id"
            " GROUP BY t.id HAVING COALESCE(SUM(p.amount), 0) != 0 OR COUNT(p.account) = 0")]

    def count_transactions(self) -> int:
        """How many transactions the ledger holds."""
        return int(self.db.execute("SELECT COUNT(*) FROM transactions").fetchone()[0])

    def all_wallets(self) -> list[Wallet]:
        """Every wallet."""
        return [_wallet(row) for row in self.db.execute(f"SELECT {_WALLET} FROM wallets ORDER BY project_id")]

    # Reservations

    def reservation(self, id: str) -> Reservation | None:
        """A reservation by id."""
        row = self.db.execute(f"SELECT {_RESERVATION} FROM reservations WHERE id = ?", (id,)).fetchone()
        return _reservation(row) if row else None

    def reservations(self, project_id: str, status: str, after: tuple[float, str] | None, limit: int
                     ) -> list[Reservation]:
        """A project's reservations (optionally of one status), oldest first, after a (created_at, id)."""
        created, id = after or (-1.0, "")
        rows = self.db.execute(
            f"SELECT {_RESERVATION} FROM reservations WHERE project_id = ? AND (? = '' OR status = ?)"
            " AND (created_at > ? OR (created_at = ? AND id > ?)) ORDER BY created_at, id LIMIT ?",
            (project_id, status, status, created, created, id, limit)).fetchall()
        return [_reservation(row) for row in rows]

    def save_reservation(self, r: Reservation) -> None:
        """Insert or replace a reservation."""
        self.db.execute(
            f"INSERT OR REPLACE INTO reservations ({_RESERVATION}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (r.id, r.project_id, r.amount, r.description, r.resource_type, r.quantity, r.status.value,
             r.created_at, r.expires_at, r.resolved_at, r.actual_amount, r.resource_id, r.reason))

    def due_reservations(self, now: float) -> list[Reservation]:
        """Pending reservations whose deadline has passed, by deadline."""
        rows = self.db.execute(f"SELECT {_RESERVATION} FROM reservations WHERE status = 'PENDING'"
                               " AND expires_at <= ? ORDER BY expires_at, id", (now,)).fetchall()
        return [_reservation(row) for row in rows]

    def next_deadline(self) -> float | None:
        """The earliest deadline of a pending reservation."""
        row = self.db.execute("SELECT MIN(expires_at) FROM reservations WHERE status = 'PENDING'").fetchone()
        return _float(row[0])

    # Quotas

    def quota(self, project_id: str, resource_type: str) -> Quota | None:
        """A project's quota for a resource type."""
        row = self.db.execute("SELECT project_id, resource_type, quota_limit, usage, updated_at FROM quotas"
                              " WHERE project_id = ? AND resource_type = ?", (project_id, resource_type)).fetchone()
        return Quota(*row) if row else None

    def quotas(self, project_id: str) -> list[Quota]:
        """A project's quotas, by resource type."""
        return [Quota(*row) for row in self.db.execute(
            "SELECT project_id, resource_type, quota_limit, usage, updated_at FROM quotas WHERE project_id = ?"
            " ORDER BY resource_type", (project_id,))]

    def save_quota(self, quota: Quota) -> None:
        """Insert or replace a quota."""
        self.db.execute("INSERT OR REPLACE INTO quotas (project_id, resource_type, quota_limit, usage, updated_at)"
                        " VALUES (?, ?, ?, ?, ?)",
                        (quota.project_id, quota.resource_type, quota.limit, quota.usage, quota.updated_at))

    # Idempotency

    def remembered(self, subject: str, key: str) -> tuple[str, bytes] | None:
        """(fingerprint, result) of the request that first used this key."""
        row = self.db.execute("SELECT fingerprint, result FROM idempotency WHERE subject = ? AND key = ?",
                              (subject, key)).fetchone()
        return (row[0], row[1]) if row else None

    def remember(self, subject: str, key: str, fingerprint: str, result: bytes, now: float) -> None:
        """Keep a request's result under its idempotency key."""
        self.db.execute("INSERT INTO idempotency (subject, key, fingerprint, result, created_at)"
                        " VALUES (?, ?, ?, ?, ?)", (subject, key, fingerprint, result, now))

    def forget_before(self, moment: float) -> int:
        """Drop idempotency records made before moment; how many."""
        return self.db.execute("DELETE FROM idempotency WHERE created_at < ?", (moment,)).rowcount

    def oldest_remembered(self) -> float | None:
        """When the oldest idempotency record was made."""
        return _float(self.db.execute("SELECT MIN(created_at) FROM idempotency").fetchone()[0])
