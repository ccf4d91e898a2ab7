"""The exact answers Toxiproxy 2.12.0 gives to bad bodies and bad addresses, and its JSON quirks.

Toxiproxy decodes bodies with Go's ``encoding/json`` and binds with Go's ``net``, so its
error texts are theirs: scanner texts for bad syntax, ``json: cannot unmarshal …`` for a
wrong type (the *first* one in the body), ``listen tcp: …`` from ``net.Listen`` and the
bare text from ``ResolveTCPAddr``. Where Go versions word a text differently (a populate
entry's promoted fields, Go 1.24), only the common part is asserted here.
"""

from __future__ import annotations

import pytest

from .peers import Api

ENTRY = 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'
UPDATE = 'struct { Attributes interface {} "json:\\"attributes\\""; Toxicity float32 "json:\\"toxicity\\"" }'


def bad_body(response: object, text: str) -> None:
    assert getattr(response, "status_code", None) == 400
    assert response.json() == {"error": f"bad request body: {text}", "status": 400}  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"", "EOF"),
        (b" \r\n\t", "EOF"),
        (b"{", "unexpected EOF"),
        (b'[1, 2', "unexpected EOF"),
        (b'{"name": "x", "upstream": "y"', "unexpected EOF"),
        (b"this is not json", "invalid character 'h' in literal true (expecting 'r')"),
        (b"nope", "invalid character 'o' in literal null (expecting 'u')"),
        (b'{"name": NaN}', "invalid character 'N' looking for beginning of value"),
        (b"{'name': 'x'}", "invalid character '\\'' looking for beginning of object key string"),
        (b'{"name" "x"}', "invalid character '\"' after object key"),
        (b'{"name": "x" "upstream": "y"}', "invalid character '\"' after object key:value pair"),
        (b'{"name": "x",}', "invalid character '}' looking for beginning of object key string"),
        (b"[1 2]", "invalid character '2' after array element"),
        (b'{"name": -x}', "invalid character 'x' in numeric literal"),
        (b'{"name": 1.}', "invalid character '}' after decimal point in numeric literal"),
        (b'{"name": 1e}', "invalid character '}' in exponent of numeric literal"),
        (b'{"name": "\\q"}', "invalid character 'q' in string escape code"),
        (b'{"name": "\\u12G4"}', "invalid character 'G' in \\u hexadecimal character escape"),
        (b'{"name": "a\tb"}', "invalid character '\\t' in string literal"),
        (b"<html>", "invalid character '<' looking for beginning of value"),
        (b"[]", "json: cannot unmarshal array into Go value of type toxiproxy.Proxy"),
        (b'"a string"', "json: cannot unmarshal string into Go value of type toxiproxy.Proxy"),
        (b"17", "json: cannot unmarshal number into Go value of type toxiproxy.Proxy"),
        (b'{"name": 5, "upstream": "x"}', "json: cannot unmarshal number into Go struct field Proxy.name of type string"),
        (b'{"upstream": ["x"]}', "json: cannot unmarshal array into Go struct field Proxy.upstream of type string"),
        (b'{"listen": 8080}', "json: cannot unmarshal number into Go struct field Proxy.listen of type string"),
        (b'{"enabled": "yes"}', "json: cannot unmarshal string into Go struct field Proxy.enabled of type bool"),
        # the first wrong type in the body wins, whatever the field order of the struct
        (b'{"enabled": {}, "name": 5}', "json: cannot unmarshal object into Go struct field Proxy.enabled of type bool"),
        (b'{"NAME": true}', "json: cannot unmarshal bool into Go struct field Proxy.name of type string"),
    ],
)
def test_a_create_body_that_does_not_decode_gets_gos_text(api: Api, body: bytes, text: str) -> None:
    response = api.post("/proxies", data=body)
    bad_body(response, text)
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.content.endswith(b"}\n")


def test_a_populate_body_that_does_not_decode_gets_gos_text(api: Api) -> None:
    for body, text in (
        (b'{"name": "x"}', f"json: cannot unmarshal object into Go value of type []{ENTRY}"),
        (b"[5]", f"json: cannot unmarshal number into Go value of type {ENTRY}"),
        (b'[{"enabled": "yes"}]', "json: cannot unmarshal string into Go struct field .enabled of type bool"),
        (b"[", "unexpected EOF"),
    ):
        response = api.post("/populate", data=body)
        assert response.status_code == 400
        assert response.json() == {"error": f"bad request body: {text}", "status": 400, "proxies": None}
    # Go 1.23 says "field .name", Go 1.24 "field .Proxy.name": the rest is the same.
    promoted = api.post("/populate", data=b'[{"name": 5}]').json()["error"]
    assert promoted.startswith("bad request body: json: cannot unmarshal number into Go struct field .")
    assert promoted.endswith("name of type string")


def test_an_empty_populate_answers_null_proxies(api: Api) -> None:
    for body in (b"[]", b"null"):
        response = api.post("/populate", data=body)
        assert (response.status_code, response.content) == (201, b'{"proxies":null}')
        assert response.headers["Content-Type"] == "application/json"


@pytest.mark.parametrize(
    ("body", "text"),
    [
        (b"[]", "json: cannot unmarshal array into Go value of type toxics.ToxicWrapper"),
        (b'{"type": 5}', "json: cannot unmarshal number into Go struct field ToxicWrapper.type of type string"),
        (b'{"type": "latency", "toxicity": "x"}',
         "json: cannot unmarshal string into Go struct field ToxicWrapper.toxicity of type float32"),
        (b'{"type": "latency", "toxicity": 1e39}',
         "json: cannot unmarshal number 1e39 into Go struct field ToxicWrapper.toxicity of type float32"),
        (b'{"type": "latency", "attributes": [1]}',
         "json: cannot unmarshal array into Go struct field ToxicWrapper.attributes of type toxics.NoopToxic"),
        (b'{"type": "latency", "attributes": {"latency": "100"}}',
         "json: cannot unmarshal string into Go struct field LatencyToxic.attributes.latency of type int64"),
        (b'{"type": "latency", "attributes": {"latency": 100.0}}',
         "json: cannot unmarshal number 100.0 into Go struct field LatencyToxic.attributes.latency of type int64"),
        (b'{"type": "latency", "attributes": {"jitter": 9223372036854775808}}',
         "json: cannot unmarshal number 9223372036854775808 into Go struct field "
         "LatencyToxic.attributes.jitter of type int64"),
        (b'{"type": "slicer", "attributes": {"average_size": true}}',
         "json: cannot unmarshal bool into Go struct field SlicerToxic.attributes.average_size of type int"),
        (b'{"type": "limit_data", "attributes": {"Bytes": 1e3}}',
         "json: cannot unmarshal number 1e3 into Go struct field LimitDataToxic.attributes.bytes of type int64"),
    ],
)  # fmt: skip
def test_a_toxic_body_that_does_not_decode_gets_gos_text(api: Api, body: bytes, text: str) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    bad_body(api.post(f"/proxies/{t}/toxics", data=body), text)
    assert api.get(f"/proxies/{t}/toxics").json() == []


def test_a_toxic_update_that_does_not_decode_gets_gos_text(api: Api) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    path = f"/proxies/{t}/toxics/latency_downstream"
    original = api.add_toxic(t, type="latency", attributes={"latency": 50, "jitter": 5})
    for body, text in (
        (b"[]", f"json: cannot unmarshal array into Go value of type {UPDATE}"),
        (b'{"toxicity": "high"}', "json: cannot unmarshal string into Go struct field .toxicity of type float32"),
        (b'{"attributes": 7}', "json: cannot unmarshal number into Go struct field .attributes of type toxics.LatencyToxic"),
        (b'{"attributes": {"latency": 1.5}}',
         "json: cannot unmarshal number 1.5 into Go struct field LatencyToxic.attributes.latency of type int64"),
    ):  # fmt: skip
        bad_body(api.patch(path, data=body), text)
    assert api.get(path).json() == original


@pytest.mark.parametrize(
    ("listen", "text"),
    [
        ("local373", "listen tcp: address local373: missing port in address"),
        ("a:b:c", "listen tcp: address a:b:c: too many colons in address"),
        ("127.0.0.1:70000", "listen tcp: address 70000: invalid port"),
        ("127.0.0.1:-1", "listen tcp: address -1: invalid port"),
    ],
)
def test_a_listen_that_cannot_be_bound_is_a_500_in_net_listens_words(api: Api, listen: str, text: str) -> None:
    response = api.post("/proxies", json={"name": api.name("p"), "upstream": "localhost:1", "listen": listen})
    assert (response.status_code, response.json()) == (500, {"error": text, "status": 500})
    assert api.listed() == {}


def test_populate_words_a_bad_listen_like_the_call_toxiproxy_makes(api: Api) -> None:
    existing = api.create_proxy(api.name("old"), "localhost:1")["name"]
    entry = {"name": existing, "upstream": "localhost:1", "listen": "local373"}
    replaced = api.post("/populate", json=[entry]).json()  # an existing name: Differs → ResolveTCPAddr
    assert replaced == {"error": "address local373: missing port in address", "status": 500, "proxies": None}
    created = api.post("/populate", json=[{**entry, "name": api.name("new")}]).json()  # a new one: net.Listen
    assert created["error"] == "listen tcp: address local373: missing port in address"


def test_json_answers_escape_html_characters_like_go(api: Api) -> None:
    name = api.name("a<b>&c")
    response = api.post("/proxies", json={"name": name, "upstream": "localhost:1&2", "listen": "127.0.0.1:0"})
    assert response.status_code == 201
    escaped = name.replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
    assert f'"name":"{escaped}"'.encode() in response.content
    assert b'"upstream":"localhost:1\\u00262"' in response.content
    assert response.json()["name"] == name


def test_toxicity_is_written_like_a_go_float32(api: Api) -> None:
    t = api.create_proxy(api.name("t"), "localhost:1")["name"]
    for toxicity, written in ((b"0.5", b"0.5"), (b"1e-7", b"1e-7"), (b"0.00001", b"0.00001"), (b"3", b"3"),
                              (b"1e21", b"1e+21"), (b"0.1234567891", b"0.12345679")):  # fmt: skip
        body = b'{"name": "x%s", "type": "noop", "toxicity": %s}' % (written, toxicity)
        response = api.post(f"/proxies/{t}/toxics", data=body)
        assert response.status_code == 200, response.text
        assert response.content.endswith(b'"toxicity":%s}' % written)


def test_a_browser_refusal_is_plain_text_with_nosniff(api: Api) -> None:
    response = api.get("/proxies", headers={"User-Agent": "Mozilla/5.0"})
    assert (response.status_code, response.text) == (403, "User agent not allowed\n")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert response.headers["X-Content-Type-Options"] == "nosniff"
