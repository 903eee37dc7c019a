"""CreditService's domain metrics, read when /metrics is scraped: wallets, the ledger's totals,
reservations open, transactions recorded."""

from __future__ import annotations

from prometheus_client.core import CounterMetricFamily, Metric

from photoncloud.common.metrics import DomainRead, gauge, gauge_by
from photoncloud.common.replication import Scan

from .core import CreditCore
from .records import ReservationStatus, WalletStatus
from .store import SqliteCreditStore

WALLET_STATES = tuple(status.value for status in WalletStatus)


def reader(service: str, credits: CreditCore, store: SqliteCreditStore) -> DomainRead:
    """The read /metrics awaits: sums over the wallets (one row per project), the open reservations
    (a partial index holds exactly those) and the last transaction's id (the ledger only appends)."""

    def counts() -> tuple[dict[str, int], int, int, int, int]:
        db = store.db
        wallets = dict(db.execute("SELECT status, COUNT(*) FROM wallets GROUP BY status").fetchall())
        balance, reserved = db.execute("SELECT COALESCE(SUM(balance), 0), COALESCE(SUM(reserved), 0)"
                                       " FROM wallets").fetchone()
        pending = db.execute("SELECT COUNT(*) FROM reservations WHERE status = ?",
                             (ReservationStatus.PENDING.value,)).fetchone()[0]
        transactions = db.execute("SELECT COALESCE(MAX(id), 0) FROM transactions").fetchone()[0]
        return wallets, balance, reserved, pending, transactions

    async def read() -> list[Metric]:
        wallets, balance, reserved, pending, transactions = await credits.log.read(Scan(counts))
        recorded = CounterMetricFamily("photoncloud_creditservice_transactions", "Transactions the ledger recorded.",
                                       labels=["service"])
        recorded.add_metric([service], transactions)
        return [
            gauge_by("photoncloud_creditservice_wallets", "Wallets by status.", service, "status", wallets,
                     WALLET_STATES),
            gauge("photoncloud_creditservice_balance_credits", "Credits in all wallets (reserved ones included).",
                  balance, service),
            gauge("photoncloud_creditservice_reserved_credits", "Credits held by open reservations, all wallets.",
                  reserved, service),
            gauge("photoncloud_creditservice_reservations_open", "Reservations not yet committed, released or expired.",
                  pending, service),
            recorded,
        ]

    return read
