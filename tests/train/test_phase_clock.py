"""PhaseClock: seconds per phase always, peak CUDA memory per phase only where there is a CUDA device."""

from __future__ import annotations

import time

import pytest

from train.phase_clock import PhaseClock


def test_phases_are_timed_and_a_repeated_phase_adds_up_on_cpu() -> None:
    clock = PhaseClock("cpu")
    with clock.phase("update"):
        time.sleep(0.02)
    with clock.phase("update"):
        time.sleep(0.02)
    clock.add("sandbox", 1.5)
    m = clock.metrics()
    assert set(m) == {"time/update", "time/sandbox"}  # no memory metric on a CPU: absent, not 0
    assert 0.04 <= m["time/update"] < 1.0
    assert m["time/sandbox"] == 1.5


def test_a_failing_phase_is_still_timed_and_the_error_raises() -> None:
    clock = PhaseClock("cpu")
    with pytest.raises(ZeroDivisionError), clock.phase("advantages"):
        _ = 1 / 0
    assert "time/advantages" in clock.metrics()


@pytest.mark.gpu
def test_peak_memory_per_phase_on_cuda() -> None:
    import torch

    clock = PhaseClock("cuda")
    with clock.phase("small"):
        a = torch.empty(1 << 20, dtype=torch.uint8, device="cuda")  # 1 MiB
    with clock.phase("big"):
        b = torch.empty(512 << 20, dtype=torch.uint8, device="cuda")  # 512 MiB
        del b
    m = clock.metrics()
    assert m["memory/big_peak_gib"] >= 0.5
    assert m["memory/small_peak_gib"] < m["memory/big_peak_gib"] - 0.4  # the peak was reset between phases
    assert m["memory/reserved_gib"] > 0
    del a
