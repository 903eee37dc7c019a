"""Where the seven services answer: one base URL with each service's default port, overridable per
service (flags, PHOTONCLOUD_URL and PHOTONCLOUD_<SERVICE>_URL)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import urlsplit, urlunsplit

# Each service's default REST port (DESIGN.md); a base URL with no port gets these.
PORTS = {"chainfire": 8081, "flaredb": 8082, "iam": 8083, "plasmavmc": 8084, "k8shost": 8085,
         "creditservice": 8086, "prismnet": 8087}
DEFAULT_URL = "http://127.0.0.1"


def service_url(base: str, service: str) -> str:
    """service's URL on base's host: base as given when it names a port, else with service's default port."""
    parts = urlsplit(base if "://" in base else f"http://{base}")
    if parts.port is not None:
        return urlunsplit((parts.scheme, parts.netloc, parts.path.rstrip("/"), "", ""))
    host = parts.hostname or "127.0.0.1"
    host = f"[{host}]" if ":" in host else host
    return urlunsplit((parts.scheme, f"{host}:{PORTS[service]}", parts.path.rstrip("/"), "", ""))


@dataclass(frozen=True)
class Endpoints:
    """The REST base URL of each service."""

    base: str = DEFAULT_URL
    overrides: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.overrides) - set(PORTS)
        if unknown:
            raise ValueError(f"unknown service(s) {sorted(unknown)}; the services are {sorted(PORTS)}")

    def url(self, service: str) -> str:
        """service's REST base URL (no trailing slash)."""
        if service in self.overrides:
            return self.overrides[service].rstrip("/")
        return service_url(self.base, service)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Endpoints:
        """PHOTONCLOUD_URL (default http://127.0.0.1) and any PHOTONCLOUD_<SERVICE>_URL."""
        env = os.environ if environ is None else environ
        overrides = {name: env[f"PHOTONCLOUD_{name.upper()}_URL"] for name in PORTS
                     if env.get(f"PHOTONCLOUD_{name.upper()}_URL")}
        return cls(env.get("PHOTONCLOUD_URL") or DEFAULT_URL, overrides)

    def with_overrides(self, base: str | None = None, overrides: Mapping[str, str] | None = None) -> Endpoints:
        """These endpoints with another base and more per-service URLs."""
        return Endpoints(base or self.base, {**self.overrides, **(overrides or {})})
