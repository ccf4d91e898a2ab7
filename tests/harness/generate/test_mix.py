"""The declared mix ``parity-v1``: seeded, independent draws in the declared proportions, each with an oracle."""

from __future__ import annotations

from collections import Counter

from harness.generate.mix import MIX, MIX_NAME, sample
from harness.generate.programs import ProgramSpec, expect


def test_the_same_seed_draws_the_same_programs_and_another_seed_others() -> None:
    assert sample(50, seed=3, output_cap=1000) == sample(50, seed=3, output_cap=1000)
    assert sample(50, seed=3, output_cap=1000) != sample(50, seed=4, output_cap=1000)


def test_the_families_come_in_their_declared_proportions() -> None:
    drawn = Counter(family for family, _ in sample(20000, seed=0, output_cap=1000))
    for name, share, _ in MIX:
        assert abs(drawn[name] / 20000 - share / 100) < 0.01, (name, drawn[name])


def test_every_program_has_an_oracle_and_duplicates_are_kept() -> None:
    programs = [spec for _, spec in sample(2000, seed=1, output_cap=1000)]
    assert all(isinstance(p, ProgramSpec) and expect(p, output_cap=1000) is not None for p in programs)
    assert len(set(programs)) < len(programs)  # independent draws repeat; a sample keeps every one


def test_the_mix_is_named() -> None:
    assert MIX_NAME == "parity-v1"
