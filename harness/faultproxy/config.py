"""Config files: a JSON array of proxies in the ``/populate`` format.

``[{"name": "redis", "listen": "127.0.0.1:26379", "upstream": "127.0.0.1:6379"}, …]``;
``enabled`` defaults to true and unknown keys (including ``toxics``, which Toxiproxy
ignores too) are ignored. The whole file is validated before anything is bound, and an
error names the file, the entry and what was expected.
"""

from __future__ import annotations

from pathlib import Path

from .bodies import decode_proxy
from .errors import ApiError, ConfigError
from .gojson import JsonSyntaxError, Obj, decode_first
from .schema import ProxyFields, check_name


def load_config(path: str | Path) -> list[ProxyFields]:
    """Read and validate a config file. Raises ConfigError naming the file and the entry."""
    where = str(path)
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise ConfigError(where, "", f"cannot read it ({exc})") from None
    try:
        value = decode_first(data)  # read as Toxiproxy reads it: the first JSON value, Go's rules
    except JsonSyntaxError as exc:
        raise ConfigError(where, "", f"expected a JSON array of proxies, got invalid JSON ({exc})") from None
    if not isinstance(value, list):
        kind = "an object" if isinstance(value, Obj) else repr(value)
        raise ConfigError(where, "", f"expected a JSON array of proxies (the /populate format), got {kind}")
    entries: list[ProxyFields] = []
    for index, item in enumerate(value):
        place = f"[{index}]"
        if not isinstance(item, Obj):
            raise ConfigError(where, place, f"expected an object with name, upstream, listen, enabled; got {item!r}")
        try:
            fields = decode_proxy(item)
            if fields.name:
                check_name("proxy", fields.name)
        except ApiError as exc:
            raise ConfigError(where, place, exc.message) from None
        if not fields.name:
            raise ConfigError(where, f"{place}.name", "is required and must be a non-empty string")
        if not fields.upstream:
            raise ConfigError(where, f"{place}.upstream", "is required and must be a non-empty host:port string")
        entries.append(fields)
    return entries
