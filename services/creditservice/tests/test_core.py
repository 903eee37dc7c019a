"""CreditService's rules on an in-memory store: wallets, the ledger, reservations, quotas, idempotency."""

from __future__ import annotations

import asyncio

import pytest

from photoncloud.common.errors import AlreadyExists, FailedPrecondition, InvalidArgument, NotFound
from photoncloud.creditservice.records import ReservationStatus, TransactionType, WalletStatus


async def test_a_wallet_starts_with_its_initial_balance_recorded_in_the_ledger(credits):
    wallet = await credits.create_wallet("p1", "o1", initial_balance=1000)
    assert (wallet.balance, wallet.reserved, wallet.available, wallet.status) == (1000, 0, 1000, WalletStatus.ACTIVE)
    page = await credits.transactions("p1")
    [topup] = page.items
    assert (topup.type, topup.amount, topup.balance_after) == (TransactionType.TOPUP, 1000, 1000)
    assert sorted((p.account, p.amount) for p in topup.postings) == [("external", -1000),
                                                                     ("project:p1:available", 1000)]
    with pytest.raises(AlreadyExists):
        await credits.create_wallet("p1", "o1")
    with pytest.raises(NotFound) as missing:
        await credits.wallet("p2")
    assert missing.value.details["reason"] == "NO_WALLET"


@pytest.mark.parametrize("amount", [0, -5, 2**53, 1.5, True])
async def test_amounts_are_positive_whole_numbers(credits, amount):
    await credits.create_wallet("p1", "o1")
    with pytest.raises(InvalidArgument) as error:
        await credits.top_up("p1", amount)
    assert error.value.details == {"field": "amount"}


async def test_reserve_commit_charges_the_actual_amount_and_frees_the_rest(credits):
    await credits.create_wallet("p1", "o1", 1000)
    held = await credits.reserve("p1", 300, "vm-1", "vm", ttl_seconds=60)
    assert (held.wallet.balance, held.wallet.reserved, held.wallet.available) == (1000, 300, 700)
    assert held.reservation.status is ReservationStatus.PENDING
    done = await credits.commit(held.reservation.id, 120, "vm-1")
    assert (done.wallet.balance, done.wallet.reserved, done.wallet.available) == (880, 0, 880)
    assert (done.reservation.status, done.reservation.actual_amount) == (ReservationStatus.COMMITTED, 120)
    with pytest.raises(FailedPrecondition) as again:  # a reservation resolves exactly once
        await credits.release(held.reservation.id)
    assert again.value.details["reason"] == "ALREADY_RESOLVED"
    audit = await credits.audit()
    assert audit.ok and audit.revenue == 120 and audit.issued == 1000


async def test_commit_may_not_exceed_the_reservation(credits):
    await credits.create_wallet("p1", "o1", 1000)
    held = await credits.reserve("p1", 300)
    with pytest.raises(InvalidArgument):
        await credits.commit(held.reservation.id, 301)
    assert (await credits.reservation(held.reservation.id)).status is ReservationStatus.PENDING


async def test_a_reservation_beyond_available_is_refused_with_the_reason(credits):
    await credits.create_wallet("p1", "o1", 500)
    await credits.reserve("p1", 400)
    with pytest.raises(FailedPrecondition) as short:
        await credits.reserve("p1", 101)
    assert short.value.details == {"reason": "INSUFFICIENT_CREDITS", "project_id": "p1", "available": 100,
                                   "requested": 101}
    assert (await credits.wallet("p1")).reserved == 400


async def test_concurrent_reservations_never_take_available_below_zero(credits):
    await credits.create_wallet("p1", "o1", 1000)
    results = await asyncio.gather(*(credits.reserve("p1", 70) for _ in range(30)), return_exceptions=True)
    granted = [r for r in results if not isinstance(r, Exception)]
    assert len(granted) == 14  # 14 * 70 = 980 <= 1000 < 15 * 70
    assert all(isinstance(r, FailedPrecondition) for r in results if isinstance(r, Exception))
    wallet = await credits.wallet("p1")
    assert (wallet.reserved, wallet.available) == (980, 20)


async def test_release_frees_everything_and_expiry_releases_past_the_ttl(credits, clock):
    await credits.create_wallet("p1", "o1", 1000)
    a = (await credits.reserve("p1", 100, ttl_seconds=10)).reservation
    b = (await credits.reserve("p1", 200, ttl_seconds=30)).reservation
    released = await credits.release(a.id, "not needed")
    assert released.reservation.status is ReservationStatus.RELEASED and released.wallet.reserved == 200
    clock.now += 29
    assert await credits.expire_reservations() == []
    clock.now += 1
    assert await credits.expire_reservations() == [b.id]
    wallet = await credits.wallet("p1")
    assert (wallet.balance, wallet.reserved) == (1000, 0)
    assert (await credits.reservation(b.id)).status is ReservationStatus.EXPIRED
    types = [t.type for t in (await credits.transactions("p1")).items]
    assert types == [TransactionType.EXPIRE, TransactionType.RELEASE, TransactionType.RESERVE,
                     TransactionType.RESERVE, TransactionType.TOPUP]
    with pytest.raises(FailedPrecondition):
        await credits.commit(b.id, 10)


async def test_an_idempotency_key_returns_the_first_result_and_refuses_another_body(credits):
    await credits.create_wallet("p1", "o1", 1000)
    first = await credits.reserve("p1", 100, idempotency_key="k1")
    again = await credits.reserve("p1", 100, idempotency_key="k1")
    assert again == first  # the same reservation id, the wallet as it was then
    assert (await credits.wallet("p1")).reserved == 100
    with pytest.raises(FailedPrecondition) as reused:
        await credits.reserve("p1", 999, idempotency_key="k1")
    assert reused.value.details["reason"] == "IDEMPOTENCY_KEY_REUSED"
    top1 = await credits.top_up("p1", 5, idempotency_key="t")
    top2 = await credits.top_up("p1", 5, idempotency_key="t")
    assert top1 == top2 and (await credits.wallet("p1")).balance == 1005


async def test_quotas_count_reserved_and_committed_units_until_freed(credits):
    await credits.create_wallet("p1", "o1", 1000)
    await credits.set_quota("p1", "vm", 2)
    one = (await credits.reserve("p1", 10, resource_type="vm")).reservation
    two = (await credits.reserve("p1", 10, resource_type="vm")).reservation
    denied = await credits.check_admission("p1", 10, "vm")
    assert (denied.allowed, denied.reason, denied.quota_limit, denied.quota_usage) == (False, "QUOTA_EXCEEDED", 2, 2)
    with pytest.raises(FailedPrecondition) as over:
        await credits.reserve("p1", 10, resource_type="vm")
    assert over.value.details["reason"] == "QUOTA_EXCEEDED"
    await credits.release(one.id)  # released: its unit is free again
    await credits.commit(two.id, 10)  # committed: the resource exists and keeps its unit
    assert (await credits.quota("p1", "vm")).usage == 1
    assert (await credits.free_quota("p1", "vm")).usage == 0  # the resource is gone
    with pytest.raises(FailedPrecondition):
        await credits.free_quota("p1", "vm")
    allowed = await credits.check_admission("p1", 10, "vm")
    assert allowed.allowed and allowed.reason == "" and allowed.available == 990


async def test_admission_reports_why_not(credits):
    assert (await credits.check_admission("nobody", 1)).reason == "NO_WALLET"
    await credits.create_wallet("p1", "o1", 50)
    assert (await credits.check_admission("p1", 51)).reason == "INSUFFICIENT_CREDITS"
    assert (await credits.check_admission("p1", 50)).allowed
    await credits.set_wallet_status("p1", "SUSPENDED")
    assert (await credits.check_admission("p1", 1)).reason == "WALLET_SUSPENDED"
    with pytest.raises(FailedPrecondition):
        await credits.reserve("p1", 1)
    await credits.top_up("p1", 10)  # a suspended wallet still takes top-ups
    await credits.set_wallet_status("p1", "CLOSED")
    with pytest.raises(FailedPrecondition):
        await credits.top_up("p1", 10)


async def test_the_audit_finds_a_wallet_that_disagrees_with_its_ledger(credits):
    await credits.create_wallet("p1", "o1", 100)
    await credits.reserve("p1", 40)
    assert (await credits.audit()).ok
    credits.store.db.execute("UPDATE wallets SET balance = balance + 1")  # a bug or a hand edit
    report = await credits.audit()
    assert not report.ok
    assert report.mismatches == [{"project_id": "p1", "balance": 101, "reserved": 40, "ledger_balance": 100,
                                  "ledger_reserved": 40}]


async def test_transactions_page_newest_first_and_filter(credits):
    await credits.create_wallet("p1", "o1")
    for i in range(5):
        await credits.top_up("p1", i + 1, f"top-up {i}")
    first = await credits.transactions("p1", page_size=2)
    second = await credits.transactions("p1", page_size=2, page_token=first.next_page_token)
    third = await credits.transactions("p1", page_size=2, page_token=second.next_page_token)
    assert [t.amount for t in first.items + second.items + third.items] == [5, 4, 3, 2, 1]
    assert third.next_page_token == ""
    held = await credits.reserve("p1", 3)
    only = await credits.transactions("p1", reservation_id=held.reservation.id)
    assert [t.type for t in only.items] == [TransactionType.RESERVE]
    assert [t.type for t in (await credits.transactions("p1", type="RESERVE")).items] == [TransactionType.RESERVE]
    with pytest.raises(InvalidArgument):
        await credits.transactions("p1", type="GIFT")
