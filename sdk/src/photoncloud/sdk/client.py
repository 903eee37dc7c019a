"""The SDK's entry point: one client, a sub-client per service, one token manager for all of them."""

from __future__ import annotations

from collections.abc import Callable

import requests

from .auth import SharedTokens, TokenManager, Tokens
from .credit import Credit
from .endpoints import Endpoints
from .iam import IAM
from .k8s import K8s
from .kv import KV
from .net import Net
from .sql import SQL
from .transport import Transport
from .vms import VMs


class Client:
    """PhotonCloud's seven REST APIs: `kv` (ChainFire), `sql` (FlareDB), `iam`, `vms` (PlasmaVMC), `k8s`
    (k8shost), `credit` (CreditService) and `net` (PrismNET), signed in through `auth`.

    Give a token (sent as is), or tokens from an earlier sign-in (refreshed before they expire, each
    new set passed to on_tokens; shared when other processes refresh them too), or neither and call
    `auth.login(...)`. verify is requests' (True, False, or a CA bundle's path)."""

    def __init__(self, endpoints: Endpoints | None = None, token: str | None = None, tokens: Tokens | None = None,
                 on_tokens: Callable[[Tokens | None], None] | None = None, verify: bool | str = True,
                 timeout: float = 30.0, shared: SharedTokens | None = None):
        self.endpoints = endpoints or Endpoints.from_env()
        self.session = requests.Session()

        def transport(service: str, tokens: TokenManager | None) -> Transport:
            return Transport(self.endpoints.url(service), tokens, self.session, timeout, verify)

        self.auth = TokenManager(transport("iam", None), tokens, token, on_tokens, shared)
        self.kv = KV(transport("chainfire", self.auth))
        self.sql = SQL(transport("flaredb", self.auth))
        self.iam = IAM(transport("iam", self.auth))
        self.vms = VMs(transport("plasmavmc", self.auth))
        self.k8s = K8s(transport("k8shost", self.auth))
        self.credit = Credit(transport("creditservice", self.auth))
        self.net = Net(transport("prismnet", self.auth))

    def close(self) -> None:
        """Close the HTTP connections."""
        self.session.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
