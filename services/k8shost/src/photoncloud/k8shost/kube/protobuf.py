"""Kubernetes' protobuf encoding of a Namespace, which kubectl's typed commands (`kubectl create namespace`)
send instead of JSON: the `k8s\\x00` magic, a runtime.Unknown envelope, and the object in it.

The messages are declared here with the field numbers of k8s.io/api's generated.proto, for what a
Namespace carries; a field not declared here is refused by its number (strict, as JSON's unknown fields are)."""

from __future__ import annotations

from functools import cache
from typing import Any

from google.protobuf import descriptor_pb2, descriptor_pool, message_factory
from google.protobuf.message import DecodeError, Message
from google.protobuf.unknown_fields import UnknownFieldSet

from photoncloud.common.errors import InvalidArgument

MEDIA_TYPE = "application/vnd.kubernetes.protobuf"
MAGIC = b"k8s\x00"
PACKAGE = "photoncloud.k8shost.kube.wire"
_F = descriptor_pb2.FieldDescriptorProto
_STRING, _BYTES, _MESSAGE, _INT64, _INT32 = _F.TYPE_STRING, _F.TYPE_BYTES, _F.TYPE_MESSAGE, _F.TYPE_INT64, _F.TYPE_INT32
_OPTIONAL, _REPEATED = _F.LABEL_OPTIONAL, _F.LABEL_REPEATED

# name: [(field, number, type, repeated, message type)], as k8s.io/api and apimachinery number them.
MESSAGES: dict[str, list[tuple[str, int, int, bool, str]]] = {
    "TypeMeta": [("apiVersion", 1, _STRING, False, ""), ("kind", 2, _STRING, False, "")],
    "Unknown": [("typeMeta", 1, _MESSAGE, False, "TypeMeta"), ("raw", 2, _BYTES, False, ""),
                ("contentEncoding", 3, _STRING, False, ""), ("contentType", 4, _STRING, False, "")],
    "Time": [("seconds", 1, _INT64, False, ""), ("nanos", 2, _INT32, False, "")],
    # Go's encoder writes every plain field, empty or not: those a request carries empty are declared too.
    "ObjectMeta": [("name", 1, _STRING, False, ""), ("generateName", 2, _STRING, False, ""),
                   ("namespace", 3, _STRING, False, ""), ("selfLink", 4, _STRING, False, ""),
                   ("uid", 5, _STRING, False, ""), ("resourceVersion", 6, _STRING, False, ""),
                   ("generation", 7, _INT64, False, ""), ("creationTimestamp", 8, _MESSAGE, False, "Time"),
                   ("labels", 11, _MESSAGE, True, "ObjectMeta.LabelsEntry"),
                   ("annotations", 12, _MESSAGE, True, "ObjectMeta.AnnotationsEntry")],
    "NamespaceSpec": [],
    "NamespaceStatus": [("phase", 1, _STRING, False, "")],
    "Namespace": [("metadata", 1, _MESSAGE, False, "ObjectMeta"), ("spec", 2, _MESSAGE, False, "NamespaceSpec"),
                  ("status", 3, _MESSAGE, False, "NamespaceStatus")],
}


@cache
def _classes() -> dict[str, type[Message]]:
    file = descriptor_pb2.FileDescriptorProto(name="photoncloud_k8shost_kube_wire.proto", package=PACKAGE,
                                              syntax="proto2")
    for name, fields in MESSAGES.items():
        message = file.message_type.add(name=name)
        for field_name, number, kind, repeated, type_name in fields:
            field = message.field.add(name=field_name, number=number, type=kind,
                                      label=_REPEATED if repeated else _OPTIONAL, json_name=field_name)
            if type_name:
                field.type_name = f".{PACKAGE}.{type_name}"
        if name == "ObjectMeta":
            for entry in ("LabelsEntry", "AnnotationsEntry"):
                nested = message.nested_type.add(name=entry)
                nested.options.map_entry = True
                nested.field.add(name="key", number=1, type=_STRING, label=_OPTIONAL, json_name="key")
                nested.field.add(name="value", number=2, type=_STRING, label=_OPTIONAL, json_name="value")
    pool = descriptor_pool.DescriptorPool()
    pool.Add(file)
    return {name: message_factory.GetMessageClass(pool.FindMessageTypeByName(f"{PACKAGE}.{name}"))
            for name in MESSAGES}


def _unknown(message: Message, path: str) -> list[str]:
    unknown = UnknownFieldSet(message)
    found = [f"{path}#{unknown[i].field_number}" for i in range(len(unknown))]
    for descriptor, value in message.ListFields():
        if descriptor.message_type is not None and not descriptor.message_type.GetOptions().map_entry:
            for item in ([value] if isinstance(value, Message) else value):
                found.extend(_unknown(item, f"{path}.{descriptor.name}" if path else descriptor.name))
    return found


def decode(body: bytes, kind: str) -> dict[str, Any]:
    """A protobuf-encoded object as the JSON form (INVALID_ARGUMENT when it is not one this module reads)."""
    classes = _classes()
    if not body.startswith(MAGIC):
        raise InvalidArgument("a protobuf body starts with the k8s\\x00 magic", {"field": "body"})
    try:
        envelope = classes["Unknown"].FromString(body[len(MAGIC):])
        type_meta = envelope.typeMeta  # type: ignore[attr-defined]
        if type_meta.kind != kind or kind not in classes:
            raise InvalidArgument(f"k8shost reads {MEDIA_TYPE} bodies of Namespaces only; send "
                                  f"{type_meta.kind or kind} as application/json", {"reason": "UNSUPPORTED_MEDIA_TYPE"})
        obj = classes[kind].FromString(envelope.raw)  # type: ignore[attr-defined]
    except DecodeError as exc:
        raise InvalidArgument(f"the protobuf body cannot be decoded: {exc}", {"field": "body"}) from None
    unknown = _unknown(obj, "")
    if unknown:
        raise InvalidArgument(f"strict decoding error: unknown protobuf fields {', '.join(unknown)} (k8shost does not "
                              "keep these fields)", {"field": "body", "unknown_fields": unknown})
    meta = obj.metadata  # type: ignore[attr-defined]
    if meta.generateName:
        raise InvalidArgument("metadata.generateName is not supported: give metadata.name",
                              {"field": "metadata.generateName"})
    data: dict[str, Any] = {"apiVersion": type_meta.apiVersion or "v1", "kind": kind,
                            "metadata": {"name": meta.name, "labels": dict(meta.labels),
                                         "annotations": dict(meta.annotations)}}
    if meta.namespace:
        data["metadata"]["namespace"] = meta.namespace
    return data
