"""The first run as a user sees it: `make run`'s runner (scripts/run_platform.py) names each line's service,
shows a banner with the addresses and the admin's sign-in once everything answers, and stops everything
with the failing service's message when one cannot bind; a service alone says which address is taken.
Every service here runs on free ports under a temporary data directory, never a real platform's."""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from photoncloud.common.testing import bindable, free_ports, taken_port

ROOT = Path(__file__).resolve().parent.parent
RUNNER = ROOT / "scripts" / "run_platform.py"
EXIT_BIND = 3  # what a service that cannot listen exits with (photoncloud.common.server)


def load_runner():
    """scripts/run_platform.py as a module (for its banner)."""
    spec = importlib.util.spec_from_file_location("run_platform_under_test", RUNNER)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def taken() -> Iterator[int]:
    """A port another process listens on."""
    with taken_port() as port:
        yield port


def environment(tmp_path: Path, **ports: tuple[int, int]) -> dict[str, str]:
    """The environment of a run: its own data directory, and each service's REST and gRPC ports."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("PHOTONCLOUD_") and not k.endswith(("_REST_PORT", "_GRPC_PORT"))}
    env["PHOTONCLOUD_DATA_DIR"] = str(tmp_path / "data")
    for name, (rest, grpc) in ports.items():
        env[f"{name.upper()}_REST_PORT"], env[f"{name.upper()}_GRPC_PORT"] = str(rest), str(grpc)
    return env


def test_a_service_whose_port_is_taken_says_so_in_one_line_and_exits_non_zero(tmp_path, taken):
    (grpc_port,) = free_ports(1)
    result = subprocess.run([sys.executable, "-m", "photoncloud.creditservice", "--bind", "127.0.0.1",
                             "--rest-port", str(taken), "--grpc-port", str(grpc_port),
                             "--data-dir", str(tmp_path / "credit")],
                            env=environment(tmp_path), capture_output=True, text=True, timeout=60)
    assert result.returncode == EXIT_BIND
    lines = result.stderr.splitlines()
    assert len(lines) == 1, result.stderr  # no traceback, nothing else
    record = json.loads(lines[0])  # stderr is no terminal: JSON
    assert record["level"] == "ERROR"
    assert record["message"] == f"creditservice cannot listen on 127.0.0.1:{taken} (REST): address already in use"
    assert bindable(grpc_port)


def test_the_runner_stops_everything_and_fails_when_a_port_is_taken(tmp_path, taken):
    flaredb_rest, flaredb_grpc, credit_grpc = free_ports(3)
    env = environment(tmp_path, flaredb=(flaredb_rest, flaredb_grpc), creditservice=(taken, credit_grpc))
    began = time.monotonic()
    result = subprocess.run([sys.executable, str(RUNNER), "flaredb", "creditservice"], env=env,
                            capture_output=True, text=True, timeout=90)
    assert result.returncode == 1, result.stderr
    assert time.monotonic() - began < 60
    assert "Traceback" not in result.stderr
    assert result.stderr.rstrip().endswith(
        f"creditservice exited with code {EXIT_BIND}: creditservice cannot listen on 127.0.0.1:{taken} (REST): "
        "address already in use; stopped the others.")
    assert "PhotonCloud is ready" not in result.stderr
    # Nothing of the run is left listening: flaredb was stopped, creditservice held neither port.
    assert bindable(flaredb_rest) and bindable(flaredb_grpc) and bindable(credit_grpc)


class Reader:
    """Reads a process's output on a thread, so that a silent process never blocks a test past its timeout."""

    def __init__(self, process: subprocess.Popen):
        self.lines: list[str] = []
        self.thread = threading.Thread(target=lambda: self.lines.extend(iter(process.stdout.readline, "")),
                                       daemon=True)
        self.thread.start()

    def until(self, text: str, timeout: float) -> str:
        """Everything read once text is in it (AssertionError after timeout, or at the end of the output)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if text in "".join(self.lines):
                return "".join(self.lines)
            if not self.thread.is_alive():
                break
            time.sleep(0.1)
        raise AssertionError(f"{text!r} not printed within {timeout}s:\n{''.join(self.lines)}")


def test_the_runner_shows_text_lines_by_service_then_the_ready_banner(tmp_path):
    iam_rest, iam_grpc, flaredb_rest, flaredb_grpc = free_ports(4)
    password = "first-run-Secret-42"
    env = environment(tmp_path, iam=(iam_rest, iam_grpc), flaredb=(flaredb_rest, flaredb_grpc))
    env["PHOTONCLOUD_ADMIN_PASSWORD"] = password
    process = subprocess.Popen([sys.executable, str(RUNNER), "--log-format", "text", "iam", "flaredb"], env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        reader = Reader(process)
        reader.until("Ctrl-C stops them all.\n" + "=" * 78, 90)
        process.send_signal(signal.SIGINT)
        process.wait(timeout=60)
        output = reader.until("iam stopped", 10)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert process.returncode == 0, output
    # Each service's lines carry its name, and are text, not JSON.
    assert re.search(rf"^iam +\| \d\d:\d\d:\d\d\.\d{{3}} INFO +iam serving REST on http://127\.0\.0\.1:{iam_rest}",
                     output, re.M), output
    assert re.search(r"^flaredb +\| \d\d:\d\d:\d\d\.\d{3} INFO +flaredb serving REST", output, re.M), output
    assert not re.search(r'^\{"ts"', output, re.M)
    banner = output[output.index("PhotonCloud is ready"):]
    assert f"iam            REST http://127.0.0.1:{iam_rest}" in banner
    assert f"gRPC 127.0.0.1:{iam_grpc}" in banner
    assert f"flaredb        REST http://127.0.0.1:{flaredb_rest}" in banner
    assert f"gRPC 127.0.0.1:{flaredb_grpc}" in banner
    assert "admin user   admin" in banner and "$PHOTONCLOUD_ADMIN_PASSWORD" in banner
    assert password not in output  # the password the operator gave is never printed
    assert re.search(r"^iam +\| \d\d:\d\d:\d\d\.\d{3} INFO +iam stopped", output, re.M)


def test_the_banner_points_at_the_password_file_and_shows_a_password_only_when_just_generated(tmp_path):
    runner = load_runner()
    env = {"PHOTONCLOUD_DATA_DIR": str(tmp_path)}
    endpoints = [runner.endpoint(name, {"IAM_REST_PORT": "9083"}) for name in runner.PORTS]
    password_file = tmp_path / "iam" / "admin-password"

    first = runner.banner(endpoints, runner.admin_lines(env, "generated-secret-1"))
    assert "generated-secret-1" in first and str(password_file) in first

    password_file.parent.mkdir()
    password_file.write_text("generated-secret-1\n")
    later = runner.banner(endpoints, runner.admin_lines(env, None))
    assert "generated-secret-1" not in later
    assert f"its password is in {password_file} (mode 0600)" in later
    # The seven services, each with its REST URL and its gRPC address (an overridden port shown as set).
    assert "iam            REST http://127.0.0.1:9083" in later and "gRPC 127.0.0.1:50053" in later
    for name, port in {"chainfire": 8081, "flaredb": 8082, "plasmavmc": 8084, "k8shost": 8085,
                       "creditservice": 8086, "prismnet": 8087}.items():
        assert re.search(rf"^  {name} +REST http://127\.0\.0\.1:{port} +gRPC 127\.0\.0\.1:{50050 + port % 10}$",
                         later, re.M), later
    assert "PhotonCloud is ready: 7 services answer /health" in later


def test_json_lines_pass_through_unprefixed_for_whatever_reads_them(tmp_path, taken):
    """Without a terminal the services log JSON: each line stays one JSON object (it names its service)."""
    (grpc_port,) = free_ports(1)
    env = environment(tmp_path, creditservice=(taken, grpc_port))
    result = subprocess.run([sys.executable, str(RUNNER), "creditservice"], env=env,
                            capture_output=True, text=True, timeout=90)
    records = [json.loads(line) for line in result.stderr.splitlines() if line.startswith("{")]
    assert [r["service"] for r in records] == ["creditservice"]
    assert records[0]["message"].startswith("creditservice cannot listen on")


def test_a_port_variable_that_is_no_port_stops_the_runner_before_anything_starts(tmp_path):
    env = environment(tmp_path)
    env["CREDITSERVICE_REST_PORT"] = "80a"
    result = subprocess.run([sys.executable, str(RUNNER), "creditservice"], env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert result.stderr.strip() == "run_platform: CREDITSERVICE_REST_PORT='80a' is not a port number"
    assert not (tmp_path / "data").exists()  # no service ran
