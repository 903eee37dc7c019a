"""CreditService's records as the plain data both transports send (REST as JSON, gRPC via ParseDict)."""

from __future__ import annotations

from typing import Any

from photoncloud.common.times import rfc3339

from .records import Admission, AuditReport, Quota, Reservation, Transaction, Wallet


def wallet(w: Wallet) -> dict[str, Any]:
    """A wallet, with its derived `available`."""
    return {"project_id": w.project_id, "org_id": w.org_id, "status": w.status.value, "balance": w.balance,
            "reserved": w.reserved, "available": w.available, "created_at": rfc3339(w.created_at),
            "updated_at": rfc3339(w.updated_at)}


def transaction(t: Transaction) -> dict[str, Any]:
    """A ledger transaction with its postings."""
    return {"id": t.id, "project_id": t.project_id, "type": t.type.value, "amount": t.amount,
            "description": t.description, "reservation_id": t.reservation_id,
            "postings": [{"account": p.account, "amount": p.amount} for p in t.postings],
            "balance_after": t.balance_after, "reserved_after": t.reserved_after, "created_at": rfc3339(t.created_at)}


def reservation(r: Reservation) -> dict[str, Any]:
    """A reservation."""
    return {"id": r.id, "project_id": r.project_id, "amount": r.amount, "description": r.description,
            "resource_type": r.resource_type, "quantity": r.quantity, "status": r.status.value,
            "created_at": rfc3339(r.created_at), "expires_at": rfc3339(r.expires_at),
            "resolved_at": rfc3339(r.resolved_at), "actual_amount": r.actual_amount, "resource_id": r.resource_id,
            "reason": r.reason}


def reservation_result(result: Any) -> dict[str, Any]:
    """A reservation and the wallet right after the operation on it."""
    return {"reservation": reservation(result.reservation), "wallet": wallet(result.wallet)}


def quota(q: Quota) -> dict[str, Any]:
    """A quota and its usage."""
    return {"project_id": q.project_id, "resource_type": q.resource_type, "limit": q.limit, "usage": q.usage,
            "updated_at": rfc3339(q.updated_at)}


def admission(a: Admission) -> dict[str, Any]:
    """An admission answer."""
    return {"allowed": a.allowed, "reason": a.reason, "available": a.available, "quota_limit": a.quota_limit,
            "quota_usage": a.quota_usage}


def audit(a: AuditReport) -> dict[str, Any]:
    """An audit report."""
    return {"ok": a.ok, "transactions": a.transactions, "wallets": a.wallets,
            "unbalanced_transactions": list(a.unbalanced_transactions), "mismatches": list(a.mismatches),
            "revenue": a.revenue, "issued": a.issued}


def page(items: list[dict[str, Any]], next_page_token: str) -> dict[str, Any]:
    """A page of a listing."""
    return {"items": items, "next_page_token": next_page_token}
