"""A tenant's pod is a sandbox, never a shell on the platform's host: with IAM and k8shost as processes
and an agent running the process runtime, a project member's pods try to reach the platform (its data
directory, the processes' environments, the agent's credentials, another pod's files, the platform's
processes) and fail; they run as a uid of their own with no capabilities; their pids and memory
limits hold (a fork bomb stops at its limit, a memory hog is OOMKilled); a deleted pod's directory
goes. An agent that may not sandbox refuses to start unless told, and an unsandboxed node is flagged."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys

import pytest

from photoncloud.k8shost.agent import sandbox
from photoncloud.k8shost.agent.__main__ import _sandbox
from photoncloud.k8shost.testing import agent_account, start_agent, wait_for

# The attacks, from inside a pod: each prints what it got, or the error that stopped it.
ATTACKS = r"""
import ctypes, glob, json, os, signal, subprocess
targets = json.loads(os.environ["TARGETS"])
results = {}

def attempt(name, action):
    try:
        results[name] = "GOT " + repr(action())[:300]
    except Exception as exc:
        results[name] = "denied " + type(exc).__name__

for path in targets["paths"]:
    attempt("read " + path, lambda p=path: os.listdir(p) if os.path.isdir(p) else open(p, "rb").read(200))
attempt("write " + targets["other_pod"], lambda: open(os.path.join(targets["other_pod"], "planted"), "w").write("x"))
for pid in targets["pids"]:
    attempt(f"signal {pid}", lambda p=pid: os.kill(p, signal.SIGTERM))
attempt("a user namespace", lambda: subprocess.run(["unshare", "--user", "--map-root-user", "id", "-u"],
                                                  check=True, capture_output=True).stdout)

def keyring():
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.syscall(250 if os.uname().machine == "x86_64" else 219, 0, -3, 0, 0) < 0:  # KEYCTL_GET_KEYRING_ID
        raise OSError(ctypes.get_errno(), "keyctl")
    return "the session keyring"

attempt("the kernel keyring", keyring)
environs = {}
for path in glob.glob("/proc/[0-9]*/environ"):
    try:
        environs[path] = open(path, "rb").read().decode(errors="replace")
    except OSError:
        pass
status = dict(line.split(":", 1) for line in open("/proc/self/status").read().splitlines() if ":" in line)
print(json.dumps({"results": results, "environs": environs, "uid": os.getuid(), "gid": os.getgid(),
                  "groups": os.getgroups(), "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
                  "cap_eff": status["CapEff"].strip(), "cap_bnd": status["CapBnd"].strip(),
                  "no_new_privs": status["NoNewPrivs"].strip(), "root": sorted(os.listdir("/")),
                  "home": os.environ["HOME"], "cwd": os.getcwd()}), flush=True)
"""

# Keeps a file of its own in its directory, says its uid, and waits.
NEIGHBOUR = ("import os, time; open('secret-of-b', 'w').write('only b'); print(os.getuid(), flush=True); "
             "time.sleep(300)")

# Forks children that sleep, until the kernel refuses one (at most 200 tries).
FORK_BOMB = r"""
import os, time
started = 0
for _ in range(200):
    try:
        if os.fork() == 0:
            time.sleep(60)
            os._exit(0)
        started += 1
    except OSError as exc:
        print("fork refused:", exc.strerror, flush=True)
        break
print("children started:", started, flush=True)
time.sleep(60)
"""

MEMORY_HOG = "chunks = []\nwhile True:\n    chunks.append(bytearray(8 * 2**20))  # touched: zero-filled\n"


@pytest.fixture(scope="module")
def node(cluster):
    """An agent running the process runtime (as root, so in its sandbox): (agent process, its data directory)."""
    platform, kube, root = cluster
    client_id, secret = agent_account(platform)
    (root / "sandbox-node.secret").write_text(secret)
    agent = start_agent(kube, platform, root, "sandbox-node", "--client-id", client_id, "--client-secret-file",
                        str(root / "sandbox-node.secret"), "--labels", "disk=ssd")
    yield agent, root / "sandbox-node"
    agent.terminate()
    agent.wait(15)


def _pod(platform, kube, token: str, namespace: str, name: str, script: str, limits: dict | None = None,
         env: dict | None = None, policy: str = "Never") -> None:
    container = {"name": "main", "command": ["python3", "-c", script],
                 "env": [{"name": k, "value": v} for k, v in (env or {}).items()]}
    if limits:
        container["resources"] = {"limits": limits}
    status, body = platform.request("POST", f"{kube.url}/api/v1/pods", {
        "namespace": namespace, "name": name,
        "spec": {"node_selector": {"kubernetes.io/hostname": "sandbox-node"}, "restart_policy": policy,
                 "containers": [container]}}, token)
    assert status == 201, body


def _get(platform, kube, token: str, namespace: str, name: str) -> dict:
    status, body = platform.request("GET", f"{kube.url}/api/v1/pods/{namespace}/{name}", token=token)
    assert status == 200, body
    return body["data"]


def _log(platform, kube, token: str, namespace: str, name: str) -> str:
    status, body = platform.request("GET", f"{kube.url}/api/v1/pods/{namespace}/{name}/logs", token=token)
    return body["data"]["text"] if status == 200 else ""


@pytest.fixture(scope="module")
def tenant(cluster, node):
    """A project member's token and its namespace (the tenant)."""
    platform, kube, _ = cluster
    _, project_id = platform.project("sandboxed")
    admin = platform.admin_token()
    status, body = platform.request("POST", f"{kube.url}/api/v1/namespaces",
                                    {"name": "tenant", "project_id": project_id}, admin)
    assert status == 201, body
    return platform.project_member(project_id), "tenant"


def test_a_tenants_pod_cannot_reach_the_platforms_files_processes_or_another_pod(cluster, node, tenant):
    platform, kube, root = cluster
    agent, agent_dir = node
    token, namespace = tenant
    _pod(platform, kube, token, namespace, "neighbour", NEIGHBOUR)
    neighbour = wait_for("the neighbour pod to run", lambda: (lambda p: p if p["status"]["phase"] == "Running"
                                                              else None)(_get(platform, kube, token, namespace,
                                                                              "neighbour")))
    neighbour_uid = int(wait_for("the neighbour's uid", lambda: _log(platform, kube, token, namespace, "neighbour")))
    other_pod = agent_dir / "pods" / neighbour["metadata"]["uid"]
    assert (other_pod / "main" / "secret-of-b").read_text() == "only b"  # it is there, on the host

    service_pids = [p.process.pid for p in [platform.iam, *platform.services.values()]]
    targets = {"paths": [str(root), str(root / "iam"), str(root.parent), str(agent_dir),
                         str(agent_dir / "pods"), str(other_pod), str(other_pod / "main" / "secret-of-b"),
                         str(root / "sandbox-node.secret"), os.getcwd(), "/root", "/home", "/run", "/var",
                         "/var/run/docker.sock", "/etc/shadow"],
               "other_pod": str(other_pod / "main"), "pids": [agent.pid, os.getpid(), *service_pids]}
    _pod(platform, kube, token, namespace, "attacker", ATTACKS, env={"TARGETS": json.dumps(targets)})
    done = wait_for("the attacker to finish", lambda: (lambda p: p if p["status"]["phase"] in ("Succeeded", "Failed")
                                                       else None)(_get(platform, kube, token, namespace, "attacker")))
    text = _log(platform, kube, token, namespace, "attacker")
    assert done["status"]["phase"] == "Succeeded", text
    seen = json.loads(text)

    got = {name: result for name, result in seen["results"].items() if not result.startswith("denied")}
    # No file of the host's read or listed, none written, no process signalled, no user namespace, no keyring.
    assert got == {}, got
    assert seen["results"]["a user namespace"] == "denied CalledProcessError"
    for secret in platform.secrets:
        assert secret not in text  # the admin password, tokens and the agent's secret appear nowhere
    # Its /proc shows its own processes only (bwrap's init, and itself), and their environments are its own.
    assert len(seen["pids"]) <= 3 and all("TARGETS=" in env for env in seen["environs"].values()), seen["pids"]
    # A uid and gid of its own (not root, not the agent's, not the neighbour's), no capabilities, no new privileges.
    assert seen["uid"] not in (0, os.getuid(), neighbour_uid) and seen["gid"] == seen["uid"]
    assert seen["groups"] in ([], [seen["uid"]])
    assert (seen["cap_eff"], seen["cap_bnd"], seen["no_new_privs"]) == ("0" * 16, "0" * 16, "1")
    # Its file system: the host's system directories, its own /dev, /proc, /tmp and home, nothing else.
    assert {"etc", "pod", "proc", "tmp", "usr"} <= set(seen["root"]) <= {
        "bin", "dev", "etc", "lib", "lib32", "lib64", "libx32", "nix", "pod", "proc", "sbin", "tmp", "usr"}
    assert (seen["home"], seen["cwd"]) == ("/pod", "/pod")
    assert not (other_pod / "main" / "planted").exists()
    # Every platform process it aimed at lives on.
    assert agent.poll() is None and all(p.process.poll() is None for p in [platform.iam, *platform.services.values()])

    # The agent's files are its own: the pod's directory 0700, its log 0600, its home the pod's user's.
    attacker = agent_dir / "pods" / done["metadata"]["uid"]
    assert stat.S_IMODE(attacker.stat().st_mode) == 0o700 and stat.S_IMODE((attacker / "main.log").stat().st_mode) \
        == 0o600
    assert (attacker / "main").stat().st_uid == seen["uid"]

    # A deleted pod's directory goes with it.
    status, body = platform.request("DELETE", f"{kube.url}/api/v1/pods/{namespace}/attacker", {}, token)
    assert status == 200, body
    wait_for("the attacker's directory to go", lambda: not attacker.exists())


def test_a_fork_bomb_stops_at_its_pids_limit_and_a_memory_hog_is_oom_killed(cluster, node, tenant):
    platform, kube, _ = cluster
    token, namespace = tenant
    _pod(platform, kube, token, namespace, "forks", FORK_BOMB, limits={"pids": "16"})
    _pod(platform, kube, token, namespace, "hog", MEMORY_HOG, limits={"memory": "64Mi"})

    text = wait_for("the fork bomb to be stopped",
                    lambda: (lambda t: t if "children started" in t else "")(_log(platform, kube, token, namespace,
                                                                                  "forks")))
    started = int(text.rsplit("children started:", 1)[1])
    assert "fork refused" in text and started < 16, text

    hog = wait_for("the memory hog to end", lambda: (lambda p: p if p["status"]["phase"] == "Failed" else None)(
        _get(platform, kube, token, namespace, "hog")))
    (container,) = hog["status"]["container_statuses"]
    assert (container["reason"], container["exit_code"]) == ("OOMKilled", 137), container
    # The node lived through both.
    node = platform.request("GET", f"{kube.url}/api/v1/nodes/sandbox-node", token=platform.admin_token())[1]["data"]
    assert node["status"]["conditions"][0]["status"] == "True"
    assert {"type": "PodsSandboxed", "status": "True"}.items() <= node["status"]["conditions"][1].items()


def test_an_agent_that_cannot_sandbox_refuses_unless_told_and_an_unsandboxed_node_is_flagged(cluster, monkeypatch):
    platform, kube, root = cluster
    monkeypatch.setattr(sandbox, "detect", lambda: (sandbox.NONE, "bubblewrap (bwrap) is not installed"))
    with pytest.raises(SystemExit) as refused:
        _sandbox(insecure=False)
    assert "bubblewrap (bwrap) is not installed" in str(refused.value)
    assert "--insecure-unsandboxed-pods" in str(refused.value)
    assert _sandbox(insecure=True) is None

    client_id, secret = agent_account(platform)
    (root / "bare-node.secret").write_text(secret)
    bare = start_agent(kube, platform, root, "bare-node", "--client-id", client_id, "--client-secret-file",
                       str(root / "bare-node.secret"), "--insecure-unsandboxed-pods")
    try:
        admin = platform.admin_token()
        node = wait_for("the unsandboxed node", lambda: platform.request(
            "GET", f"{kube.url}/api/v1/nodes/bare-node", token=admin)[1].get("data"))
        flagged = {c["type"]: c for c in node["status"]["conditions"]}["PodsSandboxed"]
        assert (flagged["status"], flagged["reason"]) == ("False", "InsecureUnsandboxedPods")
        assert node["status"]["sandbox"] == "none"
        status, health = platform.request("GET", f"{kube.url}/health")
        assert status == 200 and health["data"]["dependencies"]["nodes"]["unsandboxed"] == ["bare-node"], health
    finally:
        bare.terminate()
        bare.wait(15)
        platform.request("DELETE", f"{kube.url}/api/v1/nodes/bare-node", {}, platform.admin_token())


def test_the_agent_started_without_a_sandbox_as_a_process_refuses(tmp_path):
    """Without bubblewrap on its PATH, the agent (a real process) will not run the process runtime."""
    empty = tmp_path / "bin"
    empty.mkdir()
    run = subprocess.run([sys.executable, "-m", "photoncloud.k8shost.agent", "--data-dir", str(tmp_path / "d"),
                          "--token-file", str(tmp_path / "token")],
                         capture_output=True, text=True, timeout=60, env={**os.environ, "PATH": str(empty)})
    assert run.returncode != 0 and "bubblewrap (bwrap) is not installed" in run.stderr, run.stderr
