"""Checks on what callers send, and the records built from it (the servicers pass plain dicts).

Names follow Kubernetes: namespaces, pods and services are DNS labels (RFC 1123: lower-case
letters, digits and '-', at most 63), nodes DNS subdomains (labels joined by '.', at most 253).
"""

# Without `from __future__ import annotations`: the module has a function of that name (a field of
# Kubernetes' metadata), and its annotations need no postponing.
import re
from collections.abc import Mapping
from typing import Any

from photoncloud.common.errors import InvalidArgument

from . import quantities, selectors
from .records import (
    ALWAYS,
    CLUSTER_IP,
    NEVER,
    NODE_PORT,
    ON_FAILURE,
    Container,
    ContainerPort,
    EnvVar,
    PodSpec,
    Resources,
    ServicePort,
    ServiceSpec,
)

_DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_ENV_NAME = re.compile(r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
_TENANT = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")
MAX_ANNOTATIONS_BYTES = 256 * 1024  # Kubernetes' limit on all annotations of an object
MAX_CONTAINERS = 16
MAX_ARGS = 256
MAX_ARG_BYTES = 32 * 1024
RESTART_POLICIES = (ALWAYS, ON_FAILURE, NEVER)
SERVICE_TYPES = (CLUSTER_IP, NODE_PORT)
RESOURCE_NAMES = ("cpu", "memory")
LIMIT_NAMES = ("cpu", "memory", "pids")
MIN_MEMORY_LIMIT = 4 * 2**20  # below this a process cannot even start
_AMOUNT = {"cpu": quantities.millicores, "memory": quantities.bytes_of, "pids": quantities.count}


def dns_label(name: str, field: str = "name") -> str:
    """name if it is a DNS label (a namespace, pod, service or container name)."""
    if not _DNS_LABEL.match(name or ""):
        raise InvalidArgument(f"{field} {name!r} must be at most 63 lower-case letters, digits or '-', "
                              "starting and ending with a letter or digit", {"field": field})
    return name


def dns_subdomain(name: str, field: str = "name") -> str:
    """name if it is a DNS subdomain (a node name)."""
    if len(name or "") > 253 or not _DNS_SUBDOMAIN.match(name or ""):
        raise InvalidArgument(f"{field} {name!r} must be a DNS subdomain: lower-case labels joined by '.'",
                              {"field": field})
    return name


def tenant(value: str, field: str) -> str:
    """An org or project id."""
    if not _TENANT.match(value or ""):
        raise InvalidArgument(f"{field} is required: letters, digits and . _ : - (at most 128)", {"field": field})
    return value


def labels(given: Mapping[str, str] | None, field: str = "labels") -> dict[str, str]:
    """Labels whose keys and values are valid Kubernetes label keys and values."""
    checked = dict(given or {})
    for key, value in checked.items():
        if not selectors.is_label_key(key):
            raise InvalidArgument(f"{field}: {key!r} is not a label key", {"field": field})
        if not isinstance(value, str) or not selectors.is_label_value(value):
            raise InvalidArgument(f"{field}: the value of {key!r} is not a label value (at most 63 letters, "
                                  "digits, '-', '_' or '.')", {"field": field})
    return checked


def annotations(given: Mapping[str, str] | None) -> dict[str, str]:
    """Annotations: label keys, any text values, at most 256 KiB in all."""
    checked = dict(given or {})
    if any(not selectors.is_label_key(k) for k in checked):
        raise InvalidArgument("annotations: keys must be label keys", {"field": "annotations"})
    if sum(len(k) + len(v.encode()) for k, v in checked.items()) > MAX_ANNOTATIONS_BYTES:
        raise InvalidArgument("annotations are larger than 256 KiB", {"field": "annotations"})
    return checked


def _port(value: Any, field: str, allow_zero: bool = False) -> int:
    if not isinstance(value, int) or not (0 if allow_zero else 1) <= value <= 65535:
        raise InvalidArgument(f"{field} must be a port number (1-65535)", {"field": field})
    return value


def _strings(given: Any, field: str) -> tuple[str, ...]:
    values: tuple[str, ...] = tuple(given or ())
    if len(values) > MAX_ARGS or any(not isinstance(v, str) or len(v.encode()) > MAX_ARG_BYTES for v in values):
        raise InvalidArgument(f"{field}: at most {MAX_ARGS} strings of at most 32 KiB", {"field": field})
    return values


def _resources(data: Mapping[str, Any], where: str) -> tuple[dict[str, str], dict[str, str]]:
    """A container's requests and limits, checked; as in Kubernetes, a limit without a request is also the request,
    and no request may exceed its limit."""
    where = f"{where}.resources"
    unknown = set(data) - {"requests", "limits"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown field {min(unknown)}", {"field": f"{where}.{min(unknown)}"})
    requests, limits = dict(data.get("requests") or {}), dict(data.get("limits") or {})
    for kind, values, known in (("requests", requests, RESOURCE_NAMES), ("limits", limits, LIMIT_NAMES)):
        for key, value in values.items():
            if key not in known:
                raise InvalidArgument(f"{where}.{kind}: only {', '.join(known)} are known",
                                      {"field": f"{where}.{kind}"})
            if not isinstance(value, str):
                raise InvalidArgument(f"{where}.{kind}.{key} is a quantity in a string (e.g. \"64Mi\")",
                                      {"field": f"{where}.{kind}.{key}"})
            _AMOUNT[key](value, f"{where}.{kind}.{key}")
    for key in set(limits) & set(RESOURCE_NAMES):
        requests.setdefault(key, limits[key])
        if _AMOUNT[key](requests[key], key) > _AMOUNT[key](limits[key], key):
            raise InvalidArgument(f"{where}.requests.{key} must not exceed its limit", {"field": f"{where}.requests"})
    if "pids" in limits and quantities.count(limits["pids"]) < 1:
        raise InvalidArgument(f"{where}.limits.pids must be at least 1", {"field": f"{where}.limits.pids"})
    if "memory" in limits and quantities.bytes_of(limits["memory"]) < MIN_MEMORY_LIMIT:
        raise InvalidArgument(f"{where}.limits.memory must be at least 4Mi", {"field": f"{where}.limits.memory"})
    return requests, limits


def container(data: Mapping[str, Any], index: int) -> Container:
    """A container from its fields (name, image, command, args, env, ports, resources, working_dir)."""
    where = f"spec.containers[{index}]"
    unknown = set(data) - {"name", "image", "command", "args", "env", "ports", "resources", "working_dir"}
    if unknown:
        raise InvalidArgument(f"{where}: unknown field {min(unknown)}", {"field": f"{where}.{min(unknown)}"})
    name = dns_label(data.get("name") or "", f"{where}.name")
    image, command = data.get("image") or "", _strings(data.get("command"), f"{where}.command")
    if not image and not command:
        raise InvalidArgument(f"{where}: give an image or a command", {"field": f"{where}.image"})
    env = []
    for i, e in enumerate(data.get("env") or ()):
        if not _ENV_NAME.match(e.get("name") or ""):
            raise InvalidArgument(f"{where}.env[{i}].name is not a variable name", {"field": f"{where}.env"})
        env.append(EnvVar(e["name"], str(e.get("value") or "")))
    ports = tuple(ContainerPort(_port(p.get("container_port"), f"{where}.ports[{i}].container_port"),
                                p.get("name") or "", (p.get("protocol") or "TCP").upper())
                  for i, p in enumerate(data.get("ports") or ()))
    if any(p.protocol not in ("TCP", "UDP") for p in ports):
        raise InvalidArgument(f"{where}.ports: protocol is TCP or UDP", {"field": f"{where}.ports"})
    requests, limits = _resources(data.get("resources") or {}, where)
    return Container(name, image, command, _strings(data.get("args"), f"{where}.args"), tuple(env), ports,
                     Resources(requests, limits), data.get("working_dir") or "")


def pod_spec(data: Mapping[str, Any] | None, image: str = "", command: Any = (), args: Any = (),
             default_name: str = "main") -> PodSpec:
    """A pod's spec from its fields, or from the one-container shorthand (image, command, args)."""
    data = dict(data or {})
    shorthand = bool(image or command or args)
    if shorthand and data.get("containers"):
        raise InvalidArgument("give spec.containers or image/command/args, not both", {"field": "spec"})
    raw = data.get("containers") or ([{"name": default_name, "image": image, "command": list(command or ()),
                                       "args": list(args or ())}] if shorthand else [])
    if not raw:
        raise InvalidArgument("a pod needs at least one container (spec.containers, or image/command)",
                              {"field": "spec.containers"})
    if len(raw) > MAX_CONTAINERS:
        raise InvalidArgument(f"at most {MAX_CONTAINERS} containers", {"field": "spec.containers"})
    containers = tuple(container(c, i) for i, c in enumerate(raw))
    if len({c.name for c in containers}) != len(containers):
        raise InvalidArgument("container names must be distinct", {"field": "spec.containers"})
    policy = data.get("restart_policy") or ALWAYS
    if policy not in RESTART_POLICIES:
        raise InvalidArgument(f"spec.restart_policy is one of {', '.join(RESTART_POLICIES)}",
                              {"field": "spec.restart_policy"})
    if data.get("node_name"):
        raise InvalidArgument("spec.node_name is set by the scheduler", {"field": "spec.node_name"})
    grace = data.get("termination_grace_period_seconds") or 10
    if not isinstance(grace, int) or not 0 < grace <= 3600:
        raise InvalidArgument("spec.termination_grace_period_seconds is 1 to 3600",
                              {"field": "spec.termination_grace_period_seconds"})
    return PodSpec(containers, policy, labels(data.get("node_selector"), "spec.node_selector"), "", grace)


def service_spec(data: Mapping[str, Any] | None, service_type: str = "", port: int = 0, target_port: int = 0,
                 selector: Mapping[str, str] | None = None) -> ServiceSpec:
    """A service's spec from its fields, or from the one-port shorthand (service_type, port, target_port, selector)."""
    data = dict(data or {})
    if port or target_port:
        if data.get("ports"):
            raise InvalidArgument("give spec.ports or port/target_port, not both", {"field": "spec"})
        data["ports"] = [{"port": port, "target_port": target_port}]
    if service_type:
        data["type"] = service_type
    if selector:
        data["selector"] = {**(data.get("selector") or {}), **selector}
    kind = data.get("type") or CLUSTER_IP
    if kind not in SERVICE_TYPES:
        raise InvalidArgument(f"spec.type is one of {', '.join(SERVICE_TYPES)}", {"field": "spec.type"})
    ports = []
    for i, p in enumerate(data.get("ports") or ()):
        where = f"spec.ports[{i}]"
        number = _port(p.get("port"), f"{where}.port")
        protocol = (p.get("protocol") or "TCP").upper()
        if protocol != "TCP":
            raise InvalidArgument(f"{where}.protocol: only TCP is served", {"field": f"{where}.protocol"})
        node_port = _port(p.get("node_port") or 0, f"{where}.node_port", allow_zero=True)
        if node_port and kind != NODE_PORT:
            raise InvalidArgument(f"{where}.node_port needs type NodePort", {"field": f"{where}.node_port"})
        ports.append(ServicePort(number, _port(p.get("target_port") or number, f"{where}.target_port"),
                                 p.get("name") or "", protocol, node_port))
    if not ports:
        raise InvalidArgument("a service needs at least one port (spec.ports, or port)", {"field": "spec.ports"})
    if len({p.port for p in ports}) != len(ports) or len({p.name for p in ports}) != len(ports):
        raise InvalidArgument("service ports must have distinct numbers and names", {"field": "spec.ports"})
    if data.get("cluster_ip"):
        raise InvalidArgument("spec.cluster_ip is assigned by k8shost", {"field": "spec.cluster_ip"})
    return ServiceSpec(kind, labels(data.get("selector"), "spec.selector"), tuple(ports), "")


def resource_version(value: str, field: str = "resource_version") -> int:
    """A resource version as sent ("" or "0": none)."""
    if not value:
        return 0
    if not (value.isascii() and value.isdigit()) or len(value) > 18:  # "²" is a digit int() refuses
        raise InvalidArgument(f"{field} {value!r} is not a resource version", {"field": field})
    return int(value)
