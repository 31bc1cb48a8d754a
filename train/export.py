"""Save a trained policy as a plain Hugging Face checkpoint that transformers and vLLM load unchanged.

A LoRA run saves its adapter (`adapter/`) and, with `merge=True`, the base model with the adapter merged in
(`W + (alpha / r) * B @ A` on every adapted layer, PEFT's `merge_and_unload`). The merge reloads the base model on
CPU in the main process instead of merging the live training model: that works the same whether the training
model is plain, DDP-wrapped or sharded by ZeRO-3, and leaves the training model untouched. The processor
(tokenizer, image processor, chat template) is saved beside the weights.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from train.config.model import ModelConfig

logger = logging.getLogger(__name__)


def merge_adapter(base: ModelConfig, adapter_dir: str | Path, out: str | Path, processor: Any) -> Path:
    """Load `base` on CPU, apply the adapter saved in `adapter_dir`, merge it and save the result to `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[base.dtype]
    model = AutoModelForImageTextToText.from_pretrained(base.name_or_path, dtype=dtype)
    merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out = Path(out)
    merged.save_pretrained(out)
    processor.save_pretrained(out)
    logger.info("merged adapter %s into %s -> %s", adapter_dir, base.name_or_path, out)
    return out
