"""Typed reading of the environment variables that configure every role.

Each role reads its settings once at start-up through these helpers, so a bad value fails fast with
a message that names the variable, the value found and the rule it broke, instead of surfacing later
as a confusing runtime error.
"""

from __future__ import annotations

import os
from collections.abc import Mapping


class ConfigError(ValueError):
    """An environment variable has a value the role cannot use."""

    def __init__(self, name: str, value: str, rule: str) -> None:
        super().__init__(f"environment variable {name}={value!r} is invalid: {rule}")
        self.name = name
        self.value = value
        self.rule = rule


_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_str(name: str, default: str, env: Mapping[str, str] | None = None) -> str:
    return (os.environ if env is None else env).get(name, default)


def env_bool(name: str, default: bool, env: Mapping[str, str] | None = None) -> bool:
    raw = (os.environ if env is None else env).get(name)
    if raw is None:
        return default
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ConfigError(name, raw, "expected one of true/false/1/0/yes/no/on/off")


def env_int(
    name: str, default: int, *, minimum: int | None = None, maximum: int | None = None,
    env: Mapping[str, str] | None = None,
) -> int:
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(name, raw, "expected a whole number") from None
    _check_range(name, raw, value, minimum, maximum)
    return value


def env_float(
    name: str, default: float, *, minimum: float | None = None, maximum: float | None = None,
    env: Mapping[str, str] | None = None,
) -> float:
    raw = (os.environ if env is None else env).get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        value = float(raw)
    except ValueError:
        raise ConfigError(name, raw, "expected a number") from None
    _check_range(name, raw, value, minimum, maximum)
    return value


def env_list(name: str, default: list[str], env: Mapping[str, str] | None = None) -> list[str]:
    raw = (os.environ if env is None else env).get(name)
    if raw is None:
        return list(default)
    return [part.strip() for part in raw.split(",") if part.strip()]


def _check_range(name: str, raw: str, value: float, lo: float | None, hi: float | None) -> None:
    if lo is not None and value < lo:
        raise ConfigError(name, raw, f"must be >= {lo}")
    if hi is not None and value > hi:
        raise ConfigError(name, raw, f"must be <= {hi}")
