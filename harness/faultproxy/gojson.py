"""Go's ``encoding/json`` as Toxiproxy's API shows it: reading a body, writing a response.

Toxiproxy reads every request body with ``json.NewDecoder(body).Decode(&v)`` (Go 1.23).
The Decoder scans the *first* JSON value and ignores whatever follows it; an empty body
is ``EOF``, a body cut short is ``unexpected EOF``, and a syntax error is the scanner's
text, for example ``invalid character 'h' in literal true (expecting 'r')``.
:func:`decode_first` reproduces that and returns the value with every object as an
:class:`Obj` (members in order, duplicates kept) and every number as a :class:`Number`
(its literal text), because that is what Go's field matching and type errors depend on
(:mod:`.schema` stores values into Go-shaped structs). Strings are read like Go reads
them: an invalid UTF-8 byte or a lone surrogate escape becomes U+FFFD.

:func:`dumps` writes like ``json.Marshal``: compact; ``<``, ``>``, ``&``, U+2028 and
U+2029 escaped; floats (the API's only float is a float32 ``toxicity``) in Go's shortest
float32 form (``0.2``, ``0.000001``, ``1e-7``, ``1e+21``).
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable
from decimal import Decimal
from typing import Any, Final

#: Go's ``maxNestingDepth``; Python's own parser gives up well before it.
MAX_DEPTH: Final = 10000


class Number(str):
    """A JSON number, kept as its literal text (Go reports ``number 100.0`` with the literal)."""

    __slots__ = ()


class Obj:
    """A JSON object: its members in document order, duplicate keys included."""

    __slots__ = ("items",)

    def __init__(self, items: list[tuple[str, Any]]) -> None:
        self.items = items

    def __repr__(self) -> str:
        return f"Obj({self.items!r})"


class JsonSyntaxError(ValueError):
    """The body is not JSON (or is empty, or is cut short); ``str()`` is Go's error text."""


def _per_byte_replace(exc: UnicodeError) -> tuple[str, int]:
    assert isinstance(exc, UnicodeDecodeError)
    return "\ufffd" * (exc.end - exc.start), exc.end  # Go replaces each invalid byte


codecs.register_error("gojson.replace", _per_byte_replace)

_SURROGATE: Final = re.compile("[\ud800-\udfff]")


def _text(value: str) -> str:
    return _SURROGATE.sub("\ufffd", value) if _SURROGATE.search(value) else value


def _obj(pairs: list[tuple[str, Any]]) -> Obj:
    return Obj([(_text(key), _text(value) if type(value) is str else value) for key, value in pairs])


def _reject_constant(name: str) -> Any:
    raise ValueError(name)  # NaN and Infinity are not JSON; the scanner names the character


_DECODER: Final = json.JSONDecoder(
    object_pairs_hook=_obj, parse_int=Number, parse_float=Number, parse_constant=_reject_constant
)


def decode_first(body: bytes) -> Any:
    """The first JSON value of ``body``; JsonSyntaxError (Go's text) if there is none."""
    text = body.decode("utf-8", errors="gojson.replace")
    start = len(text) - len(text.lstrip(" \t\r\n"))
    try:
        value, _end = _DECODER.raw_decode(text, start)
    except (ValueError, RecursionError):
        problem = syntax_error(body)
        raise JsonSyntaxError(problem or "nesting too deep for this server") from None
    if isinstance(value, Number) and (problem := syntax_error(body)):
        raise JsonSyntaxError(problem)  # Python stops a top-level "1e+" after the 1; Go reads on
    return _text(value) if type(value) is str else value


# -- Go's scanner (encoding/json/scanner.go), used to name what is wrong ----------------------

_SPACE: Final = b" \t\r\n"
_DIGITS: Final = b"0123456789"
_HEX: Final = b"0123456789abcdefABCDEF"
_LITERALS: Final = {ord("t"): b"true", ord("f"): b"false", ord("n"): b"null"}


def _quote_char(byte: int) -> str:
    """Go's ``quoteChar``: the byte as a one-character Go literal, ``'x'``, ``'\\n'``, ``'\\x01'``."""
    if byte == ord("'"):
        return "'\\''"
    if byte == ord('"'):
        return "'\"'"
    char = chr(byte)
    if char.isprintable() and char != "\\":
        return f"'{char}'"
    named = {7: "\\a", 8: "\\b", 9: "\\t", 10: "\\n", 11: "\\v", 12: "\\f", 13: "\\r", 92: "\\\\"}
    if byte in named:
        return f"'{named[byte]}'"
    return f"'\\x{byte:02x}'" if byte < 0x80 else f"'\\u{byte:04x}'"


def syntax_error(data: bytes) -> str:
    """What Go's Decoder says about the first value of ``data``; "" when it is well formed."""
    stack: list[str] = []  # "key" (object key next), "value" (object value next), "array"
    state = "begin"
    literal, at = b"", 0
    escape_hex = 0

    def error(byte: int, context: str) -> str:
        return f"invalid character {_quote_char(byte)} {context}"

    def end_value(byte: int) -> tuple[str, str]:
        """After a complete value: ("done", "") at the top, else the next state or an error."""
        if not stack:
            return "done", ""
        if byte in _SPACE:
            return "end", ""
        top = stack[-1]
        if top == "key":
            if byte == ord(":"):
                stack[-1] = "value"
                return "begin", ""
            return "error", error(byte, "after object key")
        if top == "value":
            if byte == ord(","):
                stack[-1] = "key"
                return "key", ""
            if byte == ord("}"):
                stack.pop()
                return ("done" if not stack else "end"), ""
            return "error", error(byte, "after object key:value pair")
        if byte == ord(","):
            return "begin", ""
        if byte == ord("]"):
            stack.pop()
            return ("done" if not stack else "end"), ""
        return "error", error(byte, "after array element")

    def step(byte: int) -> tuple[str, str]:  # noqa: PLR0911, PLR0912 (one branch per scanner state)
        nonlocal literal, at, escape_hex
        if state in ("begin", "begin_or_empty", "key", "key_or_empty") and byte in _SPACE:
            return state, ""
        if state == "begin_or_empty" and byte == ord("]"):
            return end_value(byte)
        if state == "key_or_empty" and byte == ord("}"):
            stack[-1] = "value"
            return end_value(byte)
        if state in ("key", "key_or_empty"):
            if byte == ord('"'):
                return "string", ""
            return "error", error(byte, "looking for beginning of object key string")
        if state in ("begin", "begin_or_empty"):
            if byte in (ord("{"), ord("[")):
                stack.append("key" if byte == ord("{") else "array")
                if len(stack) > MAX_DEPTH:
                    return "error", error(byte, "exceeded max depth")
                return ("key_or_empty" if byte == ord("{") else "begin_or_empty"), ""
            if byte == ord('"'):
                return "string", ""
            if byte == ord("-"):
                return "neg", ""
            if byte == ord("0"):
                return "zero", ""
            if byte in _DIGITS:
                return "int", ""
            if byte in _LITERALS:
                literal, at = _LITERALS[byte], 1
                return "literal", ""
            return "error", error(byte, "looking for beginning of value")
        if state == "string":
            if byte == ord('"'):
                return "end", ""
            if byte == ord("\\"):
                return "escape", ""
            return ("error", error(byte, "in string literal")) if byte < 0x20 else ("string", "")
        if state == "escape":
            if byte in b'bfnrt\\/"':
                return "string", ""
            if byte == ord("u"):
                escape_hex = 0
                return "hex", ""
            return "error", error(byte, "in string escape code")
        if state == "hex":
            if byte not in _HEX:
                return "error", error(byte, "in \\u hexadecimal character escape")
            escape_hex += 1
            return ("string" if escape_hex == 4 else "hex"), ""
        if state == "neg":
            if byte == ord("0"):
                return "zero", ""
            return ("int", "") if byte in _DIGITS else ("error", error(byte, "in numeric literal"))
        if state == "int" and byte in _DIGITS:
            return "int", ""
        if state in ("int", "zero"):
            if byte == ord("."):
                return "dot", ""
            if byte in b"eE":
                return "exp", ""
            return end_value(byte)
        if state == "dot":
            if byte in _DIGITS:
                return "fraction", ""
            return "error", error(byte, "after decimal point in numeric literal")
        if state == "fraction":
            if byte in _DIGITS:
                return "fraction", ""
            return ("exp", "") if byte in b"eE" else end_value(byte)
        if state in ("exp", "exp_sign"):
            if state == "exp" and byte in b"+-":
                return "exp_sign", ""
            if byte in _DIGITS:
                return "exp_digits", ""
            return "error", error(byte, "in exponent of numeric literal")
        if state == "exp_digits":
            return ("exp_digits", "") if byte in _DIGITS else end_value(byte)
        if state == "literal":
            if byte != literal[at]:
                name = literal.decode()
                return "error", error(byte, f"in literal {name} (expecting {_quote_char(literal[at])})")
            at += 1
            return ("end" if at == len(literal) else "literal"), ""
        return end_value(byte)  # "end": after a value, inside a container

    for byte in data:
        state, problem = step(byte)
        if state == "error":
            return problem
        if state == "done":
            return ""
    # At EOF Go feeds one space: it ends a top-level number; anything else is cut short.
    if state in ("int", "zero", "fraction", "exp_digits") and not stack:
        return ""
    return "unexpected EOF" if data.strip(_SPACE) else "EOF"


# -- encoding ---------------------------------------------------------------------------------

_GO_ESCAPES: Final = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}
_GO_ESCAPED: Final = re.compile("[<>&\u2028\u2029]")


def _string(value: str) -> str:
    encoded = json.dumps(_text(value), ensure_ascii=False)
    return _GO_ESCAPED.sub(lambda match: _GO_ESCAPES[match.group()], encoded)


def go_float32(value: float) -> str:
    """``value`` (already a float32, shortest digits) as Go's ``json.Marshal`` writes a float32."""
    if value == 0:
        return "-0" if str(value).startswith("-") else "0"
    digits = Decimal(repr(value))
    if 1e-6 <= abs(value) < 1e21:
        return format(digits.normalize(), "f")
    sign, mantissa, exponent = digits.as_tuple()
    assert isinstance(exponent, int)
    text = "".join(map(str, mantissa)).rstrip("0") or "0"
    power = exponent + len(mantissa) - 1
    body = text[0] + ("." + text[1:] if len(text) > 1 else "")
    return f"{'-' if sign else ''}{body}e{'-' if power < 0 else '+'}{abs(power):02d}".replace("e-0", "e-")


_WRITERS: Final[dict[type, Callable[[Any], str]]] = {
    str: _string,
    bool: lambda value: "true" if value else "false",
    int: str,
    float: go_float32,
    type(None): lambda _value: "null",
}


def _encode(value: Any) -> str:
    writer = _WRITERS.get(type(value))
    if writer is not None:
        return writer(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{_string(key)}:{_encode(item)}" for key, item in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    raise TypeError(f"cannot encode {type(value).__name__} as JSON")


def dumps(value: Any) -> bytes:
    """Compact JSON the way Go's ``json.Marshal`` writes it, UTF-8, no trailing newline."""
    return _encode(value).encode()
