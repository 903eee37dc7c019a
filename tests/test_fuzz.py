"""Property-based fuzzing of every service's REST API, driven by the service's own OpenAPI document
(GET /api/v1/openapi.json) through schemathesis.

With an admin token (system scope, so the gate lets every operation through to its handler), each
operation gets valid and invalid requests generated from its documented parameters and body, and
every response must:

- never be a 5xx;
- when it is an error, be the standard envelope (`{"error": {"code", "message", "details"},
  "meta": {"request_id", ...}}`) with the HTTP status the code maps to, and the request ID echoed;
- conform to the documented schema and content type (schemathesis' own checks);
- for a method the path lacks, be 405 with `Allow` (UNIMPLEMENTED, the code table's one exception).

Without a token, every non-public operation must answer 401 UNAUTHENTICATED in the same envelope.
A few odd inputs no schema describes (bytes that are not UTF-8 in a path, NUL bytes, a body that
is not JSON or not declared as JSON, huge numbers) go to every operation as well.

Generation is derandomized and failures are collected rather than shrunk, so a run is the same
every time and reports every broken operation at once; the number of examples per operation keeps
the whole module to about two minutes on two cores.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections import Counter
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import hypothesis
import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase
from schemathesis.checks import not_a_server_error
from schemathesis.core.failures import FailureGroup
from schemathesis.core.transport import Response
from schemathesis.generation.feedback import FeedbackSources
from schemathesis.pytest._test_builder import build_operation_test
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
    unsupported_method,
)

from photoncloud.common.errors import Code
from photoncloud.common.rest import METHOD_NOT_ALLOWED
from photoncloud.common.testing import start_platform

# The order start_platform needs: a service starts after those it calls.
SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")
SERVICE_NAMES = ("iam", *SERVICES)
# Examples per operation with the admin's token (after schemathesis' boundary cases), and per
# operation without a token. ~180 operations: this bounds the module to about two minutes on two cores.
# A deeper run by hand: PHOTONCLOUD_FUZZ_EXAMPLES=500 PHOTONCLOUD_FUZZ_SEED=7 pytest tests/test_fuzz.py
EXAMPLES = int(os.environ.get("PHOTONCLOUD_FUZZ_EXAMPLES", "40"))
SEED = os.environ.get("PHOTONCLOUD_FUZZ_SEED")  # unset: derandomized, the same requests every run
UNAUTHENTICATED_EXAMPLES = 3
TIMEOUT = 15  # seconds for one request; none of the fuzzed operations takes near that

# Operations left out, and why. Nothing else is: every other route, DELETEs of what the fuzzer made
# included, is fuzzed.
EXCLUDED = {
    # Server-sent events that stream until the client goes: a request never ends.
    ("chainfire", "GET", "/api/v1/watch"): "an endless event stream",
    ("k8shost", "GET", "/api/v1/watch/{kind}"): "an endless event stream",
    # Raft membership of the single-node cluster under test: a bogus member added costs it its quorum
    # (every later write would be UNAVAILABLE), and generated ids such as "1" remove the node itself.
    ("chainfire", "POST", "/api/v1/cluster/members"): "would break the cluster's quorum",
    ("chainfire", "DELETE", "/api/v1/cluster/members/{id}"): "would remove the only member",
    # Log out: revokes the caller's own token and session, so every request after it would be 401.
    ("iam", "POST", "/api/v1/auth/revoke"): "revokes the fuzzer's own token",
    # A new signing key on every example: the services re-fetch the JWKS; nothing a fuzzer can break
    # here that the IAM tests do not cover, and each call is a slow RSA key generation.
    ("iam", "POST", "/api/v1/auth/keys/rotate"): "a destructive operator action",
}


# Read in the no-token run only, not fuzzed: these do not take input (and /metrics and /docs are not JSON).
PUBLIC_STATIC = {"/health", "/metrics", "/api/v1/openapi.json", "/docs"}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """All seven services as processes, for this module alone (the fuzzer leaves junk behind)."""
    running = start_platform(tmp_path_factory.mktemp("fuzz"), *SERVICES, log_level="WARNING")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def admin_headers(platform):
    # Fetched once, before anything is fuzzed: fuzzing IAM's token endpoint with wrong passwords soon
    # locks sign-ins from this address out, as it should.
    return {"Authorization": f"Bearer {platform.admin_token()}"}


@pytest.fixture(scope="module")
def known(platform, admin_headers):
    """Real names for the fuzzer to use now and then (half the time where a parameter of that name
    appears), so that requests get past "no such project" into the handlers: a project with a wallet,
    a k8shost namespace, a PrismNET VPC with a subnet and a security group, a PlasmaVMC flavor."""
    token = admin_headers["Authorization"].split()[1]
    org_id, project_id = platform.project("fuzz")

    def make(service: str, path: str, body: dict) -> dict:
        status, reply = platform.request("POST", f"{platform.services[service].url}/api/v1/{path}", body, token)
        assert status in (200, 201), reply
        return reply["data"]

    make("creditservice", "wallets", {"project_id": project_id, "initial_balance": 1_000_000})
    make("k8shost", "namespaces", {"name": "fuzz", "project_id": project_id})
    vpc = make("prismnet", "vpcs", {"name": "fuzz", "project_id": project_id, "cidr_block": "10.9.0.0/16"})
    subnet = make("prismnet", "subnets", {"vpc_id": vpc["id"], "name": "fuzz", "cidr_block": "10.9.1.0/24"})
    group = make("prismnet", "security-groups", {"name": "fuzz", "project_id": project_id})
    flavor = make("plasmavmc", "flavors", {"name": "fuzz", "vcpus": 1, "memory_mib": 128})
    return {"project": [project_id], "org": [org_id], "namespace": ["fuzz"], "vpc": [vpc["id"]],
            "subnet": [subnet["id"]], "id": [vpc["id"], subnet["id"], group["id"], flavor["id"]]}


@pytest.fixture(scope="module")
def session():
    with requests.Session() as s:
        s.trust_env = False  # loopback: never through a proxy from the environment
        yield s


def _process(platform, name):
    return platform.iam if name == "iam" else platform.services[name]


# --- checks ---------------------------------------------------------------------------------------

def _expect(condition, message: str) -> None:
    if not condition:
        raise AssertionError(message)


def _header(response, name: str) -> str | None:
    values = response.headers.get(name.lower())
    return values[0] if values else None


def error_envelope(ctx, response, case):
    """An error is the platform's envelope, with the HTTP status its code maps to."""
    if response.status_code < 400:
        return None
    try:
        body = json.loads(response.content)
    except ValueError:
        raise AssertionError(f"error body is not JSON: {response.content[:200]!r}") from None
    _expect(isinstance(body, dict) and set(body) == {"error", "meta"}, f"not an error envelope: {body!r}")
    error, meta = body["error"], body["meta"]
    _expect(isinstance(error, dict) and {"code", "message", "details"} <= set(error), f"bad error member: {error!r}")
    _expect(error["code"] in Code.__members__, f"unknown error code {error['code']!r}")
    _expect(isinstance(error["message"], str) and error["message"], f"no message: {error!r}")
    _expect(error["details"] is None or isinstance(error["details"], dict), f"details not an object: {error!r}")
    expected = Code[error["code"]].http_status
    if response.status_code == METHOD_NOT_ALLOWED and error["code"] == "UNIMPLEMENTED":
        expected = METHOD_NOT_ALLOWED  # a method the path lacks: the table's one exception, with Allow
        _expect(_header(response, "Allow"), "405 without an Allow header")
    _expect(response.status_code == expected, f"{error['code']} sent as {response.status_code}, not {expected}")
    _expect(isinstance(meta, dict) and isinstance(meta.get("request_id"), str) and meta["request_id"],
            f"no meta.request_id: {meta!r}")
    _expect(_header(response, "X-Request-ID") == meta["request_id"], "request ID not echoed in X-Request-ID")
    return True


def unauthenticated(ctx, response, case):
    """Without a token: 401 UNAUTHENTICATED, with a WWW-Authenticate challenge."""
    _expect(response.status_code == 401, f"expected 401 without a token, got {response.status_code}")
    _expect(json.loads(response.content)["error"]["code"] == "UNAUTHENTICATED", "code is not UNAUTHENTICATED")
    _expect((_header(response, "WWW-Authenticate") or "").startswith("Bearer"), "no WWW-Authenticate challenge")
    return True


def _served_methods(document, path: str) -> set[str]:
    """The methods some documented route serves at path, a parameter standing for one segment or more."""
    return {method.upper() for template, item in document["paths"].items()
            if re.fullmatch(re.sub(r"\\\{\w+\\\}", ".+", re.escape(template)), path)
            for method in item}


def wrong_method(ctx, response, case):
    """A method the path lacks is 405 with Allow (schemathesis' check), unless the URL is another
    route's as well: ChainFire's keys may hold slashes, so `DELETE /api/v1/kv/a/put` deletes the key
    `a/put`, which OpenAPI, whose parameters are one segment, cannot say."""
    path = urlsplit(response.request.url).path
    if response.request.method in _served_methods(case.operation.schema.raw_schema, path):
        return None
    return unsupported_method(ctx, response, case)


FUZZ_CHECKS = [not_a_server_error, error_envelope, status_code_conformance, content_type_conformance,
               response_schema_conformance, wrong_method]
NO_TOKEN_CHECKS = [not_a_server_error, error_envelope, unauthenticated]


# --- the runner -----------------------------------------------------------------------------------

@dataclass
class Findings:
    """The first failing example of each (operation, failure): the rest are the same bug again."""

    seen: dict[tuple[str, str], str] = field(default_factory=dict)
    requests: int = 0
    statuses: Counter = field(default_factory=Counter)

    def add(self, label: str, kind: str, case, response) -> None:
        if (label, kind) not in self.seen:
            sent = {k: v for k, v in response.request.headers.items() if k.lower() != "authorization"}
            self.seen[label, kind] = (f"{case.as_curl_command(headers=sent)}\n"
                                      f"-> {response.status_code} {response.content[:400]!r}")

    def report(self) -> str:
        return "\n\n".join(f"{label}: {kind}\n{text}" for (label, kind), text in sorted(self.seen.items()))


# Parameter names (in a path, a query or a body) bound to known's lists.
BINDINGS = {"project_id": "project", "org_id": "org", "namespace": "namespace", "vpc_id": "vpc",
            "subnet_id": "subnet", "id": "id"}


def _config(max_examples: int, known: dict[str, list[str]], wrong_methods: bool) -> schemathesis.Config:
    return schemathesis.Config.from_dict({
        **({"seed": int(SEED)} if SEED is not None else {}),
        "dictionaries": {name: {"values": values} for name, values in known.items()},
        "parameters": {f"{where}.{field}": {"dictionary": name, "probability": 0.5}
                       for field, name in BINDINGS.items() for where in ("path", "query", "body")},
        "generation": {
            "max-examples": max_examples,
            "deterministic": SEED is None,
            "with-security-parameters": False,  # the token is the test's, not a generated one
        },
        "phases": {
            # Boundary values (empty and huge strings and numbers, missing, extra and null fields, wrong
            # types), then random valid and invalid requests.
            # With wrong_methods, also each method a path lacks (405 with Allow); not without a token,
            # where routing answers 405 before authentication could answer 401.
            "coverage": {} if wrong_methods else {"unexpected-methods": []},
            "stateful": {"enabled": False},
        },
        # Reports show the inputs as sent: no field named like a secret (ChainFire's `key`) hidden.
        "output": {"sanitization": {"enabled": False}},
    })


# Failures are recorded, not raised (so not shrunk either): every operation runs its whole budget and
# the report lists every distinct failure of every operation at once.
SETTINGS = hypothesis.settings(deadline=None, suppress_health_check=list(HealthCheck), database=None,
                               phases=[Phase.explicit, Phase.generate], print_blob=False)


def fuzz(service: str, process, max_examples: int, known: dict[str, list[str]], headers: dict[str, str],
         checks: list, session: requests.Session, skip) -> Findings:
    """Run every operation of process's API that skip lets through, recording what the checks find."""
    config = _config(max_examples, known, wrong_methods=bool(headers))
    schema = schemathesis.openapi.from_url(f"{process.url}/api/v1/openapi.json", config=config)
    findings = Findings()
    for result in schema.get_all_operations():
        operation = result.ok()
        if skip(operation):
            continue

        def exercise(case):
            findings.requests += 1
            response = case.call(base_url=process.url, session=session, headers=headers, timeout=TIMEOUT)
            findings.statuses[response.status_code] += 1
            try:
                case.validate_response(response, checks=checks, headers=headers)
            except FailureGroup as group:
                for failure in group.exceptions:
                    findings.add(operation.label, f"{failure.title}: {failure.message.strip()[:300]}", case,
                                 response)
            except AssertionError as exc:
                findings.add(operation.label, str(exc)[:300], case, response)

        test = build_operation_test(config=schema.config, operation=operation, test_func=exercise,
                                    given_kwargs={}, feedback=FeedbackSources(), explicit_settings=SETTINGS)
        test()
    return findings


def _excluded(service):
    def skip(operation) -> bool:
        key = (service, operation.method.upper(), operation.path)
        return key in EXCLUDED or operation.path in PUBLIC_STATIC
    return skip


def _public(operation) -> bool:
    return operation.definition.raw.get("security") == []


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_fuzz_with_admin_token(platform, admin_headers, known, session, service):
    started = time.monotonic()
    findings = fuzz(service, _process(platform, service), EXAMPLES, known, admin_headers, FUZZ_CHECKS, session,
                    _excluded(service))
    print(f"{service}: {findings.requests} requests in {time.monotonic() - started:.1f}s",
          dict(findings.statuses))
    if findings.seen:
        pytest.fail(f"{len(findings.seen)} failures in {service}:\n\n{findings.report()}", pytrace=False)


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_fuzz_without_token(platform, known, session, service):
    started = time.monotonic()
    findings = fuzz(service, _process(platform, service), UNAUTHENTICATED_EXAMPLES, known, {}, NO_TOKEN_CHECKS,
                    session, _public)
    print(f"{service}: {findings.requests} requests in {time.monotonic() - started:.1f}s",
          dict(findings.statuses))
    if findings.seen:
        pytest.fail(f"{len(findings.seen)} failures in {service}:\n\n{findings.report()}", pytrace=False)


# --- odd inputs no schema describes -----------------------------------------------------------------

# Long segments stay under aiohttp's 8190-byte request line: a longer line is refused by its HTTP
# parser before any application code runs, with a text/plain 400 outside the envelope (a known gap of
# the server layer, not of a route).
ODD_SEGMENTS = ["%FF%FE", "%C0%AF", "a%00b", "%2F", "..", "x" * 4000]
ODD_QUERY_VALUES = ["%FF", "a%00b", "9" * 40, "-9" + "9" * 40, "1e999", "NaN", "", "%5B%5D"]
ODD_BODIES = [  # (content type, body)
    ("application/json", b"\xff\xfe{}"),
    ("application/json", b"{\"a\": \"\\ud800\"}"),
    ("application/json", b"{\"a\":"),
    ("application/json", b"[" * 100_000 + b"]" * 100_000),
    ("application/json", b"null"),
    ("application/json", b"[]"),
    ("application/json", b"1e99999"),
    ("application/json", b'{"page_size": 1e400, "name": "a\\u0000b", "ttl": 99999999999999999999999999999}'),
    ("text/plain", b"{}"),
    ("application/x-www-form-urlencoded", b"a=b"),
]


def _odd_requests(document, service):
    """(method, url path with query, content type, body) for every odd input of every operation."""
    for path, item in document["paths"].items():
        for method, operation in item.items():
            method = method.upper()
            if (service, method, path) in EXCLUDED or path in PUBLIC_STATIC:
                continue
            params = re.findall(r"{(\w+)}", path)
            query = [p["name"] for p in operation.get("parameters", []) if p["in"] == "query"]
            plain = re.sub(r"{\w+}", "fuzz", path)
            for segment in ODD_SEGMENTS if params else []:
                yield method, re.sub(r"{\w+}", lambda _: segment, path), None, None
            for name in query:
                for value in ODD_QUERY_VALUES:
                    yield method, f"{plain}?{name}={value}", None, None
            if "requestBody" in operation:
                for content_type, body in ODD_BODIES:
                    yield method, plain, content_type, body


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_odd_inputs(platform, admin_headers, session, service):
    process = _process(platform, service)
    document = session.get(f"{process.url}/api/v1/openapi.json", timeout=TIMEOUT).json()
    failures = []
    for method, target, content_type, body in _odd_requests(document, service):
        headers = dict(admin_headers)
        if content_type:
            headers["Content-Type"] = content_type
        response = session.request(method, process.url + target, data=body, headers=headers, timeout=TIMEOUT)
        shown = f"{method} {target[:120]} {content_type or ''} {(body or b'')[:60]!r} -> {response.status_code}"
        try:
            _expect(response.status_code < 500, f"server error {response.content[:300]!r}")
            error_envelope(None, Response.from_requests(response, verify=False), None)
        except AssertionError as exc:
            failures.append(f"{shown}: {exc}")
    if failures:
        pytest.fail(f"{len(failures)} failures in {service}:\n" + "\n".join(failures), pytrace=False)
