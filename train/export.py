"""Save a trained policy as a plain Hugging Face checkpoint that transformers and vLLM load unchanged.

A LoRA run saves its adapter (`adapter/`) and, with `merge=True`, the base model with the adapter merged in
(`W + (alpha / r) * B @ A` on every adapted layer, PEFT's `merge_and_unload`). The merge reloads the base model on
CPU in the main process instead of merging the live training model: that works the same whether the training
model is plain, DDP-wrapped or sharded by ZeRO-3, and leaves the training model untouched. The processor
(tokenizer, image processor, chat template) is saved beside the weights.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from train.config.model import ModelConfig

logger = logging.getLogger(__name__)


@contextmanager
def _whole_models() -> Iterator[None]:
    """Models loaded in the body are whole: under a ZeRO-3 launch, transformers would otherwise partition every
    model it loads across the processes (`zero.Init`), and only the main process merges."""
    from transformers.integrations import deepspeed as hf_deepspeed

    # transformers keeps the ZeRO-3 switch as a weak reference in this module (there is no public getter of it)
    ref = hf_deepspeed._hf_deepspeed_config_weak_ref
    config = ref() if ref is not None else None
    hf_deepspeed.unset_hf_deepspeed_config()
    try:
        yield
    finally:
        if config is not None:
            hf_deepspeed.set_hf_deepspeed_config(config)


def merge_adapter(base: ModelConfig, adapter_dir: str | Path, out: str | Path, processor: Any) -> Path:
    """Load `base` on CPU, apply the adapter saved in `adapter_dir`, merge it and save the result to `out`."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForImageTextToText

    dtype = {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[base.dtype]
    with _whole_models():
        model = AutoModelForImageTextToText.from_pretrained(base.name_or_path, dtype=dtype)
        merged = PeftModel.from_pretrained(model, str(adapter_dir)).merge_and_unload()
    out = Path(out)
    merged.save_pretrained(out)
    processor.save_pretrained(out)
    logger.info("merged adapter %s into %s -> %s", adapter_dir, base.name_or_path, out)
    return out
