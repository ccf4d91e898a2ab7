"""The gateway's settings, read once from the environment at start (see app.py for the variables).

The limits (``MAX_CODE_BYTES``, ``MAX_TIMEOUT_S``, ``MAX_BODY_BYTES``, ``MAX_WAIT_S``) are settings, and the OpenAPI
schema is built from them, so ``/openapi.json`` states the limits of the gateway that serves it.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from dataclasses import dataclass

from system_under_test import defects
from system_under_test.contract import FALLBACK_MODES
from system_under_test.gateway.split import SplitPolicy
from system_under_test.settings import ConfigError, env_bool, env_float, env_int, env_list, env_str

# Room in a body for everything but the code: the other fields, their names, some whitespace.
ENVELOPE_BYTES = 4096


def default_max_body_bytes(max_code_bytes: int) -> int:
    """The smallest body limit that never refuses a valid submission sent as compact JSON.

    A code of ``max_code_bytes`` bytes takes at most 6 bytes of JSON per byte of UTF-8 (a control
    character escaped as ``\\u00XX``; an escaped non-ASCII character takes less per byte).
    """
    return 6 * max_code_bytes + ENVELOPE_BYTES


@dataclass(frozen=True)
class GatewaySettings:
    host: str
    port: int
    redis_url: str
    broker_url: str
    policy: SplitPolicy
    admin_token: str
    max_code_bytes: int
    max_timeout_s: float
    max_body_bytes: int
    max_wait_s: float
    seed: int | None
    candidate_defects: tuple[str, ...] = ()  # the power check's switchable defects (defects.py)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> GatewaySettings:
        """The settings from ``env`` (default: the process's environment).

        Raises ConfigError, naming the variable, when a value is unusable.
        """
        env = os.environ if env is None else env
        routing = env_str("SPLIT_ROUTING", "random", env=env)
        if routing not in ("random", "sticky"):
            raise ConfigError("SPLIT_ROUTING", routing, "expected 'random' or 'sticky'")
        fallback = env_str("CELERY_FALLBACK", "none", env=env)
        if fallback not in FALLBACK_MODES:
            raise ConfigError("CELERY_FALLBACK", fallback, f"expected one of {', '.join(FALLBACK_MODES)}")
        celery_enabled = env_bool("CELERY_ENABLED", True, env=env)
        accept_legacy = env_bool("ACCEPT_LEGACY_TASKS", True, env=env)
        if not celery_enabled and not accept_legacy:
            raise ConfigError("ACCEPT_LEGACY_TASKS", env_str("ACCEPT_LEGACY_TASKS", "", env=env),
                              "it cannot be false while CELERY_ENABLED is false: no path would take work "
                              "(set one of them to true)")
        seed = env_str("GATEWAY_SEED", "", env=env)
        max_code_bytes = env_int("MAX_CODE_BYTES", 65536, minimum=1, env=env)
        max_timeout_s = env_float("MAX_TIMEOUT_S", 60.0, minimum=0.01, env=env)
        max_wait_s = env_float("MAX_WAIT_S", 120.0, minimum=0, env=env)
        for name, value in (("MAX_TIMEOUT_S", max_timeout_s), ("MAX_WAIT_S", max_wait_s)):
            if not math.isfinite(value):
                raise ConfigError(name, str(value), "expected a finite number of seconds")
        return cls(
            host=env_str("GATEWAY_HOST", "127.0.0.1", env=env),
            port=env_int("GATEWAY_PORT", 8000, minimum=0, maximum=65535, env=env),
            redis_url=env_str("REDIS_URL", "redis://127.0.0.1:6379/0", env=env),
            broker_url=env_str("CELERY_BROKER_URL", "redis://127.0.0.1:6380/0", env=env),
            policy=SplitPolicy(
                celery_enabled=celery_enabled,
                celery_percentage=env_float("CELERY_PERCENTAGE", 50.0, minimum=0, maximum=100, env=env),
                routing=routing,  # type: ignore[arg-type]
                dual_write=env_bool("DUAL_WRITE", False, env=env),
                fallback=fallback,
                accept_legacy=accept_legacy,
            ),
            admin_token=env_str("ADMIN_TOKEN", "", env=env),
            max_code_bytes=max_code_bytes,
            max_timeout_s=max_timeout_s,
            max_body_bytes=env_int("MAX_BODY_BYTES", default_max_body_bytes(max_code_bytes), minimum=1, env=env),
            max_wait_s=max_wait_s,
            seed=int(seed) if seed else None,
            candidate_defects=tuple(defects.parse(env_list("CELERY_CANDIDATE_DEFECTS", [], env=env))),
        )
