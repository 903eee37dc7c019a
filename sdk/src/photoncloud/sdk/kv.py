"""ChainFire: etcd-style keys and values, transactions, leases and the cluster."""

from __future__ import annotations

import base64
import builtins
from collections.abc import Iterator
from typing import Any

from .service import Json, Service, fields, seg
from .transport import key_path


def value_of(kv: Json) -> bytes:
    """A key-value's value as bytes, whether it came as text (`value`) or as `value_base64`."""
    if kv.get("value") is not None:
        return str(kv["value"]).encode()
    return base64.b64decode(kv.get("value_base64") or "")


class KV(Service):
    """ChainFire's REST API (port 8081)."""

    def put(self, key: str, value: str | bytes, lease: int | None = None, prev_kv: bool | None = None) -> Json:
        """Write key (text as `value`, bytes as `value_base64`); the revision the write made."""
        body: Json = ({"value": value} if isinstance(value, str)
                      else {"value_base64": base64.b64encode(value).decode()})
        return self._put(f"/api/v1/kv/{key_path(key)}", {**body, **fields(lease=lease, prev_kv=prev_kv)})

    def get(self, key: str, revision: int | None = None) -> Json:
        """One key (NOT_FOUND when it is not there), as it is or was at revision."""
        return self._get(f"/api/v1/kv/{key_path(key)}", revision=revision)

    def delete(self, key: str, prefix: bool | None = None, range_end: str | None = None,
               prev_kv: bool | None = None) -> Json:
        """Delete a key, every key under it as a prefix, or [key, range_end): how many and the revision."""
        return self._delete(f"/api/v1/kv/{key_path(key)}", prefix=prefix, range_end=range_end,
                            prev_kv=prev_kv)

    def list(self, prefix: str | None = None, key: str | None = None, range_end: str | None = None,
             revision: int | None = None, keys_only: bool | None = None, page_size: int | None = None,
             page_token: str | None = None) -> Json:
        """One page of keys under prefix, or in [key, range_end), or all (items, next_page_token, count, revision)."""
        return self._get("/api/v1/kv", prefix=prefix, key=key, range_end=range_end, revision=revision,
                         keys_only=keys_only, page_size=page_size, page_token=page_token)

    def iterate(self, prefix: str | None = None, **params: Any) -> Iterator[Json]:
        """Every key under prefix (or of the range params name), page after page."""
        return self._pages("/api/v1/kv", prefix=prefix, **params)

    def txn(self, compare: builtins.list[Json], success: builtins.list[Json],
            failure: builtins.list[Json] | None = None) -> Json:
        """Compare, then run the success or the failure operations, atomically."""
        return self._post("/api/v1/txn", {"compare": compare, "success": success,
                                          "failure": failure or []})

    def compact(self, revision: int) -> Json:
        """Forget the history before revision (the operator's)."""
        return self._post("/api/v1/compact", {"revision": revision})

    def grant_lease(self, ttl: int, lease_id: int | None = None) -> Json:
        """A lease of ttl seconds."""
        return self._post("/api/v1/leases", fields(ttl=ttl, id=lease_id))

    def leases(self) -> Iterator[Json]:
        """The leases of the caller's keyspace."""
        return self._pages("/api/v1/leases")

    def lease(self, lease_id: int, keys: bool | None = None) -> Json:
        """One lease: its time left, and with keys its keys."""
        return self._get(f"/api/v1/leases/{lease_id}", keys=keys)

    def keepalive(self, lease_id: int) -> Json:
        """Renew a lease."""
        return self._post(f"/api/v1/leases/{lease_id}/keepalive")

    def revoke_lease(self, lease_id: int) -> Json:
        """Revoke a lease, deleting its keys."""
        return self._delete(f"/api/v1/leases/{lease_id}")

    def status(self) -> Json:
        """This member's Raft status."""
        return self._get("/api/v1/cluster/status")

    def members(self) -> Json:
        """The cluster's members."""
        return self._get("/api/v1/cluster/members")

    def add_member(self, peer_address: str) -> Json:
        """Add a member by its peer address (the operator's)."""
        return self._post("/api/v1/cluster/members", {"peer_address": peer_address})

    def remove_member(self, member_id: int | str) -> Json:
        """Remove a member (not the leader)."""
        return self._delete(f"/api/v1/cluster/members/{seg(str(member_id))}")
