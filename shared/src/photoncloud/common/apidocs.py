"""The API explorer of every REST port (GET /docs): Swagger UI over the service's own OpenAPI
document, its files served by the service itself from the swagger-ui-bundle package (no CDN: the
page works on a machine with no way out)."""

from __future__ import annotations

import html
import mimetypes
from pathlib import Path

from aiohttp import web
# The package has annotations but no py.typed marker: its one name is a pathlib Traversable.
from swagger_ui_bundle import swagger_ui_path  # type: ignore[import-untyped]

from .errors import NotFound

PAGE_PATH = "/docs"
STATIC_PATH = "/docs/static/{name}"
HTML = "text/html"
# The bundle's own page and its start script (which loads the Swagger Petstore): the service writes its
# page itself, and the template is the package's, for Jinja.
_NOT_SERVED = {"index.html", "index.j2", "swagger-initializer.js"}
# The files change only with the package's version: a day in the browser's cache spares a reload
# fetching 2 MB again.
_CACHE = "public, max-age=86400"


def _files() -> dict[str, Path]:
    folder = Path(str(swagger_ui_path))
    return {p.name: p for p in sorted(folder.iterdir()) if p.is_file() and p.name not in _NOT_SERVED}


FILES = _files()  # what /docs/static/{name} serves, by name: nothing else, so no path leaves the folder


def _media_type(name: str) -> str:
    return mimetypes.guess_type(name)[0] or "application/octet-stream"


# Every media type /docs/static/{name} answers with, for the OpenAPI document.
STATIC_TYPES = tuple(sorted({_media_type(name) for name in FILES}))

# The page links its files and the document relative to /docs, so that it works behind a proxy that
# serves the service under a path prefix too.
_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="docs/static/swagger-ui.css">
<link rel="icon" type="image/png" href="docs/static/favicon-32x32.png" sizes="32x32">
<link rel="icon" type="image/png" href="docs/static/favicon-16x16.png" sizes="16x16">
</head>
<body>
<div id="swagger-ui"></div>
<script src="docs/static/swagger-ui-bundle.js"></script>
<script src="docs/static/swagger-ui-standalone-preset.js"></script>
<script>
window.onload = function () {{
  window.ui = SwaggerUIBundle({{
    url: "api/v1/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    persistAuthorization: true,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    layout: "StandaloneLayout"
  }});
}};
</script>
</body>
</html>
"""


def page(title: str) -> web.Response:
    """The explorer's page, titled title, loading the service's OpenAPI document."""
    return web.Response(text=_PAGE.format(title=html.escape(title)), content_type=HTML)


def static_file(name: str) -> web.FileResponse:
    """One of Swagger UI's files by name; NOT_FOUND for any other name."""
    path = FILES.get(name)
    if path is None:
        raise NotFound(f"no file {name!r} in the API explorer", {"name": name})
    return web.FileResponse(path, headers={"Cache-Control": _CACHE, "Content-Type": _media_type(name)})
