"""The SDK and pcctl's parts without a platform: the envelope, errors, token refresh, endpoints, the
credentials file and the output formats, against a stub HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import unquote

import pytest
import yaml

from photoncloud.pcctl.output import render
from photoncloud.pcctl.store import CredentialsError, CredentialStore
from photoncloud.sdk import ApiError, Client, Endpoints, Tokens
from photoncloud.sdk.endpoints import service_url

# (method, path) -> (status, body) or a function of the request's (headers, body) giving them.
Handler = Callable[[dict[str, str], Any], tuple[int, Any]]


class Stub:
    """An HTTP server answering each route with what the test set; it records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], Handler] = {}
        self.requests: list[tuple[str, str, dict[str, str], Any]] = []
        stub = self

        class Handle(BaseHTTPRequestHandler):
            def _serve(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = json.loads(self.rfile.read(length)) if length else None
                path = unquote(self.path.split("?")[0])
                headers = {k.lower(): v for k, v in self.headers.items()}
                stub.requests.append((self.command, self.path, headers, body))
                handler = stub.routes.get((self.command, path))
                status, reply = handler(headers, body) if handler else (404, {"error": {
                    "code": "NOT_FOUND", "message": "no route", "details": None}, "meta": {"request_id": "r-404"}})
                data = reply.encode() if isinstance(reply, str) else json.dumps(reply).encode()
                self.send_response(status)
                self.send_header("Content-Type", "text/plain" if isinstance(reply, str) else "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PUT = do_DELETE = do_PATCH = _serve

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handle)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def on(self, method: str, path: str, handler: Handler | tuple[int, Any]) -> None:
        """Answer method path with handler (or always the same (status, body))."""
        self.routes[(method, path)] = handler if callable(handler) else (lambda h, b, fixed=handler: fixed)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def stub() -> Iterator[Stub]:
    server = Stub()
    yield server
    server.close()


def client_for(stub: Stub, **kwargs: Any) -> Client:
    """A client whose every service is the stub."""
    return Client(Endpoints(stub.url, {name: stub.url for name in ("iam", "chainfire", "flaredb")}), **kwargs)


def ok(data: Any) -> tuple[int, Any]:
    return 200, {"data": data, "meta": {"request_id": "r-1", "timestamp": "2026-01-01T00:00:00Z"}}


def grant(access: str, refresh: str, expires_in: int = 3600) -> tuple[int, Any]:
    return ok({"access_token": access, "token_type": "Bearer", "expires_in": expires_in, "refresh_token": refresh,
               "refresh_expires_in": 86400, "scope": {"type": "project", "project_id": "p1"}, "roles": ["member"]})


def test_the_envelope_is_unwrapped_and_the_token_sent(stub):
    stub.on("GET", "/api/v1/kv/a/b c", ok({"key": "a/b c", "value": "v"}))
    client = client_for(stub, token="tok")
    assert client.kv.get("a/b c") == {"key": "a/b c", "value": "v"}
    method, path, headers, _ = stub.requests[-1]
    assert (method, path) == ("GET", "/api/v1/kv/a/b%20c")
    assert headers["authorization"] == "Bearer tok"


def test_an_error_envelope_is_one_exception_with_everything_in_it(stub):
    stub.on("PUT", "/api/v1/kv/k", (403, {"error": {"code": "PERMISSION_DENIED", "message": "no",
                                                    "details": {"reason": "OPERATOR_ONLY"}},
                                          "meta": {"request_id": "r-9", "timestamp": "..."}}))
    with pytest.raises(ApiError) as caught:
        client_for(stub, token="t").kv.put("k", "v")
    error = caught.value
    assert (error.code, error.message, error.details, error.request_id, error.status) == \
        ("PERMISSION_DENIED", "no", {"reason": "OPERATOR_ONLY"}, "r-9", 403)
    assert error.envelope() == {"error": {"code": "PERMISSION_DENIED", "message": "no",
                                          "details": {"reason": "OPERATOR_ONLY"}}, "meta": {"request_id": "r-9"}}


def test_a_body_that_is_not_an_envelope_is_an_error_not_data(stub):
    stub.on("GET", "/api/v1/kv/k", (502, "Bad Gateway"))
    with pytest.raises(ApiError) as caught:
        client_for(stub, token="t").kv.get("k")
    assert caught.value.code == "UNAVAILABLE" and caught.value.status == 502
    stub.on("GET", "/api/v1/kv/k", (200, {"not": "an envelope"}))
    with pytest.raises(ApiError) as caught:
        client_for(stub, token="t").kv.get("k")
    assert caught.value.code == "INTERNAL"


def test_a_service_that_does_not_answer_is_unavailable():
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()  # nothing listens there now
    client = Client(Endpoints(f"http://127.0.0.1:{port}"), token="t", timeout=2)
    with pytest.raises(ApiError) as caught:
        client.kv.get("k")
    assert caught.value.code == "UNAVAILABLE"
    assert caught.value.message == f"cannot reach http://127.0.0.1:{port}/api/v1/kv/k: Connection refused"


def test_login_then_refresh_before_expiry_and_each_new_set_is_handed_over(stub):
    grants: list[Any] = []

    def token(headers: dict[str, str], body: Any) -> tuple[int, Any]:
        grants.append(body)
        return grant(f"access-{len(grants)}", f"refresh-{len(grants)}", expires_in=3600 if len(grants) > 1 else 100)

    stub.on("POST", "/api/v1/auth/token", token)
    stub.on("GET", "/api/v1/kv", lambda h, b: ok({"items": [], "next_page_token": "", "auth": h["authorization"]}))
    seen: list[Tokens | None] = []
    client = client_for(stub, on_tokens=seen.append)
    tokens = client.auth.login("alice", "pw", project_id="p1")
    assert grants[0] == {"grant_type": "password", "username": "alice", "password": "pw",
                         "scope": {"project_id": "p1"}}
    assert "authorization" not in stub.requests[0][2]  # the token endpoint is public
    assert tokens.scope == {"type": "project", "project_id": "p1"} and seen == [tokens]
    # Still fresh: sent as it is.
    assert client.kv.list()["auth"] == "Bearer access-1" and len(grants) == 1
    # A minute later it has 40 of its 100 s left, less than half its life: the next call refreshes first.
    assert client.auth.tokens is not None
    client.auth.tokens.issued_at -= 60
    client.auth.tokens.expires_at -= 60
    assert client.kv.list()["auth"] == "Bearer access-2"
    assert grants[1] == {"grant_type": "refresh_token", "refresh_token": "refresh-1"}
    assert seen[-1] is not None and seen[-1].refresh_token == "refresh-2"
    # A fresh hour: no refresh.
    assert client.kv.list()["auth"] == "Bearer access-2" and len(grants) == 2


def test_a_401_is_retried_once_with_a_refreshed_token(stub):
    stub.on("POST", "/api/v1/auth/token", lambda h, b: grant("new", "r2"))
    calls: list[str] = []

    def kv(headers: dict[str, str], body: Any) -> tuple[int, Any]:
        calls.append(headers["authorization"])
        if headers["authorization"] == "Bearer old":
            return 401, {"error": {"code": "UNAUTHENTICATED", "message": "expired", "details": None}}
        return ok({"ok": True})

    stub.on("GET", "/api/v1/kv/k", kv)
    tokens = Tokens("old", time.time() + 3600, "r1", time.time() + 86400, issued_at=time.time())
    assert client_for(stub, tokens=tokens).kv.get("k") == {"ok": True}
    assert calls == ["Bearer old", "Bearer new"]
    # Without a refresh token there is nothing to retry with: the 401 is the caller's.
    with pytest.raises(ApiError) as caught:
        client_for(stub, tokens=Tokens("old", time.time() + 3600, issued_at=time.time())).kv.get("k")
    assert caught.value.code == "UNAUTHENTICATED"


def test_tokens_another_process_refreshed_are_taken_not_refreshed_again(stub, tmp_path):
    grants: list[Any] = []
    stub.on("POST", "/api/v1/auth/token", lambda h, b: (grants.append(b), grant("mine", "r-mine"))[1])
    stub.on("GET", "/api/v1/kv/k", lambda h, b: ok({"auth": h["authorization"]}))
    store = CredentialStore(tmp_path / "photoncloud")
    now = time.time()
    stale = Tokens("old", now + 10, "r-old", now + 86400, issued_at=now - 3590)
    store.save(Tokens("theirs", now + 3600, "r-theirs", now + 86400, issued_at=now))  # refreshed elsewhere
    client = client_for(stub, tokens=stale, shared=store, on_tokens=store.save)
    assert client.kv.get("k") == {"auth": "Bearer theirs"}
    assert grants == []  # r-old was used by the other process: using it again would revoke the session
    # When nobody has refreshed them, the refresh is this process's, and what it gets is kept.
    store.save(stale)
    client = client_for(stub, tokens=stale, shared=store, on_tokens=store.save)
    assert client.kv.get("k") == {"auth": "Bearer mine"}
    assert grants == [{"grant_type": "refresh_token", "refresh_token": "r-old"}]
    assert store.tokens() is not None and store.tokens().refresh_token == "r-mine"


def test_clients_sharing_a_store_refresh_once_between_them(stub, tmp_path):
    # Each client opens the lock on its own, as separate pcctl processes do (flock excludes between
    # open files, in one process too); the token endpoint is slow enough for all of them to find the
    # token stale before the first refresh is kept.
    grants: list[Any] = []

    def token(headers: dict[str, str], body: Any) -> tuple[int, Any]:
        grants.append(body)
        time.sleep(0.5)
        return grant(f"access-{len(grants)}", f"refresh-{len(grants)}")

    stub.on("POST", "/api/v1/auth/token", token)
    stub.on("GET", "/api/v1/kv/k", lambda h, b: ok({"auth": h["authorization"]}))
    store = CredentialStore(tmp_path / "photoncloud")
    now = time.time()
    stale = Tokens("old", now + 10, "r-old", now + 86400, issued_at=now - 3590)
    store.save(stale)
    answers: list[Any] = []

    def command() -> None:
        answers.append(client_for(stub, tokens=store.tokens(), shared=store, on_tokens=store.save).kv.get("k"))

    threads = [threading.Thread(target=command) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert grants == [{"grant_type": "refresh_token", "refresh_token": "r-old"}]
    assert answers == [{"auth": "Bearer access-1"}] * 4


def test_lists_follow_every_page(stub):
    def page(headers: dict[str, str], body: Any) -> tuple[int, Any]:
        query = stub.requests[-1][1]
        return ok({"items": [{"n": 2}], "next_page_token": ""} if "page_token=t2" in query
                  else {"items": [{"n": 1}], "next_page_token": "t2"})

    stub.on("GET", "/api/v1/projects", page)
    assert list(client_for(stub, token="t").iam.projects(org_id="o1")) == [{"n": 1}, {"n": 2}]
    assert "org_id=o1" in stub.requests[-1][1] and "page_token=t2" in stub.requests[-1][1]


def test_endpoints():
    assert service_url("http://10.1.2.3", "flaredb") == "http://10.1.2.3:8082"
    assert service_url("https://cloud.example", "prismnet") == "https://cloud.example:8087"
    assert service_url("127.0.0.1:9999", "iam") == "http://127.0.0.1:9999"  # a port given is kept
    env = {"PHOTONCLOUD_URL": "http://10.0.0.1", "PHOTONCLOUD_IAM_URL": "https://iam.example/"}
    endpoints = Endpoints.from_env(env)
    assert endpoints.url("iam") == "https://iam.example" and endpoints.url("k8shost") == "http://10.0.0.1:8085"
    assert Endpoints.from_env({}).url("chainfire") == "http://127.0.0.1:8081"
    with pytest.raises(ValueError, match="unknown service"):
        Endpoints(overrides={"nova": "http://x"})


def test_pcctl_endpoints_flags_then_environment_then_the_sign_in(tmp_path, monkeypatch):
    import click

    from photoncloud.pcctl.cli import cli

    for name in [k for k in os.environ if k.startswith("PHOTONCLOUD_")]:
        monkeypatch.delenv(name)
    CredentialStore(tmp_path).save(Tokens("a", 1.0), Endpoints("http://10.0.0.1", {"iam": "http://iam.lan:9000"}))

    def endpoints(url: str | None = None, *endpoint: str) -> Endpoints:
        ctx = click.Context(cli)
        with ctx:
            ctx.invoke(cli.callback, url=url, endpoint=endpoint, token=None, ca_file=None,
                       config_path=str(tmp_path), output="table")
        return ctx.obj.endpoints

    signed_in = endpoints()
    assert signed_in.url("iam") == "http://iam.lan:9000" and signed_in.url("flaredb") == "http://10.0.0.1:8082"
    monkeypatch.setenv("PHOTONCLOUD_K8SHOST_URL", "http://k8s.lan")
    assert endpoints().url("k8shost") == "http://k8s.lan" and endpoints().url("iam") == "http://iam.lan:9000"
    other = endpoints("http://10.9.9.9", "flaredb=http://db.lan:1")  # another platform: nothing signed-in applies
    assert (other.url("iam"), other.url("flaredb"), other.url("k8shost")) == \
        ("http://10.9.9.9:8083", "http://db.lan:1", "http://k8s.lan")
    with pytest.raises(click.BadParameter, match="nova"):
        endpoints(None, "nova=http://x")


def test_the_credentials_file_is_0600_whatever_the_umask_and_what_was_there(tmp_path):
    store = CredentialStore(tmp_path / "photoncloud")
    store.path.parent.mkdir()
    store.path.write_text("{}")
    os.chmod(store.path, 0o644)  # left readable by an older tool
    old = os.umask(0)
    try:
        store.save(Tokens("a", 1.0, "r", 2.0), Endpoints("http://h"))
    finally:
        os.umask(old)
    assert stat.S_IMODE(store.path.stat().st_mode) == 0o600
    assert store.tokens() == Tokens("a", 1.0, "r", 2.0)
    assert store.endpoints() == Endpoints("http://h")
    store.save(None)
    assert store.tokens() is None and store.endpoints() == Endpoints("http://h")
    assert [p.name for p in store.directory.iterdir()] == ["credentials.json"]  # no temporary left
    store.path.write_text("{not json")
    with pytest.raises(CredentialsError, match="pcctl login"):
        store.tokens()
    store.save(Tokens("b", 3.0))  # a new sign-in writes over it
    assert store.tokens() == Tokens("b", 3.0) and stat.S_IMODE(store.path.stat().st_mode) == 0o600


def test_the_project_a_given_token_is_scoped_to_is_the_default():
    import base64

    from photoncloud.pcctl.context import token_scope

    claims = {"sub": "user:1", "scope": {"type": "project", "org_id": "o", "project_id": "p-7"}}
    payload = base64.urlsafe_b64encode(json.dumps(claims).encode()).decode().rstrip("=")
    assert token_scope(f"header.{payload}.signature") == claims["scope"]
    assert token_scope("not-a-jwt") == {} and token_scope("a.!!!.c") == {}


def test_a_pods_progress_says_why_it_waits():
    from photoncloud.pcctl.commands.kube import pod_phase, running

    pending = {"status": {"phase": "Pending", "conditions": [
        {"type": "PodScheduled", "status": "False", "reason": "Unschedulable"}]}}
    crashing = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "False"}],
                           "container_statuses": [{"name": "main", "state": "WAITING", "reason": "CrashLoopBackOff"}]}}
    ready = {"status": {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}],
                        "container_statuses": [{"name": "main", "state": "RUNNING", "reason": ""}]}}
    assert pod_phase(pending) == "Pending (Unschedulable)" and not running(pending)
    assert pod_phase(crashing) == "Running (main WAITING: CrashLoopBackOff)" and not running(crashing)
    assert pod_phase(ready) == "Running" and running(ready)
    assert running({"status": {"phase": "Failed"}}) and pod_phase(None) == "gone"


def test_output_formats():
    items = [{"id": "a", "name": "x", "meta": {"n": 1}}, {"id": "bb", "name": "y", "meta": {"n": 2}}]
    assert render(items, "table", [("ID", "id"), ("N", "meta.n")]).splitlines() == ["ID  N", "a   1", "bb  2"]
    assert render(items, "table").splitlines()[0].split() == ["ID", "NAME"]  # scalar fields by default
    assert yaml.safe_load(render(items, "yaml")) == items
    assert json.loads(render(items, "json")) == items
    assert render({"a": {"b": 1}, "c": [1, 2]}, "table").splitlines() == ["FIELD  VALUE", "a.b    1", "c      1,2"]
    assert render([], "table") == ""
