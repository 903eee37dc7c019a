"""k8shost: `pcctl ns`, `pod` (with `logs -f`), `svc` and `node`."""

from __future__ import annotations

import time
from typing import Any

import click

from photoncloud.sdk import ApiError
from photoncloud.sdk.k8s import FINISHED

from .. import wait
from ..context import output_option, pairs, project_option, state

NS_COLUMNS = [("NAME", "metadata.name"), ("PROJECT", "project_id"), ("SUBNET", "subnet_id"),
              ("LABELS", "metadata.labels")]
POD_COLUMNS = [("NAMESPACE", "metadata.namespace"), ("NAME", "metadata.name"), ("PHASE", "status.phase"),
               ("NODE", "spec.node_name"), ("IP", "status.pod_ip"),
               ("RESTARTS", "status.container_statuses.0.restart_count")]
SVC_COLUMNS = [("NAMESPACE", "metadata.namespace"), ("NAME", "metadata.name"), ("TYPE", "spec.type"),
               ("CLUSTER_IP", "spec.cluster_ip"), ("PORTS", "spec.ports")]
NODE_COLUMNS = [("NAME", "metadata.name"), ("READY", "status.conditions.0.status"), ("ADDRESS", "status.addresses"),
                ("UNSCHEDULABLE", "spec.unschedulable")]


def pod_phase(pod: dict[str, Any] | None) -> str:
    """A pod's phase, and why it waits when it says so."""
    if pod is None:
        return "gone"
    status = pod.get("status", {})
    phase = str(status.get("phase", ""))
    reasons = [c.get("reason") for c in status.get("conditions", []) if c.get("status") == "False" and c.get("reason")]
    # A container that is not running says why (a crash loop keeps the pod Running, but never ready).
    reasons += [f"{c.get('name')} {c.get('state')}" + (f": {c['reason']}" if c.get("reason") else "")
                for c in status.get("container_statuses", []) if c.get("state") not in (None, "", "RUNNING")]
    return f"{phase} ({', '.join(reasons)})" if reasons else phase


def running(pod: dict[str, Any]) -> bool:
    """Whether a pod runs and is ready, or has finished (then waiting longer changes nothing)."""
    status = pod.get("status", {})
    ready = any(c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions", []))
    return (status.get("phase") == "Running" and ready) or status.get("phase") in FINISHED


@click.group()
def ns() -> None:
    """k8shost's namespaces (each in a project)."""


@ns.command("create")
@click.argument("name")
@click.option("--subnet", "subnet_id", default=None, help="A PrismNET subnet of the project for the pods' addresses.")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE")
@project_option
@output_option
def ns_create(name: str, subnet_id: str | None, labels: tuple[str, ...], project: str | None) -> None:
    """Create a namespace in a project."""
    st = state()
    st.emit(st.client.k8s.create_namespace(name, st.project(project), pairs(labels, "--label") or None, subnet_id))


@ns.command("ls")
@output_option
def ns_ls() -> None:
    """The namespaces the token sees."""
    state().emit(list(state().client.k8s.namespaces()), NS_COLUMNS)


@ns.command("get")
@click.argument("name")
@output_option
def ns_get(name: str) -> None:
    """One namespace."""
    state().emit(state().client.k8s.get_namespace(name))


@ns.command("delete")
@click.argument("name")
@output_option
def ns_delete(name: str) -> None:
    """Delete a namespace with its pods and services."""
    state().emit(state().client.k8s.delete_namespace(name))


namespace_option = click.option("-n", "--namespace", required=True, help="The pod's namespace.")


@click.group()
def pod() -> None:
    """k8shost's pods."""


@pod.command("create", context_settings={"ignore_unknown_options": True})
@click.argument("name")
@namespace_option
@click.option("--image", default=None, help="The container's image (the docker runtime); none for a process.")
@click.option("-l", "--label", "labels", multiple=True, metavar="KEY=VALUE")
@click.option("--wait", "wait_", is_flag=True, help="Wait until it runs and is ready (or finishes), showing its phase.")
@click.option("--timeout", type=float, default=300, help="Seconds --wait waits.")
@click.argument("command", nargs=-1, type=click.UNPROCESSED)
@output_option
def pod_create(name: str, namespace: str, image: str | None, labels: tuple[str, ...], wait_: bool, timeout: float,
               command: tuple[str, ...]) -> None:
    """Create a pod of one container `main` running COMMAND (after `--`): `pcctl pod create web -n shop
    -- sh -c 'echo hi; sleep 60'`."""
    st = state()
    k8s = st.client.k8s
    made = k8s.create_pod(namespace, name, image=image, command=list(command) or None,
                          labels=pairs(labels, "--label") or None)
    if wait_:
        made = wait.until(f"pod {namespace}/{name}", lambda: k8s.get_pod(namespace, name), pod_phase, running,
                          timeout)
    st.emit(made)


@pod.command("ls")
@click.option("-n", "--namespace", default=None, help="Only this namespace's (default: every one the token reads).")
@click.option("-l", "--selector", "label_selector", default=None, help="A label selector (app=web,tier!=db).")
@output_option
def pod_ls(namespace: str | None, label_selector: str | None) -> None:
    """The pods."""
    state().emit(list(state().client.k8s.pods(namespace, label_selector)), POD_COLUMNS)


@pod.command("get")
@click.argument("name")
@namespace_option
@output_option
def pod_get(name: str, namespace: str) -> None:
    """One pod."""
    state().emit(state().client.k8s.get_pod(namespace, name))


@pod.command("logs")
@click.argument("name")
@namespace_option
@click.option("-c", "--container", default=None, help="The container (default: the pod's only one).")
@click.option("--tail", "tail_lines", type=int, default=None, help="Only the last N lines.")
@click.option("-f", "--follow", is_flag=True, help="Keep printing what the container prints, until the pod ends.")
@click.option("--interval", type=float, default=1.0, help="Seconds between reads with --follow.")
def pod_logs(name: str, namespace: str, container: str | None, tail_lines: int | None, follow: bool,
             interval: float) -> None:
    """Print a container's log (read from its node's agent)."""
    k8s = state().client.k8s
    text = k8s.pod_logs(namespace, name, container, tail_lines).get("text", "")
    click.echo(text, nl=False)
    if not follow:
        return
    # The agent answers the whole log kept: print what was added since the last read. A log that no
    # longer starts with what was printed was rotated or restarted: print it from its start again.
    seen = k8s.pod_logs(namespace, name, container).get("text", "") if tail_lines is not None else text
    while True:
        try:
            finished = k8s.get_pod(namespace, name).get("status", {}).get("phase") in FINISHED
            now = k8s.pod_logs(namespace, name, container).get("text", "")
        except ApiError as error:
            if error.code == "NOT_FOUND":
                return
            raise
        click.echo(now[len(seen):] if now.startswith(seen) else now, nl=False)
        seen = now
        if finished:
            return
        time.sleep(interval)


@pod.command("delete")
@click.argument("name")
@namespace_option
@click.option("--wait", "wait_", is_flag=True, help="Wait until it is gone.")
@click.option("--timeout", type=float, default=120)
@output_option
def pod_delete(name: str, namespace: str, wait_: bool, timeout: float) -> None:
    """Delete a pod (its agent stops it)."""
    k8s = state().client.k8s
    result = k8s.delete_pod(namespace, name)
    if wait_:
        wait.until(f"pod {namespace}/{name}", wait.gone(lambda: k8s.get_pod(namespace, name)), pod_phase,
                   lambda p: p is None, timeout)
    state().emit(result)


@click.group()
def svc() -> None:
    """k8shost's services."""


@svc.command("create")
@click.argument("name")
@click.option("-n", "--namespace", required=True)
@click.option("--port", type=int, required=True, help="The service's port.")
@click.option("--target-port", type=int, default=None, help="The pods' port (default: --port).")
@click.option("--selector", "selector", multiple=True, required=True, metavar="KEY=VALUE",
              help="The pods' labels it selects; repeatable.")
@click.option("--type", "service_type", type=click.Choice(["ClusterIP", "NodePort"]), default="ClusterIP")
@output_option
def svc_create(name: str, namespace: str, port: int, target_port: int | None, selector: tuple[str, ...],
               service_type: str) -> None:
    """Create a service in front of the pods SELECTOR matches."""
    state().emit(state().client.k8s.create_service(
        namespace, name, service_type=service_type, port=port, target_port=target_port or port,
        selector=pairs(selector, "--selector")))


@svc.command("ls")
@click.option("-n", "--namespace", default=None)
@output_option
def svc_ls(namespace: str | None) -> None:
    """The services."""
    state().emit(list(state().client.k8s.services(namespace)), SVC_COLUMNS)


@svc.command("get")
@click.argument("name")
@click.option("-n", "--namespace", required=True)
@output_option
def svc_get(name: str, namespace: str) -> None:
    """One service."""
    state().emit(state().client.k8s.get_service(namespace, name))


@svc.command("delete")
@click.argument("name")
@click.option("-n", "--namespace", required=True)
@output_option
def svc_delete(name: str, namespace: str) -> None:
    """Delete a service."""
    state().emit(state().client.k8s.delete_service(namespace, name))


@svc.command("endpoints")
@click.argument("name")
@click.option("-n", "--namespace", required=True)
@output_option
def svc_endpoints(name: str, namespace: str) -> None:
    """The pods a service selects, ready or not."""
    state().emit(state().client.k8s.endpoints(namespace, name))


@click.group()
def node() -> None:
    """k8shost's nodes."""


@node.command("ls")
@output_option
def node_ls() -> None:
    """The nodes."""
    state().emit(list(state().client.k8s.nodes()), NODE_COLUMNS)


@node.command("get")
@click.argument("name")
@output_option
def node_get(name: str) -> None:
    """One node."""
    state().emit(state().client.k8s.get_node(name))


def register(root: click.Group) -> None:
    """Add ns, pod, svc and node to root."""
    for command in (ns, pod, svc, node):
        root.add_command(command)
