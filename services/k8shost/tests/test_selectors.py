"""Label selectors: a property test of parsing and matching against a small model of Kubernetes'
semantics, and the syntax errors that must be refused."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from photoncloud.common.errors import InvalidArgument
from photoncloud.k8shost import selectors

KEYS = st.sampled_from(["app", "tier", "example.com/team", "v"])
VALUES = st.sampled_from(["web", "db", "a.b", "x_1", "2"])

requirement = st.one_of(
    st.tuples(st.sampled_from(["=", "==", "!="]), KEYS, st.lists(VALUES, min_size=1, max_size=1)),
    st.tuples(st.sampled_from(["in", "notin"]), KEYS, st.lists(VALUES, min_size=1, max_size=3)),
    st.tuples(st.sampled_from(["exists", "!"]), KEYS, st.just([])),
)
labels = st.dictionaries(KEYS, VALUES, max_size=4)


def render(req: tuple[str, str, list[str]], spaced: bool) -> str:
    """A requirement as selector text, with or without spaces."""
    op, key, values = req
    gap = " " if spaced else ""
    if op == "exists":
        return key
    if op == "!":
        return f"!{key}"
    if op in ("in", "notin"):
        return f"{key} {op}{gap}({f',{gap}'.join(values)})"
    return f"{key}{gap}{op}{gap}{values[0]}"


def model(req: tuple[str, str, list[str]], have: dict[str, str]) -> bool:
    """Kubernetes' meaning of one requirement, written out plainly."""
    op, key, values = req
    if op in ("=", "==", "in"):
        return key in have and have[key] in values
    if op in ("!=", "notin"):
        return key not in have or have[key] not in values
    if op == "exists":
        return key in have
    return key not in have


@settings(max_examples=300, deadline=None)
@given(st.lists(requirement, max_size=4), labels, st.booleans())
def test_a_selector_matches_exactly_when_every_requirement_holds(reqs, have, spaced):
    text = ("," + (" " if spaced else "")).join(render(r, spaced) for r in reqs)
    assert selectors.parse(text).matches(have) == all(model(r, have) for r in reqs)


@pytest.mark.parametrize("text", ["a b", "a in x", "a in (x y)", "a in ()", "a,", ",a", "!", "a!b", "a=(",
                                  "=b", "a==b==c", "-a=b", "a=b c", "a in (x", "a notin", "a=" + "v" * 64])
def test_malformed_selectors_are_invalid_arguments(text):
    with pytest.raises(InvalidArgument) as error:
        selectors.parse(text)
    assert error.value.details == {"field": "label_selector"}


def test_empty_values_and_prefixed_keys_are_allowed():
    assert selectors.parse("a=").matches({"a": ""}) and not selectors.parse("a=").matches({})
    assert selectors.parse("example.com/team in (x)").matches({"example.com/team": "x"})
    assert selectors.parse("").matches({"anything": "at all"})
