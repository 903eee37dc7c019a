"""Wallets, VPCs and security groups belong to projects that exist in IAM, as the caller's own token
can see them."""

from __future__ import annotations

import pytest

from photoncloud.common.testing import start_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM, CreditService and PrismNET."""
    running = start_platform(tmp_path_factory.mktemp("tenancy"), "creditservice", "prismnet")
    yield running
    running.stop()


CREATES = [
    ("creditservice", "/api/v1/wallets", {}),
    ("prismnet", "/api/v1/vpcs", {"name": "main", "cidr_block": "10.0.0.0/16"}),
    ("prismnet", "/api/v1/security-groups", {"name": "web"}),
]


@pytest.mark.parametrize("service, path, body", CREATES)
def test_a_resource_goes_to_an_existing_project_of_the_named_org(platform, service, path, body):
    url, admin = platform.services[service].url + path, platform.admin_token()
    org_id, project_id = platform.project(f"tenancy-{service}-{path.rsplit('/', 1)[-1]}")
    status, reply = platform.request("POST", url, {**body, "project_id": "no-such-project"}, admin)
    assert status == 404 and reply["error"]["details"]["project_id"] == "no-such-project", reply
    status, reply = platform.request("POST", url, {**body, "project_id": project_id, "org_id": "another-org"}, admin)
    assert status == 400 and reply["error"]["details"] == {"field": "org_id"}, reply
    status, reply = platform.request("POST", url, {**body, "project_id": project_id}, admin)
    assert status == 201 and reply["data"]["org_id"] == org_id, reply  # the org, as IAM knows it


def test_a_project_member_creates_in_its_own_project_only(platform):
    org_id, mine = platform.project("members-own")
    _, theirs = platform.project("members-other")
    name, password = platform.user_with_role("viewer")  # system viewer: reads every project in IAM
    admin = platform.admin_token()
    status, user = platform.request("GET", f"{platform.iam.url}/api/v1/users?name={name}", token=admin)
    status, binding = platform.request("POST", f"{platform.iam.url}/api/v1/bindings", {
        "principal": f"user:{user['data']['items'][0]['id']}", "role": "member",
        "scope": {"type": "project", "project_id": mine}}, admin)
    assert status in (200, 201), binding
    token = platform.token(name, password, project_id=mine)
    url = platform.services["prismnet"].url + "/api/v1/vpcs"
    status, reply = platform.request("POST", url, {"name": "v", "project_id": mine, "cidr_block": "10.0.0.0/16"},
                                     token)
    assert status == 201, reply
    status, reply = platform.request("POST", url, {"name": "v", "project_id": theirs, "cidr_block": "10.0.0.0/16"},
                                     token)
    assert status == 403, reply
