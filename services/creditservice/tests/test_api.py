"""CreditService over both transports: one table of steps run over REST and over gRPC against real
servers, with the same results and the same errors; idempotency keys; tenancy and operator rights."""

from __future__ import annotations

from typing import Any

import aiohttp
import pytest
from photoncloud.common.auth import ORG, PROJECT, Scope
from photoncloud.common.server import Server
from photoncloud.common.testing import (GrpcContract, Operation, RestContract, TokenMint, over_both_transports,
                                        serve, subset, without)
from photoncloud.creditservice.app import build
from photoncloud.creditservice.v1 import credit_pb2 as pb
from photoncloud.creditservice.v1 import credit_pb2_grpc as pb_grpc

OPS = {
    "create_wallet": Operation("POST", "/wallets", "Wallets/CreateWallet"),
    "get_wallet": Operation("GET", "/wallets/{project_id}", "Wallets/GetWallet"),
    "list_wallets": Operation("GET", "/wallets", "Wallets/ListWallets"),
    "update_wallet": Operation("PATCH", "/wallets/{project_id}", "Wallets/UpdateWallet"),
    "top_up": Operation("POST", "/wallets/{project_id}/topup", "Wallets/TopUp"),
    "transactions": Operation("GET", "/wallets/{project_id}/transactions", "Wallets/ListTransactions"),
    "audit": Operation("GET", "/audit", "Wallets/Audit"),
    "reserve": Operation("POST", "/reservations", "Reservations/Reserve"),
    "get_reservation": Operation("GET", "/reservations/{id}", "Reservations/GetReservation"),
    "reservations": Operation("GET", "/reservations", "Reservations/ListReservations"),
    "commit": Operation("POST", "/reservations/{id}/commit", "Reservations/Commit"),
    "release": Operation("POST", "/reservations/{id}/release", "Reservations/Release"),
    "set_quota": Operation("PUT", "/quotas/{project_id}/{resource_type}", "Quotas/SetQuota"),
    "get_quota": Operation("GET", "/quotas/{project_id}/{resource_type}", "Quotas/GetQuota"),
    "list_quotas": Operation("GET", "/quotas/{project_id}", "Quotas/ListQuotas"),
    "free_quota": Operation("POST", "/quotas/{project_id}/{resource_type}/free", "Quotas/FreeQuota"),
    "check_admission": Operation("POST", "/admission/check", "Quotas/CheckAdmission"),
}
# Fields that differ between two servers running the same steps: generated ids and times.
VOLATILE = {"id", "reservation_id", "created_at", "updated_at", "expires_at", "resolved_at", "next_page_token"}


# (op, args, idempotency key, expected: a subset of the result, or an error code)
STEPS = [
    ("create_wallet", {"project_id": "p1", "org_id": "o1", "initial_balance": 1000}, "",
     {"balance": "1000", "available": "1000", "status": "ACTIVE"}),
    ("create_wallet", {"project_id": "p1", "org_id": "o1"}, "", "ALREADY_EXISTS"),
    ("get_wallet", {"project_id": "nobody"}, "", "NOT_FOUND"),
    ("top_up", {"project_id": "p1", "amount": 0}, "", "INVALID_ARGUMENT"),
    ("top_up", {"project_id": "p1", "amount": 500, "description": "invoice 7"}, "t1",
     {"wallet": {"balance": "1500"}}),
    ("top_up", {"project_id": "p1", "amount": 500, "description": "invoice 7"}, "t1",
     {"wallet": {"balance": "1500"}}),  # a retry: the first result, nothing added
    ("top_up", {"project_id": "p1", "amount": 501, "description": "invoice 7"}, "t1", "FAILED_PRECONDITION"),
    ("reserve", {"project_id": "p1", "amount": 2000, "resource_type": "vm"}, "", "FAILED_PRECONDITION"),
    ("set_quota", {"project_id": "p1", "resource_type": "vm", "limit": 1}, "", {"limit": "1", "usage": "0"}),
    ("reserve", {"project_id": "p1", "amount": 400, "resource_type": "vm", "ttl_seconds": 60}, "",
     {"wallet": {"reserved": "400", "available": "1100"}, "reservation": {"status": "PENDING"}}),
    ("check_admission", {"project_id": "p1", "amount": 10, "resource_type": "vm"}, "",
     {"allowed": False, "reason": "QUOTA_EXCEEDED", "quota_limit": "1", "quota_usage": "1"}),
    ("check_admission", {"project_id": "p1", "amount": 1101}, "",
     {"allowed": False, "reason": "INSUFFICIENT_CREDITS", "available": "1100"}),
    ("commit", {"id": "$reservation", "actual_amount": 401}, "", "INVALID_ARGUMENT"),
    ("commit", {"id": "$reservation", "actual_amount": 250, "resource_id": "vm-1"}, "c1",
     {"wallet": {"balance": "1250", "reserved": "0"}, "reservation": {"status": "COMMITTED", "actual_amount": "250"}}),
    ("release", {"id": "$reservation"}, "", "FAILED_PRECONDITION"),
    ("get_quota", {"project_id": "p1", "resource_type": "vm"}, "", {"usage": "1"}),
    ("free_quota", {"project_id": "p1", "resource_type": "vm", "quantity": 1}, "", {"usage": "0"}),
    ("list_quotas", {"project_id": "p1"}, "", {"items": [{"project_id": "p1", "resource_type": "vm", "limit": "1",
                                                          "usage": "0"}]}),
    ("reserve", {"project_id": "p1", "amount": 50}, "", {"wallet": {"reserved": "50"}}),
    ("release", {"id": "$reservation", "reason": "no longer needed"}, "",
     {"reservation": {"status": "RELEASED", "reason": "no longer needed"}, "wallet": {"reserved": "0"}}),
    ("get_reservation", {"id": "$reservation"}, "", {"status": "RELEASED", "amount": "50"}),
    ("reservations", {"project_id": "p1", "status": "COMMITTED"}, "", {"items": [{"amount": "400"}]}),
    ("transactions", {"project_id": "p1", "type": "COMMIT"}, "",
     {"items": [{"type": "COMMIT", "amount": "250", "balance_after": "1250"}]}),
    ("transactions", {"project_id": "p1", "page_size": 2}, "", {"items": [{"type": "RELEASE"}, {"type": "RESERVE"}]}),
    ("update_wallet", {"project_id": "p1", "status": "FROZEN"}, "", "INVALID_ARGUMENT"),
    ("update_wallet", {"project_id": "p1", "status": "SUSPENDED"}, "", {"status": "SUSPENDED"}),
    ("reserve", {"project_id": "p1", "amount": 1}, "", "FAILED_PRECONDITION"),
    ("list_wallets", {}, "", {"items": [{"project_id": "p1", "balance": "1250"}]}),
    ("audit", {}, "", {"ok": True, "wallets": "1", "revenue": "250", "issued": "1500", "transactions": "6"}),
]


async def run(client: RestContract | GrpcContract) -> list[Any]:
    results, reservation = [], ""
    for op, args, key, expected in STEPS:
        args = {k: reservation if v == "$reservation" else v for k, v in args.items()}
        result = await client.call(op, args, {"Idempotency-Key": key} if key else {})
        if isinstance(expected, str):
            assert result.get("error") == expected, (op, args, result)
        else:
            assert "error" not in result and subset(expected, result), (op, args, result)
            reservation = result.get("reservation", {}).get("id", reservation)
        results.append(result)
    return results


@pytest.fixture(scope="module")
def mint():
    return TokenMint()


async def start(data_dir, mint: TokenMint) -> Server:
    """A creditservice trusting mint's tokens, without IAM: project ids are taken as given."""
    return await serve(build, "creditservice", data_dir, mint.verifier(), iam_url="")


async def test_rest_and_grpc_agree_step_by_step(tmp_path, mint):
    over_rest, over_grpc = await over_both_transports(lambda d: start(d, mint), tmp_path, mint.token(), OPS, pb,
                                                      pb_grpc, run)
    for step, a, b in zip(STEPS, over_rest, over_grpc):
        assert without(a, VOLATILE) == without(b, VOLATILE), step


@pytest.fixture
async def server(tmp_path, mint):
    running = await start(tmp_path, mint)
    yield running
    await running.stop()


async def call(server: Server, token: str, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {token}"}) as session:
        async with session.request(method, f"http://127.0.0.1:{server.rest_port}/api/v1{path}", json=body) as r:
            return r.status, await r.json()


async def test_members_reserve_in_their_own_project_only_and_operators_manage(server, mint):
    admin = mint.token()
    for project in ("p1", "p2"):
        status, _ = await call(server, admin, "POST", "/wallets",
                               {"project_id": project, "org_id": "o1", "initial_balance": 100})
        assert status == 201
    member = mint.token(permissions=("*:*:read", "*:*:write"), roles=("member",), scope=Scope(PROJECT, "o1", "p1"))
    status, body = await call(server, member, "POST", "/reservations", {"project_id": "p1", "amount": 10})
    assert status == 201 and body["data"]["wallet"]["available"] == 90
    status, body = await call(server, member, "POST", "/reservations", {"project_id": "p2", "amount": 10})
    assert status == 403 and body["error"]["details"]["reason"] == "OUT_OF_SCOPE"
    status, body = await call(server, member, "GET", "/wallets/p2")
    assert status == 403
    status, body = await call(server, member, "POST", "/wallets/p1/topup", {"amount": 10})
    assert status == 403 and body["error"]["details"]["reason"] == "OPERATOR_ONLY"
    status, body = await call(server, member, "PUT", "/quotas/p1/vm", {"limit": 5})
    assert status == 403
    status, body = await call(server, member, "GET", "/wallets")
    assert status == 200 and [w["project_id"] for w in body["data"]["items"]] == ["p1"]
    viewer = mint.token(permissions=("*:*:read",), roles=("viewer",), scope=Scope(PROJECT, "o1", "p1"))
    status, body = await call(server, viewer, "POST", "/reservations", {"project_id": "p1", "amount": 1})
    assert status == 403
    status, body = await call(server, viewer, "POST", "/admission/check", {"project_id": "p1", "amount": 1})
    assert status == 200 and body["data"]["allowed"] is True
    other_org = mint.token(permissions=("*",), roles=("admin",), scope=Scope(ORG, "o2"))
    status, body = await call(server, other_org, "GET", "/wallets/p1")
    assert status == 403
    status, body = await call(server, other_org, "GET", "/wallets")
    assert status == 200 and body["data"]["items"] == []


@pytest.mark.parametrize("scope", [Scope(PROJECT, "o1", "p1"), Scope(ORG, "o1")])
async def test_a_tenants_own_admin_cannot_do_the_operators_job(server, mint, scope):
    """A project's or org's admin holds `*` in its scope, and is still a tenant: wallets, top-ups,
    quotas and the platform-wide audit are the operator's."""
    status, _ = await call(server, mint.token(), "POST", "/wallets", {"project_id": "p1", "org_id": "o1"})
    assert status in (201, 409)
    tenant_admin = mint.token(permissions=("*",), roles=("admin",), scope=scope)
    attempts = [("POST", "/wallets", {"project_id": "p9", "org_id": "o1"}),
                ("POST", "/wallets/p1/topup", {"amount": 10**9}),
                ("PATCH", "/wallets/p1", {"status": "SUSPENDED"}),
                ("PUT", "/quotas/p1/vm", {"limit": 10**6}),
                ("GET", "/audit", None)]
    for method, path, body in attempts:
        status, reply = await call(server, tenant_admin, method, path, body)
        assert (status, reply["error"]["details"]["reason"]) == (403, "OPERATOR_ONLY"), (method, path)
    status, body = await call(server, tenant_admin, "GET", "/wallets/p1")
    assert status == 200 and body["data"]["balance"] == 0  # the top-up never happened


async def test_a_bad_idempotency_key_and_bad_input_are_refused(server, mint):
    admin = mint.token()
    await call(server, admin, "POST", "/wallets", {"project_id": "p1", "org_id": "o1"})
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {admin}", "Idempotency-Key": "x" * 300}) as s:
        async with s.post(f"http://127.0.0.1:{server.rest_port}/api/v1/wallets/p1/topup", json={"amount": 5}) as r:
            body = await r.json()
    assert r.status == 400 and body["error"]["details"] == {"field": "idempotency_key"}
    status, body = await call(server, admin, "POST", "/wallets", {"project_id": "p 1", "org_id": "o1"})
    assert status == 400 and body["error"]["details"] == {"field": "project_id"}
    status, body = await call(server, admin, "POST", "/reservations", {"project_id": "p1", "amount": 1.5})
    assert status == 400
    status, body = await call(server, admin, "GET", "/wallets/p1/transactions?since=yesterday")
    assert status == 400 and body["error"]["details"] == {"field": "since"}
    status, body = await call(server, admin, "GET", "/wallets/p1")
    assert status == 200 and body["data"]["balance"] == 0  # nothing was changed by the refused requests
