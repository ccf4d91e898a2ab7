"""Toxic runners on one stage, without sockets: exact piece counts and ordering.

Spec §5 case 39 counts slicer pieces, which TCP would coalesce, so it is checked here
at the stage level the way Toxiproxy's own tests check it (on the stub's output).
"""

from __future__ import annotations

import asyncio
import random
import time

from hypothesis import given, settings
from hypothesis import strategies as st

from harness.faultproxy.api import clean_path
from harness.faultproxy.pipeline import EOF, Chunk, Item, Stage
from harness.faultproxy.schema import ToxicSpec, float32_value
from harness.faultproxy.toxics import runner_for, slice_sizes


class Collect:
    def __init__(self) -> None:
        self.items: list[Item] = []

    def put(self, item: Item) -> None:
        self.items.append(item)


class Owner:
    def __init__(self) -> None:
        self.discarded = 0

    def discard(self, item: Item) -> None:
        if isinstance(item, Chunk):
            self.discarded += len(item.data)


def run_toxic(toxic_type: str, attributes: dict[str, int], chunks: list[bytes], *, toxicity: float = 1.0) -> list[Item]:
    async def main() -> list[Item]:
        loop = asyncio.get_running_loop()
        out = Collect()
        spec = ToxicSpec("t", toxic_type, "upstream", toxicity, attributes)
        stage = Stage(Owner(), spec, out, loop, random.Random(7))
        stage.start(runner_for(toxic_type, stage.rng.random() < toxicity), True)
        for data in chunks:
            stage.put(Chunk(data, loop.time()))
        stage.put(EOF)
        assert stage.task is not None
        await asyncio.wait_for(stage.task, 5)
        return out.items

    return asyncio.run(main())


def sizes(items: list[Item]) -> list[int]:
    return [len(item.data) for item in items if isinstance(item, Chunk)]


def test_the_slicer_cuts_480_kb_into_240_to_720_pieces_that_reassemble() -> None:
    data = b"hello world " * 40_000
    items = run_toxic("slicer", {"average_size": 1024, "size_variation": 512, "delay": 10}, [data])
    assert 240 <= len(sizes(items)) <= 720
    assert b"".join(item.data for item in items if isinstance(item, Chunk)) == data
    assert items[-1] is EOF


def test_the_slicer_with_average_one_makes_one_byte_pieces() -> None:
    items = run_toxic("slicer", {"average_size": 1, "size_variation": 0, "delay": 0}, [b"x" * 24])
    assert sizes(items) == [1] * 24


@settings(max_examples=200, deadline=None)
@given(
    length=st.integers(min_value=1, max_value=200_000),
    average=st.integers(min_value=1, max_value=5000),
    spread=st.floats(min_value=0, max_value=0.999),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_slice_sizes_always_cover_the_chunk_with_bounded_non_empty_pieces(
    length: int, average: int, spread: float, seed: int
) -> None:
    variation = int(average * spread)
    pieces = slice_sizes(length, average, variation, random.Random(seed))
    assert sum(pieces) == length
    assert all(0 < piece <= average + variation for piece in pieces)


def test_limit_data_truncates_the_crossing_chunk_and_closes() -> None:
    items = run_toxic("limit_data", {"bytes": 100}, [b"a" * 90, b"b" * 20, b"c" * 5])
    assert sizes(items) == [90, 10] and items[-1] is EOF


def test_bandwidth_zero_passes_a_lone_eof() -> None:
    assert run_toxic("bandwidth", {"rate": 0}, []) == [EOF]


def test_timeout_drops_data_but_passes_eof() -> None:
    assert run_toxic("timeout", {"timeout": 0}, [b"gone", b"also gone"]) == [EOF]


def test_a_toxic_that_lost_its_toxicity_draw_passes_everything() -> None:
    items = run_toxic("timeout", {"timeout": 0}, [b"kept"], toxicity=0.0)
    assert sizes(items) == [4] and items[-1] is EOF


def test_toxicity_is_stored_as_float32_and_echoed_shortest() -> None:
    assert float32_value(0.2) == 0.2
    assert float32_value(0.123456789) == 0.12345679
    assert float32_value(2.5) == 2.5


def test_paths_are_cleaned_like_go_with_the_trailing_slash_kept() -> None:
    assert clean_path("//proxies") == "/proxies"
    assert clean_path("/proxies/") == "/proxies/"
    assert clean_path("/a/./b/../c") == "/a/c"
    assert clean_path("") == "/"


def test_the_slicer_waits_its_delay_after_every_slice_even_when_the_loop_wakes_late() -> None:
    """Toxiproxy sleeps ``delay`` after each slice; a timetable would send two at once after a stall."""
    delay_s = 0.002

    async def main() -> list[float]:
        loop = asyncio.get_running_loop()
        stamps: list[float] = []

        class Stamp:
            def put(self, item: Item) -> None:
                if isinstance(item, Chunk):
                    stamps.append(loop.time())

        spec = ToxicSpec("t", "slicer", "upstream", 1.0, {"average_size": 100, "size_variation": 50, "delay": 2000})
        stage = Stage(Owner(), spec, Stamp(), loop, random.Random(7))
        stage.start(runner_for("slicer", True), True)

        def stall() -> None:  # a busy loop: the slicer's timer fires up to 4 ms late
            time.sleep(0.004)
            if stage.task is not None and not stage.task.done():
                loop.call_later(0.003, stall)

        loop.call_later(0.001, stall)
        stage.put(Chunk(b"x" * 3000, loop.time()))
        stage.put(EOF)
        assert stage.task is not None
        await asyncio.wait_for(stage.task, 5)
        return stamps

    stamps = asyncio.run(main())
    gaps = [later - earlier for earlier, later in zip(stamps, stamps[1:], strict=False)]
    assert len(stamps) >= 20
    # asyncio may fire a timer up to its clock resolution (1 ns) early: allow 1 µs.
    assert min(gaps) >= delay_s - 1e-6, [round(gap * 1000, 3) for gap in gaps]
