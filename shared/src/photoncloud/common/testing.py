"""Test support: run a service as a real process on free loopback ports."""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import json
import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa

from .auth import AUDIENCE, SYSTEM, Scope, Verifier
from .errors import NotFound, ResourceExhausted, Unavailable
from .network import PortInfo


DIRECT = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # loopback: never via a proxy


def direct_opener(ca: Path | None = None) -> urllib.request.OpenerDirector:
    """DIRECT, verifying https servers against ca when given."""
    if ca is None:
        return DIRECT
    import ssl

    context = ssl.create_default_context(cafile=str(ca))
    return urllib.request.build_opener(urllib.request.ProxyHandler({}), urllib.request.HTTPSHandler(context=context))


def free_ports(count: int) -> list[int]:
    """count distinct TCP ports on 127.0.0.1 that nothing listens on right now."""
    # All bound at once: ports asked for one by one may come back the same.
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


@contextlib.contextmanager
def taken_port() -> Iterator[int]:
    """A loopback port something listens on for as long as the block runs (for tests of a taken port)."""
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen()
    try:
        yield holder.getsockname()[1]
    finally:
        holder.close()


def bindable(port: int) -> bool:
    """Whether a new listener can take 127.0.0.1:port (nothing holds it)."""
    with socket.socket() as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


class Clock:
    """Wall-clock seconds that move only when a test moves them (`clock.now += 5`)."""

    def __init__(self, now: float = 1_800_000_000.0):
        self.now = now

    def __call__(self) -> float:
        return self.now


@dataclass
class FakeNetwork:
    """PrismNET in memory, behind common.network's Network, with the errors the real one gives: subnets
    are {id: (project_id, cidr)}; a port takes its subnet's lowest free address after the gateway;
    ports remember their device and name, and are in their project's VPC (`vpc-<project_id>`). `down`
    makes every call UNAVAILABLE; `fail_after` port
    creations succeed before one fails as if PrismNET went down (-1: never), and it stays down after
    that with `stay_down`."""

    subnets: dict[str, tuple[str, str]] = field(default_factory=dict)
    ports: dict[str, PortInfo] = field(default_factory=dict)
    devices: dict[str, tuple[str, str]] = field(default_factory=dict)  # port id -> (device_id, name)
    down: bool = False
    fail_after: int = -1
    stay_down: bool = False
    made: int = 0

    def _up(self) -> None:
        if self.down:
            raise Unavailable("prismnet cannot be reached", {"dependency": "prismnet"})

    async def subnet_project(self, subnet_id: str) -> str:
        """The subnet's project."""
        self._up()
        if subnet_id not in self.subnets:
            raise NotFound(f"subnet {subnet_id} not found", {"id": subnet_id})
        return self.subnets[subnet_id][0]

    async def create_port(self, subnet_id: str, name: str, device_id: str) -> PortInfo:
        """A port on the subnet (RESOURCE_EXHAUSTED when no address is left)."""
        self._up()
        if self.fail_after == 0:
            self.fail_after, self.down = -1, self.stay_down
            raise Unavailable("prismnet cannot be reached", {"dependency": "prismnet"})
        self.fail_after -= 1
        network = ipaddress.ip_network(self.subnets[subnet_id][1])
        hosts = [str(h) for h in network.hosts()]
        taken = {p.ip_address for p in self.ports.values() if p.subnet_id == subnet_id}
        free = next((h for h in hosts[1:] if h not in taken), None)
        if free is None:
            raise ResourceExhausted(f"subnet {subnet_id} has no free address", {"reason": "SUBNET_FULL"})
        self.made += 1
        port = PortInfo(f"port-{self.made}", subnet_id, free, f"fa:16:3e:00:00:{self.made:02x}", hosts[0],
                        str(network), f"vpc-{self.subnets[subnet_id][0]}")
        self.ports[port.id] = port
        self.devices[port.id] = (device_id, name)
        return port

    async def delete_port(self, port_id: str) -> None:
        """Forget a port."""
        self._up()
        self.ports.pop(port_id, None)
        self.devices.pop(port_id, None)


class ServiceProcess:
    """`python -m photoncloud.<name>` on free ports with its own data directory; with ca, the process
    serves TLS (its flags say how) and is reached over https verified against ca."""

    def __init__(self, name: str, data_dir: Path, *extra_args: str, env: dict[str, str] | None = None,
                 ca: Path | None = None):
        self.name = name
        self.ca = ca
        self.env = {**os.environ, **(env or {})}
        self.data_dir = data_dir
        self.rest_port, self.grpc_port = free_ports(2)
        self.extra_args = extra_args
        self.launcher: tuple[str, ...] = ()  # a command that runs the rest of the command line (in a cgroup, ...)
        self.process: subprocess.Popen[bytes] | None = None
        self.log_path = data_dir.parent / f"{data_dir.name}.log"

    @property
    def url(self) -> str:
        """The REST base URL."""
        return f"{'https' if self.ca else 'http'}://127.0.0.1:{self.rest_port}"

    def start(self, timeout: float = 30) -> ServiceProcess:
        """Start the process and wait until /health answers SERVING."""
        args = [*self.launcher, sys.executable, "-m", f"photoncloud.{self.name}", "--bind", "127.0.0.1",
                "--rest-port", str(self.rest_port), "--grpc-port", str(self.grpc_port),
                "--data-dir", str(self.data_dir), *self.extra_args]
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child keeps it open
        self.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        log.close()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.name} exited with {self.process.returncode}:\n{self.log()}")
            if self.healthy():
                return self
            time.sleep(0.05)
        self.kill()
        raise RuntimeError(f"{self.name} did not become healthy in {timeout}s:\n{self.log()}")

    def healthy(self) -> bool:
        """Whether /health answers SERVING."""
        try:
            opener = direct_opener(self.ca) if self.ca is None or self.ca.exists() else None
            if opener is None:  # the CA is made when the first service starts
                return False
            with opener.open(self.url + "/health", timeout=1) as response:
                status: object = json.load(response)["data"]["status"]
                return status == "SERVING"
        except (OSError, urllib.error.URLError, ValueError, KeyError):
            return False

    def log(self) -> str:
        """What the process printed so far."""
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def kill(self) -> None:
        """SIGKILL: no shutdown code runs."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def stop(self, timeout: float = 15) -> int:
        """SIGTERM, then wait for a graceful exit; returns the exit code."""
        if self.process is None:
            return 0
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


class ListedRevocations:
    """A revocation source the test controls: the token IDs in revoked, "polled" every interval."""

    def __init__(self, interval: float = 0.2):
        self.interval = interval
        self.revoked: set[str] = set()
        self.asked = 0

    async def is_revoked(self, token_id: str) -> bool:
        """Whether token_id is in revoked (counting the questions)."""
        self.asked += 1
        return token_id in self.revoked


async def wait_for(condition: Callable[[], Any], timeout: float = 10.0) -> Any:
    """condition()'s first truthy value, asked every 20 ms; AssertionError after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        await asyncio.sleep(0.02)
    raise AssertionError("condition not reached in time")


async def sse_events(response: Any, count: int | None = None,
                     opened: asyncio.Event | None = None) -> list[tuple[str, Any]]:
    """The server-sent events of an aiohttp response, (event name, data), until the stream ends or
    count of them have come; opened is set at the server's greeting (its first comment)."""
    events, name = [], ""
    while raw := await response.content.readline():
        line = raw.decode().rstrip("\n")
        if line.startswith(": ") and line != ": heartbeat" and opened is not None:
            opened.set()
        elif line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            events.append((name, json.loads(line.removeprefix("data: "))))
            if len(events) == count:
                break
    return events


class StaticKeys:
    """A KeySource holding fixed keys (for tests that sign their own tokens)."""

    def __init__(self, keys: dict[str, Any]):
        self.keys = keys

    async def key(self, kid: str) -> Any:
        """The key for kid."""
        from .errors import Unauthenticated

        if kid not in self.keys:
            raise Unauthenticated("the token is signed with an unknown key", {"reason": "UNKNOWN_KEY"})
        return self.keys[kid]


class TokenMint:
    """Signs tokens shaped like IAM's with a key of its own, to test a service without IAM."""

    def __init__(self, issuer: str = "http://iam.test", kid: str = "test-key"):
        self.issuer = issuer
        self.kid = kid
        self.private_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    def token(self, permissions: tuple[str, ...] = ("*",), roles: tuple[str, ...] = ("admin",),
              scope: Scope = Scope(SYSTEM), subject: str = "user:test", ttl: int = 300, **claims: Any) -> str:
        """A signed token with these grants, valid for ttl seconds (negative: already expired)."""
        now = int(time.time())
        payload = {
            "iss": self.issuer, "aud": AUDIENCE, "sub": subject, "name": subject.split(":")[-1],
            "iat": now, "nbf": now, "exp": now + ttl, "jti": os.urandom(16).hex(),
            "scope": scope.as_dict(), "roles": list(roles), "permissions": list(permissions), **claims,
        }
        return jwt.encode(payload, self.private_key, algorithm="RS256", headers={"kid": self.kid})

    def verifier(self) -> Verifier:
        """A verifier that trusts this mint's key."""
        public = jwt.PyJWK.from_dict({**jwt.algorithms.RSAAlgorithm.to_jwk(self.private_key.public_key(), as_dict=True),
                                      "kid": self.kid, "alg": "RS256"})
        return Verifier(StaticKeys({self.kid: public}), self.issuer)


@dataclass
class Platform:
    """IAM and services running as processes, the admin's password, and every secret handed out
    (so that tests can look for them where they must not be)."""

    iam: ServiceProcess
    services: dict[str, ServiceProcess]
    admin_password: str
    secrets: set[str] = field(default_factory=set)
    ca: Path | None = None  # the CA the services' TLS certificates come from (None: plaintext)

    def request(self, method: str, url: str, body: dict[str, Any] | None = None,
                token: str | None = None) -> tuple[int, dict[str, Any]]:
        """One JSON request; returns (status, body) whatever the status."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        if token:
            request.add_header("Authorization", f"Bearer {token}")
        try:
            with direct_opener(self.ca).open(request, timeout=30) as response:
                return response.status, json.load(response)
        except urllib.error.HTTPError as error:
            return error.code, json.load(error)

    def token(self, username: str, password: str, **scope: str) -> str:
        """An access token for a user (system scope unless org_id/project_id are given)."""
        body: dict[str, Any] = {"grant_type": "password", "username": username, "password": password}
        if scope:
            body["scope"] = scope
        status, reply = self.request("POST", f"{self.iam.url}/api/v1/auth/token", body)
        assert status == 200, reply
        self.secrets.update({reply["data"]["access_token"], reply["data"].get("refresh_token") or ""} - {""})
        access_token: str = reply["data"]["access_token"]
        return access_token

    def admin_token(self) -> str:
        """A fresh system-scope admin token."""
        return self.token("admin", self.admin_password)

    def project(self, name: str) -> tuple[str, str]:
        """A new IAM project in the org `default`: (org_id, project_id)."""
        admin = self.admin_token()
        status, orgs = self.request("GET", f"{self.iam.url}/api/v1/orgs?name=default", token=admin)
        assert status == 200, orgs
        org_id = orgs["data"]["items"][0]["id"]
        status, project = self.request("POST", f"{self.iam.url}/api/v1/projects", {"org_id": org_id, "name": name},
                                       admin)
        assert status in (200, 201), project
        return org_id, project["data"]["id"]

    def user_with_role(self, role: str, scope: dict[str, str] | None = None) -> tuple[str, str]:
        """A new user bound to role on a scope (the system's unless given): (name, password)."""
        admin = self.admin_token()
        name, password = f"user-{secrets.token_hex(4)}", secrets.token_urlsafe(18)
        self.secrets.add(password)
        status, user = self.request("POST", f"{self.iam.url}/api/v1/users",
                                    {"name": name, "email": f"{name}@example.com", "password": password}, admin)
        assert status in (200, 201), user
        status, binding = self.request("POST", f"{self.iam.url}/api/v1/bindings", {
            "principal": f"user:{user['data']['id']}", "role": role, "scope": scope or {"type": "system"}}, admin)
        assert status in (200, 201), binding
        return name, password

    def project_member(self, project_id: str, role: str = "member") -> str:
        """A token of a new user holding role in the project only (a tenant), scoped to that project."""
        name, password = self.user_with_role(role, {"type": "project", "project_id": project_id})
        return self.token(name, password, project_id=project_id)

    def logs(self) -> str:
        """Everything every process printed."""
        return "".join(p.log() for p in [self.iam, *self.services.values()])

    def stop(self) -> None:
        """Stop the services, then IAM."""
        for process in [*self.services.values(), self.iam]:
            process.stop()


# Flags pointing a service at another's gRPC port, which start_platform fills in ("" when the other
# is not started: the service runs without it).
GRPC_PEERS = {"plasmavmc": {"--creditservice-grpc": "creditservice", "--prismnet-grpc": "prismnet"},
              "k8shost": {"--prismnet-grpc": "prismnet"}}
# Flags for tests: VMs are emulated, which works on every machine (KVM is not always usable).
TEST_ARGS = {"plasmavmc": ("--accel", "tcg")}


def start_platform(root: Path, *names: str, log_level: str = "INFO", tls: bool = False,
                   extra_args: dict[str, tuple[str, ...]] | None = None) -> Platform:
    """IAM, then the named services pointed at it and at each other (revocations polled every half
    second), in the order named: a service starts after those it calls. With tls, every process
    serves TLS in auto mode from one TLS directory under root (its CA is Platform.ca) and verifies
    the others against it; extra_args adds flags by service name."""
    password = secrets.token_urlsafe(18)
    ca = root / "tls" / "ca.crt" if tls else None
    tls_args = ("--tls", "auto", "--tls-dir", str(root / "tls")) if tls else ()
    extra = extra_args or {}
    iam = ServiceProcess("iam", root / "iam", env={"PHOTONCLOUD_ADMIN_PASSWORD": password}, ca=ca)
    iam.extra_args = ("--issuer", iam.url, "--log-level", log_level, *tls_args, *extra.get("iam", ()))
    iam.start()
    services: dict[str, ServiceProcess] = {}
    try:
        for name in names:
            peers = [arg for flag, peer in GRPC_PEERS.get(name, {}).items()
                     for arg in (flag, f"127.0.0.1:{services[peer].grpc_port}" if peer in services else "")]
            services[name] = ServiceProcess(name, root / name, "--iam-url", iam.url, "--log-level", log_level,
                                            "--revocation-poll-seconds", "0.5", *peers,
                                            *TEST_ARGS.get(name, ()), *tls_args, *extra.get(name, ()),
                                            ca=ca).start()
    except BaseException:
        for process in [iam, *services.values()]:
            process.kill()
        raise
    return Platform(iam, services, password, {password}, ca)


@dataclass(frozen=True)
class Operation:
    """One operation of a contract test: its REST route and its gRPC method ("Service/Method")."""

    method: str
    path: str  # with {field} placeholders filled from the arguments
    rpc: str


class RestContract:
    """Runs operations over REST; a result is the data as protobuf would carry it (every field, int64s
    as strings), or {"error": CODE, "message": ..., "details": ...}."""

    def __init__(self, session: Any, port: int, headers: dict[str, str], operations: dict[str, Operation],
                 package: Any):
        self.session, self.base, self.headers = session, f"http://127.0.0.1:{port}/api/v1", headers
        self.operations, self.package = operations, package

    async def call(self, name: str, args: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Run operation name with args (path fields, then the query or the body)."""
        from google.protobuf import json_format

        op = self.operations[name]
        fields = re.findall(r"{(\w+)}", op.path)
        path = op.path.format(**{f: args[f] for f in fields})
        rest = {k: v for k, v in args.items() if k not in fields}
        kwargs: dict[str, Any] = ({"params": {k: str(v) for k, v in rest.items()}} if op.method == "GET"
                                  else {"json": rest})
        async with self.session.request(op.method, self.base + path, headers={**self.headers, **(headers or {})},
                                        **kwargs) as response:
            body = await response.json()
        if "error" in body:
            assert response.status >= 400, body
            return {"error": body["error"]["code"], "message": body["error"]["message"],
                    "details": body["error"]["details"]}
        assert response.status in (200, 201), body
        service, method = op.rpc.split("/")
        output = self.package.DESCRIPTOR.services_by_name[service].methods_by_name[method].output_type
        message = json_format.ParseDict(body["data"], output._concrete_class())
        return json_format.MessageToDict(message, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)


class GrpcContract:
    """Runs the same operations over gRPC, with results and errors in RestContract's shape."""

    def __init__(self, channel: Any, metadata: tuple[tuple[str, str], ...], operations: dict[str, Operation],
                 package: Any, stubs: Any):
        self.channel, self.metadata, self.operations, self.package = channel, metadata, operations, package
        self.stubs = {name: getattr(stubs, f"{name}Stub")(channel) for name in package.DESCRIPTOR.services_by_name}

    async def call(self, name: str, args: dict[str, Any], headers: dict[str, str] | None = None) -> dict[str, Any]:
        """Run operation name with args as its request message (headers as lower-case metadata)."""
        import grpc
        from google.protobuf import json_format

        from .rpc import error_from_rpc

        service, method = self.operations[name].rpc.split("/")
        descriptor = self.package.DESCRIPTOR.services_by_name[service].methods_by_name[method]
        request = json_format.ParseDict(args, descriptor.input_type._concrete_class())
        metadata = self.metadata + tuple((k.lower(), v) for k, v in (headers or {}).items())
        try:
            response = await getattr(self.stubs[service], method)(request, metadata=metadata)
        except grpc.aio.AioRpcError as exc:
            error = error_from_rpc(exc)
            return {"error": error.code.name, "message": error.message, "details": error.details}
        return json_format.MessageToDict(response, preserving_proto_field_name=True,
                                         always_print_fields_with_no_presence=True)


def subset(expected: Any, actual: Any) -> bool:
    """Whether every field of expected is in actual with the same value (lists item by item)."""
    if isinstance(expected, dict):
        return isinstance(actual, dict) and all(k in actual and subset(v, actual[k]) for k, v in expected.items())
    if isinstance(expected, list):
        return isinstance(actual, list) and len(expected) == len(actual) and all(map(subset, expected, actual))
    same: bool = expected == actual
    return same


def without(data: Any, volatile: set[str]) -> Any:
    """data without the fields two runs never share (generated ids, times)."""
    if isinstance(data, dict):
        return {k: without(v, volatile) for k, v in data.items() if k not in volatile}
    if isinstance(data, list):
        return [without(v, volatile) for v in data]
    return data


async def serve(build: Any, service: str, data_dir: Path, verifier: Verifier, **settings: Any) -> Any:
    """The service build(config) makes, serving REST and gRPC on free 127.0.0.1 ports and trusting
    verifier's tokens; settings override the configuration (e.g. iam_url="": no IAM lookups)."""
    from .config import ServerConfig
    from .server import Server

    config = ServerConfig(service=service, bind="127.0.0.1", rest_port=0, grpc_port=0, data_dir=data_dir,
                          shutdown_grace=2, **settings)
    built = await build(config)
    built.verifier = verifier
    server = Server(built, config)
    await server.start()
    return server


async def over_both_transports(start: Callable[[Path], Awaitable[Any]], root: Path, token: str,
                               operations: dict[str, Operation], package: Any, stubs: Any,
                               run: Callable[[Any], Awaitable[list[Any]]]) -> tuple[list[Any], list[Any]]:
    """run's results over REST against one fresh server and over gRPC against another (each made by
    start in a directory of its own under root), with token."""
    import aiohttp
    import grpc

    rest_server, grpc_server = await start(root / "rest"), await start(root / "grpc")
    try:
        async with aiohttp.ClientSession() as session, \
                grpc.aio.insecure_channel(f"127.0.0.1:{grpc_server.grpc_port}") as channel:
            rest = RestContract(session, rest_server.rest_port, {"Authorization": f"Bearer {token}"}, operations,
                                package)
            grpc_ = GrpcContract(channel, (("authorization", f"Bearer {token}"),), operations, package, stubs)
            return await run(rest), await run(grpc_)
    finally:
        await rest_server.stop()
        await grpc_server.stop()
