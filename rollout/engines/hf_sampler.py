"""Per-request seeded sampling for `HFEngine`: each row of a batch draws from its own RNG.

`model.generate(do_sample=True)` draws every row of a batch from one global RNG, so what a request samples depends
on which other requests happened to share its batch, and under the concurrent episode loop batch composition
depends on timing. That makes rollouts irreproducible. `PerRowSampler` is a logits processor that does the
sampling itself: temperature, then top-k, then top-p (the order and semantics of transformers' warpers), then one
`torch.multinomial` draw per row from that row's `torch.Generator` (seeded with the request's seed), and returns
scores that are -inf everywhere except the drawn token, so greedy decoding after it emits exactly that token. A
request then samples the same tokens whatever batch it lands in, up to floating-point differences in the logits
between batch shapes (left padding). The engine's logprobs are computed from the raw logits, not from these scores.

Cost: one small `multinomial` per row per decoding step (a Python loop over the batch), about 10-20 us each on a
GPU: noise next to a real model's step at the batch sizes this engine is for (vLLM's engines sample in-kernel).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any


class PerRowSampler:
    """A transformers `LogitsProcessor` (duck-typed: `__call__(input_ids, scores) -> scores`)."""

    def __init__(self, seeds: Sequence[int | None], *, temperature: float, top_p: float, top_k: int, device: Any) -> None:
        import torch

        if temperature <= 0:
            raise ValueError("PerRowSampler is for sampling; temperature 0 is greedy decoding")
        self.temperature = temperature
        self.top_p = top_p
        self.top_k = top_k
        self.generators = []
        for seed in seeds:
            g = torch.Generator(device=device)
            if seed is None:
                g.seed()  # nondeterministic, as an unseeded request should be
            else:
                g.manual_seed(int(seed) % (2**63))
            self.generators.append(g)

    def __call__(self, input_ids: Any, scores: Any) -> Any:
        import torch

        logits = scores.float() / self.temperature
        if self.top_k and self.top_k > 0 and self.top_k < logits.shape[-1]:
            kth = torch.topk(logits, self.top_k, dim=-1).values[..., -1:]
            logits = logits.masked_fill(logits < kth, float("-inf"))
        if self.top_p < 1.0:
            sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
            cum = torch.softmax(sorted_logits, dim=-1).cumsum(dim=-1)
            drop = cum - torch.softmax(sorted_logits, dim=-1) >= self.top_p  # keep the smallest set reaching top_p
            sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
            logits = torch.full_like(logits, float("-inf")).scatter(-1, order, sorted_logits)
        probs = torch.softmax(logits, dim=-1)
        out = torch.full_like(scores, float("-inf"))
        for row, g in enumerate(self.generators):
            token = torch.multinomial(probs[row], 1, generator=g)
            out[row, token] = 0.0
        return out
