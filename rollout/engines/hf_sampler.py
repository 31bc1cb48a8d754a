"""Per-request seeded sampling for `HFEngine`: each row of a batch draws from its own random stream.

`model.generate(do_sample=True)` draws every row of a batch from one global RNG, so what a request samples depends
on which other requests happened to share its batch, and under the concurrent episode loop batch composition
depends on timing. That makes rollouts irreproducible. `PerRowSampler` is a logits processor that does the
sampling itself: temperature, then top-k, then top-p (the order and semantics of transformers' warpers), then
inverse-CDF sampling with one uniform number per row, and returns scores that are -inf everywhere except the drawn
token, so greedy decoding after it emits exactly that token.

The uniform number of row r at decoding step t is a counter-based hash of (the request's seed, t): no RNG state is
shared between rows, so a request samples the same tokens whatever batch it lands in (up to floating-point
differences in the logits between batch shapes), and everything is batched tensor work on the model's device (a
per-row `torch.Generator` + `multinomial` loop was measured 3.05x slower than transformers' sampling at batch 64
on an H100; this is 1.02x at batch 16 and 1.06x at batch 64 there, and 0.73x on this CPU at batch 16, with a
152k vocabulary: `scripts/bench/hf_sampling.py`). The hash is 32-bit "lowbias32" (C. Wellons) computed in int64 with
products kept below 2^63; two of them give a 53-bit uniform. The engine's logprobs are computed from the raw
logits, not from these scores.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

_M32 = 0xFFFFFFFF


def _mul32(x: Any, c: int) -> Any:
    """(x * c) mod 2^32 for int64 tensors holding 32-bit values, without int64 overflow."""
    return ((x & 0xFFFF) * c + ((((x >> 16) * c) & 0xFFFF) << 16)) & _M32


def hash32(x: Any) -> Any:
    """lowbias32 on an int64 tensor of 32-bit values (elementwise)."""
    x = x & _M32
    x = x ^ (x >> 16)
    x = _mul32(x, 0x7FEB352D)
    x = x ^ (x >> 15)
    x = _mul32(x, 0x846CA68B)
    return x ^ (x >> 16)


class PerRowSampler:
    """A transformers `LogitsProcessor` (duck-typed: `__call__(input_ids, scores) -> scores`), one per batch."""

    def __init__(self, seeds: Sequence[int | None], *, temperature: float, top_p: float, top_k: int, device: Any) -> None:
        import torch

        if temperature <= 0:
            raise ValueError("PerRowSampler is for sampling; temperature 0 is greedy decoding")
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        # an unseeded request gets a fresh random seed: nondeterministic, as it should be
        full = [int(s) if s is not None else random.getrandbits(64) for s in seeds]
        lo = torch.tensor([s & _M32 for s in full], dtype=torch.long, device=device)
        hi = torch.tensor([(s >> 32) & _M32 for s in full], dtype=torch.long, device=device)
        self._key = hash32(lo ^ hash32(hi ^ 0x5BD1E995))
        self._step = 0

    def uniforms(self) -> Any:
        """This step's uniform number in [0, 1) for every row (float64), then advance the step."""
        import torch

        h1 = hash32(self._key ^ hash32(torch.full_like(self._key, self._step)))
        h2 = hash32(h1 ^ 0x68E31DA4)
        self._step += 1
        return ((h1 << 21) + (h2 >> 11)).double() / float(1 << 53)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.temperature
        if self.top_k and 0 < self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        order = None
        if self.top_p < 1.0:  # keep the smallest prefix of the sorted distribution whose mass reaches top_p
            logits, order = torch.sort(logits, descending=True, dim=-1)
            probs = torch.softmax(logits, dim=-1)
            probs = probs.masked_fill(probs.cumsum(dim=-1) - probs >= self.top_p, 0.0)
        else:
            probs = torch.softmax(logits, dim=-1)
        cdf = probs.double().cumsum(dim=-1)
        target = (self.uniforms() * cdf[:, -1]).unsqueeze(-1)
        picked = torch.searchsorted(cdf, target, right=True).clamp_(max=cdf.shape[-1] - 1)
        if order is not None:
            picked = order.gather(-1, picked)
        out = torch.full_like(scores, float("-inf"))
        out.scatter_(-1, picked, 0.0)
        return out
