"""The platform as a user runs it: IAM and ChainFire as real processes on free loopback ports."""

from __future__ import annotations

import pytest

from photoncloud.common.testing import start_platform


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM and ChainFire, running for the tests of one module."""
    running = start_platform(tmp_path_factory.mktemp("platform"), "chainfire")
    yield running
    running.stop()
