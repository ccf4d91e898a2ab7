"""The parity suite: generated programs through both paths, classified against each other and the oracle.

The suite's parts, each in its own module:

- ``session``: ``ParitySession`` sends programs under one plan and classifies each one (``Check``);
- ``search``: ``search`` hunts counterexamples with Hypothesis (zero tolerance, shrinking) and
  ``sample`` draws the gate's evidence from the declared mix (``parity-v1``); the profiles;
- ``calibrate``: A/A calibration (the same programs twice through one path);
- ``coverage``: the coverage table of the parity surface's edges;
- ``outputs``: what a run leaves in its folder (``observations.parquet``, ``parity_history.parquet``,
  ``parity.md``).

This module gathers their public names, so callers import from one place.
"""

from __future__ import annotations

from harness.parity.calibrate import Calibration, calibrate
from harness.parity.outputs import write_outputs
from harness.parity.search import (
    _MAX_EXAMPLES,
    BATCH_SIZE,
    EXAMPLE_DB,
    POPULATION,
    SHRINK_S,
    ParityFailure,
    SearchOutcome,
    batches,
    check_profile,
    register_profiles,
    sample,
    search,
)
from harness.parity.session import SEARCH, Check, ParitySession, observations_frame

__all__ = [
    "BATCH_SIZE", "EXAMPLE_DB", "POPULATION", "SEARCH", "SHRINK_S", "_MAX_EXAMPLES", "Calibration", "Check", "ParityFailure",
    "ParitySession", "SearchOutcome", "batches", "calibrate", "check_profile", "observations_frame",
    "register_profiles", "sample", "search", "write_outputs",
]
