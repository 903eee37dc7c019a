"""Base classes for the pydantic models that REST bodies and query strings are parsed into."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Body(BaseModel):
    """A JSON request body; unknown fields are refused so that typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class Query(BaseModel):
    """Query-string parameters; unknown ones are refused so that typos do not pass silently."""

    model_config = ConfigDict(extra="forbid")


class Result(BaseModel):
    """A response's `data`, described for the OpenAPI document."""
