"""IAM token rates: issuance over REST (password grant) and local verification in a service.

Starts IAM on free 127.0.0.1 ports over a temporary data directory, then measures
- issuance: `POST /api/v1/auth/token` with the password grant (bound by the argon2 password
  check, slow on purpose) and with the refresh-token grant, at each concurrency, for --duration s;
- verification: `photoncloud.common.auth.Verifier.verify` as every service runs it, with IAM's
  JWKS fetched once and the revocation list polled as configured, in one process.

    .venv/bin/python bench/iam_bench.py [--duration 5] [--concurrency 1,4] [--verifications 20000] [--json]

A benchmark, not a test: it asserts nothing, it reports numbers.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import aiohttp

from photoncloud.common.auth import iam_verifier
from photoncloud.common.testing import start_platform


def percentile(values: list[float], fraction: float) -> float:
    """The nearest-rank percentile of values (0 for none)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(fraction * len(ordered)))] if ordered else 0.0


async def issuance(url: str, password: str, grant: str, concurrency: int, duration: float) -> dict:
    """Tokens issued per second and latency over `duration` seconds, by password or refresh grant."""
    login = {"grant_type": "password", "username": "admin", "password": password}
    latencies: list[float] = []
    async with aiohttp.ClientSession() as session:
        async def issue(body: dict) -> dict:
            async with session.post(f"{url}/api/v1/auth/token", json=body) as response:
                reply = await response.json()
                if response.status != 200:
                    raise RuntimeError(f"HTTP {response.status}: {reply['error']['message']}")
                return reply["data"]

        async def worker() -> None:
            # A refresh token is used once: each answer carries the next one.
            refresh = (await issue(login))["refresh_token"] if grant == "refresh_token" else ""
            while time.perf_counter() < deadline:
                body = login if grant == "password" else {"grant_type": grant, "refresh_token": refresh}
                started = time.perf_counter()
                refresh = (await issue(body))["refresh_token"]
                latencies.append(time.perf_counter() - started)

        deadline = time.perf_counter() + duration

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds = time.perf_counter() - started
    return {"case": f"{grant} x{concurrency}", "ops": len(latencies),
            "ops_per_second": round(len(latencies) / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 2),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 2)}


async def verification(url: str, token: str, count: int) -> dict:
    """Local verifications per second of one token (keys cached after the first)."""
    verifier = iam_verifier(url, url, revocation_poll_seconds=5.0)
    await verifier.verify(token)  # fetch the JWKS and the revocation list once
    latencies = []
    started = time.perf_counter()
    for _ in range(count):
        t = time.perf_counter()
        await verifier.verify(token)
        latencies.append(time.perf_counter() - t)
    seconds = time.perf_counter() - started
    return {"case": "verify (local)", "ops": count, "ops_per_second": round(count / seconds, 1),
            "p50_ms": round(percentile(latencies, 0.5) * 1000, 3),
            "p99_ms": round(percentile(latencies, 0.99) * 1000, 3)}


async def bench(url: str, password: str, args: argparse.Namespace) -> list[dict]:
    results = [await issuance(url, password, grant, c, args.duration)
               for grant in ("password", "refresh_token") for c in args.concurrency]
    async with aiohttp.ClientSession() as session:
        body = {"grant_type": "password", "username": "admin", "password": password}
        async with session.post(f"{url}/api/v1/auth/token", json=body) as response:
            token = (await response.json())["data"]["access_token"]
    results.append(await verification(url, token, args.verifications))
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=float, default=5.0, help="seconds per issuance case")
    parser.add_argument("--concurrency", default="1,4",
                        help="issuance concurrencies (IAM refuses a fifth sign-in in flight from one address)")
    parser.add_argument("--verifications", type=int, default=20000, help="tokens verified locally")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    args = parser.parse_args(argv)
    args.concurrency = [int(c) for c in args.concurrency.split(",")]
    with tempfile.TemporaryDirectory(prefix="iam-bench-") as root:
        running = start_platform(Path(root), log_level="WARNING")
        try:
            results = asyncio.run(bench(running.iam.url, running.admin_password, args))
        finally:
            running.stop()
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "results": results}, indent=2))
        return
    print(f"{'case':<18} {'ops':>7} {'ops/s':>9} {'p50 ms':>8} {'p99 ms':>8}   ({os.cpu_count()} CPUs)")
    for r in results:
        print(f"{r['case']:<18} {r['ops']:>7} {r['ops_per_second']:>9.1f} {r['p50_ms']:>8} {r['p99_ms']:>8}")


if __name__ == "__main__":
    sys.exit(main())
