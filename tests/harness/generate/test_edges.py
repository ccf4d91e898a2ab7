"""The coverage table's edges: which ones a program reaches, and that the ``ci`` search reaches them all."""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

from harness.generate.edges import (
    EDGES,
    coverage,
    edges_of,
    edges_text,
    missing_edges,
    parse_edges,
    stream_edges,
)
from harness.generate.programs import (
    Exit,
    Late,
    ProgramSpec,
    RawProgram,
    Report,
    Signal,
    SyntaxErr,
    Write,
    WriteBytes,
    program_specs,
)
from harness.parity.suite import _MAX_EXAMPLES, BATCH_SIZE, batches

CAP = 100


@pytest.mark.parametrize("raw, expected", [
    (b"", {"nothing"}),
    (b"\n", {"empty-line"}),
    (b"a \nb", {"trailing-blank", "no-final-newline"}),
    (b"a\r\nb\rc\n", {"crlf", "cr"}),
    (b"\x00\xff\n", {"nul", "invalid-utf8"}),
    (b"\x1b[0m\n", {"control"}),
    ("é\n".encode(), {"unicode"}),
    (b"x" * 99, {"below-cap", "no-final-newline"}),
    (b"x" * 100, {"at-cap", "no-final-newline"}),
    (b"x" * 101, {"above-cap", "no-final-newline"}),
    (b"x" * 200, {"far-above-cap", "no-final-newline"}),
    (b"x" * 99 + "é\n".encode(), {"above-cap", "cap-cuts-character", "unicode"}),
    (b"x" * 98 + "é\n".encode(), {"above-cap", "unicode"}),
])
def test_stream_edges_name_what_the_bytes_do_at_the_cap(raw: bytes, expected: set[str]) -> None:
    assert stream_edges(raw, CAP) == expected


def test_a_program_reaches_only_what_runs() -> None:
    never = ProgramSpec("python", (Write("stdout", "x \n"),), SyntaxErr())
    assert ("output", "trailing-blank") not in edges_of(never, CAP)
    assert ("output", "trailing-blank") in edges_of(ProgramSpec("bash", (Write("stdout", "x \n"),), SyntaxErr()), CAP)
    late = edges_of(ProgramSpec("bash", (WriteBytes("stderr", b"\x00"),), Late(1.4, 3)), CAP)
    assert {("timed_out", "ends-just-after"), ("status", "timeout"), ("exit_code", "timeout-137"), ("error", "nul")} <= late
    assert ("exit_code", "python-sigint") in edges_of(ProgramSpec("python", (), Signal(2)), CAP)
    assert ("exit_code", "signal-1..31") in edges_of(ProgramSpec("bash", (), Signal(2)), CAP)
    assert ("exit_code", "exit-wraps") in edges_of(ProgramSpec("bash", (), Exit(256)), CAP)
    assert ("environment", "umask") in edges_of(ProgramSpec("bash", (Report("umask"),), Exit(0)), CAP)
    assert edges_of(RawProgram("bash", "exit 3"), CAP) == frozenset()


def test_coverage_lists_every_declared_edge_and_names_the_missing_ones() -> None:
    counts = coverage([edges_of(ProgramSpec("python", (Write("stdout", "\n"),), Exit(0)), CAP)])
    assert set(counts) == set(EDGES)
    assert counts[("output", "empty-line")] == 1 and ("output", "nul") in missing_edges(counts)
    assert parse_edges(edges_text([("output", "nul"), ("exit_code", "exit-0")])) == [("exit_code", "exit-0"),
                                                                                  ("output", "nul")]


@pytest.mark.parametrize("search_seed", [0, 1, 2])
def test_the_ci_profile_reaches_every_edge(search_seed: int) -> None:
    """What the ``ci`` search generates (its examples, its batches; seeds 0, 1, 2; duplicates counted once)
    reaches every declared edge: none is left to luck."""
    seen: list[ProgramSpec] = []

    @seed(search_seed)
    @settings(max_examples=_MAX_EXAMPLES["ci"], deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(batches(program_specs(output_cap=65536), BATCH_SIZE["ci"]))
    def generate(batch: list[ProgramSpec]) -> None:
        seen.extend(batch)

    generate()
    counts = coverage(edges_of(p, 65536) for p in dict.fromkeys(seen))
    assert missing_edges(counts) == [], f"{len(dict.fromkeys(seen))} distinct programs"


@settings(max_examples=200, deadline=None, suppress_health_check=list(HealthCheck))
@given(st.data())
def test_every_generated_spec_survives_its_stored_form(data: st.DataObject) -> None:
    spec = data.draw(program_specs(output_cap=CAP))
    assert ProgramSpec.from_dict(spec.to_dict()) == spec
