"""PerRowSampler: the distribution it samples (temperature, top-k, top-p by hand) and per-row reproducibility."""

from __future__ import annotations

import math

import pytest
import torch

from rollout.engines.hf_sampler import PerRowSampler

LOGITS = [2.0, 1.0, 0.0, -1.0]
CPU = torch.device("cpu")


def _frequencies(sampler: PerRowSampler, rows: int, draws: int) -> list[float]:
    x = torch.tensor([LOGITS] * rows)
    counts = torch.zeros(len(LOGITS))
    for _ in range(draws):
        out = sampler(None, x)
        assert bool(((out == 0) | (out == float("-inf"))).all()) and bool((out == 0).sum(-1).eq(1).all())
        counts += torch.bincount(out.argmax(-1), minlength=len(LOGITS)).float()
    return (counts / counts.sum()).tolist()


def test_top_p_keeps_the_smallest_prefix_reaching_p() -> None:
    # softmax(2, 1, 0, -1) = .644, .237, .087, .032; top_p .8: keep {0, 1} (mass before token 2 is .881 >= .8)
    p = [math.exp(v) for v in LOGITS]
    expected = [p[0] / (p[0] + p[1]), p[1] / (p[0] + p[1]), 0.0, 0.0]
    freq = _frequencies(PerRowSampler(list(range(50)), temperature=1.0, top_p=0.8, top_k=0, device=CPU), 50, 200)
    assert freq == pytest.approx(expected, abs=0.015)


def test_temperature_and_top_k() -> None:
    p = [math.exp(v / 2.0) for v in LOGITS[:3]]
    expected = [x / sum(p) for x in p] + [0.0]
    freq = _frequencies(PerRowSampler(list(range(50)), temperature=2.0, top_p=1.0, top_k=3, device=CPU), 50, 200)
    assert freq == pytest.approx(expected, abs=0.015)


def test_each_row_follows_its_own_seed_wherever_it_sits() -> None:
    x = torch.randn(3, 1000)
    a = PerRowSampler([11, 12, 13], temperature=1.0, top_p=0.9, top_k=0, device=CPU)
    b = PerRowSampler([99, 13, 11], temperature=1.0, top_p=0.9, top_k=0, device=CPU)
    xb = x[[1, 2, 0]]  # row 0 of a sits at row 2 of b, row 2 of a at row 1 of b
    for _ in range(20):
        ta, tb = a(None, x).argmax(-1), b(None, xb).argmax(-1)
        assert ta[0] == tb[2] and ta[2] == tb[1]
    with pytest.raises(ValueError, match="greedy"):
        PerRowSampler([0], temperature=0.0, top_p=1.0, top_k=0, device=CPU)


def _lowbias32(x: int) -> int:  # the reference, in Python's exact integers
    x &= 0xFFFFFFFF
    x ^= x >> 16
    x = (x * 0x7FEB352D) & 0xFFFFFFFF
    x ^= x >> 15
    x = (x * 0x846CA68B) & 0xFFFFFFFF
    return x ^ (x >> 16)


def test_the_tensor_hash_is_lowbias32_and_uniforms_are_uniform() -> None:
    from rollout.engines.hf_sampler import hash32

    xs = [0, 1, 2, 12345, 0x7FFFFFFF, 0x80000000, 0xDEADBEEF, 0xFFFFFFFF]
    assert hash32(torch.tensor(xs, dtype=torch.long)).tolist() == [_lowbias32(x) for x in xs]
    s = PerRowSampler(list(range(4000)), temperature=1.0, top_p=1.0, top_k=0, device=CPU)
    u = torch.cat([s.uniforms() for _ in range(5)])
    assert 0.0 <= float(u.min()) and float(u.max()) < 1.0
    assert abs(float(u.mean()) - 0.5) < 0.01 and abs(float((u < 0.1).double().mean()) - 0.1) < 0.01
