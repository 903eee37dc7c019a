"""The three patch types Kubernetes takes on PATCH: JSON patch (RFC 6902, the jsonpatch library),
JSON merge patch (RFC 7386), and the strategic merge patch kubectl apply sends, whose lists with a
merge key (containers by name, ports by number, ...) merge item by item, as schema.py declares."""

from __future__ import annotations

import copy
from typing import Any

import jsonpatch

from photoncloud.common.errors import InvalidArgument

from . import schema

JSON_PATCH = "application/json-patch+json"
MERGE_PATCH = "application/merge-patch+json"
STRATEGIC_MERGE_PATCH = "application/strategic-merge-patch+json"
TYPES = (JSON_PATCH, MERGE_PATCH, STRATEGIC_MERGE_PATCH)
DIRECTIVE = "$patch"
MERGE_KEY = "x-kubernetes-patch-merge-key"
ORDER, DELETE_FROM, RETAIN = "$setElementOrder/", "$deleteFromPrimitiveList/", "$retainKeys"


def apply(content_type: str, current: dict[str, Any], patch: Any, kind: str) -> dict[str, Any]:
    """current (an object as Kubernetes shows it) with patch applied."""
    media = content_type.split(";")[0].strip().lower()
    if media == JSON_PATCH:
        if not isinstance(patch, list):
            raise InvalidArgument("a JSON patch is a list of operations", {"field": "body"})
        try:
            result = jsonpatch.apply_patch(current, patch)
        except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, TypeError, KeyError) as exc:
            raise InvalidArgument(f"the JSON patch does not apply: {exc}", {"field": "body"}) from None
    elif media in (MERGE_PATCH, STRATEGIC_MERGE_PATCH):
        if not isinstance(patch, dict):
            raise InvalidArgument("a merge patch is a JSON object", {"field": "body"})
        result = merge(current, patch) if media == MERGE_PATCH else strategic(current, patch,
                                                                              schema.kind_schema(kind))
    else:
        raise InvalidArgument(f"the body of a PATCH is {', '.join(TYPES)}, not {content_type or 'untyped'} "
                              "(server-side apply is not supported)", {"reason": "UNSUPPORTED_MEDIA_TYPE"})
    if not isinstance(result, dict):
        raise InvalidArgument("the patch does not leave an object", {"field": "body"})
    return result


def merge(target: Any, patch: Any) -> Any:
    """RFC 7386: objects merge key by key, null deletes, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge(result.get(key), value)
    return result


def strategic(target: Any, patch: dict[str, Any], shape: schema.Schema | None) -> Any:
    """Kubernetes' strategic merge patch of an object: as a merge patch, except that lists with a merge
    key merge by it, and the $patch, $retainKeys, $setElementOrder and $deleteFromPrimitiveList directives."""
    directive = patch.get(DIRECTIVE)
    if directive == "delete":
        return None
    if directive == "replace":
        return {k: copy.deepcopy(v) for k, v in patch.items() if k != DIRECTIVE}
    if directive is not None:
        raise InvalidArgument(f"unknown patch directive {directive!r}", {"field": "body"})
    result = dict(target) if isinstance(target, dict) else {}
    retain = patch.get(RETAIN)
    if isinstance(retain, list):
        result = {k: v for k, v in result.items() if k in retain}
    for key, value in patch.items():
        if key == RETAIN or key.startswith(ORDER):
            continue
        if key.startswith(DELETE_FROM):
            name = key[len(DELETE_FROM):]
            if isinstance(result.get(name), list) and isinstance(value, list):
                result[name] = [v for v in result[name] if v not in value]
            continue
        inner = schema.field(shape, key) if shape is not None else None
        if value is None:
            result.pop(key, None)
        elif isinstance(value, dict):  # a structure or a map (labels, quantities): merged key by key alike
            merged = strategic(result.get(key), value, inner)
            if merged is None:
                result.pop(key, None)
            else:
                result[key] = merged
        elif isinstance(value, list) and inner is not None and schema.resolve(inner).get(MERGE_KEY):
            result[key] = _merge_list(result.get(key) or [], value, inner)
        else:
            result[key] = copy.deepcopy(value)
    for key, order in patch.items():
        if key.startswith(ORDER) and isinstance(order, list) and isinstance(result.get(key[len(ORDER):]), list):
            listed = schema.field(shape, key[len(ORDER):]) if shape is not None else None
            result[key[len(ORDER):]] = _ordered(result[key[len(ORDER):]], order, schema.resolve(listed or {}))
    return result


def _merge_list(current: list[Any], patch: list[Any], shape: schema.Schema) -> list[Any]:
    shape = schema.resolve(shape)
    key = shape[MERGE_KEY]
    items = schema.resolve(shape["items"])
    if any(isinstance(p, dict) and p.get(DIRECTIVE) == "replace" for p in patch):
        return [copy.deepcopy(p) for p in patch if not (isinstance(p, dict) and DIRECTIVE in p)]
    result = [copy.deepcopy(c) for c in current]
    for item in patch:
        if not isinstance(item, dict) or key not in item:
            raise InvalidArgument(f"every item of a merged list needs its merge key {key!r}", {"field": "body"})
        at = next((i for i, c in enumerate(result) if isinstance(c, dict) and c.get(key) == item[key]), None)
        if item.get(DIRECTIVE) == "delete":
            if at is not None:
                del result[at]
        elif at is None:
            result.append(strategic({}, item, items))
        else:
            result[at] = strategic(result[at], item, items)
    return result


def _ordered(items: list[Any], order: list[Any], shape: schema.Schema) -> list[Any]:
    """items in the order $setElementOrder gives (by merge key), the ones it does not name after them."""
    key = shape.get(MERGE_KEY)

    def position(item: Any) -> int:
        wanted = item.get(key) if key and isinstance(item, dict) else item
        for i, o in enumerate(order):
            if (o.get(key) if key and isinstance(o, dict) else o) == wanted:
                return i
        return len(order)

    return sorted(items, key=position)
