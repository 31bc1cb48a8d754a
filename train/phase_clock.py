"""Wall time and peak accelerator memory per phase of a training step (rollout, advantages, update, sync).

The RL trainer wraps each phase in `clock.phase(name)`; `clock.metrics()` gives `time/<phase>` in seconds and, on
a CUDA device, `memory/<phase>_peak_gib`: the most memory the caching allocator held for tensors during the phase
(`torch.cuda.max_memory_allocated`, its peak reset when the phase starts) and `memory/reserved_gib` at the end of the
step. On a CPU there is no per-phase allocator peak to read, so no memory metric is written (absent, not 0).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

GIB = float(1 << 30)


class PhaseClock:
    """Times phases of one step; reads the CUDA allocator's peak per phase when `device` is a CUDA device."""

    def __init__(self, device: Any) -> None:
        import torch

        self._cuda = torch.device(device).type == "cuda" and torch.cuda.is_available()
        self._device = torch.device(device)
        self._times: dict[str, float] = {}
        self._peaks: dict[str, float] = {}

    @contextmanager
    def phase(self, name: str) -> Iterator[None]:
        """Time the body (and, on CUDA, its peak memory) under `name`; a phase entered twice adds up its time."""
        import torch

        if self._cuda:
            torch.cuda.synchronize(self._device)
            torch.cuda.reset_peak_memory_stats(self._device)
        t0 = time.perf_counter()
        try:
            yield
        finally:
            if self._cuda:
                torch.cuda.synchronize(self._device)
                peak = torch.cuda.max_memory_allocated(self._device) / GIB
                self._peaks[name] = max(self._peaks.get(name, 0.0), peak)
            self._times[name] = self._times.get(name, 0.0) + time.perf_counter() - t0

    def add(self, name: str, seconds: float) -> None:
        """Record a duration measured elsewhere (e.g. the sandbox's share of the rollout, summed over episodes)."""
        self._times[name] = self._times.get(name, 0.0) + seconds

    def metrics(self) -> dict[str, float]:
        """`time/<phase>` for every phase, `memory/<phase>_peak_gib` and `memory/reserved_gib` on CUDA."""
        out = {f"time/{k}": v for k, v in self._times.items()}
        if self._cuda:
            import torch

            out.update({f"memory/{k}_peak_gib": v for k, v in self._peaks.items()})
            out["memory/reserved_gib"] = torch.cuda.memory_reserved(self._device) / GIB
        return out
