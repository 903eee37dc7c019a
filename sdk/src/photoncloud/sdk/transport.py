"""One service's REST API over HTTP: JSON in, the envelope's `data` out, its `error` raised as ApiError."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import requests

from .errors import ApiError


class TokenSource(Protocol):
    """Where a transport gets the bearer token it sends (None: send none)."""

    def access_token(self, force_refresh: bool = False) -> str | None:
        """A live access token, refreshed first when force_refresh or about to expire."""
        ...


def path_segment(value: str) -> str:
    """value as one URL path segment."""
    return quote(value, safe="")


def key_path(key: str) -> str:
    """A key that may hold slashes, as the path's tail (slashes kept, everything else reserved quoted)."""
    return quote(key, safe="/")


class Transport:
    """Calls one service: base_url + path, with the token of tokens (if any) and a shared session."""

    def __init__(self, base_url: str, tokens: TokenSource | None = None, session: requests.Session | None = None,
                 timeout: float = 30.0, verify: bool | str = True):
        self.base_url = base_url.rstrip("/")
        self.tokens = tokens
        self.session = session or requests.Session()
        self.timeout = timeout
        self.verify = verify

    def request(self, method: str, path: str, *, params: Mapping[str, Any] | None = None,
                json: Any = None, authenticated: bool = True, request_id: str | None = None) -> Any:
        """The `data` of the answer to method path; ApiError for an error envelope or no answer.
        A 401 with a token is retried once with a refreshed token (it may have expired in flight)."""
        token = self.tokens.access_token() if authenticated and self.tokens else None
        response = self._send(method, path, params, json, token, request_id)
        if response.status_code == 401 and token is not None and self.tokens is not None:
            fresh = self.tokens.access_token(force_refresh=True)
            if fresh != token:  # a fixed token, or one that cannot be refreshed, would only be refused again
                response = self._send(method, path, params, json, fresh, request_id)
        return self._unwrap(response)

    def download(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        """The body of GET path as bytes (a file, not an envelope); ApiError for an error envelope."""
        token = self.tokens.access_token() if self.tokens else None
        response = self._send("GET", path, params, None, token, None)
        if response.status_code >= 400:
            self._unwrap(response)
        return response.content

    def upload(self, path: str, data: bytes, content_type: str,
               params: Mapping[str, Any] | None = None) -> Any:
        """The `data` of the answer to POST path with data as the body."""
        token = self.tokens.access_token() if self.tokens else None
        return self._unwrap(self._send("POST", path, params, None, token, None, (data, content_type)))

    def _send(self, method: str, path: str, params: Mapping[str, Any] | None, json: Any, token: str | None,
              request_id: str | None, raw: tuple[bytes, str] | None = None) -> requests.Response:
        headers = {"Accept": "application/json"}
        if raw is not None:
            headers["Content-Type"] = raw[1]
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if request_id:
            headers["X-Request-ID"] = request_id
        url = self.base_url + path
        try:
            return self.session.request(method, url, params=query(params), json=json,
                                        data=raw[0] if raw else None, headers=headers,
                                        timeout=self.timeout, verify=self.verify)
        except requests.RequestException as exc:
            raise ApiError("UNAVAILABLE", f"cannot reach {url}: {reason(exc)}", {"url": url}) from exc

    @staticmethod
    def _unwrap(response: requests.Response) -> Any:
        request_id = response.headers.get("X-Request-ID")
        try:
            body = response.json()
        except ValueError:
            raise ApiError("INTERNAL" if response.status_code < 500 else "UNAVAILABLE",
                           f"HTTP {response.status_code} from {response.url} without a JSON body",
                           {"status": response.status_code, "text": response.text[:200]}, request_id,
                           response.status_code) from None
        meta = body.get("meta") if isinstance(body, dict) else None
        request_id = (meta or {}).get("request_id") or request_id
        if isinstance(body, dict) and isinstance(body.get("error"), dict):
            error = body["error"]
            raise ApiError(str(error.get("code", "UNKNOWN")), str(error.get("message", "")), error.get("details"),
                           request_id, response.status_code)
        if not isinstance(body, dict) or "data" not in body or response.status_code >= 400:
            raise ApiError("INTERNAL", f"HTTP {response.status_code} from {response.url} is not an envelope",
                           {"status": response.status_code}, request_id, response.status_code)
        return body["data"]

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        """Every item of a list route, page after page (following next_page_token)."""
        params = dict(params or {})
        while True:
            data = self.request("GET", path, params=params)
            yield from data.get("items", [])
            token = data.get("next_page_token")
            if not token:
                return
            params["page_token"] = token


def reason(exc: requests.RequestException) -> str:
    """Why a request got no answer, in a few words: the system's (`Connection refused`) when there is one,
    rather than urllib3's nested retry report."""
    if isinstance(exc, requests.Timeout):
        return "timed out"
    found = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", str(exc))
    return found.group(1).strip() if found else str(exc)


def query(params: Mapping[str, Any] | None) -> dict[str, str] | None:
    """Query parameters as the services read them: booleans as true/false, None left out."""
    if params is None:
        return None
    return {k: ("true" if v else "false") if isinstance(v, bool) else str(v)
            for k, v in params.items() if v is not None}
