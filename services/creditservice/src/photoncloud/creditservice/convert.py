"""CreditService's records as the messages of its contract, and the messages' parts the core takes."""

from __future__ import annotations

from typing import Any

from photoncloud.common.messages import from_record
from photoncloud.common.times import parse_time
from photoncloud.creditservice.v1 import credit_pb2 as pb

from .records import Admission, AuditReport, Quota, Reservation, Transaction, Wallet


def wallet(w: Wallet) -> pb.Wallet:
    """A wallet, with its derived `available`."""
    return from_record(pb.Wallet, w, status=w.status.value, available=w.available)


def transaction(t: Transaction) -> pb.Transaction:
    """A ledger transaction with its postings."""
    return from_record(pb.Transaction, t, type=t.type.value)


def reservation(r: Reservation) -> pb.Reservation:
    """A reservation."""
    return from_record(pb.Reservation, r, status=r.status.value)


def reservation_result(result: Any) -> pb.ReservationResponse:
    """A reservation and the wallet right after the operation on it."""
    return pb.ReservationResponse(reservation=reservation(result.reservation), wallet=wallet(result.wallet))


def quota(q: Quota) -> pb.Quota:
    """A quota and its usage."""
    return from_record(pb.Quota, q)


def admission(a: Admission) -> pb.Admission:
    """An admission answer."""
    return from_record(pb.Admission, a)


def audit(a: AuditReport) -> pb.AuditResponse:
    """An audit report, its mismatches (plain data in the record) as messages."""
    return from_record(pb.AuditResponse, a, mismatches=[pb.WalletMismatch(**m) for m in a.mismatches])


def time(value: str, field: str) -> float:
    """An RFC 3339 bound as epoch seconds (0: no bound when empty)."""
    return parse_time(value, field) if value else 0.0
