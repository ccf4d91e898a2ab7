"""Request bodies in, JSON out: the shapes of the Toxiproxy v2 API.

Bodies are decoded the way Go's ``encoding/json`` decodes them into Toxiproxy's
structs: the first JSON value is read and anything after it is ignored, keys match
field names case-insensitively (the last one wins), ``null`` leaves a field as it was,
unknown keys are ignored, and a wrong type (a string for a bool, ``100.0`` for an
integer attribute) is a 400 ``bad request body: …``. On top of that we reject what
would crash or wedge the real server: negative attributes, a slicer that cannot
terminate, and names containing ``/`` (which no route can address).

Responses are compact JSON in Toxiproxy's field order; proxies carry ``"Logger":{}``
and toxicity is echoed as the float32 value the Go server stores.
"""

from __future__ import annotations

import json
import math
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from .errors import ApiError

Direction = Literal["upstream", "downstream"]
ToxicType = Literal["latency", "bandwidth", "slow_close", "timeout", "reset_peer", "slicer", "limit_data", "noop"]
TOXIC_TYPES: Final[tuple[str, ...]] = get_args(ToxicType)

#: Attribute names per toxic type, in the order the Go structs declare them.
ATTRIBUTES: Final[Mapping[str, tuple[str, ...]]] = {
    "latency": ("latency", "jitter"),
    "bandwidth": ("rate",),
    "slow_close": ("delay",),
    "timeout": ("timeout",),
    "reset_peer": ("timeout",),
    "slicer": ("average_size", "size_variation", "delay"),
    "limit_data": ("bytes",),
    "noop": (),
}

INT64_MAX: Final = 2**63 - 1
FLOAT32_MAX: Final = 3.4028234663852886e38
BAD_BODY: Final = "bad request body"


@dataclass(frozen=True)
class ProxyFields:
    """The fields of a proxy body; ``None`` means the body did not set the field."""

    name: str | None = None
    listen: str | None = None
    upstream: str | None = None
    enabled: bool | None = None


@dataclass(frozen=True)
class ToxicSpec:
    """One toxic as the API stores it. ``stream`` is kept exactly as sent."""

    name: str
    type: str
    stream: str
    toxicity: float
    attributes: Mapping[str, int]

    @property
    def direction(self) -> Direction:
        return cast(Direction, self.stream.lower())

    def attr(self, key: str) -> int:
        return self.attributes.get(key, 0)


@dataclass(frozen=True)
class ToxicHead:
    """A decoded toxic-create body before its attributes are checked against the type."""

    name: str
    type: str
    stream: str
    toxicity: float
    raw_attributes: Mapping[str, Any] | None


# -- decoding ---------------------------------------------------------------------------------


def decode_body(body: bytes) -> Any:
    """Decode the first JSON value of a request body; raise ApiError 400 on bad syntax."""
    text = body.decode("utf-8", errors="replace").lstrip(" \t\r\n")
    if not text:
        raise ApiError(400, f"{BAD_BODY}: EOF")
    try:
        value, _end = _DECODER.raw_decode(text)
    except json.JSONDecodeError as exc:
        raise ApiError(400, f"{BAD_BODY}: {exc.msg} at offset {exc.pos}") from None
    except ValueError as exc:  # NaN / Infinity, which Go does not accept
        raise ApiError(400, f"{BAD_BODY}: {exc}") from None
    return value


def _reject_constant(name: str) -> Any:
    raise ValueError(f"invalid character {name[:1]!r} looking for beginning of value")


_DECODER: Final = json.JSONDecoder(parse_constant=_reject_constant)


def _json_kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


def _type_error(value: Any, where: str, go_type: str) -> ApiError:
    kind = _json_kind(value)
    if kind == "number":
        kind = f"number {json.dumps(value)}"
    return ApiError(400, f"{BAD_BODY}: json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}")


def _fields(obj: Any, struct_name: str, wanted: tuple[str, ...]) -> dict[str, Any]:
    """Pick ``wanted`` keys from a JSON object the way Go does (case-insensitive, last wins)."""
    if obj is None:
        return {}
    if not isinstance(obj, dict):
        raise ApiError(
            400, f"{BAD_BODY}: json: cannot unmarshal {_json_kind(obj)} into Go value of type {struct_name}"
        )
    by_fold = {name.casefold(): name for name in wanted}
    picked: dict[str, Any] = {}
    for key, value in obj.items():
        field = key if key in wanted else by_fold.get(key.casefold())
        if field is not None and value is not None:
            picked[field] = value
    return picked


def _string(value: Any, where: str) -> str:
    if not isinstance(value, str):
        raise _type_error(value, where, "string")
    return value


def _bool(value: Any, where: str) -> bool:
    if not isinstance(value, bool):
        raise _type_error(value, where, "bool")
    return value


def _float32(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or abs(value) > FLOAT32_MAX:
        raise _type_error(value, where, "float32")
    return float32_value(float(value))


def float32_value(value: float) -> float:
    """Round to float32 and return the shortest decimal that reads back as the same float32."""
    single = struct.unpack("f", struct.pack("f", value))[0]
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("f", struct.pack("f", shortest))[0] == single:
            return shortest
    return float(single)


def decode_proxy(obj: Any) -> ProxyFields:
    """Decode a proxy create/update body (or one /populate entry)."""
    got = _fields(obj, "proxy.Proxy", ("name", "listen", "upstream", "enabled"))
    return ProxyFields(
        name=_string(got["name"], "Proxy.name") if "name" in got else None,
        listen=_string(got["listen"], "Proxy.listen") if "listen" in got else None,
        upstream=_string(got["upstream"], "Proxy.upstream") if "upstream" in got else None,
        enabled=_bool(got["enabled"], "Proxy.enabled") if "enabled" in got else None,
    )


def decode_populate(obj: Any) -> list[ProxyFields]:
    """Decode a /populate body: a JSON array of proxy bodies (``null`` is an empty list)."""
    if obj is None:
        return []
    if not isinstance(obj, list):
        raise ApiError(
            400, f"{BAD_BODY}: json: cannot unmarshal {_json_kind(obj)} into Go value of type []proxy.Proxy"
        )
    return [decode_proxy(entry) for entry in obj]


def decode_toxic_head(obj: Any) -> ToxicHead:
    """Decode a toxic-create body up to, not including, its attributes' values."""
    got = _fields(obj, "toxics.ToxicWrapper", ("name", "type", "stream", "toxicity", "attributes"))
    raw = got.get("attributes")
    if raw is not None and not isinstance(raw, dict):
        raise _type_error(raw, "ToxicWrapper.attributes", "toxics.Toxic")
    return ToxicHead(
        name=_string(got["name"], "ToxicWrapper.name") if "name" in got else "",
        type=_string(got["type"], "ToxicWrapper.type") if "type" in got else "",
        stream=_string(got["stream"], "ToxicWrapper.stream") if "stream" in got else "downstream",
        toxicity=_float32(got["toxicity"], "ToxicWrapper.toxicity") if "toxicity" in got else 1.0,
        raw_attributes=raw,
    )


def decode_toxic_update(obj: Any) -> tuple[Mapping[str, Any] | None, float | None]:
    """Decode a toxic-update body into (raw attributes or None, toxicity or None)."""
    got = _fields(obj, "struct", ("attributes", "toxicity"))
    raw = got.get("attributes")
    if raw is not None and not isinstance(raw, dict):
        raise _type_error(raw, "attributes", "toxics.Toxic")
    toxicity = _float32(got["toxicity"], "toxicity") if "toxicity" in got else None
    return raw, toxicity


def merge_attributes(toxic_type: str, raw: Mapping[str, Any] | None, base: Mapping[str, int]) -> dict[str, int]:
    """Apply raw attribute values on top of ``base``; check types and ranges (400 on error)."""
    names = ATTRIBUTES[toxic_type]
    merged = {name: base.get(name, 0) for name in names}
    for name, value in _fields(raw, "toxics.Toxic", names).items():
        where = f"{toxic_type}.attributes.{name}"
        if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value <= INT64_MAX:
            raise _type_error(value, where, "int64")
        merged[name] = value
    _check_attributes(toxic_type, merged)
    return merged


def _check_attributes(toxic_type: str, attrs: Mapping[str, int]) -> None:
    for name, value in attrs.items():
        if value < 0:
            raise ApiError(400, f"invalid toxic attributes: {toxic_type} {name} must be >= 0, got {value}")
    if toxic_type == "slicer":
        average, variation = attrs["average_size"], attrs["size_variation"]
        if average < 1 or variation >= average:
            raise ApiError(
                400,
                "invalid toxic attributes: slicer needs average_size >= 1 and size_variation < average_size, "
                f"got average_size={average} size_variation={variation}",
            )


def check_name(kind: Literal["proxy", "toxic"], name: str) -> None:
    """Reject names that no route could address (they contain '/' or are dot segments)."""
    if "/" in name or name in {".", ".."}:
        raise ApiError(400, f"invalid {kind} name {name!r}: names cannot contain '/' or be '.' or '..'")


# -- encoding ---------------------------------------------------------------------------------


def dumps(value: Any) -> bytes:
    """Compact JSON, UTF-8, no trailing newline."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()


def _number(value: float) -> int | float:
    if math.isfinite(value) and value.is_integer() and abs(value) < 1e21:
        return int(value)
    return value


def toxic_json(spec: ToxicSpec) -> dict[str, Any]:
    return {
        "attributes": {name: spec.attributes.get(name, 0) for name in ATTRIBUTES[spec.type]},
        "name": spec.name,
        "type": spec.type,
        "stream": spec.stream,
        "toxicity": _number(spec.toxicity),
    }


def error_body(status: int, message: str) -> bytes:
    """The body Go's ``http.Error`` writes for an API error: JSON plus a newline."""
    return dumps({"error": message, "status": status}) + b"\n"
