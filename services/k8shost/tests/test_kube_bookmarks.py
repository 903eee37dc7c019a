"""Watch bookmarks of the Kubernetes API, served in-process over a core in memory with a short bookmark
interval (KubeApi's own setting): an idle watch that allows them gets BOOKMARK events carrying only the
kind, apiVersion and the resourceVersion everything before has been sent up to; one that does not, none."""

from __future__ import annotations

import json
from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from photoncloud.common.streams import StreamGuard
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
