"""The API explorer (GET /docs): a Swagger UI page over the service's OpenAPI document, its files
served by the service from the package (nothing from elsewhere), public, and no other file."""

from __future__ import annotations

import asyncio
import re
from urllib.parse import urljoin

import pytest

from photoncloud.common import apidocs
from photoncloud.common.rest import RouteTable
from photoncloud.common.server import Service
from photoncloud.common.testing import TokenMint


def routes() -> RouteTable:
    table = RouteTable()

    @table.get("/api/v1/things", "List things", who="tenant", permission="things:read")
    async def list_things(request):
        return {"items": []}

    return table


@pytest.fixture
async def base(start):
    # With a verifier: the explorer must be served without a token all the same.
    server = await start(Service("things", "1.2.3", routes(), [], verifier=TokenMint().verifier()))
    return f"http://127.0.0.1:{server.rest_port}"


def links(page: str) -> list[str]:
    return re.findall(r'(?:src|href)="([^"]+)"', page)


async def test_docs_is_an_html_page_without_a_token(base, http):
    async with http.get(f"{base}/docs") as resp:
        assert resp.status == 200
        assert resp.content_type == "text/html"
        page = await resp.text()
    assert '<div id="swagger-ui">' in page
    assert "<title>things REST API</title>" in page


async def test_every_file_the_page_links_loads_from_the_service(base, http):
    async with http.get(f"{base}/docs") as resp:
        page = await resp.text()
    found = links(page)
    assert {"docs/static/swagger-ui-bundle.js", "docs/static/swagger-ui.css"} <= set(found)
    for link in found:
        assert "//" not in link, f"{link}: the page loads nothing from another host"
        url = urljoin(f"{base}/docs", link)
        assert url.startswith(f"{base}/docs/static/")
        async with http.get(url) as resp:
            assert resp.status == 200, url
            body = await resp.read()
            assert body, url
            if url.endswith(".js"):
                assert resp.content_type in {"text/javascript", "application/javascript"}
            elif url.endswith(".css"):
                assert resp.content_type == "text/css"
            elif url.endswith(".png"):
                assert resp.content_type == "image/png"
                assert body.startswith(b"\x89PNG")
    async with http.get(f"{base}/docs/static/swagger-ui-bundle.js") as resp:
        assert "SwaggerUIBundle" in await resp.text()
        assert "max-age" in resp.headers["Cache-Control"]


async def test_the_page_loads_this_services_openapi_document(base, http):
    async with http.get(f"{base}/docs") as resp:
        page = await resp.text()
    (document,) = re.findall(r'url: "([^"]+)"', page)
    async with http.get(urljoin(f"{base}/docs", document)) as resp:
        assert resp.status == 200
        assert (await resp.json())["info"]["title"] == "things REST API"


@pytest.mark.parametrize("name", [
    "..%2F__init__.py",  # the package's own module, one folder up
    "..%2F..%2F..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "%2Fetc%2Fpasswd",
    "index.j2",  # in the folder, but not served
    "swagger-initializer.js",  # loads the Swagger Petstore
    "nothing.js",
])
async def test_no_other_file_is_served(base, http, name):
    async with http.get(f"{base}/docs/static/{name}") as resp:
        assert resp.status == 404
        body = await resp.json()
    assert body["error"]["code"] == "NOT_FOUND"
    assert "root:" not in str(body) and "import" not in str(body)


async def test_a_dot_dot_path_does_not_leave_the_folder(base, http):
    # Sent as written (aiohttp's client would resolve the dots itself).
    host, port = base.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    writer.write(b"GET /docs/static/../../../../etc/passwd HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    await writer.drain()
    answer = await reader.read()
    writer.close()
    assert b"root:" not in answer
    assert answer.split(b" ", 2)[1] in {b"404", b"400"}


async def test_the_rest_of_the_api_still_wants_a_token(base, http):
    async with http.get(f"{base}/api/v1/things") as resp:
        assert resp.status == 401


async def test_a_wrong_method_on_the_explorer_is_405(base, http):
    async with http.post(f"{base}/docs") as resp:
        assert resp.status == 405
        assert resp.headers["Allow"] == "GET"


def test_every_served_file_is_in_the_bundle_folder():
    folder = apidocs.FILES["swagger-ui.css"].parent
    assert all(path.parent == folder for path in apidocs.FILES.values())
    assert "swagger-ui-bundle.js" in apidocs.FILES
