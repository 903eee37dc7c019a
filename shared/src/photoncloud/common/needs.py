"""What a test needs from the machine (a tool, root, an engine): skip without it, fail in CI.

On a developer's machine a test whose tool is missing is skipped with a message naming the tool and
the Debian package that has it, so that `make test` runs everything else. In CI (`CI=true`, or
`PHOTONCLOUD_REQUIRE_TOOLS=1` as `.ci/run` sets) every tool must be there: a missing one fails the
test with the same message, so that nothing is skipped unseen. `PHOTONCLOUD_REQUIRE_DOCKER=1` (its
older, narrower switch) still requires the container engine alone.

Call these inside a test or a fixture (that test is skipped or fails) or at a module's top (the
whole module is skipped, or fails to collect).
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Mapping
from typing import NoReturn

REQUIRE_ENV = "PHOTONCLOUD_REQUIRE_TOOLS"
DOCKER_ENV = "PHOTONCLOUD_REQUIRE_DOCKER"  # requires the container engine only
# Where a tool is when it is not on PATH: Debian puts daemons' binaries in sbin, which a user's PATH lacks.
SBIN = ("/usr/sbin", "/sbin")


def required(environ: Mapping[str, str] | None = None, docker: bool = False) -> bool:
    """Whether a missing tool fails rather than skips (CI; with docker, also PHOTONCLOUD_REQUIRE_DOCKER=1)."""
    env = os.environ if environ is None else environ
    if env.get("CI", "").lower() in ("true", "1") or env.get(REQUIRE_ENV) == "1":
        return True
    return docker and env.get(DOCKER_ENV) == "1"


def missing(reason: str, docker: bool = False) -> NoReturn:
    """Skip the test (or the module) for want of reason; fail instead when the tools are required."""
    import pytest  # a test-time module: the services never import it

    if required(docker=docker):
        switch = f"{REQUIRE_ENV}=1 or CI=true" + (f" or {DOCKER_ENV}=1" if docker else "")
        pytest.fail(f"{reason}, and {switch} requires it", pytrace=False)
    pytest.skip(f"{reason}", allow_module_level=True)


def find(name: str) -> str | None:
    """The tool's path: on PATH, else in sbin; None when it is not installed."""
    found = shutil.which(name)
    if found:
        return found
    return next((path for d in SBIN if os.access(path := os.path.join(d, name), os.X_OK)), None)


def tool(name: str, package: str | None = None) -> str:
    """The tool's path; without it, skip (or fail in CI) saying which package installs it."""
    path = find(name)
    if path is None:
        missing(f"needs {name}, which is not installed (Debian: apt-get install {package or name})")
    return path


def tools(*names: str, packages: Mapping[str, str] | None = None) -> list[str]:
    """Each tool's path (as tool does); the message names every one missing at once."""
    absent = [name for name in names if find(name) is None]
    if absent:
        install = " ".join(dict.fromkeys((packages or {}).get(n, n) for n in absent))
        missing(f"needs {', '.join(absent)}, not installed (Debian: apt-get install {install})")
    return [str(find(name)) for name in names]


def root(why: str) -> None:
    """Skip (or fail in CI) unless the process is root; why says what needs it."""
    if os.geteuid() != 0:
        missing(f"needs root: {why}")
