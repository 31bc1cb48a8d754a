"""Fit a model in memory to a handful of trajectories with full-batch AdamW, in seconds: a test utility.

Why it exists beside the SFT stage (`train/sft.py`): the HF engine's tests teach a tiny model one exact trajectory
so that greedy decoding must reproduce it token for token, without files, a trainer or a run directory. The labels
follow the SFT stage's one rule (`train.sft_labels`: the assistant's tokens plus each turn's end-of-turn token).
Training runs, the demo included, use the SFT stage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout.expand import trainer_inputs
from rollout.render import ChatRenderer
from rollout.trajectory import Trajectory
from train.model.placement import to_model
from train.sft_labels import sft_tokens


def sft_example(traj: Trajectory, processor: Any, renderer: ChatRenderer | None = None) -> dict[str, Any]:
    """Model inputs plus `labels` (-100 off the loss) for one trajectory."""
    images = [im.array for im in traj.images]
    ids, mask = sft_tokens(traj, renderer or ChatRenderer(processor))
    inputs = trainer_inputs(ids, images, processor, loss_mask=mask)
    labels = inputs["input_ids"].clone()
    labels[inputs.pop("loss_mask") == 0] = -100
    inputs["labels"] = labels
    return inputs


def fit_trajectories(model: Any, processor: Any, trajectories: Sequence[Trajectory], *, steps: int, lr: float = 3e-3,
                     seed: int = 0) -> list[float]:
    """`steps` AdamW steps, each over all trajectories (summed token-mean losses); returns the loss per step.
    Leaves the model in eval mode."""
    import torch

    torch.manual_seed(seed)
    renderer = ChatRenderer(processor)
    examples = [to_model(sft_example(t, processor, renderer), model) for t in trajectories]
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.AdamW(params, lr=lr)
    model.train()
    losses: list[float] = []
    for _ in range(steps):
        total = 0.0
        for ex in examples:
            loss = model(**ex).loss / len(examples)
            loss.backward()
            total += float(loss.item())
        opt.step()
        opt.zero_grad(set_to_none=True)
        losses.append(total)
    model.eval()
    return losses
