"""The process runtime with real processes: restart policies and their back-off, phases, logs kept
across restarts, and stopping (SIGTERM, then SIGKILL after the grace period)."""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
import stat
import subprocess
import tempfile
import time
from pathlib import Path

import pytest

from photoncloud.common import needs
from photoncloud.k8shost.agent import runtime as runtime_module
from photoncloud.k8shost.agent import seccomp
from photoncloud.k8shost.agent.cgroups import Cgroups
from photoncloud.k8shost.agent.limits import Limits
from photoncloud.k8shost.agent.podnet import PodNetworks
from photoncloud.k8shost.agent.process import ProcessRuntime
from photoncloud.k8shost.agent.runtime import Backoff, ContainerState, expand, phase
from photoncloud.k8shost.agent.sandbox import HOME, PATH, USERNS, Sandbox
from photoncloud.k8shost.testing import sandbox, until

FAST = Backoff(initial=0.1, maximum=0.4, reset=60)
NOBODY = 65534


def pod(script: str, policy: str, uid: str = "u1", grace: int = 10, command: list[str] | None = None) -> dict:
    """A pod of one container running script (or command) under a restart policy."""
    command = ["python3", "-c", script] if command is None else command
    return {"metadata": {"name": "p", "namespace": "ns", "uid": uid},
            "spec": {"restart_policy": policy, "termination_grace_period_seconds": grace,
                     "containers": [{"name": "main", "command": command, "env": [{"name": "WHO", "value": "me"}]}]}}


@pytest.fixture
def runtime(tmp_path):
    """A process runtime with a fast back-off, under the test directory."""
    return ProcessRuntime(tmp_path / "pods", sandbox(), FAST)


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
                     "containers": [{"name": "main", "command": ["python3", "-c", script]}]},
            "status": {"pod_ip": address, "network": {"subnet_id": "s1", "port_id": "p1",
                                                      "cidr_block": "10.88.0.0/24", "gateway_ip": "10.88.0.1"}}}


async def test_without_network_namespaces_a_pod_with_a_prismnet_address_is_refused_with_a_reason(tmp_path):
    networks = PodNetworks("k8s-test-", why_not="the agent is not root (making network namespaces takes CAP_NET_ADMIN)")
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, networks=networks)
    refused = runtime.pod(prismnet_pod("raise SystemExit(0)", "10.1.0.2"), "127.128.0.2")
    refused.start()
    (state,) = refused.states()
    assert phase(refused.states()) == "Failed"
    assert state.reason == "PodAddressUnsupported" and "--runtime docker" in state.message
    assert "10.1.0.2" in state.message and "CAP_NET_ADMIN" in state.message
    await refused.stop()


# Network namespaces take root: skipped only for an unprivileged user. CI runs the tests as root, so this runs there.
async def test_as_root_a_pod_with_a_prismnet_address_has_it_in_a_namespace_of_its_own_until_it_stops(tmp_path):
    needs.root("making a network namespace")
    networks = PodNetworks("k8s-test-")
    await networks.add("left-over", "10.88.0.99")  # as an earlier run of the agent would have left it
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, networks=networks)
    await runtime.open()
    assert networks.held() == []
    server = """
import os, socket
s = socket.socket()
s.bind((os.environ["POD_IP"], 0))
s.listen()
print(s.getsockname()[0], s.getsockname()[1], flush=True)
print(sorted(name for _, name in socket.if_nameindex()), flush=True)
conn, peer = s.accept()
conn.sendall(b"hello from the pod")
conn.close()
"""
    spec = prismnet_pod(server, "10.88.0.5")
    spec["status"]["network"]["mac_address"] = "02:00:0a:58:00:05"
    running = runtime.pod(spec, "127.128.0.2")
    assert running.pod_ip == "10.88.0.5"
    running.start()
    try:
        log = running.log_path("main")
        await until(lambda: log.exists() and log.read_text().count("\n") == 2)
        bound, interfaces = log.read_text().splitlines()
        address, port = bound.split()
        # The address is the pod's, in its own namespace: the host has none of it, the pod none of the host's links.
        assert address == "10.88.0.5" and interfaces == "['eth0', 'lo']"
        assert networks.held() == ["u-net"]
        assert "10.88.0.5" not in subprocess.run(["ip", "-4", "addr"], capture_output=True, text=True).stdout
        inside = subprocess.run(["ip", "-netns", "k8s-test-u-net", "link", "show", "eth0"], capture_output=True,
                                text=True).stdout
        assert "02:00:0a:58:00:05" in inside
        reader, writer = await asyncio.open_connection("10.88.0.5", int(port))
        assert await reader.read() == b"hello from the pod"
        writer.close()
        await until(lambda: running.states()[0].done)
        assert running.states()[0].reason == "Completed"
    finally:
        await running.stop()
    assert networks.held() == []


async def test_a_pod_in_its_own_namespace_cannot_reach_another_pod_or_the_hosts_loopback(tmp_path):
    needs.root("making a network namespace")
    networks = PodNetworks("k8s-test-")
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, networks=networks)
    await runtime.open()
    server = ("import os, socket, time\ns = socket.socket()\ns.bind((os.environ['POD_IP'], 8080))\ns.listen()\n"
              "print('listening', flush=True)\ntime.sleep(60)")
    host = socket.socket()
    host.bind(("127.0.0.1", 0))
    host.listen()
    probe = ("import socket, sys\nfor address, port in ((sys.argv[1], 8080), ('127.0.0.1', int(sys.argv[2])), "
             "('169.254.1.1', int(sys.argv[2]))):\n    try:\n        socket.create_connection((address, port), "
             "timeout=2).close()\n        print('reached', address, flush=True)\n    except OSError as exc:\n"
             "        print('refused', address, type(exc).__name__, flush=True)\n")
    target = runtime.pod(prismnet_pod(server, "10.88.0.7", uid="target"))
    target.start()
    try:
        await until(lambda: target.log_path("main").exists() and "listening" in target.log_path("main").read_text())
        # The host reaches the target: it is up, so a failure below is the probe's namespace, not a dead server.
        reader, writer = await asyncio.open_connection("10.88.0.7", 8080)
        writer.close()
        spec = prismnet_pod(probe, "10.88.0.8", uid="probe")
        spec["spec"]["containers"][0]["args"] = ["10.88.0.7", str(host.getsockname()[1])]
        prober = runtime.pod(spec)
        prober.start()
        await until(lambda: prober.states()[0].done)
        lines = prober.log_path("main").read_text().splitlines()
        assert [line.split()[:2] for line in lines] == [["refused", "10.88.0.7"], ["refused", "127.0.0.1"],
                                                          ["refused", "169.254.1.1"]], lines
        await prober.stop()
    finally:
        await target.stop()
        host.close()
    assert networks.held() == []


async def test_a_running_containers_log_is_rotated_at_its_cap(runtime, monkeypatch):
    monkeypatch.setattr(runtime_module, "MAX_LOG_BYTES", 64 * 1024)
    chatty = ("import time\nfor i in range(40):\n    print(str(i).rjust(8, '.') * 1000, flush=True)\n"
              "    time.sleep(0.01)\ntime.sleep(60)")
    running = runtime.pod(pod(chatty, "Never"))
    running.start()
    try:
        log = running.log_path("main")
        rotated = log.with_name(log.name + ".1")
        await until(lambda: rotated.exists() and log.exists() and "......39" in log.read_text())
        # Still running, and no file past the cap: the log was rotated while the container wrote it.
        assert running.states()[0].state == "RUNNING"
        assert log.stat().st_size <= 64 * 1024 and rotated.stat().st_size <= 64 * 1024
        assert stat.S_IMODE(log.stat().st_mode) == 0o600 and stat.S_IMODE(rotated.stat().st_mode) == 0o600
    finally:
        await running.stop()


async def test_a_pod_whose_limits_the_node_cannot_enforce_is_refused_with_the_reason(tmp_path):
    runtime = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, default_limits=Limits(pids=100),
                             cgroups=Cgroups("k8s-test", root=tmp_path / "no-cgroups"))
    refused = runtime.pod(pod("print('unbounded')", "Never"))
    refused.start()
    (state,) = refused.states()
    assert phase(refused.states()) == "Failed" and state.reason == "LimitsUnsupported"
    assert "pids=100" in state.message and "no cgroup hierarchy" in state.message
    # Where the operator set no default and the pod asks for no limit, it runs (nothing to enforce).
    unlimited = ProcessRuntime(tmp_path / "pods", sandbox(), FAST, cgroups=Cgroups("k8s-test", tmp_path / "none"))
    running = unlimited.pod(pod("print('ran')", "Never"))
    running.start()
    await until(lambda: running.states()[0].done)
    assert running.log_path("main").read_text() == "ran\n"


def test_cgroup_v2_limits_are_written_and_the_controllers_handed_down(tmp_path):
    top = tmp_path / "cgroup"
    top.mkdir()
    (top / "cgroup.controllers").write_text("cpuset cpu io memory hugetlb pids rdma misc\n")
    cgroups = Cgroups("photoncloud-k8shost/node", root=top)
    assert cgroups.version == 2 and cgroups.unsupported() == ""
    group = cgroups.group("pod-1", "main")
    group.create(Limits(cpu_millicores=250, memory_bytes=64 * 2**20, pids=50))
    leaf = top / "photoncloud-k8shost" / "node" / "pod-1" / "main"
    assert {name: (leaf / name).read_text() for name in ("memory.max", "pids.max", "cpu.max", "memory.oom.group")} == \
        {"memory.max": str(64 * 2**20), "pids.max": "50", "cpu.max": "25000 100000", "memory.oom.group": "1"}
    for level in (top, top / "photoncloud-k8shost", top / "photoncloud-k8shost" / "node", leaf.parent):
        assert (level / "cgroup.subtree_control").read_text() == "+memory +pids +cpu"
    assert group.join_paths() == [str(leaf / "cgroup.procs")]
    (leaf / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    assert group.oom_kills() == 1


def test_an_unprivileged_agents_sandbox_is_a_user_namespace_without_capabilities_or_the_hosts_files():
    needs.root("becoming another user (as an unprivileged agent runs)")
    home = Path(tempfile.mkdtemp(prefix="k8shost-userns-"))  # not under a 0700 directory: nobody must reach it
    try:
        os.chown(home, NOBODY, NOBODY)
        script = ("id -u; grep -E '^(CapEff|CapBnd|NoNewPrivs)' /proc/self/status; ls /; ls /proc | grep -c '^[0-9]'; "
                  "unshare --user true 2>/dev/null || echo no user namespace; echo kept > file")
        filter_fd = seccomp.descriptor()
        argv = Sandbox(USERNS).argv(["sh", "-c", script], home, "", "p", 0, filter_fd)

        def as_nobody() -> None:
            os.setgroups([])
            os.setresgid(NOBODY, NOBODY, NOBODY)
            os.setresuid(NOBODY, NOBODY, NOBODY)

        run = subprocess.run(argv, preexec_fn=as_nobody, pass_fds=(filter_fd,), capture_output=True, text=True,
                             env={"PATH": PATH}, timeout=30)
        os.close(filter_fd)
        lines = run.stdout.split("\n")
        assert run.returncode == 0, run.stderr
        assert lines[0] == "1000" and lines[1:4] == ["CapEff:\t0000000000000000", "CapBnd:\t0000000000000000",
                                                     "NoNewPrivs:\t1"]
        assert "root" not in lines and "home" not in lines and "pod" in lines and "no user namespace" in lines
        assert (home / "file").read_text() == "kept\n" and (home / "file").stat().st_uid == NOBODY  # the agent's uid
    finally:
        shutil.rmtree(home)


async def test_a_working_dir_the_container_pointed_elsewhere_with_a_symlink_is_not_followed(runtime, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    spec = pod("import os; print(os.getcwd(), flush=True)", "Never", uid="sym")
    spec["spec"]["containers"][0]["working_dir"] = "job/sub"
    planted = runtime.pod(spec)
    (planted.dir / "main").mkdir(parents=True)
    (planted.dir / "main" / "job").symlink_to(outside)  # as an earlier run of the container could have left it
    planted.start()
    await until(lambda: planted.states()[0].done)
    state = planted.states()[0]
    assert (state.reason, state.exit_code) == ("StartError", 128) and "symlinks are not followed" in \
        state.message, state
    assert list(outside.iterdir()) == []  # nothing made outside the container's directory

    spec = pod("import os; open('here', 'w'); print(os.getcwd(), flush=True)", "Never", uid="ok")
    spec["spec"]["containers"][0]["working_dir"] = "job/sub"
    running = runtime.pod(spec)
    running.start()
    await until(lambda: running.states()[0].done)
    assert running.log_path("main").read_text() == f"{HOME}/job/sub\n" and running.states()[0].reason == "Completed"
    assert (running.dir / "main" / "job" / "sub" / "here").exists()
