"""The readable log mode for terminals: text lines there, JSON lines everywhere else (files, containers)."""

from __future__ import annotations

import io
import json
import logging
import re
import sys

import pytest

from photoncloud.common import logs, request_id
from photoncloud.common.config import load_config
from photoncloud.common.logs import JsonFormatter, TextFormatter, resolve_format, setup_logging


class Terminal(io.StringIO):
    """A stream that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def record(message: str, fields: dict | None = None, level: int = logging.INFO) -> logging.LogRecord:
    """A log record as a logger makes it (with the service's structured fields)."""
    made = logging.LogRecord("photoncloud.test", level, __file__, 1, message, (), None)
    if fields is not None:
        made.fields = fields  # type: ignore[attr-defined]
    return made


def test_a_text_line_has_time_level_message_fields_and_request_id():
    token = request_id.bind("rid-42")
    try:
        line = TextFormatter().format(record("GET /health 200", {"status": 200, "route": "/health",
                                                                 "note": "two words", "extra": {"a": 1}}))
    finally:
        request_id.reset(token)
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} INFO    GET /health 200 status=200 route=/health "
                        r'note="two words" extra=\{"a": 1\} request_id=rid-42', line), line
    assert "{" not in line.split("extra=")[0]  # not a JSON object


def test_a_text_line_carries_the_exception_below_it():
    try:
        raise ValueError("bad thing")
    except ValueError:
        failed = record("it failed", level=logging.ERROR)
        failed.exc_info = sys.exc_info()
    first, *rest = TextFormatter().format(failed).splitlines()
    assert first.endswith("ERROR   it failed")
    assert rest[-1] == "ValueError: bad thing"


def test_auto_is_text_on_a_terminal_and_json_elsewhere():
    assert resolve_format("auto", Terminal()) == "text"
    assert resolve_format("auto", io.StringIO()) == "json"
    assert resolve_format("json", Terminal()) == "json"
    assert resolve_format("text", io.StringIO()) == "text"


@pytest.fixture
def root_logging():
    """Restores the root logger's handlers and level after setup_logging replaced them."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level
    yield
    root.handlers[:], level = saved
    root.setLevel(level)


def test_setup_logging_writes_text_to_a_terminal_and_json_to_a_pipe(monkeypatch, root_logging):
    terminal = Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    setup_logging("chainfire", "INFO", "auto")
    logging.getLogger("photoncloud.test").info("hello %s", "there")
    assert re.fullmatch(r"\d\d:\d\d:\d\d\.\d{3} INFO    hello there\n", terminal.getvalue())

    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    setup_logging("chainfire", "INFO", "auto")
    logging.getLogger("photoncloud.test").info("hello")
    line = json.loads(pipe.getvalue())
    assert line["message"] == "hello" and line["service"] == "chainfire"


def test_setup_logging_reads_the_platform_wide_variable(monkeypatch, root_logging):
    monkeypatch.setenv(logs.FORMAT_ENV, "text")
    pipe = io.StringIO()
    monkeypatch.setattr(sys, "stderr", pipe)
    setup_logging("k8shost-agent")
    assert isinstance(logging.getLogger().handlers[0].formatter, TextFormatter)
    monkeypatch.setenv(logs.FORMAT_ENV, "json")
    setup_logging("k8shost-agent")
    assert isinstance(logging.getLogger().handlers[0].formatter, JsonFormatter)


def test_the_flag_and_the_variables_choose_the_format():
    assert load_config("iam", 8083, [], environ={}).log_format == "auto"
    assert load_config("iam", 8083, ["--log-format", "text"], environ={}).log_format == "text"
    assert load_config("iam", 8083, [], environ={"PHOTONCLOUD_LOG_FORMAT": "json"}).log_format == "json"
    # The service's own variable wins over the platform's, and the flag over both.
    env = {"PHOTONCLOUD_LOG_FORMAT": "json", "IAM_LOG_FORMAT": "text"}
    assert load_config("iam", 8083, [], environ=env).log_format == "text"
    assert load_config("iam", 8083, ["--log-format", "json"], environ=env).log_format == "json"


def test_an_unknown_format_is_refused_with_the_choices(capsys):
    with pytest.raises(SystemExit) as exited:
        load_config("iam", 8083, [], environ={"PHOTONCLOUD_LOG_FORMAT": "pretty"})
    assert exited.value.code == 2
    assert "'pretty' is not one of auto, text, json" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        load_config("iam", 8083, ["--log-format", "pretty"], environ={})
