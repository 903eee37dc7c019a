"""IAM's REST routes that the gateway cannot serve as the contract binds them, written by hand over
the same servicers (the other routes are the contract's: shared gateway, grpc_api's servicers):

- POST /api/v1/auth/token (Tokens/IssueToken): its answer carries `Cache-Control: no-store` and
  `Pragma: no-cache` (RFC 6749 section 5.1), headers a gateway route cannot set.
- POST /api/v1/auth/verify (Tokens/VerifyToken): an inactive token's answer is `{"active": false}`
  alone (RFC 7662 section 2.2), where the gateway writes every field (`"claims": null`).
- GET /.well-known/jwks.json (Tokens/GetJwks) and GET /.well-known/openid-configuration
  (Tokens/GetOpenIdConfiguration): plain JSON documents, not enveloped, as JWT and OpenID Connect
  libraries read them.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from photoncloud.common import envelope, gateway
from photoncloud.common.rest import Route, RouteTable, json_response

from .core import IamCore
from .grpc_api import TokensServicer

TOKENS = "photoncloud.iam.v1.Tokens"


def routes(iam: IamCore | None) -> RouteTable:
    """IAM's hand-written REST routes over iam (None: described, not served)."""
    made = {route.rpc: route for route in gateway.routes(TokensServicer(iam) if iam else None, TOKENS).routes}
    table = RouteTable()

    def by_hand(method: str, handler: Any, raw: bool = False) -> None:
        route: Route = made[f"{TOKENS}/{method}"]
        handler.__name__ = route.handler.__name__
        table.routes.append(dataclasses.replace(route, handler=handler, raw=raw))

    issue = made[f"{TOKENS}/IssueToken"].handler
    verify = made[f"{TOKENS}/VerifyToken"].handler

    # raw: tokens are never cached (RFC 6749 section 5.1); the gateway cannot add those headers.
    async def issue_token(request: web.Request, **path: str) -> web.Response:
        response = json_response(envelope.success(await issue(request, **path)))
        response.headers["Cache-Control"] = "no-store"
        response.headers["Pragma"] = "no-cache"
        return response

    # An inactive token's answer is `active` alone (RFC 7662 section 2.2); the gateway writes null claims.
    async def verify_token(request: web.Request, **path: str) -> Any:
        data = await verify(request, **path)
        return data if data["active"] else {"active": False}

    # raw: the well-known documents are plain JSON, not enveloped, as JWT and OIDC libraries read them.
    async def get_jwks(request: web.Request) -> web.Response:
        assert iam is not None
        return json_response({"keys": iam.jwks()})

    async def get_open_id_configuration(request: web.Request) -> web.Response:
        assert iam is not None
        return json_response(iam.openid_configuration())

    by_hand("IssueToken", issue_token, raw=True)
    by_hand("VerifyToken", verify_token)
    by_hand("GetJwks", get_jwks, raw=True)
    by_hand("GetOpenIdConfiguration", get_open_id_configuration, raw=True)
    return table
