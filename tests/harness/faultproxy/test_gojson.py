"""Our copy of Go's encoding/json behaviour, without a server: scanner texts, values, encoding, structs.

The API-level answers are in ``test_api_error_texts`` (they also run against a real
Toxiproxy); these pin down the pieces and the Go 1.23 wording where Go versions differ.
"""

from __future__ import annotations

import pytest

from harness.faultproxy.bodies import POPULATE_ENTRY, PROXY, TOXIC_WRAPPER, store, toxic_struct
from harness.faultproxy.errors import ApiError
from harness.faultproxy.gojson import MAX_DEPTH, JsonSyntaxError, Number, Obj, decode_first, dumps, go_float32


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "EOF"),
        (b"{}}", None),  # the first value is complete: the rest is not looked at
        (b'123abc', None),
        (b'"ok" junk', None),
        (b"tru", "unexpected EOF"),
        (b"1e+", "unexpected EOF"),
        (b"[01]", "invalid character '1' after array element"),
        (b"\x01", "invalid character '\\x01' looking for beginning of value"),
        (b"\x7f", "invalid character '\\x7f' looking for beginning of value"),
        (b'"\\', "unexpected EOF"),
        (b"\xef\xbb\xbf{}", "invalid character '\u00ef' looking for beginning of value"),  # a BOM is not JSON
        (b"\x85{}", "invalid character '\\u0085' looking for beginning of value"),
        (b"[" * (MAX_DEPTH + 1), "invalid character '[' exceeded max depth"),
        (b"[1,]", "invalid character ']' looking for beginning of value"),
        (b'{"a":\\', "invalid character '\\\\' looking for beginning of value"),
    ],
)
def test_the_scanner_says_what_go_says(body: bytes, text: str | None) -> None:
    if text is None:
        decode_first(body)
    else:
        with pytest.raises(JsonSyntaxError) as caught:
            decode_first(body)
        assert str(caught.value) == text


def test_values_keep_duplicate_keys_number_literals_and_go_replacement_characters() -> None:
    value = decode_first(b'{"a": 1.50, "a": "\\ud800x", "b": ["\xe2\x82A"], "\xff": 1e3} trailing')
    assert isinstance(value, Obj)
    assert value.items == [("a", "1.50"), ("a", "\ufffdx"), ("b", ["\ufffd\ufffdA"]), ("\ufffd", "1e3")]
    assert all(isinstance(item, Number) for _key, item in (value.items[0], value.items[3]))


def test_nesting_python_cannot_parse_is_a_clear_error() -> None:
    with pytest.raises(JsonSyntaxError, match="nesting too deep"):
        decode_first(b"[" * 5000 + b"]" * 5000)


@pytest.mark.parametrize(
    ("value", "text"),
    [(1.0, "1"), (-1.0, "-1"), (0.5, "0.5"), (-0.0, "-0"), (0.0, "0"), (1e-6, "0.000001"), (1e-7, "1e-7"),
     (1.5e-10, "1.5e-10"), (123456790.0, "123456790"), (1e20, "100000000000000000000"), (1e21, "1e+21"),
     (3.4028235e38, "3.4028235e+38")],
)  # fmt: skip
def test_floats_are_written_like_go_writes_a_float32(value: float, text: str) -> None:
    assert go_float32(value) == text


def test_dumps_is_compact_and_escapes_like_go() -> None:
    assert dumps({"a": "<b>&\u2028\u2029\x01\n", "t": 0.5, "n": None, "l": [1, True], "e": {}}) == (
        b'{"a":"\\u003cb\\u003e\\u0026\\u2028\\u2029\\u0001\\n","t":0.5,"n":null,"l":[1,true],"e":{}}'
    )
    assert dumps({"\ud800": "é"}) == '{"\ufffd":"é"}'.encode()


def go_error(value: object, target: object) -> str:
    with pytest.raises(ApiError) as caught:
        store(value, target)  # type: ignore[arg-type]
    assert caught.value.status == 400
    return caught.value.message.removeprefix("bad request body: json: cannot unmarshal ")


def test_structs_report_the_first_wrong_type_in_the_bodys_order() -> None:
    body = decode_first(b'{"name": 5, "name": "fine", "enabled": "no"}')
    assert go_error(body, PROXY) == "number into Go struct field Proxy.name of type string"


def test_a_populate_entrys_promoted_fields_are_named_as_go_1_23_names_them() -> None:
    # Go 1.24 would say ".Proxy.name" (the embedded struct joined the path); 2.12.0 was built with 1.23.
    entry = decode_first(b'{"name": 5}')
    assert go_error(entry, POPULATE_ENTRY) == "number into Go struct field .name of type string"


def test_the_logger_field_of_a_proxy_body_is_a_struct_like_in_go() -> None:
    assert store(decode_first(b'{"Logger": {"level": 1}, "name": "p"}'), PROXY) == {"Logger": {}, "name": "p"}
    logger = go_error(decode_first(b'{"logger": 1}'), PROXY)
    assert logger == "number into Go struct field Proxy.Logger of type zerolog.Logger"


def test_keys_match_exactly_first_then_by_gos_case_folding() -> None:
    assert store(decode_first(b'{"NAME": "a", "Type": "latency"}'), TOXIC_WRAPPER) == {"name": "a", "type": "latency"}
    # U+017F (long s) and U+212A (Kelvin sign) fold onto ASCII letters in Go, and so here.
    assert store(decode_first('{"\u017ftream": "up", "\u212aey": 1}'.encode()), TOXIC_WRAPPER) == {"stream": "up"}
    attrs = {"average_size": 5, "size_variation": 1, "delay": 7}
    holder = decode_first(b'{"Average_Size": 5, "size_variation": 1, "DELAY": 7, "delay": null}')
    assert store(holder, toxic_struct("slicer")) == attrs
