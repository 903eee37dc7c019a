"""The Kubernetes API's pure functions against what Kubernetes does: strategic merge patch (its directives),
JSON merge patch (RFC 7386's own examples), JSON patch, field selectors, unknown fields, kubectl's ages,
Status reasons and codes, and the protobuf Namespace kubectl sends, built here byte by byte."""

from __future__ import annotations

import copy
import time
from typing import Any

import pytest

from photoncloud.common.errors import (
    Aborted,
    AlreadyExists,
    InvalidArgument,
    NotFound,
    OutOfRange,
    PermissionDenied,
    ResourceExhausted,
    ServiceError,
    Unauthenticated,
)
from photoncloud.k8shost.kube import fields, patch, protobuf, schema, status, tables

SMP, MERGE, JSON_PATCH = ("application/strategic-merge-patch+json", "application/merge-patch+json",
                          "application/json-patch+json")

POD: dict[str, Any] = {
    "apiVersion": "v1", "kind": "Pod",
    "metadata": {"name": "p", "namespace": "web", "labels": {"app": "a", "tier": "web"}},
    "spec": {
        "containers": [
            {"name": "a", "image": "a:1", "args": ["--x", "--y"],
             "env": [{"name": "X", "value": "1"}, {"name": "Y", "value": "2"}],
             "ports": [{"containerPort": 80}, {"containerPort": 443}]},
            {"name": "b", "image": "b:1"},
        ],
        "restartPolicy": "Always",
        "nodeSelector": {"disk": "ssd", "zone": "z1"},
    },
}


def smp(body: dict[str, Any], kind: str = "Pod", current: dict[str, Any] | None = None) -> dict[str, Any]:
    """current (POD unless given) after a strategic merge patch."""
    original = copy.deepcopy(current or POD)
    result = patch.apply(SMP, original, body, kind)
    assert original == (current or POD), "a patch must not change the object it was applied to"
    return result


def containers(pod: dict[str, Any]) -> list[tuple[str, str]]:
    """(name, image) of each container, in order."""
    return [(c["name"], c.get("image", "")) for c in pod["spec"]["containers"]]


# Strategic merge patch (k8s.io/apimachinery/pkg/util/strategicpatch, the patchMergeKey of core/v1)

def test_smp_merges_containers_by_name_keeping_the_others_and_appending_new_ones():
    result = smp({"spec": {"containers": [{"name": "b", "image": "b:2"}, {"name": "c", "image": "c:1"}]}})
    assert containers(result) == [("a", "a:1"), ("b", "b:2"), ("c", "c:1")]
    assert result["spec"]["containers"][0] == POD["spec"]["containers"][0]


def test_smp_merges_env_by_name_and_ports_by_container_port_inside_a_container():
    result = smp({"spec": {"containers": [{"name": "a", "env": [{"name": "Y", "value": "3"}, {"name": "Z"}],
                                           "ports": [{"containerPort": 8080, "name": "alt"}]}]}})
    first = result["spec"]["containers"][0]
    assert first["env"] == [{"name": "X", "value": "1"}, {"name": "Y", "value": "3"}, {"name": "Z"}]
    assert [p["containerPort"] for p in first["ports"]] == [80, 443, 8080]
    assert first["image"] == "a:1"


def test_smp_replaces_a_list_without_a_merge_key():
    result = smp({"spec": {"containers": [{"name": "a", "args": ["--z"]}]}})
    assert result["spec"]["containers"][0]["args"] == ["--z"]


def test_smp_patch_delete_in_a_list_removes_that_item_only():
    result = smp({"spec": {"containers": [{"name": "a", "$patch": "delete"}]}})
    assert containers(result) == [("b", "b:1")]
    env = smp({"spec": {"containers": [{"name": "a", "env": [{"name": "X", "$patch": "delete"}]}]}})
    assert env["spec"]["containers"][0]["env"] == [{"name": "Y", "value": "2"}]


def test_smp_patch_replace_in_a_list_replaces_the_whole_list():
    result = smp({"spec": {"containers": [{"name": "c", "image": "c:1"}, {"$patch": "replace"}]}})
    assert containers(result) == [("c", "c:1")]
    assert "$patch" not in str(result)


def test_smp_patch_replace_on_a_struct_replaces_it_whole():
    result = smp({"spec": {"$patch": "replace", "containers": [{"name": "only", "image": "o:1"}]}})
    assert result["spec"] == {"containers": [{"name": "only", "image": "o:1"}]}


def test_smp_patch_replace_on_a_map_replaces_the_map():
    # Kubernetes' mergeMap handles the $patch directive in every map, labels and nodeSelector included:
    # {"$patch": "replace", "zone": "z2"} leaves exactly {"zone": "z2"}, never a "$patch" key.
    result = smp({"spec": {"nodeSelector": {"$patch": "replace", "zone": "z2"}},
                  "metadata": {"labels": {"$patch": "replace", "only": "x"}}})
    assert result["spec"]["nodeSelector"] == {"zone": "z2"}, (
        "BUG kube/patch.py strategic(): a map field (additionalProperties: nodeSelector, labels) is merged with "
        "merge(), which keeps the $patch directive as a key instead of replacing the map; got "
        f"{result['spec']['nodeSelector']}")
    assert result["metadata"]["labels"] == {"only": "x"}


def test_smp_patch_delete_on_a_map_removes_it():
    result = smp({"spec": {"nodeSelector": {"$patch": "delete"}}})
    assert "nodeSelector" not in result["spec"], (
        "BUG kube/patch.py strategic(): {\"$patch\": \"delete\"} on a map field (nodeSelector) is merged as a key "
        f"instead of deleting the map; got {result['spec'].get('nodeSelector')}")


def test_smp_set_element_order_orders_the_merged_list():
    result = smp({"spec": {"$setElementOrder/containers": [{"name": "b"}, {"name": "a"}],
                           "containers": [{"name": "a", "image": "a:2"}]}})
    assert containers(result) == [("b", "b:1"), ("a", "a:2")]
    assert not any(k.startswith("$") for k in result["spec"])


def test_smp_retain_keys_clears_the_fields_it_does_not_name():
    result = smp({"spec": {"$retainKeys": ["containers", "restartPolicy"], "restartPolicy": "Never"}})
    assert result["spec"]["restartPolicy"] == "Never"
    assert "nodeSelector" not in result["spec"]
    assert containers(result) == containers(POD)
    assert "$retainKeys" not in result["spec"]


def test_smp_delete_from_primitive_list_removes_those_values():
    result = smp({"spec": {"containers": [{"name": "a", "$deleteFromPrimitiveList/args": ["--x"]}]}})
    assert result["spec"]["containers"][0]["args"] == ["--y"]
    assert not any(k.startswith("$") for k in result["spec"]["containers"][0])


def test_smp_merges_maps_and_null_deletes():
    result = smp({"metadata": {"labels": {"tier": None, "new": "x"}},
                  "spec": {"nodeSelector": {"zone": "z2"}, "restartPolicy": None}})
    assert result["metadata"]["labels"] == {"app": "a", "new": "x"}
    assert result["spec"]["nodeSelector"] == {"disk": "ssd", "zone": "z2"}
    assert "restartPolicy" not in result["spec"]
    assert result["metadata"]["name"] == "p"


def test_smp_merges_service_ports_by_port():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"type": "NodePort", "selector": {"app": "a"},
                        "ports": [{"port": 80, "targetPort": 8080, "nodePort": 30080}, {"port": 443}]}}
    result = smp({"spec": {"ports": [{"port": 80, "targetPort": 9090}]}}, "Service", service)
    assert result["spec"]["ports"] == [{"port": 80, "targetPort": 9090, "nodePort": 30080}, {"port": 443}]


def test_smp_refuses_an_item_without_its_merge_key_and_an_unknown_directive():
    with pytest.raises(InvalidArgument, match="merge key"):
        smp({"spec": {"containers": [{"image": "nameless"}]}})
    with pytest.raises(InvalidArgument, match="directive"):
        smp({"spec": {"$patch": "shuffle"}})


# JSON merge patch: RFC 7386, section 3 and appendix A

def test_merge_patch_rfc7386_section_3_example():
    target = {"title": "Goodbye!", "author": {"givenName": "John", "familyName": "Doe"},
              "tags": ["example", "sample"], "content": "This will be unchanged"}
    body = {"title": "Hello!", "phoneNumber": "+01-123-456-7890", "author": {"familyName": None}, "tags": ["example"]}
    assert patch.merge(target, body) == {"title": "Hello!", "author": {"givenName": "John"}, "tags": ["example"],
                                         "content": "This will be unchanged", "phoneNumber": "+01-123-456-7890"}


@pytest.mark.parametrize(("original", "body", "result"), [
    ({"a": "b"}, {"a": "c"}, {"a": "c"}),
    ({"a": "b"}, {"b": "c"}, {"a": "b", "b": "c"}),
    ({"a": "b"}, {"a": None}, {}),
    ({"a": "b", "b": "c"}, {"a": None}, {"b": "c"}),
    ({"a": ["b"]}, {"a": "c"}, {"a": "c"}),
    ({"a": "c"}, {"a": ["b"]}, {"a": ["b"]}),
    ({"a": {"b": "c"}}, {"a": {"b": "d", "c": None}}, {"a": {"b": "d"}}),
    ({"a": [{"b": "c"}]}, {"a": [1]}, {"a": [1]}),
    (["a", "b"], ["c", "d"], ["c", "d"]),
    ({"a": "b"}, ["c"], ["c"]),
    ({"a": "foo"}, None, None),
    ({"a": "foo"}, "bar", "bar"),
    ({"e": None}, {"a": 1}, {"e": None, "a": 1}),
    ([1, 2], {"a": "b", "c": None}, {"a": "b"}),
    ({}, {"a": {"bb": {"ccc": None}}}, {"a": {"bb": {}}}),
])
def test_merge_patch_rfc7386_appendix_a(original, body, result):
    assert patch.merge(original, body) == result


def test_merge_patch_of_a_pod_replaces_lists_whole_unlike_a_strategic_one():
    result = patch.apply(MERGE, copy.deepcopy(POD), {"spec": {"containers": [{"name": "b", "image": "b:2"}]}}, "Pod")
    assert containers(result) == [("b", "b:2")]


def test_json_patch_applies_operations_and_refuses_a_failed_test():
    result = patch.apply(JSON_PATCH, copy.deepcopy(POD), [
        {"op": "replace", "path": "/metadata/labels/app", "value": "z"},
        {"op": "add", "path": "/spec/containers/-", "value": {"name": "c", "image": "c:1"}},
        {"op": "remove", "path": "/spec/nodeSelector"}], "Pod")
    assert result["metadata"]["labels"]["app"] == "z"
    assert containers(result)[-1] == ("c", "c:1")
    assert "nodeSelector" not in result["spec"]
    with pytest.raises(InvalidArgument):
        patch.apply(JSON_PATCH, copy.deepcopy(POD), [{"op": "test", "path": "/spec/restartPolicy", "value": "Never"}],
                    "Pod")
    with pytest.raises(InvalidArgument):
        patch.apply(JSON_PATCH, copy.deepcopy(POD), {"op": "remove"}, "Pod")


@pytest.mark.parametrize("content_type", ["application/apply-patch+yaml", "application/json", "text/plain", ""])
def test_other_patch_content_types_are_415_unsupported_media_type(content_type):
    with pytest.raises(InvalidArgument) as caught:
        patch.apply(content_type, copy.deepcopy(POD), {"metadata": {}}, "Pod")
    body = status.of_error(caught.value)
    assert (body["reason"], body["code"]) == ("UnsupportedMediaType", 415)


def test_patch_content_type_parameters_are_ignored():
    result = patch.apply(MERGE + "; charset=utf-8", copy.deepcopy(POD), {"metadata": {"labels": {"x": "1"}}}, "Pod")
    assert result["metadata"]["labels"]["x"] == "1"


# Field selectors (the fields pkg/registry/core/*/strategy.go offers)

PODS = [
    {"metadata": {"name": "a", "namespace": "web"}, "spec": {"nodeName": "n1", "restartPolicy": "Always"},
     "status": {"phase": "Running", "podIP": "10.0.0.2"}},
    {"metadata": {"name": "b", "namespace": "web"}, "spec": {"nodeName": "n2"}, "status": {"phase": "Failed"}},
    {"metadata": {"name": "c", "namespace": "db"}, "spec": {}, "status": {"phase": "Pending"}},
]


def selected(selector: str, kind: str = "pods", items: list[dict[str, Any]] = PODS) -> list[str]:
    """The names of the items a field selector keeps."""
    matches = fields.parse(selector, kind)
    return [i["metadata"]["name"] for i in items if matches(i)]


@pytest.mark.parametrize(("selector", "names"), [
    ("", ["a", "b", "c"]),
    ("spec.nodeName=n1", ["a"]),
    ("spec.nodeName==n1", ["a"]),
    ("spec.nodeName!=n1", ["b", "c"]),
    ("spec.nodeName=", ["c"]),  # an unscheduled pod: kubectl's --field-selector spec.nodeName=
    ("status.phase!=Failed,status.phase!=Succeeded", ["a", "c"]),
    ("metadata.namespace=web,status.phase=Running", ["a"]),
    ("metadata.name=b", ["b"]),
    ("status.podIP=10.0.0.2", ["a"]),
])
def test_field_selector_terms_are_anded(selector, names):
    assert selected(selector) == names


def test_field_selector_on_nodes_reads_an_absent_unschedulable_as_false():
    nodes = [{"metadata": {"name": "n1"}, "spec": {}}, {"metadata": {"name": "n2"}, "spec": {"unschedulable": True}}]
    assert selected("spec.unschedulable=false", "nodes", nodes) == ["n1"]
    assert selected("spec.unschedulable=true", "nodes", nodes) == ["n2"]


def test_field_selector_on_events_by_involved_object():
    events = [{"metadata": {"name": "e1"}, "involvedObject": {"kind": "Pod", "name": "a", "uid": "u1"},
               "type": "Normal", "reason": "Scheduled", "source": {"component": "default-scheduler"}},
              {"metadata": {"name": "e2"}, "involvedObject": {"kind": "Node", "name": "n1"}, "type": "Warning",
               "reason": "NodeNotReady", "source": {"component": "node-controller"}}]
    assert selected("involvedObject.kind=Pod,involvedObject.name=a", "events", events) == ["e1"]
    assert selected("involvedObject.uid=u1", "events", events) == ["e1"]
    assert selected("type=Warning", "events", events) == ["e2"]
    assert selected("source=default-scheduler", "events", events) == ["e1"]


@pytest.mark.parametrize(("selector", "kind", "message"), [
    ("spec.foo=x", "pods", "field label not supported: spec.foo"),
    ("spec.nodeName=n1", "services", "field label not supported: spec.nodeName"),
    ("metadata.labels=x", "namespaces", "field label not supported: metadata.labels"),
    ("spec.nodeName", "pods", "invalid field selector"),
    ("status.phase~Running", "pods", "invalid field selector"),
])
def test_field_selector_refusals_name_the_term(selector, kind, message):
    with pytest.raises(InvalidArgument, match=message):
        fields.parse(selector, kind)


def test_a_refused_field_selector_is_400_bad_request():
    # The API server answers a selector it cannot use with 400 BadRequest ("Error from server (BadRequest):
    # ... field label not supported: spec.foo", kubernetes/kubernetes#10515), not 422 Invalid (an object's fields).
    with pytest.raises(InvalidArgument) as caught:
        fields.parse("spec.foo=x", "pods")
    body = status.of_error(caught.value, "pods")
    assert (body["reason"], body["code"]) == ("BadRequest", 400), (
        "BUG kube/status.py of_error(): an INVALID_ARGUMENT whose details name a query parameter (field "
        f"'fieldSelector') becomes 422 Invalid; Kubernetes answers 400 BadRequest; got {body['reason']} {body['code']}")


def test_a_field_selector_longer_than_the_limit_is_refused():
    long = "metadata.name=" + "a" * fields.MAX_LENGTH
    with pytest.raises(InvalidArgument, match="longer than"):
        fields.parse(long, "pods")


# Unknown fields: refused by name rather than dropped

def test_unknown_fields_are_named_by_their_path():
    pod = copy.deepcopy(POD)
    pod["spec"]["volumes"] = [{"name": "v", "emptyDir": {}}]
    pod["spec"]["containers"][1]["livenessProbe"] = {"exec": {"command": ["true"]}}
    pod["spec"]["containers"][0]["env"][0]["valueFrom"] = {"fieldRef": {}}
    pod["metadata"]["ownerReferences"] = []
    pod["metadata"]["labels"]["any.example.com/key"] = "v"  # a map's keys are data, never unknown
    found = schema.unknown_fields(pod, schema.kind_schema("Pod"))
    assert sorted(found) == sorted(["spec.volumes", "spec.containers[1].livenessProbe",
                                    "spec.containers[0].env[0].valueFrom", "metadata.ownerReferences"])
    assert schema.unknown_fields(POD, schema.kind_schema("Pod")) == []


def test_unknown_fields_of_a_service():
    service = {"apiVersion": "v1", "kind": "Service", "metadata": {"name": "s"},
               "spec": {"type": "NodePort", "ports": [{"port": 80, "appProtocol": "http"}], "sessionAffinity": "None"}}
    assert sorted(schema.unknown_fields(service, schema.kind_schema("Service"))) == [
        "spec.ports[0].appProtocol", "spec.sessionAffinity"]


# kubectl's ages: k8s.io/apimachinery/pkg/util/duration.HumanDuration

NOW = 1_800_000_000.0


def rfc3339(epoch: float) -> str:
    """An epoch time as Kubernetes writes it."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


H, D = 3600, 86400


@pytest.mark.parametrize(("seconds", "shown"), [
    (0, "0s"), (1, "1s"), (70, "70s"), (119, "119s"), (120, "2m"), (190, "3m10s"), (599, "9m59s"), (600, "10m"),
    (70 * 60, "70m"), (3 * H - 1, "179m"), (3 * H, "3h"), (3 * H + 5 * 60, "3h5m"), (8 * H - 60, "7h59m"),
    (8 * H, "8h"), (47 * H, "47h"), (48 * H, "2d"), (49 * H, "2d1h"), (8 * D - H, "7d23h"), (8 * D + 2 * H, "8d"),
    (367 * D, "367d"), (730 * D - 1, "729d"), (-1, "0s"),
])
def test_age_is_kubectls_human_duration(seconds, shown):
    assert tables.age(rfc3339(NOW - seconds), NOW) == shown


@pytest.mark.parametrize(("seconds", "shown"), [
    (365 * 2 * D + 25 * H, "2y1d"), (730 * D, "2y"), (3 * 365 * D + 10 * D, "3y10d"), (365 * 8 * D + 2 * H, "8y"),
])
def test_age_in_years_shows_the_days_as_kubectl_does_up_to_eight_years(seconds, shown):
    assert tables.age(rfc3339(NOW - seconds), NOW) == shown, (
        "BUG kube/tables.py age(): HumanDuration writes ages of 2 to 8 years as <years>y<days>d (e.g. 2y1d, 3y10d); "
        f"got {tables.age(rfc3339(NOW - seconds), NOW)!r}")


def test_age_of_a_time_more_than_a_second_ahead_is_invalid_as_kubectl_shows_it():
    assert tables.age(rfc3339(NOW + 5), NOW) == "<invalid>", (
        "BUG kube/tables.py age(): HumanDuration answers <invalid> for a time 2 s or more in the future (clock "
        f"skew beyond its tolerance); got {tables.age(rfc3339(NOW + 5), NOW)!r}")


def test_age_of_no_time_is_unknown():
    assert tables.age(None, NOW) == "<unknown>"


def test_wants_table_for_the_accept_kubectl_get_sends_only():
    kubectl = ("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
               "application/json")
    assert tables.wants_table(kubectl)
    assert not tables.wants_table("application/json")
    assert not tables.wants_table("application/json, application/json;as=Table;v=v1;g=meta.k8s.io")


# Status objects (k8s.io/apimachinery/pkg/apis/meta/v1 StatusReason, and the codes of pkg/api/errors)

@pytest.mark.parametrize(("error", "reason", "code"), [
    (NotFound('pods "x" not found', {"name": "x"}), "NotFound", 404),
    (AlreadyExists('pods "x" already exists'), "AlreadyExists", 409),
    (Aborted("the object has been modified"), "Conflict", 409),
    (OutOfRange("too old resource version: 1", {"reason": "RESOURCE_VERSION_TOO_OLD"}), "Expired", 410),
    (PermissionDenied("forbidden"), "Forbidden", 403),
    (Unauthenticated("no token"), "Unauthorized", 401),
    (InvalidArgument("bad media", {"reason": "UNSUPPORTED_MEDIA_TYPE"}), "UnsupportedMediaType", 415),
    (InvalidArgument("the body is not JSON", {"field": "body"}), "BadRequest", 400),
    (ResourceExhausted("too many watches"), "TooManyRequests", 429),
])
def test_status_reason_and_code(error: ServiceError, reason: str, code: int):
    body = status.of_error(error, "pods", "x")
    assert (body["kind"], body["apiVersion"], body["status"]) == ("Status", "v1", "Failure")
    assert (body["reason"], body["code"]) == (reason, code)
    assert body["message"] == error.message
    assert body["details"]["name"] == "x"
    assert body["details"]["kind"] == "pods"


def test_status_invalid_is_422_with_the_field_as_a_cause_in_kubernetes_names():
    body = status.of_error(InvalidArgument("restart_policy must be Always, OnFailure or Never",
                                           {"field": "spec.restart_policy"}), "pods", "p")
    assert (body["reason"], body["code"]) == ("Invalid", 422)
    assert body["details"]["causes"] == [{"reason": "FieldValueInvalid", "field": "spec.restartPolicy",
                                          "message": "restart_policy must be Always, OnFailure or Never"}]


def test_status_too_many_requests_says_when_to_retry():
    body = status.of_error(ResourceExhausted("slow down", {"retry_after_seconds": 3}))
    assert body["details"]["retryAfterSeconds"] == 3


def test_an_unauthorized_response_asks_for_a_bearer_token():
    response = status.response(status.of_error(Unauthenticated("no token")))
    assert response.status == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert response.content_type == "application/json"


# The protobuf Namespace (k8s.io/api/core/v1/generated.proto, apimachinery's runtime.Unknown), encoded here

def varint(n: int) -> bytes:
    """A protobuf base-128 varint."""
    out = bytearray()
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(number: int, value: bytes | str) -> bytes:
    """A length-delimited field (wire type 2)."""
    data = value.encode() if isinstance(value, str) else value
    return varint(number << 3 | 2) + varint(len(data)) + data


def entry(number: int, key: str, value: str) -> bytes:
    """One map<string, string> entry."""
    return field(number, field(1, key) + field(2, value))


def envelope(obj: bytes, kind: str = "Namespace") -> bytes:
    """What kubectl sends: the magic, then runtime.Unknown{typeMeta{apiVersion, kind}, raw, "", ""}."""
    unknown = field(1, field(1, "v1") + field(2, kind)) + field(2, obj) + field(3, "") + field(4, "")
    return b"k8s\x00" + unknown


def namespace(meta: bytes) -> bytes:
    """Namespace{metadata, spec{}, status{}}."""
    return field(1, meta) + field(2, b"") + field(3, b"")


def test_protobuf_namespace_as_kubectl_create_namespace_sends_it():
    # ObjectMeta as Go writes it: name, then the empty plain fields, labels (11) and annotations (12).
    meta = (field(1, "team-a") + field(2, "") + field(3, "") + field(4, "") + field(5, "") + field(6, "")
            + varint(7 << 3) + varint(0) + field(8, b"") + entry(11, "env", "prod") + entry(11, "tier", "web")
            + entry(12, "note", "hello"))
    decoded = protobuf.decode(envelope(namespace(meta)), "Namespace")
    assert decoded["kind"] == "Namespace" and decoded["apiVersion"] == "v1"
    assert decoded["metadata"]["name"] == "team-a"
    assert decoded["metadata"]["labels"] == {"env": "prod", "tier": "web"}
    assert decoded["metadata"]["annotations"] == {"note": "hello"}


def test_protobuf_field_the_module_does_not_keep_is_refused_by_number():
    meta = field(1, "team-a") + field(13, field(1, "v1"))  # ObjectMeta.ownerReferences
    with pytest.raises(InvalidArgument, match="13") as caught:
        protobuf.decode(envelope(namespace(meta)), "Namespace")
    assert status.of_error(caught.value)["code"] == 400


def test_protobuf_generate_name_is_refused():
    with pytest.raises(InvalidArgument, match="generateName"):
        protobuf.decode(envelope(namespace(field(2, "team-"))), "Namespace")


def test_protobuf_other_kinds_are_415_and_garbage_is_400():
    with pytest.raises(InvalidArgument) as caught:
        protobuf.decode(envelope(field(1, field(1, "p")), "Pod"), "Pod")
    assert status.of_error(caught.value)["code"] == 415
    with pytest.raises(InvalidArgument, match="magic"):
        protobuf.decode(namespace(field(1, "x")), "Namespace")
    with pytest.raises(InvalidArgument) as caught:
        protobuf.decode(b"k8s\x00" + b"\x0a\xff\xff\xff", "Namespace")
    assert status.of_error(caught.value)["code"] == 400
