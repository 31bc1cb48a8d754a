"""Turn many concurrent `await engine.generate(...)` calls into batched calls of a synchronous backend.

Episodes call the engine one request at a time from their own asyncio tasks. A `MicroBatcher` queues those
requests, and a single worker task takes whatever is waiting (up to `max_batch_size`, after waiting `wait_s` for
stragglers), runs the backend's blocking batch function in a thread, and resolves each caller's future. The event
loop stays free while a batch runs, so episodes that are executing code in the sandbox keep going: that overlap is
what the concurrent episode loop is for. One batch runs at a time (one model on one device). By default the
batch runs in a thread of asyncio's default pool (`asyncio.to_thread`); an engine whose backend must always be
called from the same thread (the colocated vLLM engine: CUDA device and stream are per thread) passes its own
one-worker `executor` (`rollout.engines.device_thread.DeviceThread`).

When to launch a batch. A static-batching backend (`model.generate`, `vllm.LLM.generate`) cannot take requests
into a batch that is already running: a request that misses the batch waits for it to finish and then pays a whole
batch of its own. When episodes come back from the sandbox a few milliseconds apart, launching on the first one
splits one batch into several and costs a full decode pass each (measured on an H100: the concurrent loop was 1.4x
slower than lock-step before this rule). So the batcher is told how many episodes are in flight
(`episode_started` / `episode_finished`, called by the episode loop) and, once a request is waiting, it launches as
soon as every episode in flight is waiting (nobody else can come), the batch is full, or a deadline passes: a
fraction (`max_wait_frac`) of the recent batch duration, capped at `max_wait_s`. The deadline is what keeps one
slow code block from holding everyone back, which is exactly where lock-step loses. Without episode hints the
batcher waits a fixed `wait_s` for stragglers.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Executor
from typing import Generic, TypeVar

Req = TypeVar("Req")
Out = TypeVar("Out")


class MicroBatcher(Generic[Req, Out]):
    def __init__(self, run_batch: Callable[[list[Req]], Sequence[Out]], *, max_batch_size: int = 32,
                 wait_s: float = 0.002, max_wait_frac: float = 0.5, max_wait_s: float = 2.0,
                 name: str = "engine", executor: Executor | None = None) -> None:
        if max_batch_size <= 0:
            raise ValueError(f"max_batch_size must be positive, got {max_batch_size}")
        if not 0 <= max_wait_frac <= 1:
            raise ValueError(f"max_wait_frac must be in [0, 1], got {max_wait_frac}")
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self.wait_s = wait_s
        self.max_wait_frac = max_wait_frac
        self.max_wait_s = max_wait_s
        self.in_flight = 0  # episodes that will call again (episode loop hints)
        self.batch_s: float | None = None  # moving average of the backend's batch duration
        self.name = name
        self.executor = executor
        self._queue: asyncio.Queue[tuple[Req, asyncio.Future[Out]]] | None = None
        self._worker: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self.batches = 0
        self.requests = 0

    def _ensure_worker(self) -> None:
        loop = asyncio.get_running_loop()
        if self._worker is None or self._worker.done() or self._loop is not loop:
            self._loop = loop
            self._queue = asyncio.Queue()
            self._worker = loop.create_task(self._work(), name=f"{self.name}-batcher")

    def episode_started(self) -> None:
        """Hint from the episode loop: one more episode will be sending requests."""
        self.in_flight += 1

    def episode_finished(self) -> None:
        """Hint from the episode loop: an episode will send no more requests."""
        self.in_flight = max(0, self.in_flight - 1)

    def _deadline(self) -> float:
        if self.batch_s is None:
            return self.wait_s
        return min(self.max_wait_s, max(self.wait_s, self.max_wait_frac * self.batch_s))

    async def _gather(self, queue: asyncio.Queue[tuple[Req, asyncio.Future[Out]]],
                      batch: list[tuple[Req, asyncio.Future[Out]]]) -> None:
        """Add waiting requests to `batch` until the launch rule (module docstring) says go."""
        if self.in_flight <= 0:  # no hints: the fixed straggler window
            if self.wait_s > 0:
                await asyncio.sleep(self.wait_s)
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            return
        end = time.monotonic() + self._deadline()
        while len(batch) < self.max_batch_size:
            while len(batch) < self.max_batch_size and not queue.empty():
                batch.append(queue.get_nowait())
            if len(batch) >= min(self.max_batch_size, self.in_flight):
                return
            remaining = end - time.monotonic()
            if remaining <= 0:
                return
            try:
                batch.append(await asyncio.wait_for(queue.get(), remaining))
            except TimeoutError:
                return

    async def submit(self, request: Req) -> Out:
        self._ensure_worker()
        assert self._queue is not None
        fut: asyncio.Future[Out] = asyncio.get_running_loop().create_future()
        await self._queue.put((request, fut))
        return await fut

    async def _work(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            first = await queue.get()
            batch = [first]
            await self._gather(queue, batch)
            live = [(r, f) for r, f in batch if not f.cancelled()]
            if not live:
                continue
            t0 = time.monotonic()
            try:
                reqs = [r for r, _ in live]
                if self.executor is None:
                    outs = await asyncio.to_thread(self._run_batch, reqs)
                else:
                    outs = await asyncio.get_running_loop().run_in_executor(self.executor, self._run_batch, reqs)
                if len(outs) != len(live):
                    raise RuntimeError(f"{self.name}: backend returned {len(outs)} outputs for {len(live)} requests")
            except BaseException as exc:
                for _, f in live:
                    if not f.done():
                        f.set_exception(exc if isinstance(exc, Exception) else RuntimeError(repr(exc)))
                if not isinstance(exc, Exception):
                    raise
                continue
            took = time.monotonic() - t0
            self.batch_s = took if self.batch_s is None else 0.7 * self.batch_s + 0.3 * took
            self.batches += 1
            self.requests += len(live)
            for (_, f), out in zip(live, outs, strict=True):
                if not f.done():
                    f.set_result(out)

    async def aclose(self) -> None:
        if self._worker is not None:
            self._worker.cancel()
            try:
                await self._worker
            except (asyncio.CancelledError, RuntimeError):
                pass
            self._worker = None
