"""The shared stack options: every StackConfig field is an option with a checked type."""

from __future__ import annotations

import argparse
import dataclasses

from harness.commands import _NOT_OPTIONS, STACK_OPTION_TYPES, add_stack_options, stack_config
from harness.stack.config import StackConfig


def test_every_stack_config_field_is_an_option_with_a_checked_type() -> None:
    for f in dataclasses.fields(StackConfig):
        if f.name in _NOT_OPTIONS or isinstance(f.default, bool):
            continue
        assert f.name in STACK_OPTION_TYPES, f"StackConfig.{f.name} has no option type in harness/commands.py"
    parser = argparse.ArgumentParser()
    add_stack_options(parser)
    args = parser.parse_args(["--fallback", "safe", "--no-accept-legacy", "--celery-topology", "plan",
                              "--celery-percentage", "90"])
    config = stack_config(args)
    assert (config.fallback, config.accept_legacy, config.celery_topology, config.celery_percentage) == (
        "safe", False, "plan", 90)
