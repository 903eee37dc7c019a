"""Structured (JSON lines) logging with the current request ID in every record."""

from __future__ import annotations

import json
import logging
import sys

from . import envelope, request_id

# One encoder for every line (json.dumps with an option builds one per call); what is not JSON is
# written as its text.
_encode = json.JSONEncoder(default=str).encode


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


def setup_logging(service: str, level: str = "INFO") -> None:
    """Send every log record of the process to stderr as JSON lines."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter(service))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # What a record would gather and the line never shows: the caller's file and line (a walk up the
    # stack on every record), the thread's and the process's names (the logging HOWTO's "Optimization").
    logging._srcfile = None  # noqa: SLF001 - the switch the HOWTO documents
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
