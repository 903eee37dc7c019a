"""Watch bookmarks of the Kubernetes API, served in-process over a core in memory with a short bookmark
interval (KubeApi's own setting): an idle watch that allows them gets BOOKMARK events carrying only the
kind, apiVersion and the resourceVersion everything before has been sent up to; one that does not, none."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from photoncloud.common.streams import StreamGuard
from photoncloud.common.testing import TokenMint
from photoncloud.k8shost.kube.api import KubeApi


async def watch(kube, query: str, until: int = 100) -> list[dict[str, Any]]:
    """The events of GET /api/v1/namespaces?watch=true&query (until so many or the server ends the watch),
    with a namespace created once the first event arrives."""
    api = KubeApi(kube, None, StreamGuard(8), "test", bookmark_seconds=0.2)
    events: list[dict[str, Any]] = []
    async with TestClient(TestServer(api.app(), host="127.0.0.1", port=0)) as client:
        response = await client.get(f"/api/v1/namespaces?watch=true&{query}")
        assert response.status == 200
        async for line in response.content:
            events.append(json.loads(line))
            if len(events) == 1:
                await kube.create_namespace("later", "o1", "p1")
            if len(events) >= until:
                break
        response.close()
    return events


async def test_an_idle_watch_that_allows_bookmarks_gets_them_with_the_version_sent_up_to(kube):
    await kube.create_namespace("first", "o1", "p1")
    events = await watch(kube, "allowWatchBookmarks=true&timeoutSeconds=5", until=3)
    assert [e["type"] for e in events] == ["ADDED", "ADDED", "BOOKMARK"]
    assert [e["object"]["metadata"]["name"] for e in events[:2]] == ["first", "later"]
    bookmark = events[2]["object"]
    assert bookmark["kind"] == "Namespace" and bookmark["apiVersion"] == "v1"
    assert set(bookmark) == {"kind", "apiVersion", "metadata"}
    # Everything up to the bookmark's version has been sent: it is the newest change's.
    assert bookmark["metadata"]["resourceVersion"] == events[1]["object"]["metadata"]["resourceVersion"]
    assert "annotations" not in bookmark["metadata"]  # only the initial events' end is annotated


async def test_a_watch_that_does_not_ask_for_bookmarks_gets_none(kube):
    await kube.create_namespace("first", "o1", "p1")
    events = await watch(kube, "timeoutSeconds=2")
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [("ADDED", "first"), ("ADDED", "later")]


async def test_one_caller_holds_at_most_its_share_of_watches_and_others_are_not_stalled(kube):
    """Endless input: watches held open are capped per caller (the platform's shared guard), as on the
    platform's own API; the caller over the cap is refused as Kubernetes refuses load (429), and another
    caller's watch still opens."""
    mint = TokenMint()
    api = KubeApi(kube, mint.verifier(), StreamGuard(2), "test", bookmark_seconds=60)
    greedy = {"Authorization": f"Bearer {mint.token(subject='user:greedy')}"}
    other = {"Authorization": f"Bearer {mint.token(subject='user:other')}"}
    async with TestClient(TestServer(api.app(), host="127.0.0.1", port=0)) as client:
        held = [await client.get("/api/v1/namespaces?watch=true", headers=greedy) for _ in range(2)]
        assert [r.status for r in held] == [200, 200]
        refused = await client.get("/api/v1/namespaces?watch=true", headers=greedy)
        body = await refused.json()
        assert refused.status == 429 and (body["kind"], body["reason"]) == ("Status", "TooManyRequests")
        opened = await client.get("/api/v1/namespaces?watch=true", headers=other)
        assert opened.status == 200
        for response in (*held, opened):
            response.close()
