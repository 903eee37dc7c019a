"""FlareDB's guards around user SQL: which statements only read, which would differ between
replicas, and what user SQL may touch (SQLite's authorizer).

Replicas apply the same statements to their own copy of each database, so a statement that
reads the clock would leave different rows on each. Such statements are refused before they enter
the log (`clock_use`): the CURRENT_TIME / CURRENT_DATE / CURRENT_TIMESTAMP keywords, a date and time
function called without a time value (which means "now"), and the 'now', 'localtime' and 'utc'
arguments (the last two depend on each machine's time zone). A parameter bound to 'now' cannot be
seen before the statement runs: the date and time functions of the applying connection refuse it
there (`Determinism`). `random()` and `randomblob(n)` are replaced, on the applying connection, by
functions seeded from the log index, so every replica draws the same values.
"""

from __future__ import annotations

import random
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from functools import lru_cache

INTERNAL_PREFIX = "_flaredb_"  # the tables FlareDB keeps in each project's file (KV, applied index)
CLOCK_KEYWORDS = {"CURRENT_TIME", "CURRENT_DATE", "CURRENT_TIMESTAMP"}
TIME_FUNCTIONS = {"date", "time", "datetime", "julianday", "unixepoch", "strftime", "timediff"}
CLOCK_ARGUMENTS = {"now", "localtime", "utc"}
READ_KEYWORDS = {"SELECT", "VALUES", "WITH", "EXPLAIN", "PRAGMA"}
WRITE_KEYWORDS = {"INSERT", "UPDATE", "DELETE", "REPLACE", "CREATE", "DROP", "ALTER"}
# Pragmas user SQL may run: schema information (with a table or index name as argument) ...
INFO_PRAGMAS = {"table_info", "table_xinfo", "index_list", "index_info", "index_xinfo", "foreign_key_list"}
# ... and reads of a setting, without a value (setting one would change one connection only).
READ_PRAGMAS = {"user_version", "schema_version", "page_count", "page_size", "freelist_count", "encoding",
                "foreign_keys", "integrity_check", "quick_check", "foreign_key_check", "collation_list"}
MAX_RANDOMBLOB = 1 << 20

_RECURSIVE = getattr(sqlite3, "SQLITE_RECURSIVE", 33)
_READ_ACTIONS = {sqlite3.SQLITE_SELECT, sqlite3.SQLITE_READ, sqlite3.SQLITE_FUNCTION, _RECURSIVE,
                 sqlite3.SQLITE_PRAGMA}
_TEMP_ACTIONS = {sqlite3.SQLITE_CREATE_TEMP_INDEX, sqlite3.SQLITE_CREATE_TEMP_TABLE,
                 sqlite3.SQLITE_CREATE_TEMP_TRIGGER, sqlite3.SQLITE_CREATE_TEMP_VIEW,
                 sqlite3.SQLITE_DROP_TEMP_INDEX, sqlite3.SQLITE_DROP_TEMP_TABLE,
                 sqlite3.SQLITE_DROP_TEMP_TRIGGER, sqlite3.SQLITE_DROP_TEMP_VIEW}


@dataclass(frozen=True)
class Token:
    """A lexical token of SQL: a bare word, a string literal, a quoted identifier or punctuation."""

    kind: str  # "word", "string", "ident", "number", "param", "punct"
    text: str


def tokens(sql: str) -> Iterator[Token]:
    """The tokens of sql; comments and whitespace are skipped, literals unquoted."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            i = n if end < 0 else end + 1
        elif sql.startswith("/*", i):
            end = sql.find("*/", i + 2)
            i = n if end < 0 else end + 2
        elif c in "'\"`":
            text, i = _quoted(sql, i, c)
            yield Token("string" if c == "'" else "ident", text)
        elif c == "[":
            end = sql.find("]", i + 1)
            end = n if end < 0 else end
            yield Token("ident", sql[i + 1:end])
            i = end + 1
        elif c.isalpha() or c == "_" or ord(c) >= 128:
            start = i
            while i < n and (sql[i].isalnum() or sql[i] in "_$" or ord(sql[i]) >= 128):
                i += 1
            yield Token("word", sql[start:i])
        elif c.isdigit() or (c == "." and i + 1 < n and sql[i + 1].isdigit()):
            start = i
            while i < n and (sql[i].isalnum() or sql[i] == "."):
                i += 1
            yield Token("number", sql[start:i])
        elif c in "?:@$":
            start = i
            i += 1
            while i < n and (sql[i].isalnum() or sql[i] == "_"):
                i += 1
            yield Token("param", sql[start:i])
        else:
            yield Token("punct", c)
            i += 1


def _quoted(sql: str, i: int, quote: str) -> tuple[str, int]:
    """The text of the literal opening at i (a doubled quote stands for one) and the index after it."""
    parts, j, n = [], i + 1, len(sql)
    while j < n:
        if sql[j] == quote:
            if j + 1 < n and sql[j + 1] == quote:
                parts.append(quote)
                j += 2
                continue
            return "".join(parts), j + 1
        parts.append(sql[j])
        j += 1
    return "".join(parts), n


@lru_cache(maxsize=4096)  # clients send the same statement texts again and again, with new parameters
def is_read_only(sql: str) -> bool:
    """Whether the statement only reads: a SELECT, VALUES, EXPLAIN, schema PRAGMA, or a WITH
    that is not followed by a write. (The read path's authorizer refuses any write regardless.)"""
    words = [t.text.upper() for t in tokens(sql) if t.kind == "word"]
    if not words or words[0] not in READ_KEYWORDS:
        return False
    if words[0] == "PRAGMA":
        return "=" not in sql
    return not (words[0] == "WITH" and WRITE_KEYWORDS & set(words))


@dataclass
class _Call:
    """An open parenthesis: the time function it calls (None: another), its commas, whether it has a token."""

    function: str | None
    commas: int = 0
    seen: bool = False


@lru_cache(maxsize=4096)
def clock_use(sql: str) -> str | None:
    """What in sql reads the clock or the local time zone (None: nothing)."""
    found = list(tokens(sql))
    calls: list[_Call] = []  # per open parenthesis
    for i, token in enumerate(found):
        if token.kind == "word" and token.text.upper() in CLOCK_KEYWORDS:
            return token.text.upper()
        if token.kind == "punct" and token.text == "(":
            previous = found[i - 1] if i else None
            name = previous.text.lower() if previous and previous.kind == "word" else ""
            calls.append(_Call(name if name in TIME_FUNCTIONS else None))
            continue
        if token.kind == "punct" and token.text == ")":
            if calls:
                call = calls.pop()
                arguments = call.commas + 1 if call.seen else 0
                if call.function is not None and (arguments == 0 or (call.function == "strftime" and arguments == 1)):
                    return f"{call.function}() without a time value (it means 'now')"
            continue
        if not calls:
            continue
        frame = calls[-1]
        if token.kind == "punct" and token.text == ",":
            frame.commas += 1
            continue
        frame.seen = True
        if frame.function is not None and token.kind == "string" and token.text.strip().lower() in CLOCK_ARGUMENTS:
            return f"{frame.function}() with '{token.text.strip()}'"
    return None


class Authorizer:
    """SQLite authorizer callbacks for user SQL; the reason of the last refusal is kept."""

    def __init__(self) -> None:
        self.reason = ""

    def deny(self, reason: str) -> int:
        """Refuse the statement being prepared, saying why."""
        self.reason = reason
        return sqlite3.SQLITE_DENY

    def write(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        """The authorizer of statements applied from the log."""
        return self._check(action, arg1, arg2, db, writing=True)

    def read(self, action: int, arg1: str | None, arg2: str | None, db: str | None, source: str | None) -> int:
        """The authorizer of read-only requests: anything but reading is refused."""
        if action not in _READ_ACTIONS:
            return self.deny("this statement writes, but it was sent as a read")
        return self._check(action, arg1, arg2, db, writing=False)

    def _check(self, action: int, arg1: str | None, arg2: str | None, db: str | None, writing: bool) -> int:
        if action == sqlite3.SQLITE_FUNCTION:
            name = (arg2 or "").lower()
            if name == "load_extension":
                return self.deny("load_extension() is not allowed")
            if writing and name == "total_changes":
                return self.deny("total_changes() differs between replicas; use changes()")
            return sqlite3.SQLITE_OK
        if action == sqlite3.SQLITE_PRAGMA:
            name = (arg1 or "").lower()
            if name in INFO_PRAGMAS and not _internal(arg2):
                return sqlite3.SQLITE_OK
            if name in READ_PRAGMAS and arg2 is None:
                return sqlite3.SQLITE_OK
            return self.deny(f"PRAGMA {name} is not allowed (FlareDB sets the connection's pragmas)")
        if action in (sqlite3.SQLITE_ATTACH, sqlite3.SQLITE_DETACH):
            return self.deny("ATTACH and DETACH are not allowed: a project has one database")
        if action in (sqlite3.SQLITE_TRANSACTION, sqlite3.SQLITE_SAVEPOINT):
            return self.deny("transaction statements are not allowed: a request's statements run as one transaction")
        if action in _TEMP_ACTIONS or (writing and (db or "main") == "temp"):
            return self.deny("temporary tables, views, indexes and triggers are not allowed (they are not replicated)")
        if action in (sqlite3.SQLITE_CREATE_VTABLE, sqlite3.SQLITE_DROP_VTABLE):
            return self.deny("virtual tables are not supported")
        for named in (arg1, arg2):
            if _internal(named):
                return self.deny(f"{named} is internal to FlareDB")
        return sqlite3.SQLITE_OK


def _internal(name: str | None) -> bool:
    return name is not None and name.lower().startswith(INTERNAL_PREFIX)


class ClockRefused(Exception):
    """A date and time function was asked for the current time while applying a write."""


class Determinism:
    """The applying connection's random() and randomblob(n), seeded from the log index, and its date
    and time functions, which refuse 'now' (a parameter may carry it past `clock_use`)."""

    def __init__(self) -> None:
        self.rng = random.Random(0)
        self.refused = ""
        self.applying = False  # reads may ask for the time; commands applied from the log may not
        self._plain = sqlite3.connect(":memory:", check_same_thread=False)  # where the real date functions run

    def seed(self, index: int) -> None:
        """Make the draws of the next command depend on its log index only."""
        self.rng = random.Random(index)
        self.refused = ""

    def install(self, conn: sqlite3.Connection) -> None:
        """Replace the connection's non-deterministic functions."""
        conn.create_function("random", 0, self._random)
        conn.create_function("randomblob", 1, self._randomblob)
        for name in TIME_FUNCTIONS:
            # Deterministic, as SQLite's own are once 'now' is refused: allowed in CHECK constraints,
            # generated columns and index expressions, as the built-in ones are.
            conn.create_function(name, -1, self._time_function(name), deterministic=True)

    def _random(self) -> int:
        return self.rng.getrandbits(64) - (1 << 63)

    def _randomblob(self, n: object) -> bytes:
        size = n if isinstance(n, int) else 1
        return self.rng.randbytes(min(max(size, 1), MAX_RANDOMBLOB))

    def _time_function(self, name: str) -> Callable[..., str | int | float | None]:
        def builtin(marks: str, positional: list[object]) -> str | int | float | None:
            value: str | int | float | None = self._plain.execute(f"SELECT {name}({marks})", positional).fetchone()[0]
            return value  # SQLite's own date and time functions: text, a number or NULL

        def call(*args: object) -> str | int | float | None:
            positional = list(args)
            marks = ", ".join("?" * len(positional))
            if not self.applying:
                return builtin(marks, positional)
            time_value = positional[1] if name == "strftime" and len(positional) > 1 else \
                (positional[0] if name != "strftime" and positional else None)
            modifiers = positional[2:] if name == "strftime" else positional[1:]
            if time_value is None and (not positional or (name == "strftime" and len(positional) < 2)):
                self.refused = f"{name}() without a time value (it means 'now')"
                raise ClockRefused(self.refused)
            for value in [time_value, *modifiers]:
                if isinstance(value, str) and value.strip().lower() in CLOCK_ARGUMENTS:
                    self.refused = f"{name}() with '{value.strip()}'"
                    raise ClockRefused(self.refused)
            return builtin(marks, positional)

        return call
