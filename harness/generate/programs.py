"""Programs with an oracle: a program is generated from a spec, so its result is known before it runs.

This module is the generator's front door; the parts live next to it:

- ``spec``: what a program does, as data (``ProgramSpec``: steps and an ending; ``RawProgram``);
- ``render``: the spec as Python or bash source;
- ``oracle``: ``expect``, the result the platform must report for a spec (``Expected``);
- ``environment``: the lines that report one aspect of the environment (the environment family);
- ``edges``: the parity surface's declared edges and which ones a program reaches (coverage);
- ``catalogue``: the concrete values programs are built from;
- ``strategies``: Hypothesis strategies (``program_specs``), for the search;
- ``mix``: the declared mix (``parity-v1``), drawn independently with a seeded ``random.Random``,
  for the gate's rate bound.
"""

from __future__ import annotations

from harness.generate.catalogue import PY_EXCEPTIONS
from harness.generate.oracle import Expected, expect
from harness.generate.render import render
from harness.generate.spec import (
    ASPECTS,
    DEADLINE_S,
    Background,
    CommandNotFound,
    Ending,
    Exit,
    ExitMessage,
    FileRoundTrip,
    InputEOF,
    Language,
    Late,
    ListDir,
    MemoryHit,
    Program,
    ProgramSpec,
    Raise,
    RawProgram,
    ReadStdin,
    Report,
    Signal,
    SpecError,
    Step,
    Stream,
    SyntaxErr,
    Timeout,
    Write,
    WriteBytes,
)
from harness.generate.strategies import endings, program_specs, texts

__all__ = [
    "ASPECTS", "DEADLINE_S", "PY_EXCEPTIONS", "Background", "CommandNotFound", "Ending", "Exit", "ExitMessage",
    "Expected", "FileRoundTrip", "InputEOF", "Language", "Late", "ListDir", "MemoryHit", "Program", "ProgramSpec",
    "Raise", "RawProgram", "ReadStdin", "Report", "Signal", "SpecError", "Step", "Stream", "SyntaxErr", "Timeout",
    "Write", "WriteBytes", "endings", "expect", "program_specs", "render", "texts",
]
