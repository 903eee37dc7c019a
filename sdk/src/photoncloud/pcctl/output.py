"""How pcctl prints results: `table` for people (aligned columns, or FIELD VALUE lines for one
object), `json` and `yaml` for programs (the result's `data` as the API answered it)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click
import yaml

FORMATS = ("table", "json", "yaml")
# A column: its header and the dotted path of the field it shows ("metadata.name").
Column = tuple[str, str]


def field(item: Any, path: str) -> Any:
    """The value at a dotted path of item (None when a step is missing)."""
    for step in path.split("."):
        if isinstance(item, dict):
            item = item.get(step)
        elif isinstance(item, list) and step.isdigit() and int(step) < len(item):
            item = item[int(step)]
        else:
            return None
    return item


def cell(value: Any) -> str:
    """A value as one table cell."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return ",".join(f"{k}={v}" for k, v in value.items()) if all(
            not isinstance(v, dict | list) for v in value.values()) else json.dumps(value, separators=(",", ":"))
    if isinstance(value, list):
        return ",".join(cell(v) for v in value) if all(not isinstance(v, dict | list) for v in value) \
            else json.dumps(value, separators=(",", ":"))
    return str(value).replace("\n", "\\n")


def table(rows: Sequence[Sequence[str]], headers: Sequence[str]) -> str:
    """Rows under headers, columns aligned and two spaces apart (as kubectl prints them)."""
    widths = [max(len(str(r[i])) for r in [headers, *rows]) for i in range(len(headers))]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(r, widths)).rstrip() for r in [headers, *rows])


def flatten(value: Any, prefix: str = "") -> list[tuple[str, str]]:
    """An object's fields as (dotted name, cell) pairs, nested objects opened up."""
    if isinstance(value, dict) and value and (not prefix or len(value) <= 12):
        return [pair for k, v in value.items() for pair in flatten(v, f"{prefix}.{k}" if prefix else str(k))]
    return [(prefix or "value", cell(value))]


def render(data: Any, fmt: str, columns: Sequence[Column] | None = None) -> str:
    """data in fmt: a list of items as columns (the given ones, or every scalar field), one object as
    FIELD VALUE lines, anything else as it is."""
    if fmt == "json":
        return json.dumps(data, indent=2, ensure_ascii=False)
    if fmt == "yaml":
        return yaml.safe_dump(data, sort_keys=False, allow_unicode=True, default_flow_style=False).rstrip("\n")
    if isinstance(data, list):
        if not data:
            return ""
        cols = list(columns or [(k.upper(), k) for k, v in data[0].items() if not isinstance(v, dict | list)])
        return table([[cell(field(item, path)) for _, path in cols] for item in data], [h for h, _ in cols])
    if isinstance(data, dict):
        pairs = flatten(data)
        return table([list(p) for p in pairs], ["FIELD", "VALUE"]) if pairs else ""
    return cell(data)


def emit(data: Any, fmt: str, columns: Sequence[Column] | None = None) -> None:
    """Print data in fmt on stdout (nothing for an empty table)."""
    text = render(data, fmt, columns)
    if text:
        click.echo(text)
