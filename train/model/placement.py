"""Put a batch of model inputs where the model is: its device, and its dtype for floating-point image inputs.

`rollout.expand.trainer_inputs` builds CPU tensors (the rollout side never knows where the trainer lives); every
forward pass in `train` goes through this so the same code runs on CPU, one GPU, or a DeepSpeed-sharded model.
"""

from __future__ import annotations

from typing import Any

# Floating-point inputs that enter the vision tower in the model's compute dtype; everything else keeps its dtype
# (ids and masks stay integer, old logprobs stay float32 for the importance ratio).
_MODEL_DTYPE_KEYS = ("pixel_values",)


def model_device(model: Any) -> Any:
    """The device of the model's first parameter (where its embeddings live)."""
    return next(model.parameters()).device


def to_model(inputs: dict[str, Any], model: Any) -> dict[str, Any]:
    """A copy of `inputs` with every tensor on the model's device and `pixel_values` in the model's dtype."""
    import torch

    device = model_device(model)
    dtype = getattr(model, "dtype", None)
    out: dict[str, Any] = {}
    for key, value in inputs.items():
        if isinstance(value, torch.Tensor):
            if key in _MODEL_DTYPE_KEYS and dtype is not None and value.is_floating_point():
                value = value.to(device=device, dtype=dtype)
            else:
                value = value.to(device)
        out[key] = value
    return out
