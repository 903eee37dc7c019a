"""What a test needs from the machine: without it the test is skipped with a message naming it, and in CI
(CI=true or PHOTONCLOUD_REQUIRE_TOOLS=1) it fails instead; collection never aborts."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from photoncloud.common import needs

ABSENT = "photoncloud-no-such-tool"


@pytest.fixture
def developer(monkeypatch):
    """A developer's machine: no CI variable set."""
    for name in ("CI", needs.REQUIRE_ENV, needs.DOCKER_ENV):
        monkeypatch.delenv(name, raising=False)


def test_a_missing_tool_skips_naming_it_and_its_package(developer):
    with pytest.raises(pytest.skip.Exception) as skipped:
        needs.tool(ABSENT, "photoncloud-tools")
    assert str(skipped.value) == (f"needs {ABSENT}, which is not installed "
                                  "(Debian: apt-get install photoncloud-tools)")


@pytest.mark.parametrize("variable", [("CI", "true"), ("CI", "1"), (needs.REQUIRE_ENV, "1")])
def test_in_ci_a_missing_tool_fails(developer, monkeypatch, variable):
    monkeypatch.setenv(*variable)
    with pytest.raises(pytest.fail.Exception) as failed:
        needs.tool(ABSENT)
    assert f"needs {ABSENT}" in str(failed.value)
    assert f"{needs.REQUIRE_ENV}=1 or CI=true requires it" in str(failed.value)


def test_a_present_tool_is_its_path(developer, monkeypatch):
    path = needs.tool("sh")
    assert os.path.basename(path) == "sh" and os.access(path, os.X_OK)
    monkeypatch.setenv("CI", "true")
    assert os.access(needs.tool("sh"), os.X_OK)  # CI changes nothing for a tool that is there


def test_several_missing_tools_are_named_at_once(developer):
    with pytest.raises(pytest.skip.Exception) as skipped:
        needs.tools("sh", ABSENT, ABSENT + "-2", packages={ABSENT: "pkg-a", ABSENT + "-2": "pkg-a"})
    assert str(skipped.value) == f"needs {ABSENT}, {ABSENT}-2, not installed (Debian: apt-get install pkg-a)"


def test_root_is_needed_by_name(developer, monkeypatch):
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    with pytest.raises(pytest.skip.Exception, match="needs root: making bridges"):
        needs.root("making bridges")
    monkeypatch.setenv(needs.REQUIRE_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match="needs root: making bridges"):
        needs.root("making bridges")
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    needs.root("making bridges")  # root: nothing happens


def test_the_older_docker_switch_requires_the_engine_only(developer, monkeypatch):
    monkeypatch.setenv(needs.DOCKER_ENV, "1")
    with pytest.raises(pytest.fail.Exception, match=f"or {needs.DOCKER_ENV}=1 requires it"):
        needs.missing("no container engine answers", docker=True)
    with pytest.raises(pytest.skip.Exception):
        needs.missing("no etcdctl")


def run_pytest(tmp_path, source: str, **env: str) -> subprocess.CompletedProcess:
    """pytest on one test file (in a fresh process, as `make test` runs), with the CI variables given."""
    (tmp_path / "test_uses_a_tool.py").write_text(textwrap.dedent(source))
    (tmp_path / "test_other.py").write_text("def test_other():\n    assert True\n")  # a module beside it
    clean = {k: v for k, v in os.environ.items() if k not in ("CI", needs.REQUIRE_ENV, needs.DOCKER_ENV)}
    return subprocess.run([sys.executable, "-m", "pytest", "-q", "-rs", "-p", "no:cacheprovider", "--rootdir",
                           str(tmp_path), "-c", os.devnull, str(tmp_path)],
                          env={**clean, **env}, capture_output=True, text=True, timeout=120, cwd=tmp_path)


MODULE_LEVEL = f"""
    from photoncloud.common import needs

    TOOL = needs.tool("{ABSENT}", "photoncloud-tools")

    def test_uses_it():
        assert TOOL
"""

IN_A_TEST = f"""
    from photoncloud.common import needs

    def test_uses_it():
        needs.tool("{ABSENT}")

    def test_needs_nothing():
        assert True
"""


def test_a_module_needing_a_missing_tool_is_skipped_and_collection_goes_on(tmp_path):
    result = run_pytest(tmp_path, MODULE_LEVEL)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "1 passed, 1 skipped" in result.stdout
    assert f"needs {ABSENT}, which is not installed (Debian: apt-get install photoncloud-tools)" in result.stdout


def test_a_test_needing_a_missing_tool_is_skipped_and_the_others_run(tmp_path):
    result = run_pytest(tmp_path, IN_A_TEST)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "2 passed, 1 skipped" in result.stdout
    assert f"needs {ABSENT}" in result.stdout


def test_in_ci_the_same_tests_fail_naming_the_tool(tmp_path):
    result = run_pytest(tmp_path, IN_A_TEST, PHOTONCLOUD_REQUIRE_TOOLS="1")
    assert result.returncode == 1
    assert "1 failed, 2 passed" in result.stdout
    assert f"needs {ABSENT}" in result.stdout
    module = run_pytest(tmp_path, MODULE_LEVEL, CI="true")
    assert module.returncode != 0
    assert f"needs {ABSENT}" in module.stdout
