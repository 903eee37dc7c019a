"""The anchor the REST benchmarks compare against: a bare aiohttp JSON endpoint in a process of its own.

`GET /` answers a small JSON object, with no authentication, no middleware, no access log and no
store: what aiohttp and the machine can do for one request, so that a service's figures read as a
fraction of it. The benchmarks start it with `start()` and measure it with the same client, in the
same run, as the services.

    .venv/bin/python bench/anchor.py 8099             # serve it by hand on 127.0.0.1:8099
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from aiohttp import web

BODY = {"data": {"key": "bench/key", "value": "x" * 100, "version": 1}}


def serve(port: int) -> None:
    """Serve GET / on 127.0.0.1:port until killed."""
    async def answer(request: web.Request) -> web.Response:
        return web.json_response(BODY)

    app = web.Application()
    app.router.add_get("/", answer)
    web.run_app(app, host="127.0.0.1", port=port, access_log=None, print=None)


def free_port() -> int:
    """A free port on 127.0.0.1."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start(timeout: float = 10.0) -> tuple[subprocess.Popen[bytes], str]:
    """The anchor running in its own process, once it answers: (process, its URL)."""
    port = free_port()
    process = subprocess.Popen([sys.executable, str(Path(__file__)), str(port)])
    url = f"http://127.0.0.1:{port}/"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.build_opener(urllib.request.ProxyHandler({})).open(url, timeout=1):
                return process, url
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("the anchor endpoint did not start")


if __name__ == "__main__":
    serve(int(sys.argv[1]))
