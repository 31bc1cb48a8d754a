"""The micro-batcher's launch rule: wait for every episode in flight, but never past the deadline."""

from __future__ import annotations

import asyncio
import time

import pytest

from rollout.engines.batcher import MicroBatcher


def _backend(seconds: float, sizes: list[int]):
    def run(batch: list[str]) -> list[str]:
        sizes.append(len(batch))
        time.sleep(seconds)
        return [f"out-{r}" for r in batch]

    return run


async def _arrivals(b: MicroBatcher[str, str], delays: list[float]) -> list[str]:
    async def one(i: int, d: float) -> str:
        await asyncio.sleep(d)
        return await b.submit(str(i))

    return list(await asyncio.gather(*(one(i, d) for i, d in enumerate(delays))))


def test_with_hints_it_waits_for_every_episode_in_flight_until_the_deadline() -> None:
    sizes: list[int] = []
    b: MicroBatcher[str, str] = MicroBatcher(_backend(0.2, sizes), max_batch_size=8, max_wait_frac=0.5)

    async def main() -> None:
        assert await b.submit("warm") == "out-warm"  # no estimate yet: the fixed window; now batch_s ~ 0.2 s
        for _ in range(3):
            b.episode_started()
        # three episodes come back from the sandbox 30 ms apart: one batch (deadline = 0.5 * 0.2 s = 0.1 s)
        assert await _arrivals(b, [0.0, 0.03, 0.06]) == ["out-0", "out-1", "out-2"]
        # a straggler 0.4 s late misses the deadline and gets a batch of its own
        await _arrivals(b, [0.0, 0.01, 0.4])
        b.episode_finished()
        b.episode_finished()
        # with one episode left in flight, its request goes at once: nobody else can come
        t0 = time.monotonic()
        await b.submit("last")
        assert time.monotonic() - t0 < 0.2 + 0.05
        await b.aclose()

    asyncio.run(main())
    assert sizes == [1, 3, 2, 1, 1]
    assert b.batch_s is not None and 0.15 < b.batch_s < 0.5


def test_without_hints_it_uses_the_fixed_window() -> None:
    sizes: list[int] = []
    b: MicroBatcher[str, str] = MicroBatcher(_backend(0.05, sizes), max_batch_size=8, wait_s=0.005)

    async def main() -> None:
        await _arrivals(b, [0.0, 0.0, 0.2])
        await b.aclose()

    asyncio.run(main())
    assert sizes == [2, 1]


def test_full_batches_go_at_once_and_errors_reach_every_caller() -> None:
    sizes: list[int] = []
    b: MicroBatcher[str, str] = MicroBatcher(_backend(0.0, sizes), max_batch_size=2, wait_s=1.0)

    async def main() -> None:
        for _ in range(5):
            b.episode_started()
        await _arrivals(b, [0.0, 0.0, 0.0, 0.0])
        await b.aclose()

    asyncio.run(main())
    assert sizes == [2, 2]

    def broken(batch: list[str]) -> list[str]:
        raise ValueError("backend failed")

    bad: MicroBatcher[str, str] = MicroBatcher(broken, max_batch_size=4)

    async def failing() -> list[BaseException | str]:
        out = await asyncio.gather(bad.submit("a"), bad.submit("b"), return_exceptions=True)
        await bad.aclose()
        return out

    assert all(isinstance(e, ValueError) for e in asyncio.run(failing()))
    with pytest.raises(ValueError, match="max_wait_frac"):
        MicroBatcher(broken, max_wait_frac=2.0)
