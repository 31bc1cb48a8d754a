"""Batches of trajectories: padding collation and token-budget batching (shared by the SFT and RL stages).

Trajectories differ in length by 10-100x (a no-tool answer vs a twelve-turn search with crops). Fixed-size
batches pad every short sample to the longest one in its batch, or run out of memory on the unlucky batch that
draws three long ones. `token_budget_batches` instead packs samples of similar length together so that each batch
holds at most `max_tokens` *padded* tokens (count x longest), counted after image expansion.

`TokenBudgetBatchSampler` fixes the batch composition once (seeded), and shuffles the order of those batches every
epoch with `seed + epoch`. Keeping the composition fixed keeps the number of batches per epoch fixed, which the
schedule (total optimizer steps), checkpoint resume (skip the first k batches of the epoch) and data-parallel
sharding (every rank gets whole batches) all rely on.
"""

from __future__ import annotations

import random
from collections.abc import Iterator, Sequence
from typing import Any


def token_budget_batches(lengths: Sequence[int], max_tokens: int, *, max_batch_size: int | None = None,
                         seed: int = 0) -> list[list[int]]:
    """Indices grouped so that `len(batch) * max(length in batch) <= max_tokens` (a single sample longer than the
    budget gets a batch of its own). Samples are sorted by length (ties broken by a seeded shuffle) and packed
    greedily, longest first."""
    order = list(range(len(lengths)))
    random.Random(seed).shuffle(order)
    order.sort(key=lambda i: -lengths[i])  # stable: the shuffle breaks ties
    batches: list[list[int]] = []
    cur: list[int] = []
    cur_max = 0
    for i in order:
        n = lengths[i]
        new_max = max(cur_max, n)
        full = max_batch_size is not None and len(cur) >= max_batch_size
        if cur and (new_max * (len(cur) + 1) > max_tokens or full):
            batches.append(cur)
            cur, new_max = [], n
        cur.append(i)
        cur_max = new_max
    if cur:
        batches.append(cur)
    return batches


def fixed_size_batches(n: int, batch_size: int, *, seed: int = 0) -> list[list[int]]:
    """Seeded shuffle of `range(n)` cut into batches of `batch_size` (the last may be smaller)."""
    order = list(range(n))
    random.Random(seed).shuffle(order)
    return [order[i:i + batch_size] for i in range(0, n, batch_size)]


class TokenBudgetBatchSampler:
    """A batch sampler over fixed batches whose order is reshuffled each epoch (`set_epoch`)."""

    def __init__(self, batches: Sequence[Sequence[int]], *, seed: int = 0, shuffle: bool = True) -> None:
        self.batches = [list(b) for b in batches]
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.batches)

    def __iter__(self) -> Iterator[list[int]]:
        order = list(range(len(self.batches)))
        if self.shuffle:
            random.Random(self.seed * 1_000_003 + self.epoch).shuffle(order)
        for i in order:
            yield list(self.batches[i])


def pad_collate(samples: Sequence[dict[str, Any]], pad_token_id: int) -> dict[str, Any]:
    """Right-pad 1-D `input_ids` / `labels` / `mm_token_type_ids` (and any other 1-D per-token tensors) to the
    longest sample; concatenate `pixel_values` and `image_grid_thw` in sample order (what Qwen-VL's forward takes
    for a batch of several images); build `attention_mask`. Labels pad with -100, ids with `pad_token_id`."""
    import torch

    longest = max(int(s["input_ids"].shape[0]) for s in samples)
    fills = {"input_ids": pad_token_id, "labels": -100, "mm_token_type_ids": 0}
    out: dict[str, Any] = {}
    per_token = [k for k, v in samples[0].items() if k not in ("pixel_values", "image_grid_thw") and v.dim() == 1]
    for key in per_token:
        fill = fills.get(key, 0)
        rows = []
        for s in samples:
            v = s[key]
            pad = longest - v.shape[0]
            rows.append(torch.cat([v, v.new_full((pad,), fill)]) if pad else v)
        out[key] = torch.stack(rows)
    out["attention_mask"] = torch.stack([
        torch.cat([torch.ones(int(s["input_ids"].shape[0]), dtype=torch.long),
                   torch.zeros(longest - int(s["input_ids"].shape[0]), dtype=torch.long)]) for s in samples])
    pv = [s["pixel_values"] for s in samples if s.get("pixel_values") is not None]
    if pv:
        out["pixel_values"] = torch.cat(pv)
        out["image_grid_thw"] = torch.cat([s["image_grid_thw"] for s in samples if s.get("image_grid_thw") is not None])
    return out


class TrajectoryCollator:
    """`pad_collate` with the tokenizer's pad id, as a picklable callable for DataLoader workers."""

    def __init__(self, pad_token_id: int) -> None:
        self.pad_token_id = int(pad_token_id)

    def __call__(self, samples: Sequence[dict[str, Any]]) -> dict[str, Any]:
        return pad_collate(samples, self.pad_token_id)
