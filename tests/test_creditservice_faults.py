"""CreditService as a real process under load and SIGKILL: no credit is lost or invented, nothing
acknowledged is forgotten, and reservations expire on time, across a restart too."""

from __future__ import annotations

import asyncio
import random
import time

import aiohttp
import pytest

from photoncloud.common.testing import start_platform

CLIENTS = 100
TRANSPORT_ERRORS = (aiohttp.ClientError, asyncio.TimeoutError)


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM and CreditService."""
    running = start_platform(tmp_path_factory.mktemp("credits"), "creditservice")
    yield running
    running.stop()


class Client:
    def __init__(self, session: aiohttp.ClientSession, url: str):
        self.session, self.url = session, url + "/api/v1"

    async def call(self, method: str, path: str, body: dict | None = None, key: str = "") -> tuple[int, dict]:
        headers = {"Idempotency-Key": key} if key else {}
        async with self.session.request(method, self.url + path, json=body, headers=headers,
                                        timeout=aiohttp.ClientTimeout(total=10)) as response:
            return response.status, await response.json()


async def test_random_load_with_a_sigkill_loses_and_invents_nothing(platform):
    credits = platform.services["creditservice"]
    projects = [platform.project(f"load-{i}")[1] for i in range(5)]
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {platform.admin_token()}"}) as session:
        client = Client(session, credits.url)
        for project in projects:
            status, body = await client.call("POST", "/wallets", {"project_id": project, "initial_balance": 5000})
            assert status == 201, body
        topups: list[tuple[str, int]] = []  # (project, transaction id) acknowledged
        outcomes: dict[str, str] = {}  # reservation id -> the last status acknowledged
        unknown: dict[str, set[str]] = {}  # reservation id -> statuses a call that got no answer may have set
        pending: list[str] = []
        lowest = [0]
        stop = time.monotonic() + 6.0

        def saw(wallet: dict) -> None:
            lowest[0] = min(lowest[0], wallet["available"])

        async def worker(n: int) -> None:
            while time.monotonic() < stop:
                project, roll = random.choice(projects), random.random()
                try:
                    if roll < 0.1:
                        status, body = await client.call("POST", f"/wallets/{project}/topup",
                                                          {"amount": random.randint(1, 200)})
                        if status == 200:
                            topups.append((project, body["data"]["transaction"]["id"]))
                            saw(body["data"]["wallet"])
                    elif roll < 0.55 or not pending:
                        status, body = await client.call("POST", "/reservations", {
                            "project_id": project, "amount": random.randint(1, 400), "ttl_seconds": 600})
                        if status == 201:
                            outcomes[body["data"]["reservation"]["id"]] = "PENDING"
                            pending.append(body["data"]["reservation"]["id"])
                            saw(body["data"]["wallet"])
                        else:
                            assert body["error"]["details"]["reason"] == "INSUFFICIENT_CREDITS", body
                    else:
                        id = pending.pop(random.randrange(len(pending)))
                        commit = random.random() < 0.5
                        unknown.setdefault(id, set()).add("COMMITTED" if commit else "RELEASED")
                        if commit:
                            status, body = await client.call("POST", f"/reservations/{id}/commit",
                                                              {"actual_amount": random.randint(0, 1)})
                        else:
                            status, body = await client.call("POST", f"/reservations/{id}/release", {})
                        unknown.pop(id)  # an answer came: the outcome is known
                        if status == 200:
                            outcomes[id] = body["data"]["reservation"]["status"]
                            saw(body["data"]["wallet"])
                except TRANSPORT_ERRORS:  # the process is down: its outcome is unknown
                    await asyncio.sleep(0.05)

        async def killer() -> None:
            await asyncio.sleep(2.5)
            credits.kill()
            await asyncio.sleep(0.3)
            await asyncio.to_thread(credits.start)

        await asyncio.gather(killer(), *(worker(n) for n in range(CLIENTS)))

        assert lowest[0] >= 0
        assert len(outcomes) > 200 and len(topups) > 20
        for project in projects:
            status, body = await client.call("GET", f"/wallets/{project}")
            assert status == 200 and body["data"]["available"] >= 0 and body["data"]["reserved"] >= 0
            ledger, token = set(), ""
            while True:
                status, page = await client.call("GET", f"/wallets/{project}/transactions?page_size=1000"
                                                        + (f"&page_token={token}" if token else ""))
                ledger.update(t["id"] for t in page["data"]["items"])
                token = page["data"]["next_page_token"]
                if not token:
                    break
            assert {t for p, t in topups if p == project} <= ledger  # every acknowledged top-up is there
        for id, acknowledged in outcomes.items():
            status, body = await client.call("GET", f"/reservations/{id}")
            # What was acknowledged, or what a later call whose answer was lost in the kill did.
            assert status == 200 and body["data"]["status"] in {acknowledged} | unknown.get(id, set()), \
                (id, acknowledged, body)
        status, body = await client.call("GET", "/audit")
        assert status == 200 and body["data"]["ok"] is True, body["data"]


async def test_a_reservation_expires_on_time_and_across_a_restart(platform):
    credits = platform.services["creditservice"]
    _, project = platform.project("expiry")
    async with aiohttp.ClientSession(headers={"Authorization": f"Bearer {platform.admin_token()}"}) as session:
        client = Client(session, credits.url)
        status, body = await client.call("POST", "/wallets", {"project_id": project, "initial_balance": 100})
        assert status == 201, body

        async def expired_after(id: str) -> float:
            started = time.monotonic()
            while time.monotonic() - started < 10:
                status, body = await client.call("GET", f"/reservations/{id}")
                if body["data"]["status"] == "EXPIRED":
                    return time.monotonic() - started
                await asyncio.sleep(0.05)
            raise AssertionError("the reservation did not expire")

        status, body = await client.call("POST", "/reservations", {"project_id": project, "amount": 60,
                                                                   "ttl_seconds": 2})
        reserved_at = time.monotonic()
        await expired_after(body["data"]["reservation"]["id"])
        assert 1.8 <= time.monotonic() - reserved_at <= 3.5  # the TTL, plus at most the expiry check period
        status, body = await client.call("GET", f"/wallets/{project}")
        assert (body["data"]["reserved"], body["data"]["available"]) == (0, 100)

        status, body = await client.call("POST", "/reservations", {"project_id": project, "amount": 60,
                                                                   "ttl_seconds": 2})
        id = body["data"]["reservation"]["id"]
        credits.kill()
        await asyncio.sleep(3)  # the deadline passes while the service is down
        await asyncio.to_thread(credits.start)
        restarted = time.monotonic()
        await expired_after(id)
        assert time.monotonic() - restarted <= 1.5  # released right after the restart
        status, body = await client.call("GET", f"/wallets/{project}/transactions?type=EXPIRE")
        assert len(body["data"]["items"]) == 2
