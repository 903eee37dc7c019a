#!/usr/bin/env python3
"""Check the REST health endpoint of every PhotonCloud service.

    python3 scripts/health.py [--host HOST] [--timeout SECONDS] [--wait SECONDS] [--json] [--cacert CA]

Asks `GET /health` on the seven REST ports and prints one line per service: `healthy`
(HTTP 200 and status SERVING), `unhealthy (reason)`, or `not running` (connection refused).
The host defaults to $PHOTONCLOUD_HOST or 127.0.0.1; each port can be overridden with
<SERVICE>_REST_PORT, e.g. CHAINFIRE_REST_PORT=9081. With TLS on, `--cacert` (or $PHOTONCLOUD_TLS_CA)
names the platform's CA: the ports are asked over HTTPS, verified against it.

Exit status: 1 if any running service is unhealthy, 0 otherwise (services that are not
running do not fail the check), 2 on bad usage. With --wait, the check is repeated until all
seven are healthy, for up to that many seconds (a platform just started, e.g. by docker-compose
up -d): then a service that is still not running fails it too. Standard library only, so it
runs without the project's virtual environment.
"""

from __future__ import annotations

import argparse
import http.client
import json
import os
import socket
import ssl
import sys
import time
from concurrent.futures import ThreadPoolExecutor

SERVICES = (
    ("chainfire", 8081),
    ("flaredb", 8082),
    ("iam", 8083),
    ("plasmavmc", 8084),
    ("k8shost", 8085),
    ("creditservice", 8086),
    ("prismnet", 8087),
)

HEALTHY, UNHEALTHY, NOT_RUNNING = "healthy", "unhealthy", "not running"


def rest_port(name: str, default: int) -> int:
    """Return the service's REST port, honouring <SERVICE>_REST_PORT."""
    var = f"{name.upper()}_REST_PORT"
    value = os.environ.get(var, "").strip()
    if not value:
        return default
    if not value.isdigit() or not 0 < int(value) < 65536:
        raise ValueError(f"{var}={value!r} is not a port number")
    return int(value)


def check(host: str, port: int, timeout: float, tls: ssl.SSLContext | None = None) -> dict:
    """Ask one service for its health (over HTTPS verified by tls, when given) and classify the answer."""
    result = {"port": port, "status": UNHEALTHY, "reason": None, "version": None}
    conn = (http.client.HTTPSConnection(host, port, timeout=timeout, context=tls) if tls
            else http.client.HTTPConnection(host, port, timeout=timeout))
    try:
        conn.request("GET", "/health", headers={"Accept": "application/json"})
        response = conn.getresponse()
        body = response.read()
    except ConnectionRefusedError:
        result["status"] = NOT_RUNNING
        return result
    except socket.timeout:  # TimeoutError on Python 3.10+
        result["reason"] = f"no answer within {timeout:g}s"
        return result
    except (OSError, http.client.HTTPException) as exc:
        result["reason"] = str(exc) or type(exc).__name__
        return result
    finally:
        conn.close()

    try:
        data = json.loads(body)["data"]
        state = data["status"]
    except (ValueError, TypeError, KeyError):
        result["reason"] = f"HTTP {response.status}, body is not a health document"
        return result
    result["version"] = data.get("version")
    if response.status == 200 and state == "SERVING":
        result["status"] = HEALTHY
    else:
        result["reason"] = f"HTTP {response.status}, {state}"
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    """Parse the command line."""
    parser = argparse.ArgumentParser(description="Check the health of every PhotonCloud service.")
    parser.add_argument("--host", default=os.environ.get("PHOTONCLOUD_HOST") or "127.0.0.1",
                        help="host to check (default: $PHOTONCLOUD_HOST or 127.0.0.1)")
    parser.add_argument("--timeout", type=float, default=2.0,
                        help="seconds to wait for each service (default: 2)")
    parser.add_argument("--json", action="store_true", help="print one JSON document")
    parser.add_argument("--cacert", default=os.environ.get("PHOTONCLOUD_TLS_CA") or None,
                        help="the CA to verify the services' TLS certificates with; asks over HTTPS "
                             "(default: $PHOTONCLOUD_TLS_CA; none: plain HTTP)")
    parser.add_argument("--wait", type=float, default=0.0, metavar="SECONDS",
                        help="check again until all seven are healthy, for up to SECONDS "
                             "(default: 0, check once)")
    args = parser.parse_args(argv)
    if args.timeout <= 0:
        parser.error("--timeout must be positive")
    if args.wait < 0:
        parser.error("--wait must not be negative")
    return args


def check_all(host: str, targets: list[tuple[str, int]], timeout: float, tls: ssl.SSLContext | None) -> list[dict]:
    """Check every service at once; one result per target, in order."""
    with ThreadPoolExecutor(max_workers=len(targets)) as pool:
        return list(pool.map(lambda t: {"service": t[0], **check(host, t[1], timeout, tls)}, targets))


def main(argv: list[str] | None = None) -> int:
    """Check all services, report, and return the exit status."""
    args = parse_args(argv)
    try:
        targets = [(name, rest_port(name, default)) for name, default in SERVICES]
    except ValueError as exc:
        print(f"health: {exc}", file=sys.stderr)
        return 2

    try:
        tls = ssl.create_default_context(cafile=args.cacert) if args.cacert else None
    except OSError as exc:
        print(f"health: cannot read --cacert {args.cacert}: {exc}", file=sys.stderr)
        return 2
    deadline = time.monotonic() + args.wait
    results = check_all(args.host, targets, args.timeout, tls)
    while args.wait and not all(r["status"] == HEALTHY for r in results) and time.monotonic() < deadline:
        time.sleep(0.25)
        results = check_all(args.host, targets, args.timeout, tls)
    running = [r for r in results if r["status"] != NOT_RUNNING]
    ok = all(r["status"] == HEALTHY for r in (results if args.wait else running))

    if args.json:
        print(json.dumps({"host": args.host, "healthy": ok, "services": results}, indent=2))
    else:
        width = max(len(r["service"]) for r in results)
        for r in results:
            state = r["status"] + (f" ({r['reason']})" if r["reason"] else "")
            print(f"{r['service']:<{width}}  {r['port']:>5}  {state}")
        if not running:
            print(f"note: no PhotonCloud service is running on {args.host}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
