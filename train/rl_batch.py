"""From scored trajectories to what the RL update consumes: per-token tensors, made once per step.

Each valid trajectory becomes an `RLSample`: its expanded inputs (`rollout.expand.trainer_inputs`: image
placeholders expanded, pixel values computed once and reused by the old-logprob, reference and update passes),
the loss mask (1 only on tokens the policy sampled), the engine's sampling logprobs, and the per-token advantages
(`train.advantages.token_advantages`, placed on the step's own tokens in dense mode). Micro-batches are formed by
a token budget after expansion (`train.batching.token_budget_batches`) and padded by `train.batching.pad_collate`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from rollout.expand import trainer_inputs
from rollout.trajectory import FinishReason, Trajectory
from train.batching import pad_collate, token_budget_batches

FORWARD_KEYS = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw")
FAILED = (FinishReason.ENGINE_ERROR, FinishReason.SANDBOX_ERROR)
TRUNCATED = (FinishReason.TURN_LIMIT, FinishReason.TOKEN_LIMIT, FinishReason.IMAGE_LIMIT)


@dataclass
class StepBatch:
    """The episodes of one step on this process, scored, with why each is or is not trained on."""

    trajectories: list[Trajectory]
    breakdowns: list[Any]
    excluded: list[str | None]  # None: trained on; else the reason (engine_error, judge_failed, truncated, ...)
    filtered_groups: int = 0
    rounds: int = 1


def exclusion(traj: Trajectory, breakdown: Any, mask_truncated: bool) -> str | None:
    """Why an episode is left out of the loss (None: it is trained on). Failures are data, never zeros."""
    if traj.finish_reason in FAILED:
        return traj.finish_reason.value
    failed = breakdown.failed()
    if failed:
        return "reward_failed:" + ",".join(failed)
    if mask_truncated and traj.finish_reason in TRUNCATED:
        return "truncated"
    return None


@dataclass
class RLSample:
    """One episode's tensors for the update (1-D per-token tensors of the expanded length)."""

    index: int  # position of the trajectory in the step's list
    tensors: dict[str, Any]
    length: int
    weight: float = 1.0  # 0 for a placeholder that keeps a process in step with the others (no loss)
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def num_loss_tokens(self) -> int:
        return int(self.tensors["loss_mask"].sum().item()) if self.weight else 0


def make_sample(index: int, traj: Trajectory, processor: Any, *, episode_adv: float, step_adv: np.ndarray | None,
                step_coef: float, weight: float = 1.0, pixels: Any = None) -> RLSample:
    """Expand `traj` and place its advantages on its sampled tokens (`weight=0`: a placeholder, all zeros).
    `pixels`: a `rollout.image_cache.ProcessedImages` shared by the step's samples (a group's rollouts share their
    input image), or None to process the images here."""
    import torch

    from train.advantages import token_advantages

    images = [im.array for im in traj.images]
    inp = trainer_inputs(traj.token_ids, images, processor, loss_mask=traj.loss_mask, step_ids=traj.step_ids,
                         logprobs=traj.logprobs, pixels=pixels)
    mask = inp["loss_mask"][0].numpy() * (1 if weight else 0)
    steps = inp["step_ids"][0].numpy()
    adv = token_advantages(episode_adv, step_adv, steps, mask, step_coef=step_coef) if weight else np.zeros(len(mask))
    tensors = {
        "input_ids": inp["input_ids"][0],
        "mm_token_type_ids": inp["mm_token_type_ids"][0],
        "loss_mask": torch.as_tensor(mask, dtype=torch.float32),
        "advantages": torch.as_tensor(adv, dtype=torch.float32),
        "engine_logprobs": inp["old_logprobs"][0].float(),
    }
    if "pixel_values" in inp:
        tensors["pixel_values"] = inp["pixel_values"]
        tensors["image_grid_thw"] = inp["image_grid_thw"]
    return RLSample(index, tensors, int(inp["input_ids"].shape[1]), weight)


def micro_batches(samples: Sequence[RLSample], max_tokens: int, *, seed: int) -> list[list[RLSample]]:
    """Samples grouped so that each micro-batch holds at most `max_tokens` padded tokens."""
    groups = token_budget_batches([s.length for s in samples], max_tokens, seed=seed)
    return [[samples[i] for i in g] for g in groups]


def collate(samples: Sequence[RLSample], pad_token_id: int) -> dict[str, Any]:
    """Padded batch of the samples' tensors plus `attention_mask` (float per-token arrays pad with 0)."""
    return pad_collate([s.tensors for s in samples], pad_token_id)


def forward_inputs(batch: dict[str, Any]) -> dict[str, Any]:
    """The keys of a collated batch that the model's forward takes."""
    return {k: batch[k] for k in FORWARD_KEYS if k in batch}


def split_minibatches(n: int, parts: int, *, seed: int) -> list[list[int]]:
    """`range(n)` shuffled (seeded) into `parts` nearly equal mini-batches (none empty while n >= parts)."""
    order = list(range(n))
    np.random.default_rng(seed).shuffle(order)
    return [order[i::parts] for i in range(parts)]
