"""Per-token logprobs of a sequence under the policy: the training-side twin of the engines' sampling logprobs.

`log_softmax(logits / temperature)` at each position, gathered at the next token, over the full vocabulary:
exactly what the engines report for sampled tokens (`rollout.engines.hf`, vLLM with processed logprobs), so the
ratio between the two is the importance weight between rollout and trainer policies.
"""

from __future__ import annotations

from typing import Any


def token_logprobs(model: Any, inputs: dict[str, Any], *, temperature: float = 1.0) -> Any:
    """(batch, seq) tensor: entry t is log p(input_ids[t] | input_ids[:t]); entry 0 is 0.

    `inputs` holds `input_ids`, `attention_mask` and optionally `pixel_values` / `image_grid_thw`
    (`rollout.expand.trainer_inputs`), on any device: they are moved to the model's."""
    import torch

    from train.model.placement import to_model

    inputs = to_model(inputs, model)
    fwd = {k: inputs[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw") if k in inputs}
    logits = model(**fwd).logits.float()
    scale = temperature if temperature > 0 else 1.0
    logp = torch.log_softmax(logits[:, :-1] / scale, dim=-1)
    picked = logp.gather(-1, inputs["input_ids"][:, 1:, None]).squeeze(-1)
    return torch.cat([torch.zeros_like(picked[:, :1]), picked], dim=1)
