"""The API server and a node agent as real processes, with IAM: the agent authenticates as a
service account, registers its node, runs a pod whose container is a real process, reports it
Running, serves its log through the API server; killed, its node goes NotReady and the pod Unknown."""

from __future__ import annotations

import json
import signal

from photoncloud.k8shost.testing import agent_account, answers, start_agent, wait_for

POD_SCRIPT = "import os, time; print('hello from', os.environ['GREETING'], flush=True); time.sleep(120)"


def test_an_agent_runs_a_pod_reports_it_serves_its_log_and_its_node_goes_not_ready_when_it_dies(cluster):
    platform, kube, root = cluster
    admin = platform.admin_token()
    org_id, project_id = platform.project("pods")
    api = f"{kube.url}/api/v1"

    def call(method: str, path: str, body: dict | None = None, token: str = admin) -> tuple[int, dict]:
        return platform.request(method, api + path, body, token)

    def pod_in(phase: str, name: str) -> dict | None:
        pod = call("GET", f"/pods/demo/{name}")[1]["data"]
        return pod if pod["status"]["phase"] == phase else None

    status, ns = call("POST", "/namespaces", {"name": "demo", "project_id": project_id})
    assert status == 201 and ns["data"]["org_id"] == org_id, ns
    client_id, secret = agent_account(platform)
    (root / "node-a.secret").write_text(secret)
    agent = start_agent(kube, platform, root, "node-a", "--client-id", client_id, "--client-secret-file",
                        str(root / "node-a.secret"))
    try:
        node = wait_for("the node to register", lambda: call("GET", "/nodes/node-a")[1].get("data"))
        status_ = node["status"]
        assert status_["conditions"][0]["type"] == "Ready" and status_["conditions"][0]["status"] == "True"
        assert status_["capacity"] == {"cpu": "2", "memory": "2Gi", "pods": "110"} and status_["runtime"] == "process"
        assert "daemon_token" not in status_
        assert node["metadata"]["labels"] == {"disk": "ssd", "kubernetes.io/hostname": "node-a"}

        status, pod = call("POST", "/pods", {"namespace": "demo", "name": "hello", "labels": {"app": "hello"},
                                             "spec": {"node_selector": {"disk": "ssd"}, "containers": [{
                                                 "name": "main", "command": ["python3", "-c", POD_SCRIPT],
                                                 "env": [{"name": "GREETING", "value": "a pod"}],
                                                 "resources": {"requests": {"cpu": "100m", "memory": "32Mi"}}}]}})
        assert status == 201, pod

        pod = wait_for("the pod to run", lambda: pod_in("Running", "hello"))
        assert pod["spec"]["node_name"] == "node-a" and pod["status"]["host_ip"] == "127.0.0.1"
        (container,) = pod["status"]["container_statuses"]
        assert container["state"] == "RUNNING" and container["ready"] and container["started_at"]
        conditions = {c["type"]: c["status"] for c in pod["status"]["conditions"]}
        assert conditions == {"PodScheduled": "True", "Ready": "True"}

        def logged(times: int = 1) -> str:
            """The pod's log once its greeting is in it `times` times."""
            status, body = call("GET", "/pods/demo/hello/logs")
            return status == 200 and body["data"]["text"].count("hello from a pod") >= times and body["data"]["text"]

        assert wait_for("the pod's log", logged) == "hello from a pod\n"
        status, body = call("GET", "/pods/demo/hello/logs?container=other")
        assert status == 404

        # A project member may read the pod and its log, but not act as a node.
        member = platform.token("admin", platform.admin_password, org_id=org_id, project_id=project_id)
        status, body = call("GET", "/pods/demo/hello/logs?tail_lines=1", token=member)
        assert status == 200 and body["data"]["text"] == "hello from a pod\n"
        status, body = call("POST", "/nodes/node-a/heartbeat", token=member)
        assert status == 403

        # Restart policies, through the API: OnFailure restarts a failing container, Never runs one once.
        for name, policy, code in (("crash", "OnFailure", 3), ("once", "Never", 0)):
            status, body = call("POST", "/pods", {"namespace": "demo", "name": name, "spec": {
                "restart_policy": policy, "containers": [{"name": "main", "command": [
                    "python3", "-c", f"print('exiting with {code}'); raise SystemExit({code})"]}]}})
            assert status == 201, body

        def restarted() -> dict | None:
            pod = call("GET", "/pods/demo/crash")[1]["data"]
            statuses = pod["status"]["container_statuses"]
            return pod if statuses and statuses[0]["restart_count"] >= 2 else None

        crash = wait_for("the failing container to be restarted", restarted)
        (state,) = crash["status"]["container_statuses"]
        assert crash["status"]["phase"] == "Running"
        assert (state["state"], state["reason"]) in {("WAITING", "CrashLoopBackOff"), ("TERMINATED", "Error"),
                                                     ("RUNNING", "")}
        once = wait_for("the run-once pod to succeed", lambda: pod_in("Succeeded", "once"))
        (state,) = once["status"]["container_statuses"]
        assert (state["state"], state["reason"], state["exit_code"], state["restart_count"]) == \
            ("TERMINATED", "Completed", 0, 0)
        assert call("GET", "/pods/demo/once/logs")[1]["data"]["text"] == "exiting with 0\n"

        # Cut off (stopped) past the grace period, the node goes NotReady and its pods Unknown; back, both
        # recover without a restart: the pod kept running meanwhile.
        agent.send_signal(signal.SIGSTOP)
        try:
            wait_for("the silent node's pod to be Unknown", lambda: pod_in("Unknown", "hello"), timeout=20)
        finally:
            agent.send_signal(signal.SIGCONT)
        pod = wait_for("the pod to be Running again", lambda: pod_in("Running", "hello"))
        assert pod["status"]["container_statuses"][0]["restart_count"] == 0
        assert wait_for("the node to be Ready again", lambda: call("GET", "/nodes/node-a")[1]["data"]["status"][
            "conditions"][0]["status"] == "True")

        agent.kill()
        agent.wait(10)

        def lost() -> dict | None:
            ready = call("GET", "/nodes/node-a")[1]["data"]["status"]["conditions"][0]["status"]
            return pod_in("Unknown", "hello") if ready == "Unknown" else None

        pod = wait_for("the node to go NotReady", lost, timeout=20)
        assert {c["type"]: c["status"] for c in pod["status"]["conditions"]}["Ready"] == "False"
        assert pod["status"]["reason"] == "NodeLost"
        status, body = call("GET", "/pods/demo/hello/logs")
        assert status == 503 and body["error"]["code"] == "UNAVAILABLE"

        # The agent comes back: the node is Ready again and the pod runs again (its processes died with the agent).
        agent = start_agent(kube, platform, root, "node-a", "--client-id", client_id, "--client-secret-file",
                            str(root / "node-a.secret"))
        pod = wait_for("the pod to run again", lambda: pod_in("Running", "hello"))
        assert pod["status"]["reason"] == "" and {c["type"]: c["status"] for c in pod["status"]["conditions"]} == \
            {"PodScheduled": "True", "Ready": "True"}
        assert call("GET", "/nodes/node-a")[1]["data"]["status"]["conditions"][0]["status"] == "True"
        # One log, kept: the restarted container's greeting follows the first (waited for: the first alone is there
        # from the start).
        assert wait_for("the new agent's log", lambda: logged(2)) == "hello from a pod\nhello from a pod\n"
        assert pod_in("Succeeded", "once") is not None  # a finished pod is not run again
    finally:
        if agent.poll() is None:
            agent.send_signal(signal.SIGTERM)
            agent.wait(15)
    assert secret not in platform.logs() and secret not in (root / "node-a.log").read_text()


SERVER = """
import http.server, os, sys
class Hello(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        body = ('hello from ' + os.environ['POD_NAME']).encode()
        self.send_response(200)
        self.send_header('Content-Length', str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
print('serving on', sys.argv[1], flush=True)
http.server.HTTPServer((sys.argv[1], 8080), Hello).serve_forever()
"""


def test_a_node_port_service_spreads_connections_over_the_pods_it_selects(cluster):
    platform, kube, root = cluster
    admin = platform.admin_token()
    _, project_id = platform.project("web")
    api = f"{kube.url}/api/v1"

    def call(method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        return platform.request(method, api + path, body, admin)

    assert call("POST", "/namespaces", {"name": "shop", "project_id": project_id})[0] == 201
    # This agent makes its own IAM account on its first start, with the administrator's password.
    (root / "admin-password").write_text(platform.admin_password)
    agent = start_agent(kube, platform, root, "node-b", "--bootstrap-password-file", str(root / "admin-password"))
    try:
        for name in ("web-1", "web-2"):
            status, pod = call("POST", "/pods", {
                "namespace": "shop", "name": name, "labels": {"app": "web"},
                "spec": {"node_selector": {"kubernetes.io/hostname": "node-b"},
                         "containers": [{"name": "http", "command": ["python3", "-c", SERVER, "$(POD_IP)"],
                                         "ports": [{"container_port": 8080}]}]}})
            assert status == 201, pod
        status, service = call("POST", "/services", {"namespace": "shop", "name": "web", "service_type": "NodePort",
                                                     "port": 80, "target_port": 8080, "selector": {"app": "web"}})
        assert status == 201, service
        node_port = service["data"]["spec"]["ports"][0]["node_port"]
        cluster_ip = service["data"]["spec"]["cluster_ip"]

        def both_ready() -> list | None:
            ready = call("GET", "/endpoints/shop/web")[1]["data"]["addresses"]
            return ready if len(ready) == 2 else None

        ready = wait_for("both pods to be endpoints", both_ready)
        assert {a["pod_name"] for a in ready} == {"web-1", "web-2"}
        assert len({a["ip"] for a in ready}) == 2 and all(a["ip"].startswith("127.128.") for a in ready)

        assert wait_for("the node port to reach both pods",
                        lambda: answers("127.0.0.1", node_port) == {"hello from web-1", "hello from web-2"})
        assert wait_for("the cluster IP to reach both pods",
                        lambda: answers(cluster_ip, 80) == {"hello from web-1", "hello from web-2"})

        # A deleted pod leaves the endpoints, and the service keeps answering from the other.
        assert call("DELETE", "/pods/shop/web-1")[0] == 200
        wait_for("web-1 to leave the endpoints", lambda: [a["pod_name"] for a in call(
            "GET", "/endpoints/shop/web")[1]["data"]["addresses"]] == ["web-2"])
        assert wait_for("only web-2 to answer", lambda: answers("127.0.0.1", node_port) == {"hello from web-2"})
    finally:
        agent.send_signal(signal.SIGTERM)
        agent.wait(15)
    saved = root / "node-b" / "credentials.json"
    assert saved.stat().st_mode & 0o777 == 0o600
    assert platform.admin_password not in (root / "node-b.log").read_text()
    assert json.loads(saved.read_text())["client_secret"] not in (root / "node-b.log").read_text()
