"""The shapes of the Toxiproxy v2 API: the records bodies decode into, and the JSON sent back.

A proxy body becomes :class:`ProxyFields` (``None``: the body did not set the field), a
toxic :class:`ToxicSpec`; decoding them the way Toxiproxy does is :mod:`.bodies`' job.
On top of Toxiproxy we refuse what would crash or wedge the real server:
negative attributes, a slicer that cannot terminate, and names containing ``/`` (which no
route can address). Responses are Go-style JSON (:func:`~.gojson.dumps`) in Toxiproxy's
field order; proxies carry ``"Logger":{}`` and toxicity is the float32 the Go server stores.
"""

from __future__ import annotations

import struct
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final, Literal, cast, get_args

from .errors import ApiError
from .gojson import dumps

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
    """A toxic-create body's first pass: everything but its attributes, which depend on the type."""

    name: str
    type: str
    stream: str
    toxicity: float


def float32_value(value: float) -> float:
    """Round to float32 (as Go stores toxicity) and return the shortest decimal that reads back the same.

    Raises OverflowError beyond float32's range.
    """
    single = struct.unpack("<f", struct.pack("<f", value))[0]  # "<f" (not native "f") refuses to overflow
    for digits in range(1, 10):
        shortest = float(f"{single:.{digits}g}")
        if struct.unpack("<f", struct.pack("<f", shortest))[0] == single:
            return shortest
    return float(single)


# -- our checks on top of Toxiproxy's ------------------------------------------------------


def check_attributes(toxic_type: str, attrs: Mapping[str, int]) -> None:
    """Refuse (400) what would crash or wedge the real server: negative values, a slicer that cannot end."""
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


def toxic_json(spec: ToxicSpec) -> dict[str, Any]:
    return {
        "attributes": {name: spec.attributes.get(name, 0) for name in ATTRIBUTES[spec.type]},
        "name": spec.name,
        "type": spec.type,
        "stream": spec.stream,
        "toxicity": spec.toxicity,
    }


def error_body(status: int, message: str) -> bytes:
    """The body Go's ``http.Error`` writes for an API error: JSON plus a newline."""
    return dumps({"error": message, "status": status}) + b"\n"
