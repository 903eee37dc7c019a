"""Every SDK method calls a route its service serves: each method is called with placeholder
arguments through a transport that records the call, and the call must match one of the routes of
the service's contract (the routes its OpenAPI document is made from) or its hand-written ones."""

from __future__ import annotations

import importlib
import inspect
import re
from collections.abc import Iterator, Mapping
from typing import Any

import pytest

from photoncloud.common.gateway import contract_routes
from photoncloud.sdk import Client, Endpoints

SUB_CLIENTS = {"kv": "chainfire", "sql": "flaredb", "iam": "iam", "vms": "plasmavmc", "k8s": "k8shost",
               "credit": "creditservice", "net": "prismnet"}


class Recorder:
    """A transport that records (method, path) and answers what every method can read."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def request(self, method: str, path: str, **_: Any) -> Any:
        self.calls.append((method, path))
        return {"results": [{"columns": [], "rows": []}], "items": [], "next_page_token": ""}

    def download(self, path: str, params: Mapping[str, Any] | None = None) -> bytes:
        self.calls.append(("GET", path))
        return b""

    def upload(self, path: str, data: bytes, content_type: str, params: Mapping[str, Any] | None = None) -> Any:
        self.calls.append(("POST", path))
        return {}

    def pages(self, path: str, params: Mapping[str, Any] | None = None) -> Iterator[Any]:
        self.calls.append(("GET", path))
        return iter(())


def served(service: str) -> list[tuple[str, re.Pattern[str]]]:
    """The service's routes as (method, path regex): {name} one segment, {name:regex} the regex."""
    try:
        hand = importlib.import_module(f"photoncloud.{service}.rest_api").routes(None).routes
    except ModuleNotFoundError:
        hand = []
    routes = []
    for route in [*hand, *contract_routes(f"photoncloud.{service}.v1").routes]:
        parts = re.split(r"(\{[^}]+\})", route.path)
        pattern = "".join(f"(?:{p[1:-1].partition(':')[2] or '[^/]+'})" if p.startswith("{") else re.escape(p)
                          for p in parts)
        routes.append((route.method, re.compile(pattern)))
    return routes


def placeholder(parameter: inspect.Parameter) -> Any:
    """A value of the parameter's annotated type (a VM action: one that exists)."""
    if parameter.name == "action":
        return "start"
    annotation = str(parameter.annotation)
    for name, value in (("bool", True), ("int", 1), ("list", ["x"]), ("dict", {}), ("Json", {}), ("bytes", b"x")):
        if annotation.startswith(name) or annotation.startswith(f"builtins.{name}"):
            return value
    return "x1"


def methods(sub_client: Any) -> list[tuple[str, Any]]:
    """The sub-client's public methods."""
    return [(name, getattr(sub_client, name)) for name in dir(type(sub_client))
            if not name.startswith("_") and callable(getattr(type(sub_client), name))]


@pytest.mark.parametrize("attribute", sorted(SUB_CLIENTS))
def test_every_method_calls_a_route_the_service_serves(attribute):
    client = Client(Endpoints(), token="t")
    sub_client = getattr(client, attribute)
    recorder = Recorder()
    sub_client.transport = recorder
    routes = served(SUB_CLIENTS[attribute])
    found = methods(sub_client)
    assert len(found) >= 5, f"client.{attribute} has hardly any methods: {[n for n, _ in found]}"
    unserved = []
    for name, method in found:
        arguments = [placeholder(p) for p in inspect.signature(method).parameters.values()
                     if p.default is inspect.Parameter.empty and p.kind is p.POSITIONAL_OR_KEYWORD]
        before = len(recorder.calls)
        result = method(*arguments)
        if inspect.isgenerator(result) or isinstance(result, Iterator):
            list(result)
        calls = recorder.calls[before:]
        assert calls, f"client.{attribute}.{name} called no route"
        unserved += [f"{name}: {verb} {path}" for verb, path in calls
                     if not any(verb == m and pattern.fullmatch(path) for m, pattern in routes)]
    assert not unserved, f"client.{attribute} calls routes {SUB_CLIENTS[attribute]} does not serve: {unserved}"
