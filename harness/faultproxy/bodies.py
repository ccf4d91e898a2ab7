"""Request bodies, decoded into the Go structs Toxiproxy decodes them into.

Each body is read by :func:`~.gojson.decode_first` and then stored into a :class:`GoStruct`
the way ``encoding/json`` (Go 1.23) stores into Toxiproxy's structs: members are taken in
document order; a key matches a field exactly, else case-insensitively; ``null`` leaves a
field as it was; unknown keys are ignored; a value of the wrong type is skipped and the
*first* such error is the answer, worded as Go words it, for example
``bad request body: json: cannot unmarshal string into Go struct field
LatencyToxic.attributes.latency of type int64``. The structs are those of Toxiproxy
2.12.0: ``toxiproxy.Proxy`` (create, update), the anonymous populate entry,
``toxics.ToxicWrapper`` (toxic create), the toxic types' attribute structs, and the
anonymous structs the toxic handlers decode attributes and toxicity into.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final, Union

from .errors import ApiError
from .gojson import JsonSyntaxError, Number, Obj, decode_first
from .schema import ATTRIBUTES, BAD_BODY, ProxyFields, ToxicHead, check_attributes, float32_value

GoType = Union[str, "GoStruct"]  # a leaf ("string", "bool", "int64", "int", "float32") or a struct


@dataclass(frozen=True)
class GoStruct:
    """A Go struct as encoding/json sees it."""

    type: str  #: as reflect prints it, e.g. ``toxiproxy.Proxy``
    name: str  #: its name in error contexts (``""`` for an anonymous struct)
    fields: Mapping[str, GoType] = field(default_factory=dict)  #: JSON name -> type


_LOGGER: Final = GoStruct("zerolog.Logger", "Logger")
_PROXY_FIELDS: Final[Mapping[str, GoType]] = {
    "name": "string", "listen": "string", "upstream": "string", "enabled": "bool", "Logger": _LOGGER,
}  # fmt: skip
PROXY: Final = GoStruct("toxiproxy.Proxy", "Proxy", _PROXY_FIELDS)
_ENTRY_TYPE: Final = 'struct { toxiproxy.Proxy; Enabled *bool "json:\\"enabled\\"" }'
POPULATE_ENTRY: Final = GoStruct(_ENTRY_TYPE, "", _PROXY_FIELDS)
POPULATE_TYPE: Final = "[]" + _ENTRY_TYPE
_NOOP: Final = GoStruct("toxics.NoopToxic", "NoopToxic")
TOXIC_WRAPPER: Final = GoStruct("toxics.ToxicWrapper", "ToxicWrapper", {
    "attributes": _NOOP, "name": "string", "type": "string", "stream": "string", "toxicity": "float32",
})  # fmt: skip
_STRUCT_NAMES: Final = {
    "latency": "LatencyToxic", "bandwidth": "BandwidthToxic", "slow_close": "SlowCloseToxic",
    "timeout": "TimeoutToxic", "reset_peer": "ResetToxic", "slicer": "SlicerToxic",
    "limit_data": "LimitDataToxic", "noop": "NoopToxic",
}  # fmt: skip


def toxic_struct(toxic_type: str) -> GoStruct:
    """The struct of a toxic type's attributes (the slicer's are Go ``int``, the others ``int64``)."""
    leaf = "int" if toxic_type == "slicer" else "int64"
    name = _STRUCT_NAMES[toxic_type]
    return GoStruct(f"toxics.{name}", name, {attribute: leaf for attribute in ATTRIBUTES[toxic_type]})


def _attributes_holder(toxic_type: str, *, with_toxicity: bool) -> GoStruct:
    fields: dict[str, GoType] = {"attributes": toxic_struct(toxic_type)}
    type_text = 'struct { Attributes interface {} "json:\\"attributes\\""'
    if with_toxicity:
        fields["toxicity"] = "float32"
        type_text += '; Toxicity float32 "json:\\"toxicity\\""'
    return GoStruct(type_text + " }", "", fields)


# -- storing a decoded value into a struct ------------------------------------------------------


def _fold_char(char: str) -> str:
    """Go's ``foldRune``: the smallest rune of the character's simple case-folding orbit."""
    if char.isascii():
        return char.upper()
    orbit, todo = {char}, [char]
    while todo:
        current = todo.pop()
        for other in (current.lower(), current.upper()):
            if len(other) == 1 and other not in orbit:
                orbit.add(other)
                todo.append(other)
    return min(orbit)


def _fold(name: str) -> str:
    return "".join(map(_fold_char, name))


def _kind(value: Any) -> str:
    if isinstance(value, Number):
        return "number"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, str):
        return "string"
    return "object" if isinstance(value, Obj) else "array"


class _Store:
    """One decode: remembers the first type error, as Go's ``saveError`` does."""

    def __init__(self) -> None:
        self.error: str | None = None

    def fail(self, kind: str, go_type: str, struct_name: str | None, path: tuple[str, ...]) -> None:
        if self.error is not None:
            return
        if struct_name is None and not path:
            self.error = f"json: cannot unmarshal {kind} into Go value of type {go_type}"
        else:
            where = f"{struct_name or ''}.{'.'.join(path)}"
            self.error = f"json: cannot unmarshal {kind} into Go struct field {where} of type {go_type}"

    def leaf(self, value: Any, go_type: str, struct_name: str, path: tuple[str, ...]) -> tuple[bool, Any]:
        """(stored?, the Python value) for a non-null value into a leaf type."""
        if go_type == "string" and type(value) is str:
            return True, value
        if go_type == "bool" and isinstance(value, bool):
            return True, value
        if go_type in ("int64", "int") and isinstance(value, Number):
            number = int(value) if value.lstrip("-").isdigit() else None
            if number is not None and -(2**63) <= number < 2**63:
                return True, number
            self.fail(f"number {value}", go_type, struct_name, path)
            return False, None
        if go_type == "float32" and isinstance(value, Number):
            try:
                wide = float(value)
                if math.isinf(wide):
                    raise OverflowError(value)
                return True, float32_value(wide)
            except OverflowError:  # beyond float32: Go's ParseFloat says ErrRange
                self.fail(f"number {value}", go_type, struct_name, path)
                return False, None
        self.fail(_kind(value), go_type, struct_name, path)
        return False, None

    def into(self, value: Any, target: GoStruct, outer: str | None, path: tuple[str, ...]) -> dict[str, Any]:
        """The fields ``value`` sets in ``target`` (``outer`` and ``path``: where it sits, for errors)."""
        if value is None:
            return {}
        if not isinstance(value, Obj):
            self.fail(_kind(value), target.type, outer, path)
            return {}
        folded = {_fold(name): name for name in target.fields}
        got: dict[str, Any] = {}
        for key, item in value.items:
            name = key if key in target.fields else folded.get(_fold(key))
            if name is None or item is None:
                continue
            kind = target.fields[name]
            if isinstance(kind, GoStruct):
                if isinstance(item, Obj):
                    got.setdefault(name, {}).update(self.into(item, kind, target.name, (*path, name)))
                else:
                    self.into(item, kind, target.name, (*path, name))
                continue
            stored, result = self.leaf(item, kind, target.name, (*path, name))
            if stored:
                got[name] = result
        return got


def store(value: Any, target: GoStruct) -> dict[str, Any]:
    """Store a decoded body into ``target``; ApiError 400 (Go's text) on a wrong type."""
    decoding = _Store()
    got = decoding.into(value, target, None, ())
    if decoding.error is not None:
        raise ApiError(400, f"{BAD_BODY}: {decoding.error}")
    return got


# -- the API's bodies ---------------------------------------------------------------------------


def decode_body(body: bytes) -> Any:
    """The first JSON value of a request body; ApiError 400 with Go's text if there is none."""
    try:
        return decode_first(body)
    except JsonSyntaxError as exc:
        raise ApiError(400, f"{BAD_BODY}: {exc}") from None


def _proxy_fields(got: Mapping[str, Any]) -> ProxyFields:
    return ProxyFields(got.get("name"), got.get("listen"), got.get("upstream"), got.get("enabled"))


def decode_proxy(value: Any) -> ProxyFields:
    """A proxy create or update body (``toxiproxy.Proxy``)."""
    return _proxy_fields(store(value, PROXY))


def decode_populate(value: Any) -> list[ProxyFields]:
    """A /populate body: a JSON array of proxies (``null`` is an empty one)."""
    if value is None:
        return []
    if not isinstance(value, list):
        raise ApiError(400, f"{BAD_BODY}: json: cannot unmarshal {_kind(value)} into Go value of type {POPULATE_TYPE}")
    decoding = _Store()
    entries = [_proxy_fields(decoding.into(item, POPULATE_ENTRY, None, ())) for item in value]
    if decoding.error is not None:
        raise ApiError(400, f"{BAD_BODY}: {decoding.error}")
    return entries


def decode_toxic_head(value: Any) -> ToxicHead:
    """A toxic create body, first pass (``toxics.ToxicWrapper``): everything but attribute values."""
    got = store(value, TOXIC_WRAPPER)
    return ToxicHead(
        name=got.get("name", ""),
        type=got.get("type", ""),
        stream=got.get("stream", "downstream"),
        toxicity=got.get("toxicity", 1.0),
    )


def decode_toxic_attributes(value: Any, toxic_type: str, base: Mapping[str, int]) -> dict[str, int]:
    """A toxic create body, second pass: its attributes, over ``base``. 400 on a bad value."""
    got = store(value, _attributes_holder(toxic_type, with_toxicity=False))
    return _merged(toxic_type, base, got.get("attributes", {}))


def decode_toxic_update(value: Any, toxic_type: str, base: Mapping[str, int]) -> tuple[dict[str, int], float | None]:
    """A toxic update body: (attributes merged over ``base``, the new toxicity or None)."""
    got = store(value, _attributes_holder(toxic_type, with_toxicity=True))
    return _merged(toxic_type, base, got.get("attributes", {})), got.get("toxicity")


def _merged(toxic_type: str, base: Mapping[str, int], new: Mapping[str, int]) -> dict[str, int]:
    merged = {name: new.get(name, base.get(name, 0)) for name in ATTRIBUTES[toxic_type]}
    check_attributes(toxic_type, merged)
    return merged
