"""The REST guide, run: docs/api/rest-api-guide.md is one shell session against a fresh platform
(the services of GUIDED), and every ```sh block of it, run in order in one bash process, must print
what the guide shows; and every route of every running service must have an example.

The guide's conventions (also stated at its top):

* The ```sh blocks run, top to bottom, in one `bash` session, so variables set in one block
  (`TOKEN=$(curl ... | jq -r ...)`) are there in the next; `ADMIN_PASSWORD` holds the admin's
  password. `localhost:808x` are the services' default ports (the runner points them at the ports
  the services got), and `http://127.0.0.1:8083` in an output is IAM's default issuer URL (the
  runner expects the test IAM's instead).
* A ```sh block followed at once by a ```json or ```text block is an example: one curl command,
  whose output must be what that block shows, and whose HTTP status must be the one its body
  implies (the route's success status for a result, e.g. 201 for a creation; the status of the
  error code for an error). The runner sees the
  status by adding `-w '\\n%{http_code}'` to the command; the output compared is the body alone.
* Any other ```sh block must print nothing and succeed; a variable it assigns must not end up
  empty or `null` (what `jq -r` prints for a missing field).
* In JSON, the string "..." matches any value, a `"...": "..."` member allows further members and
  a final "..." item further items; `meta` may be left out. In text, the lines shown must all be
  printed, `...` lines aside.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import secrets
import select
import shlex
import subprocess
import sys
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest

from photoncloud.common import needs
from photoncloud.common.errors import Code
from photoncloud.common.gateway import contract_routes
from photoncloud.common.rest import METHOD_NOT_ALLOWED
from photoncloud.common.testing import Platform, start_platform
from photoncloud.k8shost.testing import start_node_agent, stop_node_agent
from photoncloud.plasmavmc.testing import build_initramfs, guest_kernel

ROOT = Path(__file__).resolve().parent.parent
GUIDE = ROOT / "docs" / "api" / "rest-api-guide.md"
ANY = "..."
FENCE = re.compile(r"^```(\w*)\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)
# The services the guide covers, with the default REST port its commands name.
# In starting order: a service starts after those it calls.
GUIDED = {"iam": 8083, "chainfire": 8081, "flaredb": 8082, "creditservice": 8086, "prismnet": 8087,
          "plasmavmc": 8084, "k8shost": 8085}
ISSUER = "http://127.0.0.1:8083"  # IAM's default issuer, which outputs show in URLs and tokens' `iss`


def hand_written(name: str) -> list:
    """The routes a service's REST adapter writes by hand (streams, files), if it has one."""
    try:
        return importlib.import_module(f"photoncloud.{name}.rest_api").routes(None).routes
    except ModuleNotFoundError:
        return []


# host:port -> the routes served there: the hand-written ones and those the contract binds.
ROUTES = {f"localhost:{port}": hand_written(name) + contract_routes(f"photoncloud.{name}.v1").routes
          for name, port in GUIDED.items()}
# Served on every port next to the service's own routes.
OPERATIONS_ROUTES = [("GET", "/health"), ("GET", "/metrics"), ("GET", "/api/v1/openapi.json")]
CONTROL = set(";&|()<>\n")  # characters of the shell's control and redirection operators
ASSIGNMENT = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)=", re.MULTILINE)
STATUS = "-w '\\n%{http_code}'"
BLOCK_SECONDS = 30


def words(script: str) -> list[str]:
    """The shell words of script; each run of operator characters (`|`, `$(`'s parens, a line
    break) is a word of its own."""
    lexer = shlex.shlex(script.replace("\\\n", " "), posix=True, punctuation_chars="".join(sorted(CONTROL)))
    lexer.whitespace = " \t\r"
    lexer.whitespace_split = True
    return list(lexer)


def is_operator(word: str) -> bool:
    return set(word) <= CONTROL


@dataclass(frozen=True)
class Call:
    """One curl command of the guide: which service, which route."""

    host: str
    method: str
    path: str


def curl_calls(script: str, line: int) -> list[Call]:
    """The curl commands of script."""
    calls, found = [], words(script)
    for start, word in enumerate(found):
        if word != "curl":
            continue
        end = next((i for i in range(start + 1, len(found)) if is_operator(found[i])), len(found))
        argv = found[start + 1:end]
        urls = [arg for arg in argv if any(host in arg for host in ROUTES)]
        assert len(urls) == 1, f"guide line {line}: a curl command names one URL on {' or '.join(ROUTES)}"
        url = urlsplit(f"http://{urls[0].split('://')[-1]}")
        method = next((argv[i + 1] for i, arg in enumerate(argv[:-1]) if arg in ("-X", "--request")),
                      "POST" if {"-d", "--data"} & set(argv) else "GET")
        calls.append(Call(url.netloc, method, url.path))
    return calls


@dataclass(frozen=True)
class Block:
    """A ```sh block, with the output block that follows it (kind None: it prints nothing)."""

    line: int
    script: str
    kind: str | None
    expected: str

    @property
    def calls(self) -> list[Call]:
        return curl_calls(self.script, self.line)

    @property
    def where(self) -> str:
        return f"guide line {self.line}:\n{self.script}"


def guide_blocks() -> list[Block]:
    """Every ```sh block of the guide, in order."""
    text = GUIDE.read_text()
    fences = list(FENCE.finditer(text))
    blocks = []
    for fence, following in zip(fences, [*fences[1:], None]):
        if fence.group(1) != "sh":
            continue
        line = text.count("\n", 0, fence.start()) + 1
        script = fence.group(2)
        if following is not None and following.group(1) in ("json", "text") \
                and not text[fence.end():following.start()].strip():
            found = words(script.strip())
            assert found[0] == "curl" and not any(is_operator(w) for w in found), \
                f"guide line {line}: a block with an output is one curl command"
            blocks.append(Block(line, script, following.group(1), following.group(2)))
        else:
            blocks.append(Block(line, script, None, ""))
    return blocks


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


def success_status(block: Block) -> int:
    """The status the route an example calls answers with when it succeeds (200 when unknown)."""
    [call] = block.calls
    for route in ROUTES[call.host]:
        if route.method == call.method and route_pattern(route.path).fullmatch(call.path):
            return route.status
    return 200


def check(block: Block, body: str, status: int) -> None:
    """The output block shows body, and status is the HTTP status it implies."""
    if block.kind == "text":
        missing = set(block.expected.splitlines()) - set(body.splitlines()) - {ANY}
        assert not missing, f"{block.where}\nnot in the output: {sorted(missing)}\noutput:\n{body}"
        assert status == 200, f"{block.where}\nHTTP {status}"
        return
    try:
        expected = json.loads(block.expected)
    except ValueError as exc:
        raise AssertionError(f"guide line {block.line}: the output block is not JSON: {exc}") from None
    try:
        actual = json.loads(body)
    except ValueError:
        raise AssertionError(f"{block.where}\nprinted what is not JSON:\n{body}") from None
    if isinstance(actual, dict) and ("data" in actual or "error" in actual):
        assert set(actual.get("meta", ())) == {"request_id", "timestamp"}, f"{block.where}\nno meta: {body}"
        if "meta" not in expected:
            del actual["meta"]
    assert matches(expected, actual), f"{block.where}\nprinted:\n{json.dumps(actual, indent=2)}"
    error = expected.get("error") if isinstance(expected, dict) else None
    want = Code[error["code"]].http_status if error else success_status(block)
    if error and "allowed_methods" in (actual["error"].get("details") or {}):
        want = METHOD_NOT_ALLOWED  # a method the path lacks: the code table's one exception
    assert status == want, f"{block.where}\nHTTP {status}, expected {want}"


class Shell:
    """One bash process that runs scripts in turn, as a user's terminal would."""

    def __init__(self, env: dict[str, str], cwd: Path):
        self.process = subprocess.Popen(["bash", "--noprofile", "--norc"], stdin=subprocess.PIPE,
                                        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, cwd=cwd)
        self.count = 0
        self.nonce = secrets.token_hex(8)

    def run(self, script: str, variables: list[str], timeout: float = BLOCK_SECONDS) -> tuple[str, int, list[str]]:
        """What script printed (stdout and stderr), its exit status, and which of the shell
        variables named in variables it left empty or `null`."""
        self.count += 1
        marker = f"__END_{self.count}_{self.nonce}__"
        names = " ".join(variables)
        epilogue = (f"printf '\\n{marker} %s' \"$?\"; "
                    f"for v in {names}; do case \"${{!v}}\" in ''|null) printf ' %s' \"$v\";; esac; done; "
                    "printf '\\n'\n") if names else f"printf '\\n{marker} %s\\n' \"$?\"\n"
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(f"{script}\n{epilogue}".encode())
        self.process.stdin.flush()
        done = re.compile(rf"\n{marker} (\d+)((?: \w+)*)\n".encode())
        output, deadline, fd = b"", time.monotonic() + timeout, self.process.stdout.fileno()
        while not (found := done.search(output)):
            left = deadline - time.monotonic()
            assert left > 0, f"the block did not finish in {timeout}s; it printed:\n{output.decode(errors='replace')}"
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 65536)
                assert chunk, f"bash exited; it printed:\n{output.decode(errors='replace')}"
                output += chunk
        assert found.end() == len(output), f"output after the end of the block: {output[found.end():]!r}"
        return output[:found.start()].decode(errors="replace"), int(found.group(1)), found.group(2).decode().split()

    def close(self) -> None:
        if self.process.poll() is None:
            assert self.process.stdin is not None
            self.process.stdin.close()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


def dataplane_command(platform: Platform, root: Path, prefix: str) -> list[str]:
    """PrismNET's dataplane agent for the guide's host, with an operator's token in a file."""
    token_file = root / "dataplane.token"
    with os.fdopen(os.open(token_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
        f.write(platform.admin_token())
    return [sys.executable, "-m", "photoncloud.prismnet.dataplane", "--prismnet-url",
            platform.services["prismnet"].url, "--token-file", str(token_file), "--prefix", prefix,
            "--state-dir", f"/run/photoncloud/guide-{prefix}", "--interval", "0.5"]


@pytest.fixture
def fresh_platform(tmp_path):
    """The guided services as processes on free loopback ports, over empty data directories (the
    guide's outputs are those of a platform nobody used before), a k8shost node agent, and PrismNET's
    dataplane agent with PlasmaVMC's NICs on it (root: bridges and TAPs)."""
    needs.root("the guide's VMs talk through PrismNET's dataplane")  # CI runs the tests as root
    prefix = "g" + secrets.token_hex(2)[:3]
    running = start_platform(tmp_path, *(name for name in GUIDED if name != "iam"),
                             extra_args={"plasmavmc": ("--dataplane-prefix", prefix)})
    command = dataplane_command(running, tmp_path, prefix)
    try:
        agent = start_node_agent(running, tmp_path)
        with open(tmp_path / "dataplane.log", "ab") as log:
            dataplane = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    except BaseException:
        running.stop()
        raise
    try:
        yield running
    finally:
        stop_node_agent(agent)
        stop_node_agent(dataplane)
        running.stop()
        subprocess.run([*command, "--teardown"], capture_output=True, timeout=60)


def test_guide_examples_print_what_the_guide_shows(fresh_platform, tmp_path):
    needs.tools("curl", "jq")  # the guide's examples use them
    blocks = guide_blocks()
    assert any(block.kind for block in blocks), f"no examples found in {GUIDE}"
    processes = {"iam": fresh_platform.iam, **fresh_platform.services}
    ports = {f"localhost:{port}": processes[name].url for name, port in GUIDED.items()}
    home = tmp_path / "home"
    home.mkdir()
    # Only what a user's session needs: no proxy settings, no ~/.curlrc of the machine's user.
    # The VM image's files: a Linux kernel, and an initramfs that powers off on the power button; another whose
    # guest brings its network up by DHCP.
    initrd = build_initramfs(tmp_path / "initrd.cpio", "guest up", power_button=True)
    net_initrd = build_initramfs(tmp_path / "net-initrd.cpio", "guest up", network=True)
    env = {"PATH": os.environ["PATH"], "HOME": str(home), "LANG": "C.UTF-8",
           "ADMIN_PASSWORD": fresh_platform.admin_password, "VM_KERNEL": str(guest_kernel()),
           "VM_INITRD": str(initrd), "VM_NET_INITRD": str(net_initrd)}
    shell = Shell(env, home)
    try:
        for block in blocks:
            script = block.script
            for host, url in ports.items():
                script = script.replace(host, url.removeprefix("http://"))
            if block.kind is None:
                output, status, unset = shell.run(script, ASSIGNMENT.findall(block.script))
                assert status == 0, f"{block.where}\nexited with {status}; printed:\n{output}"
                assert not output, f"{block.where}\nprinted (a block without an output block must not):\n{output}"
                assert not unset, f"{block.where}\nleft empty or null: {unset}"
                continue
            script = script.replace("curl", f"curl {STATUS}", 1)
            output, status, _ = shell.run(script, [])
            assert status == 0, f"{block.where}\ncurl exited with {status}; printed:\n{output}"
            body, _, code = output.rpartition("\n")
            assert code.isdigit(), f"{block.where}\nno HTTP status after the output:\n{output}"
            check(replace(block, expected=block.expected.replace(ISSUER, fresh_platform.iam.url)), body, int(code))
    finally:
        shell.close()


def route_pattern(template: str) -> re.Pattern[str]:
    """aiohttp's path template as a regex: {name} is one segment, {name:regex} the regex."""
    parts = re.split(r"(\{[^}]+\})", template)
    return re.compile("".join(
        f"(?:{part[1:-1].partition(':')[2] or '[^/]+'})" if part.startswith("{") else re.escape(part)
        for part in parts
    ))


def test_every_route_has_an_example():
    calls = [call for block in guide_blocks() for call in block.calls]
    missing = []
    for host, routes in ROUTES.items():
        served = [(route.method, route.path) for route in routes] + OPERATIONS_ROUTES
        missing += [f"{host} {method} {path}" for method, path in served
                    if not any(c.host == host and c.method == method and route_pattern(path).fullmatch(c.path)
                               for c in calls)]
    assert not missing, f"routes without an example in {GUIDE.name}: {missing}"
