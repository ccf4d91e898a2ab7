"""The concrete values programs are built from, shared by the Hypothesis strategies and the declared mix.

Texts with the line endings and blanks that break comparisons (CR, CRLF, trailing spaces and tabs,
control characters, no final newline, an empty line), byte strings that are not UTF-8 or hold NUL,
multi-byte characters for the output cap to cut, the signals each language dies of (and those it
does not: Python ignores SIGPIPE and SIGXFSZ, bash ignores SIGQUIT; stop and ignore-by-default
signals would hang a program until its timeout), exit codes across and beyond 0..255, file names,
and the sleeps just before and just after the deadline.
"""

from __future__ import annotations

from harness.generate.spec import DEADLINE_S, LATE_MARGIN_S, Language

TEXTS = (
    "hello\n", "no newline", "\n", "\n\n", "a\r\nb\r\n", "\r\n", "cr\ronly", "\r", "progress 10%\rprogress 100%\n",
    "tab\tseparated\n", "trailing space \n", "trailing tab\t\n", "ends in blanks \t", "blank before crlf \r\n",
    "é ü ✓ 🚀\n", "日本語のテキスト\n", "\x1b[1mbold\x1b[0m\n", "bell\x07 back\bspace form\x0cfeed\n", "\x1b[2K\rredrawn line\n",
    "nul\x00inside\n", "del\x7f and vt\x0b\n",
    "%s %d \\n not a format\n", "quotes ' and \"\n",
)
BYTES = (
    b"\x00", b"a\x00b\n", b"\x00\n", b"\xff", b"ok\xffok\n", b"\xfe\xff", b"\x80", b"\xc3", b"\xe2\x82",
    b"\xf0\x9f\x9a", b"\xc0\xaf", b"\xed\xa0\x80", b"\xc3(\n",
)
MULTIBYTE = ("é", "✓", "🚀")  # 2, 3 and 4 bytes in UTF-8
VOLUME_UNITS = ("x", "ab\n", "é", "✓\n", "🚀", "line with trailing blanks \t\r\n")

_STANDARD = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 24, 25, 26, 27, 29, 30, 31)
REALTIME = tuple(range(34, 65))
SIGNALS: dict[Language, tuple[int, ...]] = {
    "python": tuple(s for s in _STANDARD if s not in (13, 25)),
    "bash": tuple(s for s in _STANDARD if s != 3),
}
EXIT_CODES = (0, 1, 2, 3, 42, 126, 127, 128, 130, 137, 143, 192, 193, 200, 254, 255, 256, 257, 300, 511, -1, -2)

FILE_NAMES = ("data.txt", "two words.txt", "ünïcödé.txt", "sub/nested.txt")
LARGE_FILE_BYTES = (1 << 20) + 4096  # "large": over a megabyte

LATE_BEFORE = tuple(round(DEADLINE_S - LATE_MARGIN_S - d, 2) for d in (0.1, 0.0))  # 0.5, 0.6
LATE_AFTER = tuple(round(DEADLINE_S + LATE_MARGIN_S + d, 2) for d in (0.0, 0.1))  # 1.4, 1.5

PY_EXCEPTIONS = ("ValueError", "KeyError", "RuntimeError", "ZeroDivisionError", "TypeError", "AssertionError")


def volume_repeats(unit: str, target: int) -> tuple[int, int]:
    """(repeats of ``unit``, ASCII bytes to add) so that the total is exactly ``target`` bytes."""
    size = len(unit.encode())
    return max(target // size, 1), max(target - max(target // size, 1) * size, 0)
