"""Where pcctl keeps a sign-in: the tokens and the endpoints they came from, in one file only its owner
reads (~/.config/photoncloud/credentials.json, mode 0600, in a 0700 directory)."""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from photoncloud.sdk import Endpoints, Tokens

FILE_NAME = "credentials.json"
LOCK_NAME = ".credentials.lock"  # beside the file: the file itself is replaced whole on every save


def config_dir(environ: Mapping[str, str] | None = None) -> Path:
    """PHOTONCLOUD_CONFIG_DIR, else $XDG_CONFIG_HOME/photoncloud, else ~/.config/photoncloud."""
    env = os.environ if environ is None else environ
    if env.get("PHOTONCLOUD_CONFIG_DIR"):
        return Path(env["PHOTONCLOUD_CONFIG_DIR"])
    base = Path(env["XDG_CONFIG_HOME"]) if env.get("XDG_CONFIG_HOME") else Path.home() / ".config"
    return base / "photoncloud"


class CredentialsError(Exception):
    """The credentials file cannot be read as pcctl writes it."""


class CredentialStore:
    """The credentials file of a config directory."""

    def __init__(self, directory: Path):
        self.directory = directory
        self.path = directory / FILE_NAME

    def load(self) -> dict[str, Any]:
        """What the file holds ({} when there is none)."""
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except ValueError as exc:
            raise CredentialsError(f"{self.path} is not valid JSON ({exc}); sign in again with `pcctl login`") from None
        return data if isinstance(data, dict) else {}

    @contextmanager
    def locked(self) -> Iterator[Tokens | None]:
        """Hold the directory's lock (other pcctl processes wait for it); the tokens stored now."""
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        fd = os.open(self.directory / LOCK_NAME, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield self.tokens()
        finally:
            os.close(fd)  # closing releases the lock

    def tokens(self) -> Tokens | None:
        """The stored tokens, if signed in."""
        data = self.load().get("tokens")
        return Tokens.from_dict(data) if isinstance(data, dict) else None

    def endpoints(self) -> Endpoints | None:
        """The endpoints the stored sign-in was made against (None for a file that cannot be read: the
        defaults then, and the commands that need its tokens say what is wrong)."""
        try:
            data = self.load().get("endpoints")
        except CredentialsError:
            return None
        if not isinstance(data, dict):
            return None
        return Endpoints(str(data.get("base") or ""), dict(data.get("overrides") or {}))

    def save(self, tokens: Tokens | None, endpoints: Endpoints | None = None, **extra: Any) -> None:
        """Replace the tokens (None: forget them), keeping what else the file holds. The file is written
        whole beside the old one with mode 0600, then renamed over it: a reader never sees half of it,
        and the tokens are never readable by others, not even for a moment."""
        try:
            data = self.load()
        except CredentialsError:  # written over: a new sign-in replaces what could not be read
            data = {}
        if tokens is None:
            data.pop("tokens", None)
        else:
            data["tokens"] = tokens.to_dict()
        if endpoints is not None:
            data["endpoints"] = {"base": endpoints.base, "overrides": dict(endpoints.overrides)}
        data.update(extra)
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        temporary = self.directory / f".{FILE_NAME}.{os.getpid()}"
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # O_CREAT's mode is masked by the umask, and a leftover file keeps its own
            with os.fdopen(fd, "w") as f:
                json.dump(data, f, indent=2)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        os.replace(temporary, self.path)
