"""The API pages of all seven services, as a user meets them: /docs answers an explorer page whose
files and document load from the service itself; each OpenAPI document is valid OpenAPI 3.1 and says
what its routes really answer (Prometheus text, server-sent events, HTML, DELETEs without a body);
a wrong method on a known path is 405 with Allow, in the error envelope."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from typing import Any
from urllib.parse import urljoin

import pytest
from openapi_spec_validator import validate

from photoncloud.common.testing import direct_opener, start_platform

SERVICES = ("chainfire", "flaredb", "creditservice", "prismnet", "plasmavmc", "k8shost")
SERVICE_NAMES = ("iam", *SERVICES)
HTTP_METHODS = ("get", "put", "post", "delete", "patch")
# The routes that stream server-sent events, by service (every `sse.stream` of the platform).
EVENT_STREAMS = {"chainfire": {"/api/v1/watch"}, "k8shost": {"/api/v1/watch/{kind}"}}


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    running = start_platform(tmp_path_factory.mktemp("docs"), *SERVICES, log_level="WARNING")
    yield running
    running.stop()


def url_of(platform, service: str) -> str:
    return platform.iam.url if service == "iam" else platform.services[service].url


def fetch(url: str, method: str = "GET", token: str | None = None,
          data: bytes | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request as sent, whatever the status: (status, headers, body)."""
    request = urllib.request.Request(url, method=method, data=data)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with direct_opener().open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


@pytest.fixture(scope="module")
def documents(platform) -> dict[str, dict[str, Any]]:
    found = {}
    for service in SERVICE_NAMES:
        status, _, body = fetch(f"{url_of(platform, service)}/api/v1/openapi.json")
        assert status == 200
        found[service] = json.loads(body)
    return found


def success_media_types(operation: dict[str, Any]) -> set[str]:
    (success,) = [r for status, r in operation["responses"].items() if status.startswith("2")]
    return {media_type.split(";")[0] for media_type in success.get("content", {})}


# --- /docs ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_docs_is_an_explorer_page_whose_files_load(platform, service):
    base = url_of(platform, service)
    status, headers, body = fetch(f"{base}/docs")  # no token: public, like the document
    assert status == 200
    assert headers["Content-Type"].startswith("text/html")
    page = body.decode()
    assert '<div id="swagger-ui">' in page and service in page
    linked = re.findall(r'(?:src|href)="([^"]+)"', page)
    assert any(link.endswith("swagger-ui-bundle.js") for link in linked)
    for link in linked:
        url = urljoin(f"{base}/docs", link)
        assert url.startswith(f"{base}/docs/static/"), f"{link} is not served by the service"
        status, headers, body = fetch(url)
        assert status == 200 and body, url
    (document,) = re.findall(r'url: "([^"]+)"', page)
    status, headers, body = fetch(urljoin(f"{base}/docs", document))
    assert status == 200
    assert json.loads(body)["info"]["title"] == f"{service} REST API"


# --- the OpenAPI documents --------------------------------------------------------------------------


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_the_document_is_valid_openapi_31(documents, service):
    assert documents[service]["openapi"].startswith("3.1")
    validate(documents[service])


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_metrics_docs_and_event_streams_declare_what_they_answer(platform, documents, service):
    paths = documents[service]["paths"]
    assert success_media_types(paths["/metrics"]["get"]) == {"text/plain"}
    assert success_media_types(paths["/docs"]["get"]) == {"text/html"}
    assert success_media_types(paths["/api/v1/openapi.json"]["get"]) == {"application/json"}
    streams = {path for path, item in paths.items() for operation in item.values()
               if "text/event-stream" in success_media_types(operation)}
    assert streams == EVENT_STREAMS.get(service, set())
    for path in streams:
        assert success_media_types(paths[path]["get"]) == {"text/event-stream"}
    # What the routes send is what the document says.
    status, headers, _ = fetch(f"{url_of(platform, service)}/metrics")
    assert status == 200
    declared = set(next(r for s, r in paths["/metrics"]["get"]["responses"].items() if s == "200")["content"])
    assert declared == {headers["Content-Type"]}


def test_flaredb_backup_is_a_sqlite_file_as_documented(platform, documents):
    operation = documents["flaredb"]["paths"]["/api/v1/backup"]["get"]
    assert success_media_types(operation) == {"application/vnd.sqlite3"}
    _, project_id = platform.project("docs-backup")
    status, headers, body = fetch(f"{platform.services['flaredb'].url}/api/v1/backup?project_id={project_id}",
                                  token=platform.admin_token())
    assert status == 200, body
    assert headers["Content-Type"] == "application/vnd.sqlite3"
    assert body.startswith(b"SQLite format 3\x00")


@pytest.mark.parametrize(("service", "target"), [
    ("chainfire", "/api/v1/watch?key=docs&timeout_seconds=0.2"),
    ("k8shost", "/api/v1/watch/pods?timeout_seconds=1"),
])
def test_an_event_stream_is_sent_as_documented(platform, service, target):
    status, headers, body = fetch(f"{url_of(platform, service)}{target}", token=platform.admin_token())
    assert status == 200, body
    assert headers["Content-Type"].split(";")[0] == "text/event-stream"
    assert body.startswith(b": watching")


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_no_delete_requires_a_body(documents, service):
    deletes = [(path, item["delete"]) for path, item in documents[service]["paths"].items() if "delete" in item]
    for path, operation in deletes:
        assert operation.get("requestBody", {}).get("required", False) is False, path


def test_k8shost_deletes_take_no_body(platform, documents):
    # Declared `body: "*"` in the contract (for options a DELETE may carry): documented as optional,
    # and served without one.
    paths = documents["k8shost"]["paths"]
    for path in ("/api/v1/namespaces/{name}", "/api/v1/pods/{namespace}/{name}",
                 "/api/v1/services/{namespace}/{name}", "/api/v1/nodes/{name}"):
        assert paths[path]["delete"]["requestBody"]["required"] is False
    admin = platform.admin_token()
    _, project_id = platform.project("docs-delete")
    base = platform.services["k8shost"].url
    status, reply = platform.request("POST", f"{base}/api/v1/namespaces", {"name": "docs", "project_id": project_id},
                                     admin)
    assert status in (200, 201), reply
    status, _, body = fetch(f"{base}/api/v1/namespaces/docs", "DELETE", admin)
    assert status == 200, body
    status, _, body = fetch(f"{base}/api/v1/namespaces/docs", token=admin)
    assert status == 404, body


# --- a wrong method ---------------------------------------------------------------------------------


def served_methods(document: dict[str, Any], target: str) -> set[str]:
    """Every method the document declares on a path that target matches (/api/v1/users/me is also
    /api/v1/users/{id})."""
    return {m.upper() for path, item in document["paths"].items()
            if re.fullmatch(re.sub(r"\\\{\w+\\\}", ".+", re.escape(path)), target)
            for m in item if m in HTTP_METHODS}


def wrong_methods(document: dict[str, Any]):
    """(path, a method no route serves there, the methods served there) for every documented path
    without parameters."""
    for path in document["paths"]:
        if "{" in path:
            continue
        served = served_methods(document, path)
        yield path, next(m.upper() for m in HTTP_METHODS if m.upper() not in served), served


@pytest.mark.parametrize("service", SERVICE_NAMES)
def test_a_wrong_method_is_405_with_allow_in_the_envelope(platform, documents, service):
    base = url_of(platform, service)
    checked = 0
    for path, method, served in wrong_methods(documents[service]):
        status, headers, body = fetch(f"{base}{path}", method, data=b"{}" if method != "GET" else None)
        shown = f"{method} {path}"
        assert status == 405, (shown, body)
        assert {m.strip() for m in headers["Allow"].split(",")} == served, shown
        reply = json.loads(body)
        assert reply["error"]["code"] == "UNIMPLEMENTED", shown
        assert set(reply["error"]["details"]["allowed_methods"]) == served, shown
        assert reply["meta"]["request_id"] == headers["X-Request-ID"], shown
        checked += 1
    assert checked >= 5  # /health, /metrics, /docs, the document, and the service's own


def test_a_wrong_method_with_a_tenants_token_changes_nothing(platform):
    # A tenant PATCHing a key (no such route) is refused before any handler: the key stays as it was.
    _, project_id = platform.project("docs-method")
    tenant = platform.project_member(project_id, "admin")
    base = platform.services["chainfire"].url
    status, reply = platform.request("PUT", f"{base}/api/v1/kv/docs/key", {"value": "kept"}, tenant)
    assert status == 200, reply
    status, headers, body = fetch(f"{base}/api/v1/kv/docs/key", "PATCH", tenant, b'{"value": "changed"}')
    assert status == 405, body
    assert {m.strip() for m in headers["Allow"].split(",")} >= {"GET", "PUT", "DELETE"}
    status, reply = platform.request("GET", f"{base}/api/v1/kv/docs/key", token=tenant)
    assert status == 200 and reply["data"]["value"] == "kept", reply
