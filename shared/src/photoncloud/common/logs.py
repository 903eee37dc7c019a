"""Logging with the current request ID in every record: JSON lines (for files, containers and log
collectors), or one readable line per record for a person at a terminal."""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from typing import TextIO

from . import envelope, request_id

# One encoder for every line (json.dumps with an option builds one per call); what is not JSON is
# written as its text.
_encode = json.JSONEncoder(default=str).encode

JSON, TEXT, AUTO = "json", "text", "auto"
FORMATS = (AUTO, TEXT, JSON)
FORMAT_ENV = "PHOTONCLOUD_LOG_FORMAT"  # what the processes started without a ServerConfig read


class JsonFormatter(logging.Formatter):
    """Formats a record as one JSON object per line."""

    def __init__(self, service: str):
        super().__init__()
        self.service = service

    def format(self, record: logging.LogRecord) -> str:
        line = {
            "ts": envelope.timestamp(record.created),
            "level": record.levelname,
            "service": self.service,
            "logger": record.name,
            "request_id": request_id.current() or None,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if fields:
            line.update(fields)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return _encode(line)


class TextFormatter(logging.Formatter):
    """Formats a record as one line for a person: time, level, message, then its fields as key=value."""

    def format(self, record: logging.LogRecord) -> str:
        clock = time.strftime("%H:%M:%S", time.localtime(record.created))
        parts = [f"{clock}.{int(record.msecs):03d}", f"{record.levelname:<7}", record.getMessage()]
        fields = dict(getattr(record, "fields", None) or {})
        rid = request_id.current()
        if rid:
            fields["request_id"] = rid
        if fields:
            parts.append(" ".join(f"{key}={_text_value(value)}" for key, value in fields.items()))
        line = " ".join(parts)
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


def _text_value(value: object) -> str:
    if not isinstance(value, str):  # numbers, lists, objects: as JSON, which shows where they end
        return _encode(value)
    # A string is quoted only when a reader could not tell where it ends.
    return _encode(value) if not value or any(c.isspace() or c in "\"=" for c in value) else value


def resolve_format(log_format: str, stream: TextIO) -> str:
    """The format auto stands for: text when stream is a terminal, JSON otherwise (files, pipes, containers)."""
    if log_format != AUTO:
        return log_format
    try:
        return TEXT if stream.isatty() else JSON
    except (AttributeError, ValueError):  # a closed or unusual stream
        return JSON


def setup_logging(service: str, level: str = "INFO", log_format: str | None = None) -> None:
    """Send every log record of the process to stderr: JSON lines, or readable text (auto: text on a
    terminal); None: $PHOTONCLOUD_LOG_FORMAT, else auto."""
    handler = logging.StreamHandler(sys.stderr)
    if log_format is None:
        log_format = os.environ.get(FORMAT_ENV, AUTO)
        log_format = log_format if log_format in FORMATS else AUTO
    if log_format not in FORMATS:
        raise ValueError(f"log format {log_format!r} is not one of {', '.join(FORMATS)}")
    text = resolve_format(log_format, sys.stderr) == TEXT
    handler.setFormatter(TextFormatter() if text else JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # What a record would gather and the line never shows: the caller's file and line (a walk up the
    # stack on every record), the thread's and the process's names (the logging HOWTO's "Optimization").
    logging._srcfile = None  # noqa: SLF001 - the switch the HOWTO documents
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
