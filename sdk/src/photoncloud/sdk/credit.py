"""CreditService: wallets and top-ups, the ledger, reservations and quotas."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg


class Credit(Service):
    """CreditService's REST API (port 8086)."""

    def create_wallet(self, project_id: str, initial_balance: int | None = None, org_id: str | None = None) -> Json:
        """A project's wallet (the operator's)."""
        return self._post("/api/v1/wallets", fields(project_id=project_id, initial_balance=initial_balance,
                                                    org_id=org_id))

    def get_wallet(self, project_id: str) -> Json:
        """A project's wallet: balance, reserved, available."""
        return self._get(f"/api/v1/wallets/{seg(project_id)}")

    def wallets(self, org_id: str | None = None) -> Iterator[Json]:
        """The wallets the token sees."""
        return self._pages("/api/v1/wallets", org_id=org_id)

    def set_wallet_status(self, project_id: str, status: str) -> Json:
        """Suspend or reactivate a wallet (the operator's)."""
        return self._patch(f"/api/v1/wallets/{seg(project_id)}", {"status": status})

    def topup(self, project_id: str, amount: int, description: str | None = None) -> Json:
        """Add credits to a wallet (the operator's)."""
        return self._post(f"/api/v1/wallets/{seg(project_id)}/topup", fields(amount=amount, description=description))

    def transactions(self, project_id: str, **params: Any) -> Iterator[Json]:
        """A wallet's ledger entries (by type, reservation_id, since, until)."""
        return self._pages(f"/api/v1/wallets/{seg(project_id)}/transactions", **params)

    def reserve(self, project_id: str, amount: int, **more: Any) -> Json:
        """Hold amount of a wallet's credits until committed, released or expired."""
        return self._post("/api/v1/reservations", {"project_id": project_id, "amount": amount, **more})

    def reservations(self, project_id: str, status: str | None = None) -> Iterator[Json]:
        """A project's reservations."""
        return self._pages("/api/v1/reservations", project_id=project_id, status=status)

    def commit(self, reservation_id: str, **more: Any) -> Json:
        """Charge a reservation."""
        return self._post(f"/api/v1/reservations/{seg(reservation_id)}/commit", more or None)

    def release(self, reservation_id: str) -> Json:
        """Give a reservation's credits back."""
        return self._post(f"/api/v1/reservations/{seg(reservation_id)}/release")

    def quotas(self, project_id: str) -> Json:
        """A project's quotas."""
        return self._get(f"/api/v1/quotas/{seg(project_id)}")

    def set_quota(self, project_id: str, resource_type: str, limit: int) -> Json:
        """A project's limit of one resource type (the operator's)."""
        return self._put(f"/api/v1/quotas/{seg(project_id)}/{seg(resource_type)}", {"limit": limit})
