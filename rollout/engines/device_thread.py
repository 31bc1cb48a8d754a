"""One dedicated thread per process for every call into an in-process GPU backend (the colocated vLLM engine).

Why a dedicated thread, and not `asyncio.to_thread`: the CUDA device and the CUDA stream are per thread. vLLM's
worker sets the device when the `vllm.LLM` is built and then runs on a stream it creates for, and stores in, the
thread that first asks for one (`vllm.utils.torch_utils.current_stream`, a thread-local). A call from another
thread runs on that thread's device (cuda:0 unless set: wrong on every rank with LOCAL_RANK != 0) and on that
thread's stream, so a weight copy made there is not ordered before the next generation on vLLM's stream.
`asyncio.to_thread` picks any thread of the default pool, so successive batches may run on different threads.

`DeviceThread` is a one-worker `ThreadPoolExecutor` whose worker first binds the process's device
(`torch.cuda.set_device(LOCAL_RANK)` when CUDA is present): every function submitted to it, from the `vllm.LLM`
constructor to the last `generate`, runs on that same thread, in submission order. `call` runs a function there
and waits for it (what the trainer-facing `sleep` / `wake_up` / `update_weights` use); `executor` is what the
micro-batcher runs its batches on. A call made from the device thread itself runs inline (no deadlock).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

R = TypeVar("R")


def local_rank(environ: Mapping[str, str] | None = None) -> int:
    """This process's local rank (`LOCAL_RANK`, set by accelerate/torchrun; 0 without a launcher)."""
    env = os.environ if environ is None else environ
    value = env.get("LOCAL_RANK", "0")
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"LOCAL_RANK must be an integer, got {value!r}") from None


def bind_cuda_device(rank: int) -> None:
    """`torch.cuda.set_device(rank)` when CUDA is available (no-op on CPU-only machines)."""
    import torch

    if torch.cuda.is_available():
        if rank >= torch.cuda.device_count():
            raise RuntimeError(f"LOCAL_RANK={rank} but this process sees {torch.cuda.device_count()} CUDA device(s)")
        torch.cuda.set_device(rank)


class DeviceThread:
    """A single worker thread bound to this process's device (module docstring)."""

    def __init__(self, device_index: int | None = None, *, bind: Callable[[int], None] = bind_cuda_device,
                 name: str = "codevl-device") -> None:
        """
        device_index: the CUDA device the thread binds to; None: `LOCAL_RANK` (0 without a launcher).
        bind: what binds the thread to the device, run first on the thread (default `torch.cuda.set_device`).
        """
        self.device_index = local_rank() if device_index is None else int(device_index)
        self._bind = bind
        self._ident: int | None = None
        self._ready = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=name, initializer=self._start)

    def _start(self) -> None:
        self._ident = threading.get_ident()
        self._bind(self.device_index)  # an exception here breaks the pool: every later call raises it
        self._ready.set()

    @property
    def executor(self) -> ThreadPoolExecutor:
        """The one-worker executor (for `loop.run_in_executor` / `MicroBatcher(executor=...)`)."""
        return self._pool

    @property
    def ident(self) -> int | None:
        """The worker thread's identifier (None before its first call)."""
        return self._ident

    def on_thread(self) -> bool:
        """Whether the caller is the device thread."""
        return self._ident is not None and threading.get_ident() == self._ident

    def call(self, fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
        """Run `fn(*args, **kwargs)` on the device thread and return its result (or raise its exception)."""
        if self.on_thread():
            return fn(*args, **kwargs)
        return self._pool.submit(fn, *args, **kwargs).result()

    def check(self) -> None:
        """Raise if the caller is not the device thread (a guard inside backend functions)."""
        if not self.on_thread():
            raise RuntimeError(f"a backend call ran on thread {threading.current_thread().name!r}, not on the "
                               "engine's device thread: route it through DeviceThread.call")

    def shutdown(self) -> None:
        """Stop the thread once the calls already submitted have run."""
        self._pool.shutdown(wait=True)
