"""A Docker engine's HTTP API on its unix socket: the calls the docker runtime makes, with aiohttp.

Paths carry no API version, so the engine answers in its own; only long-stable calls and fields are
used. Errors come back as EngineError with the engine's message and HTTP status.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import math
import struct
import tarfile
from collections.abc import AsyncIterator
from typing import Any

import aiohttp

DEFAULT_HOST = "unix:///var/run/docker.sock"
CALL_SECONDS = 30.0


class EngineError(Exception):
    """A Docker engine refused a call (status: its HTTP status) or cannot be reached (status 0)."""

    def __init__(self, message: str, status: int = 0):
        super().__init__(message)
        self.status = status


class Engine:
    """A Docker engine's HTTP API on a unix socket (unversioned paths: the engine's own API version)."""

    def __init__(self, host: str = DEFAULT_HOST):
        if not host.startswith("unix://"):
            raise ValueError(f"the Docker host is a unix socket (unix:///var/run/docker.sock), not {host!r}")
        self.host = host
        self.session: aiohttp.ClientSession | None = None

    async def open(self) -> None:
        """Open the HTTP session on the socket."""
        self.session = aiohttp.ClientSession(connector=aiohttp.UnixConnector(path=self.host[len("unix://"):]))

    async def close(self) -> None:
        """Close the HTTP session."""
        if self.session is not None:
            await self.session.close()

    @contextlib.asynccontextmanager
    async def _request(self, method: str, path: str, timeout: float | None = CALL_SECONDS,
                       **kwargs: Any) -> AsyncIterator[aiohttp.ClientResponse]:
        assert self.session is not None, "open() the engine first"
        try:
            async with self.session.request(method, "http://docker" + path, timeout=aiohttp.ClientTimeout(
                    total=timeout, sock_connect=5), **kwargs) as response:
                if response.status >= 400:
                    text = await response.text()
                    with contextlib.suppress(ValueError, KeyError, TypeError):
                        text = json.loads(text)["message"]
                    raise EngineError(text.strip() or f"HTTP {response.status}", response.status)
                yield response
        except aiohttp.ClientConnectorError as exc:
            raise EngineError(f"no Docker engine at {self.host}: {exc.os_error.strerror or exc}") from None
        except (aiohttp.ClientError, OSError, TimeoutError) as exc:
            raise EngineError(f"the Docker engine at {self.host} broke off: {type(exc).__name__}: {exc}") from None

    async def call(self, method: str, path: str, timeout: float | None = CALL_SECONDS, **kwargs: Any) -> Any:
        """One call; its JSON answer (None when empty)."""
        async with self._request(method, path, timeout, **kwargs) as response:
            body = await response.read()
        return json.loads(body) if body.strip() else None

    async def _progress(self, path: str, timeout: float | None, **kwargs: Any) -> None:
        """A call answered by JSON progress lines; EngineError with the error one of them reports."""
        async with self._request("POST", path, timeout, **kwargs) as response:
            async for line in response.content:
                with contextlib.suppress(ValueError, AttributeError):  # not a progress line: skipped
                    error = json.loads(line).get("error")
                    if error:
                        raise EngineError(error, 500)

    async def ping(self) -> None:
        """Whether the engine answers (EngineError if not)."""
        async with self._request("GET", "/_ping", 5.0) as response:
            await response.read()

    async def containers(self, labels: dict[str, str]) -> list[dict[str, Any]]:
        """Every container (running or not) with these labels."""
        filters = json.dumps({"label": [f"{k}={v}" for k, v in labels.items()]})
        return await self.call("GET", "/containers/json", params={"all": "1", "filters": filters})

    async def create(self, config: dict[str, Any], name: str) -> str:
        """Create a container; its id."""
        return (await self.call("POST", "/containers/create", params={"name": name}, json=config))["Id"]

    async def start(self, container: str) -> None:
        """Start a created container."""
        await self.call("POST", f"/containers/{container}/start")

    async def wait(self, container: str) -> int:
        """Wait for a container to stop; its exit code."""
        return int((await self.call("POST", f"/containers/{container}/wait", None))["StatusCode"])

    async def stop(self, container: str, seconds: float) -> None:
        """Stop a container: its stop signal (SIGTERM), then SIGKILL after that many seconds."""
        await self.call("POST", f"/containers/{container}/stop", seconds + CALL_SECONDS,
                        params={"t": str(math.ceil(seconds))})

    async def remove(self, container: str) -> None:
        """Remove a container, running or not (gone already is fine)."""
        try:
            await self.call("DELETE", f"/containers/{container}", params={"force": "1", "v": "1"})
        except EngineError as exc:
            if exc.status != 404:
                raise

    async def networks(self, label: str) -> list[dict[str, Any]]:
        """Every network that has this label (whatever its value)."""
        return await self.call("GET", "/networks", params={"filters": json.dumps({"label": [label]})})

    async def create_network(self, name: str, labels: dict[str, str], cidr: str = "", gateway: str = "") -> None:
        """Create a bridge network on this range, or on one the engine picks from its pools without one (one of
        that name already is fine)."""
        ranges = [{"Subnet": cidr, "Gateway": gateway}] if cidr else []
        config = {"Name": name, "Driver": "bridge", "CheckDuplicate": True, "Labels": labels,
                  "IPAM": {"Driver": "default", "Config": ranges}}
        try:
            await self.call("POST", "/networks/create", json=config)
        except EngineError as exc:
            if exc.status != 409:
                raise

    async def remove_network(self, name: str) -> bool:
        """Remove a network unless containers still use it (or it is gone); whether it was removed."""
        try:
            await self.call("DELETE", f"/networks/{name}")
        except EngineError as exc:
            if exc.status in (403, 404, 409):  # in use, or gone already
                return False
            raise
        return True

    async def inspect(self, container: str) -> dict[str, Any]:
        """A container's details."""
        return await self.call("GET", f"/containers/{container}/json")

    @contextlib.asynccontextmanager
    async def attach(self, container: str) -> AsyncIterator[AsyncIterator[bytes]]:
        """A container's output (stdout and stderr) as it comes, until it stops: attached before it starts, none of it
        is missed (following its log instead drops a last line that has no newline, and output at a quick exit)."""
        async with self._request("POST", f"/containers/{container}/attach", None,
                                 params={"stream": "1", "stdout": "1", "stderr": "1"}) as response:
            yield _frames(response)

    async def has_image(self, image: str) -> bool:
        """Whether the engine has an image locally."""
        try:
            await self.call("GET", f"/images/{image}/json")
            return True
        except EngineError as exc:
            if exc.status == 404:
                return False
            raise

    async def pull(self, image: str) -> None:
        """Have the engine pull an image from its registry."""
        last = image.rsplit("/", 1)[-1]
        tagged = image if ":" in last or "@" in last else image + ":latest"  # untagged, the engine pulls every tag
        await self._progress("/images/create", None, params={"fromImage": tagged})

    async def import_image(self, tar: bytes, image: str) -> None:
        """Make an image (repository:tag) of a file system in a tar archive."""
        repository, tag = image.rsplit(":", 1)
        await self._progress("/images/create", CALL_SECONDS, params={"fromSrc": "-", "repo": repository, "tag": tag},
                             data=tar, headers={"Content-Type": "application/x-tar"})


async def _frames(response: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    """The output in an attached stream, until it ends (or the engine breaks it off)."""
    while True:
        # Without a TTY the engine frames the output: a stream byte, 3 zeros, a big-endian length.
        try:
            header = await response.content.readexactly(8)
            yield await response.content.readexactly(struct.unpack(">I", header[4:])[0])
        except (asyncio.IncompleteReadError, aiohttp.ClientError):
            return


def image_tar(files: dict[str, bytes]) -> bytes:
    """A tar archive of executable files (path -> content) to import as an image."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path, content in files.items():
            info = tarfile.TarInfo(path)
            info.size, info.mode = len(content), 0o755
            tar.addfile(info, io.BytesIO(content))
    return buffer.getvalue()
