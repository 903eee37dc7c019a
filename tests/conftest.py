"""The platform as a user runs it: its services as real processes on free loopback ports."""

from __future__ import annotations

import pytest

from photoncloud.common.testing import start_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM, ChainFire, FlareDB, CreditService and PrismNET, running for the tests of one module."""
    running = start_platform(tmp_path_factory.mktemp("platform"), "chainfire", "flaredb", "creditservice", "prismnet")
    yield running
    running.stop()


@pytest.fixture(scope="module")
def iam_alone(tmp_path_factory):
    """IAM alone, for the tests of one module that start their own members (clusters under faults)."""
    running = start_platform(tmp_path_factory.mktemp("iam"))
    yield running
    running.stop()
