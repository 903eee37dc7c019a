"""The REST guide's examples, run: every curl command of docs/api/rest-api-guide.md, in order, against
a real ChainFire, must print what the guide shows; and every route must have an example.

The guide's conventions: each ```sh block holds one curl command and is followed by a ```json (or
```text) block with its output. In JSON, the string "..." matches any value, a `"...": "..."`
member allows further members and a final "..." item further items; `meta` may be left out. In
text, the lines shown must all be printed, `...` lines aside.
"""

from __future__ import annotations

import json
import re
import shlex
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from photoncloud.chainfire import rest_api
from photoncloud.common.errors import Code
from photoncloud.common.testing import ServiceProcess

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "api" / "rest-api-guide.md"
DOC_HOST = "localhost:8081"
ANY = "..."
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# Served by the runner next to ChainFire's own routes.
OPERATIONS_ROUTES = [("GET", "/health"), ("GET", "/metrics"), ("GET", "/api/v1/openapi.json")]


@dataclass(frozen=True)
class Example:
    line: int
    command: str
    kind: str  # "json" or "text"
    expected: str

    @property
    def argv(self) -> list[str]:
        return shlex.split(self.command)

    @property
    def method(self) -> str:
        argv = self.argv
        for flag in ("-X", "--request"):
            if flag in argv:
                return argv[argv.index(flag) + 1]
        return "POST" if "-d" in argv else "GET"

    @property
    def path(self) -> str:
        url = next(arg for arg in self.argv if DOC_HOST in arg)
        return urlsplit(f"http://{url.split('://')[-1]}").path


def guide_examples() -> list[Example]:
    """Each ```sh block of the guide with the output block right after it."""
    text = GUIDE.read_text()
    blocks = list(FENCE.finditer(text))
    examples = []
    for block, following in zip(blocks, [*blocks[1:], None]):
        if block.group(1) != "sh":
            continue
        line = text.count("\n", 0, block.start()) + 1
        assert following is not None and following.group(1) in ("json", "text") \
            and not text[block.end():following.start()].strip(), \
            f"guide line {line}: a ```sh block must be followed at once by a ```json or ```text block"
        command = block.group(2).strip()
        argv = shlex.split(command)
        assert argv[0] == "curl" and sum(DOC_HOST in arg for arg in argv) == 1, \
            f"guide line {line}: an example is one curl command against {DOC_HOST}"
        examples.append(Example(line, command, following.group(1), following.group(2)))
    return examples


def matches(expected: Any, actual: Any) -> bool:
    """actual is what expected documents, "..." standing for what varies."""
    if expected == ANY:
        return True
    if isinstance(expected, dict):
        keys = expected.keys() - {ANY}
        more = expected.get(ANY) == ANY
        return (isinstance(actual, dict) and keys <= actual.keys() and (more or keys == actual.keys())
                and all(matches(expected[key], actual[key]) for key in keys))
    if isinstance(expected, list):
        more = bool(expected) and expected[-1] == ANY
        head = expected[:-1] if more else expected
        return (isinstance(actual, list) and (len(actual) >= len(head) if more else len(actual) == len(head))
                and all(matches(e, a) for e, a in zip(head, actual)))
    return type(expected) is type(actual) and expected == actual


def check(example: Example, body: str, status: int) -> None:
    where = f"guide line {example.line}: {example.command}"
    if example.kind == "text":
        missing = set(example.expected.splitlines()) - set(body.splitlines()) - {ANY}
        assert not missing, f"{where}\nnot in the output: {sorted(missing)}\noutput:\n{body}"
        assert status == 200, f"{where}\nHTTP {status}"
        return
    expected, actual = json.loads(example.expected), json.loads(body)
    if isinstance(actual, dict) and ("data" in actual or "error" in actual):
        assert set(actual.get("meta", ())) == {"request_id", "timestamp"}, f"{where}\nno meta: {body}"
        if "meta" not in expected:
            del actual["meta"]
    assert matches(expected, actual), f"{where}\nprinted:\n{json.dumps(actual, indent=2)}"
    error = expected.get("error") if isinstance(expected, dict) else None
    want = Code[error["code"]].http_status if error else 200
    assert status == want, f"{where}\nHTTP {status}, expected {want}"


@pytest.fixture
def chainfire(tmp_path):
    """A ChainFire process on free 127.0.0.1 ports over an empty data directory; yields its REST port."""
    service = ServiceProcess("chainfire", tmp_path / "data").start()
    yield service.rest_port
    service.stop()


def test_guide_examples_print_what_the_guide_shows(chainfire):
    curl = shutil.which("curl")
    assert curl, "curl is not installed; the guide's examples are curl commands (apt-get install curl)"
    examples = guide_examples()
    assert examples, f"no examples found in {GUIDE}"
    for example in examples:
        argv = shlex.split(example.command.replace(DOC_HOST, f"127.0.0.1:{chainfire}"))
        result = subprocess.run([curl, *argv[1:], "--noproxy", "*", "--max-time", "30", "-w", "\n%{http_code}"],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, f"guide line {example.line}: curl failed: {result.stderr}"
        body, _, status = result.stdout.rpartition("\n")
        check(example, body, int(status))


def route_pattern(template: str) -> re.Pattern[str]:
    """aiohttp's path template as a regex: {name} is one segment, {name:regex} the regex."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join(
        f"(?:{part[1:-1].partition(':')[2] or '[^/]+'})" if part.startswith("{") else re.escape(part)
        for part in parts
    ))


def test_every_route_has_an_example():
    routes = [(route.method, route.path) for route in rest_api.routes(None).routes] + OPERATIONS_ROUTES
    examples = [(example.method, example.path) for example in guide_examples()]
    missing = [f"{method} {path}" for method, path in routes
               if not any(m == method and route_pattern(path).fullmatch(p) for m, p in examples)]
    assert not missing, f"routes without an example in {GUIDE.name}: {missing}"
