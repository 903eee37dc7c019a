"""Kubernetes resource quantities: CPU in millicores ("250m", "0.5", "2"), memory in bytes
("64Mi", "1G", "128974848", "1e6")."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation

from photoncloud.common.errors import InvalidArgument

_SUFFIX: dict[str, int | Decimal] = {"": 1, "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12, "P": 10**15, "E": 10**18,
           "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60, "m": Decimal("0.001")}
_QUANTITY = re.compile(r"^([+]?[0-9.]+(?:[eE][+-]?[0-9]+)?)(Ki|Mi|Gi|Ti|Pi|Ei|k|M|G|T|P|E|m)?$")


def _parse(value: str, field: str) -> Decimal:
    match = _QUANTITY.match(value.strip())
    try:
        if match is None:
            raise InvalidOperation
        number = Decimal(match.group(1)) * _SUFFIX[match.group(2) or ""]
    except InvalidOperation:
        raise InvalidArgument(f"{field} {value!r} is not a quantity (e.g. 250m, 0.5, 64Mi, 1G)",
                              {"field": field}) from None
    if number < 0:
        raise InvalidArgument(f"{field} must not be negative", {"field": field})
    return number


def millicores(value: str, field: str = "cpu") -> int:
    """A CPU quantity in millicores (rounded up, as Kubernetes does)."""
    return int((_parse(value, field) * 1000).to_integral_value(rounding="ROUND_CEILING"))


def bytes_of(value: str, field: str = "memory") -> int:
    """A memory quantity in bytes (rounded up)."""
    return int(_parse(value, field).to_integral_value(rounding="ROUND_CEILING"))


def count(value: str, field: str = "pods") -> int:
    """A plain count (e.g. how many pods a node takes)."""
    return int(_parse(value, field))
