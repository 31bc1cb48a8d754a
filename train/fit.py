"""Fit a model to a handful of trajectories with full-batch AdamW: the demo's and the tests' small SFT.

The loss is next-token cross-entropy on assistant tokens only: on a token-exact trajectory its loss mask (what
the policy sampled), on a message-level one (oracle or teacher data) the assistant content rendered by the
chat template plus its end-of-turn token (`rollout.render.ChatRenderer.render_ids`). Observations, prompts and
image tokens carry no loss. Real SFT runs use the SFT stage (TRL) with the same rendering; this exists so that a
tiny model can learn a few trajectories in seconds on CPU (e.g. to make it write code for rollout tests).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rollout.expand import trainer_inputs
from rollout.render import ChatRenderer
from rollout.trajectory import Trajectory
from train.model.placement import to_model


def sft_example(traj: Trajectory, processor: Any, renderer: ChatRenderer | None = None) -> dict[str, Any]:
    """Model inputs plus `labels` (-100 off the loss) for one trajectory."""
    images = [im.array for im in traj.images]
    if traj.tokenized:
        ids, mask = traj.token_ids, traj.loss_mask
    else:
        r = (renderer or ChatRenderer(processor)).render_ids(traj.messages())
        ids, mask = r.token_ids, r.assistant_mask
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
