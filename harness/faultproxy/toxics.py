"""The built-in toxics: what each one does to the chunks of one link.

Each toxic is a coroutine that runs on a :class:`~.pipeline.Stage`: it takes items
from the stage's inbox, and forwards, delays, splits, drops or ends them. The
behaviour follows Toxiproxy 2.12's ``toxics/*.go`` (see the spec, §3):

- ``latency``: each chunk is released at its arrival time + latency ± jitter; chunks
  queue, so throughput is not capped; time spent in earlier toxics counts.
- ``bandwidth``: about ``rate`` KB/s (1 KB = 1000 B); big chunks go out in 100 ms
  slices; ``rate`` 0 holds all data (a "cut") and keeps the connection open.
- ``slow_close``: data passes; the close is held for ``delay`` ms.
- ``timeout``: drops all data and closes the link after ``timeout`` ms without data
  (0: never by itself). Removing it closes the link (handled by the link).
- ``reset_peer``: discards the first chunk (or EOF), waits ``timeout`` ms and closes;
  the connection's sockets have SO_LINGER 0, so the peers see a reset.
- ``slicer``: splits chunks around ``average_size`` ± ``size_variation`` bytes and
  waits ``delay`` µs after sending each piece, so pieces never go out back to back (a
  delay under ~1 ms usually takes ~1 ms: the loop's timer precision).
- ``limit_data``: forwards ``bytes`` bytes per connection and direction, then closes.
- ``noop``: passes everything through.

Latency and bandwidth waits are deadline based (the loop's timers are only ~1 ms
precise), so a run of short waits keeps its average rate instead of rounding every wait
up; the slicer's are not, because Toxiproxy promises a gap after every piece.
"""

from __future__ import annotations

import asyncio
import random

from .pipeline import EOF, Chunk, Runner, Stage


async def run_noop(stage: Stage) -> None:
    while True:
        item = await stage.take()
        if item is EOF:
            stage.close()
            return
        stage.forward()


async def run_latency(stage: Stage) -> None:
    latency, jitter = stage.spec.attr("latency"), stage.spec.attr("jitter")
    rng, loop = stage.rng, stage.loop
    while True:
        item = await stage.take()
        if not isinstance(item, Chunk):
            stage.close()
            return
        delay = latency + (rng.randrange(-jitter, jitter) if jitter > 0 else 0)
        release = item.ts + delay / 1000
        if release > loop.time():
            await stage.sleep_until(release)
        item.ts = release
        stage.forward()


async def run_bandwidth(stage: Stage) -> None:
    rate = stage.spec.attr("rate")
    loop = stage.loop
    if rate <= 0:
        # Toxiproxy sends empty slices forever: nothing is delivered, the link stays open.
        if await stage.take() is EOF:
            stage.close()
            return
        await loop.create_future()
    per_second = rate * 1000
    slice_size = rate * 100
    due = loop.time()
    while True:
        item = await stage.take()
        if not isinstance(item, Chunk):
            stage.close()
            return
        # No credit for idle time, but lateness of our own (a busy loop) is caught up on:
        # the schedule restarts from when the chunk arrived, not from when we got to it.
        if due < item.ts:
            due = item.ts
        while len(item.data) > slice_size:
            due += 0.1
            await stage.sleep_until(due)
            stage.forward_piece(slice_size)
        due += len(item.data) / per_second
        await stage.sleep_until(due)
        stage.forward()


async def run_slow_close(stage: Stage) -> None:
    delay = stage.spec.attr("delay")
    while True:
        item = await stage.take()
        if item is EOF:
            await stage.sleep_until(stage.loop.time() + delay / 1000)
            stage.close()
            return
        stage.forward()


async def run_timeout(stage: Stage) -> None:
    timeout = stage.spec.attr("timeout")
    wait = timeout / 1000 if timeout > 0 else None
    while True:
        item = await stage.take(wait)  # the timer restarts after every dropped chunk
        if item is None or item is EOF:
            stage.close()
            return
        stage.drop()


async def run_reset_peer(stage: Stage) -> None:
    if stage.doom_at is None:
        await stage.take()
        stage.drop()
        stage.doom_at = stage.loop.time() + stage.spec.attr("timeout") / 1000
    await stage.sleep_until(stage.doom_at)
    stage.close()


def slice_sizes(length: int, average: int, variation: int, rng: random.Random) -> list[int]:
    """Piece sizes, in order, for one chunk: Toxiproxy's recursive midpoint split.

    Needs ``average >= 1`` and ``0 <= variation < average`` (the API enforces it), which
    keeps every piece non-empty and the split finite.
    """
    sizes: list[int] = []
    todo = [(0, length)]
    while todo:
        start, end = todo.pop()
        if (end - start) - average <= variation:
            sizes.append(end - start)
            continue
        mid = start + (end - start) // 2
        if variation > 0:
            mid += rng.randrange(2 * variation) - variation
        todo.append((mid, end))
        todo.append((start, mid))
    return sizes


async def run_slicer(stage: Stage) -> None:
    spec = stage.spec
    average, variation = spec.attr("average_size"), spec.attr("size_variation")
    delay = spec.attr("delay") / 1_000_000
    while True:
        item = await stage.take()
        if not isinstance(item, Chunk):
            stage.close()
            return
        sizes = slice_sizes(len(item.data), average, variation, stage.rng)
        for index, size in enumerate(sizes):
            if index == len(sizes) - 1:
                stage.forward()
            else:
                stage.forward_piece(size)
            if delay > 0:
                # The full delay after every slice, however late this wake-up was: a timetable
                # would catch up by sending two slices back to back, which a reader gets as one.
                await asyncio.sleep(delay)


async def run_limit_data(stage: Stage) -> None:
    limit = stage.spec.attr("bytes")
    while True:
        item = await stage.take()
        if not isinstance(item, Chunk):
            stage.close()
            return
        sent: int = stage.state.get("sent", 0)
        remaining = limit - sent
        if remaining > 0:
            if remaining < len(item.data):
                stage.truncate(remaining)
            stage.state["sent"] = sent + len(item.data)
            remaining -= len(item.data)
            stage.forward()
        if remaining <= 0:
            stage.close()
            return


RUNNERS: dict[str, Runner] = {
    "latency": run_latency,
    "bandwidth": run_bandwidth,
    "slow_close": run_slow_close,
    "timeout": run_timeout,
    "reset_peer": run_reset_peer,
    "slicer": run_slicer,
    "limit_data": run_limit_data,
    "noop": run_noop,
}


def runner_for(toxic_type: str, active: bool) -> Runner:
    """The coroutine for a toxic type; an inactive toxic (lost its toxicity draw) is a noop."""
    return RUNNERS[toxic_type] if active else run_noop
