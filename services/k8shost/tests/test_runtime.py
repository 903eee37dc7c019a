"""The process runtime with real processes: restart policies and their back-off, phases, logs kept
across restarts, and stopping (SIGTERM, then SIGKILL after the grace period)."""

from __future__ import annotations

import asyncio
import os
import sys
import time

import pytest

from photoncloud.k8shost.agent.hostnet import HostAddresses
from photoncloud.k8shost.agent.runtime import Backoff, ContainerState, ProcessRuntime, expand, phase
from photoncloud.k8shost.testing import until

FAST = Backoff(initial=0.1, maximum=0.4, reset=60)


def pod(script: str, policy: str, uid: str = "u1", grace: int = 10, command: list[str] | None = None) -> dict:
    """A pod of one container running script (or command) under a restart policy."""
    command = [sys.executable, "-c", script] if command is None else command
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid},
            "spec": {"restart_policy": policy, "termination_grace_period_seconds": grace,
                     "containers": [{"name": "main", "command": command, "env": [{"name": "WHO", "value": "me"}]}]}}


@pytest.fixture
def runtime(tmp_path):
    """A process runtime with a fast back-off, under the test directory."""
    return ProcessRuntime(tmp_path / "pods", FAST)


async def test_on_failure_restarts_a_failing_container_with_a_doubling_back_off(runtime):
    messages: list[str] = []
    exits: list[tuple[int, str]] = []
    running = runtime.pod(pod("import os; print('run by', os.environ['WHO'], flush=True); raise SystemExit(2)",
                              "OnFailure"))

    def note() -> None:
        state = running.states()[0]
        if state.reason == "CrashLoopBackOff" and (not messages or messages[-1] != state.message):
            messages.append(state.message)
        if state.state == "TERMINATED":
            exits.append((state.exit_code, state.reason))

    for container in running.containers:
        container.on_change = note
    running.start()
    try:
        await until(lambda: running.states()[0].restart_count >= 3)
        state = running.states()[0]
        assert phase(running.states()) == "Running" and not state.done
        expected = [f"back-off {d:g}s restarting the exited container (exit code 2)" for d in (0.1, 0.2, 0.4)]
        assert messages[:3] == expected
        assert exits[:3] == [(2, "Error")] * 3
        log = running.log_path("main").read_text()
        assert log.count("run by me\n") >= 3  # one log across restarts
    finally:
        await running.stop()


async def test_never_runs_once_and_the_exit_code_decides_the_phase(runtime):
    ok = runtime.pod(pod("print('done')", "Never", uid="ok"))
    bad = runtime.pod(pod("raise SystemExit(3)", "Never", uid="bad"))
    ok.start()
    bad.start()
    await until(lambda: ok.states()[0].done and bad.states()[0].done)
    assert phase(ok.states()) == "Succeeded" and phase(bad.states()) == "Failed"
    assert (ok.states()[0].reason, bad.states()[0].exit_code, bad.states()[0].restart_count) == ("Completed", 3, 0)
    await asyncio.sleep(0.3)  # no restart follows
    assert bad.states()[0].restart_count == 0


async def test_on_failure_leaves_a_successful_container_alone_and_always_restarts_it(runtime):
    on_failure = runtime.pod(pod("pass", "OnFailure", uid="a"))
    always = runtime.pod(pod("pass", "Always", uid="b"))
    on_failure.start()
    always.start()
    try:
        await until(lambda: on_failure.states()[0].done and always.states()[0].restart_count >= 2)
        assert phase(on_failure.states()) == "Succeeded" and phase(always.states()) == "Running"
    finally:
        await always.stop()


async def test_a_container_without_a_command_fails_to_start_with_a_reason(runtime):
    running = runtime.pod(pod("", "Never", command=[]))
    running.start()
    await until(lambda: running.states()[0].done)
    state = running.states()[0]
    assert (state.state, state.reason, state.exit_code) == ("TERMINATED", "StartError", 128)
    assert "has none" in state.message and phase(running.states()) == "Failed"


async def test_stop_terminates_the_process_group_and_kills_what_ignores_sigterm(runtime):
    stubborn = ("import signal, subprocess, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); "
                "subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); print('up', flush=True); "
                "time.sleep(60)")
    running = runtime.pod(pod(stubborn, "Always", grace=1))
    running.start()
    await until(lambda: "up" in (running.log_path("main").read_text() if running.log_path("main").exists() else ""))
    process = running.containers[0].process
    assert process is not None
    started = time.monotonic()
    await running.stop()
    assert 0.9 <= time.monotonic() - started < 5  # the grace period, then SIGKILL
    assert process.returncode == -9
    state: ContainerState = running.states()[0]
    assert state.state == "TERMINATED" and state.done


def test_references_to_variables_expand_as_in_kubernetes():
    env = {"POD_IP": "127.128.0.2", "PORT": "8080"}
    assert expand("--bind=$(POD_IP):$(PORT)", env) == "--bind=127.128.0.2:8080"
    assert expand("$(MISSING) stays", env) == "$(MISSING) stays"
    assert expand("$$(POD_IP) is escaped, $$ is a dollar", env) == "$(POD_IP) is escaped, $ is a dollar"


async def test_a_container_sees_its_pod_address_and_its_expanded_variables(runtime):
    spec = pod("import os, sys; print(sys.argv[1], os.environ['URL'], os.environ['POD_NAMESPACE'], flush=True)",
               "Never", command=None)
    spec["spec"]["containers"][0]["args"] = ["$(POD_IP)"]
    spec["spec"]["containers"][0]["env"] = [{"name": "URL", "value": "http://$(POD_IP):80"}]
    running = runtime.pod(spec, "127.128.0.9")
    running.start()
    await until(lambda: running.states()[0].done)
    assert running.log_path("main").read_text() == "127.128.0.9 http://127.128.0.9:80 ns\n"


def prismnet_pod(script: str, address: str, uid: str = "u-net") -> dict:
    """A pod of one container whose address k8shost assigned from a PrismNET subnet."""
    return {"metadata": {"name": "a", "namespace": "web", "uid": uid},
            "spec": {"restart_policy": "Never",
                     "containers": [{"name": "main", "command": [sys.executable, "-c", script]}]},
            "status": {"pod_ip": address, "network": {"subnet_id": "s1", "port_id": "p1",
                                                      "cidr_block": "10.88.0.0/24", "gateway_ip": "10.88.0.1"}}}


async def test_without_the_privilege_a_pod_with_a_prismnet_address_is_refused_with_a_reason(tmp_path):
    runtime = ProcessRuntime(tmp_path / "pods", FAST, host=HostAddresses("k8stest0", privileged=False))
    refused = runtime.pod(prismnet_pod("raise SystemExit(0)", "10.1.0.2"), "127.128.0.2")
    refused.start()
    (state,) = refused.states()
    assert phase(refused.states()) == "Failed"
    assert state.reason == "PodAddressUnsupported" and "--runtime docker" in state.message
    assert "10.1.0.2" in state.message and "CAP_NET_ADMIN" in state.message
    await refused.stop()


@pytest.fixture
async def host():
    """Host addresses on an interface of the tests' own (not the agent's), deleted afterwards."""
    addresses = HostAddresses("k8stest0")
    yield addresses
    await addresses.delete_interface()


# Adding an address to an interface takes root (CAP_NET_ADMIN): skipped only for an unprivileged user.
# CI runs the tests as root, so this runs there.
@pytest.mark.skipif(os.geteuid() != 0, reason="adding an address to a host interface needs root (CAP_NET_ADMIN)")
async def test_as_root_a_pod_with_a_prismnet_address_listens_on_it_until_it_stops(tmp_path, host):
    await host.add("10.88.0.99")  # left by an earlier run of the agent
    runtime = ProcessRuntime(tmp_path / "pods", FAST, host=host)
    await runtime.open()
    assert await host.held() == []
    server = """
import os, socket
s = socket.socket()
s.bind((os.environ["POD_IP"], 0))
s.listen()
print(s.getsockname()[0], s.getsockname()[1], flush=True)
conn, peer = s.accept()
conn.sendall(b"hello from the pod")
conn.close()
"""
    running = runtime.pod(prismnet_pod(server, "10.88.0.5"), "127.128.0.2")
    assert running.pod_ip == "10.88.0.5"
    running.start()
    log = running.log_path("main")
    await until(lambda: log.exists() and log.read_text().endswith("\n"))
    address, port = log.read_text().split()
    assert address == "10.88.0.5" and await host.held() == ["10.88.0.5"]
    reader, writer = await asyncio.open_connection("10.88.0.5", int(port))
    assert await reader.read() == b"hello from the pod"
    writer.close()
    await until(lambda: running.states()[0].done)
    assert running.states()[0].reason == "Completed"
    await running.stop()
    assert await host.held() == []
