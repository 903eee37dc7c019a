"""Kubernetes label selectors: parse `a=b,c!=d,e in (x,y),f notin (z),g,!h` and match labels.

The grammar is Kubernetes' (k8s.io/apimachinery labels.Parse): requirements separated by commas,
all of which must hold; `=` and `==` are the same; `!=` and `notin` also match an object without
the key; `key` alone needs the key, `!key` its absence.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from photoncloud.common.errors import InvalidArgument

EQUALS, NOT_EQUALS, IN, NOT_IN, EXISTS, NOT_EXISTS = "=", "!=", "in", "notin", "exists", "!"

_TOKEN = re.compile(r"\s*(==|!=|=|\(|\)|,|!|[A-Za-z0-9][-A-Za-z0-9_./]*|[^\s]+)")
_NAME = re.compile(r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?"
                   r"[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?)?$")


@dataclass(frozen=True)
class Requirement:
    """One condition on one label."""

    key: str
    operator: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy this requirement."""
        present = self.key in labels
        if self.operator in (EQUALS, IN):
            return present and labels[self.key] in self.values
        if self.operator in (NOT_EQUALS, NOT_IN):
            return not present or labels[self.key] not in self.values
        if self.operator == EXISTS:
            return present
        return not present


@dataclass(frozen=True)
class Selector:
    """Requirements that must all hold (none: everything matches)."""

    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        """Whether labels satisfy every requirement."""
        return all(r.matches(labels) for r in self.requirements)


def _fail(text: str, why: str) -> InvalidArgument:
    return InvalidArgument(f"label_selector {text!r}: {why}", {"field": "label_selector"})


def is_label_key(key: str) -> bool:
    """Whether key is a valid label key: an optional DNS-subdomain prefix and a name of 1-63 characters."""
    return len(key) <= 317 and bool(_NAME.match(key)) and len(key.rpartition("/")[2]) <= 63


def is_label_value(value: str) -> bool:
    """Whether value is a valid label value (empty, or up to 63 characters)."""
    return len(value) <= 63 and bool(_VALUE.match(value))


def parse(text: str) -> Selector:
    """The selector text stands for; INVALID_ARGUMENT (field label_selector) if it is malformed."""
    tokens = [t for t in _TOKEN.findall(text)]
    if "".join(tokens).replace(" ", "") != re.sub(r"\s+", "", text):
        raise _fail(text, "unexpected characters")
    position = 0

    def peek() -> str | None:
        return tokens[position] if position < len(tokens) else None

    def take() -> str:
        nonlocal position
        if position >= len(tokens):
            raise _fail(text, "ends too early")
        position += 1
        return tokens[position - 1]

    def key(token: str) -> str:
        if not is_label_key(token):
            raise _fail(text, f"{token!r} is not a label key")
        return token

    def value(token: str) -> str:
        if not is_label_value(token):
            raise _fail(text, f"{token!r} is not a label value")
        return token

    requirements: list[Requirement] = []
    while peek() is not None:
        token = take()
        if token == "!":
            requirements.append(Requirement(key(take()), NOT_EXISTS))
        else:
            name = key(token)
            operator = peek()
            if operator in (None, ","):
                requirements.append(Requirement(name, EXISTS))
            elif operator in ("=", "==", "!="):
                take()
                following = peek()
                given = "" if following in (None, ",") else value(take())
                requirements.append(Requirement(name, NOT_EQUALS if operator == "!=" else EQUALS, (given,)))
            elif operator in ("in", "notin"):
                take()
                if take() != "(":
                    raise _fail(text, f"{operator} needs a parenthesised list")
                values: list[str] = []
                while True:
                    item = take()
                    if item == ")" and not values:
                        break
                    values.append("" if item in (",", ")") else value(item))
                    if item in (",", ")"):
                        if item == ")":
                            break
                        continue
                    closing = take()
                    if closing == ")":
                        break
                    if closing != ",":
                        raise _fail(text, f"expected , or ) after {item!r}")
                if not values:
                    raise _fail(text, f"{operator} needs at least one value")
                requirements.append(Requirement(name, IN if operator == "in" else NOT_IN, tuple(sorted(set(values)))))
            else:
                raise _fail(text, f"unexpected {operator!r} after {name!r}")
        following = peek()
        if following is not None:
            if take() != ",":
                raise _fail(text, "requirements are separated by commas")
            if peek() is None:
                raise _fail(text, "ends with a comma")
    return Selector(tuple(requirements))


def from_labels(labels: Mapping[str, str]) -> Selector:
    """The equality selector a service's selector map stands for (empty: matches nothing there)."""
    return Selector(tuple(Requirement(k, EQUALS, (v,)) for k, v in sorted(labels.items())))
