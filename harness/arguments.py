"""Checked values for command-line options: every number in its range, every file readable, before anything starts.

Each function here is an ``argparse`` ``type=``: it turns the text into the value or raises
``argparse.ArgumentTypeError`` with what was expected and what was found, which ``HarnessParser``
prints under the usage line with exit status 3 (``EXIT_USAGE``). So a bad value never starts a
stack, a process or a run folder. The same checks serve code that meets a value later (a scenario
named on the command line): ``file_problem`` and ``folder_problem`` return the message or None.
"""

from __future__ import annotations

import argparse
import math
import os
import re
from collections.abc import Callable, Sequence
from pathlib import Path
from urllib.parse import urlsplit

Parse = Callable[[str], object]
STACK_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
_MEMORY = re.compile(r"^\d+(?:[kmg]b?|b)?$", re.IGNORECASE)


def _bounds(minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above:g}")
    if minimum is not None:
        parts.append(f">= {minimum:g}")
    if maximum is not None:
        parts.append(f"<= {maximum:g}")
    return " and ".join(parts)


def _expected(kind: str, rule: str) -> str:
    return f"{kind} {rule}" if rule else kind


def integer(minimum: int | None = None, maximum: int | None = None) -> Callable[[str], int]:
    """An integer within ``minimum``..``maximum`` (either may be open)."""
    rule = _bounds(minimum, maximum, None)

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_expected('an integer', rule)}, got {text!r}") from None
        if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
            raise argparse.ArgumentTypeError(f"expected {_expected('an integer', rule)}, got {value}")
        return value
    parse.__name__ = "integer"
    return parse


def number(minimum: float | None = None, maximum: float | None = None, *,
           above: float | None = None) -> Callable[[str], float]:
    """A finite number within ``minimum``..``maximum``, or strictly greater than ``above``."""
    rule = _bounds(minimum, maximum, above)

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected {_expected('a number', rule)}, got {text!r}") from None
        if (not math.isfinite(value) or (minimum is not None and value < minimum)
                or (maximum is not None and value > maximum) or (above is not None and value <= above)):
            raise argparse.ArgumentTypeError(f"expected {_expected('a number', rule)}, got {text}")
        return value
    parse.__name__ = "number"
    return parse


_DURATION = re.compile(r"^(?:(\d+(?:\.\d+)?)h)?(?:(\d+(?:\.\d+)?)m)?(?:(\d+(?:\.\d+)?)s?)?$")


def duration(maximum: float) -> Callable[[str], float]:
    """``90``, ``90s``, ``5m``, ``1h30m`` → seconds; at least 1 and at most ``maximum``."""
    def parse(text: str) -> float:
        match = _DURATION.match(text.strip())
        if not text.strip() or match is None or not any(match.groups()):
            raise argparse.ArgumentTypeError(f"not a duration: {text!r} (examples: 30, 30s, 5m, 1h30m)")
        hours, minutes, seconds = (float(g) if g else 0.0 for g in match.groups())
        total = hours * 3600 + minutes * 60 + seconds
        if not 1 <= total <= maximum:
            raise argparse.ArgumentTypeError(f"expected a duration of at least 1 s and at most {maximum:g} s, "
                                             f"got {text!r}")
        return total
    parse.__name__ = "duration"
    return parse


def percentage(text: str) -> float:
    """A Celery percentage, 0..100."""
    return number(0, 100)(text)


def port(text: str) -> int:
    """A TCP port, 0..65535 (0: any free port where the option allows it)."""
    return integer(0, 65535)(text)


def listen_port(text: str) -> int:
    """A TCP port to listen on, 1..65535."""
    return integer(1, 65535)(text)


def seed(text: str) -> int:
    """A seed, a non-negative integer (numpy refuses negative ones)."""
    return integer(0)(text)


def choice(values: Sequence[str]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        if text not in values:
            raise argparse.ArgumentTypeError(f"expected one of {', '.join(values)}, got {text!r}")
        return text
    parse.__name__ = "choice"
    return parse


def memory(text: str) -> str:
    """A Redis memory size: ``256mb``, ``1gb``, ``1048576``."""
    if not _MEMORY.match(text.strip()):
        raise argparse.ArgumentTypeError(f"expected a Redis memory size such as 256mb, 1gb or 1048576, got {text!r}")
    return text.strip()


def non_empty(text: str) -> str:
    if not text.strip():
        raise argparse.ArgumentTypeError("expected a non-empty value")
    return text


def http_url(text: str) -> str:
    """An http(s) URL with a host, without a trailing slash."""
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"expected an http:// or https:// URL with a host, got {text!r}")
    try:
        parts.port  # noqa: B018 - raises ValueError for a port out of range
    except ValueError:
        raise argparse.ArgumentTypeError(f"the port of {text!r} is not within 0..65535") from None
    return text.rstrip("/")


def stack_name(text: str) -> str:
    """The name of a detached stack: lower-case letters, digits, ``-`` and ``_``, at most 40."""
    if not STACK_NAME.match(text):
        raise argparse.ArgumentTypeError(f"expected a stack name of lower-case letters, digits, '-' and '_' "
                                         f"(at most 40, starting with a letter or digit), got {text!r}")
    return text


def csv_of(values: Sequence[str]) -> Callable[[str], list[str]]:
    """A comma-separated list, each item one of ``values``, at least one."""
    def parse(text: str) -> list[str]:
        items = [x.strip() for x in text.split(",") if x.strip()]
        unknown = [x for x in items if x not in values]
        if not items or unknown:
            found = f"unknown {', '.join(map(repr, unknown))}" if unknown else "nothing"
            raise argparse.ArgumentTypeError(f"expected a comma-separated list of {', '.join(values)}; got {found}")
        return items
    parse.__name__ = "list"
    return parse


def file_problem(path: Path, *, text: bool = True) -> str | None:
    """Why ``path`` cannot be read as a file (as UTF-8 text, with ``text``), or None when it can."""
    if not path.exists():
        return f"{path}: no such file"
    if path.is_dir():
        return f"{path} is a folder; expected a file"
    try:
        data = path.read_bytes()
    except OSError as exc:
        return f"{path}: cannot be read ({exc.strerror or exc})"
    if text:
        try:
            data.decode("utf-8")
        except UnicodeDecodeError as exc:
            return (f"{path} is not UTF-8 text (byte 0x{data[exc.start]:02x} at offset {exc.start}); "
                    "save it as UTF-8")
    return None


def folder_problem(path: Path, kind: str = "folder") -> str | None:
    """Why ``path`` cannot be read as a folder (a ``kind``: "run folder"), or None when it can."""
    if not path.exists():
        return f"{path}: no such {kind}"
    if not path.is_dir():
        return f"{path} is a file; expected a folder"
    if not os.access(path, os.R_OK | os.X_OK):
        return f"{path}: the folder cannot be read (permission denied)"
    return None


def readable_file(text: str) -> Path:
    """A file that exists and reads as UTF-8 text."""
    problem = file_problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def readable_folder(text: str) -> Path:
    """A folder that exists and can be read."""
    problem = folder_problem(Path(text))
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def run_folder(text: str) -> Path:
    """A run folder that exists and can be read."""
    problem = folder_problem(Path(text), "run folder")
    if problem:
        raise argparse.ArgumentTypeError(problem)
    return Path(text)


def output_folder(text: str) -> Path:
    """A folder to write into: it exists as a folder, or it does not exist yet (it is created when needed)."""
    path = Path(text)
    if path.exists() and not path.is_dir():
        raise argparse.ArgumentTypeError(f"{path} is a file; expected a folder (it is created if missing)")
    return path
