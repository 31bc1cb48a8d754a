"""Load a Qwen-VL policy and its processor from a ModelConfig: dtype, frozen parts, LoRA, checkpointing.

One path for every checkpoint (real ones and the offline tiny model): `AutoModelForImageTextToText` plus
`train.model.processor.load_processor`.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from train.config.model import ModelConfig
from train.model.paths import check_model_path
from train.model.processor import load_processor

logger = logging.getLogger(__name__)

# Parameter-name patterns (transformers >= 5 layout: model.visual.*, model.language_model.*, lm_head).
VISION_PREFIX = "model.visual."
PROJECTOR_PATTERN = re.compile(r"^model\.visual\.(merger|deepstack_merger_list)\b")
LANGUAGE_MODEL_PREFIX = "model.language_model."


def _torch_dtype(name: str) -> Any:
    import torch

    return {"auto": "auto", "float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}[name]


def freeze_parts(model: Any, *, vision_tower: bool, projector: bool) -> dict[str, int]:
    """Freeze the vision tower and/or the projector (merger); returns trainable/frozen parameter counts."""
    for name, param in model.named_parameters():
        if not name.startswith(VISION_PREFIX):
            continue
        is_projector = bool(PROJECTOR_PATTERN.match(name))
        if (is_projector and projector) or (not is_projector and vision_tower):
            param.requires_grad_(False)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
    return {"trainable": trainable, "frozen": total - trainable, "total": total}


def _apply_lora(model: Any, cfg: ModelConfig) -> Any:
    from peft import LoraConfig as PeftLoraConfig
    from peft import get_peft_model

    assert cfg.lora is not None
    # Adapt only the language model's linear layers (regex over full module names).
    targets = "|".join(re.escape(t) for t in cfg.lora.target_modules)
    pattern = rf"^{re.escape(LANGUAGE_MODEL_PREFIX)}.*\.({targets})$"
    # Vision parts trained in full under LoRA are PEFT `modules_to_save`: saved with the adapter (so a checkpoint
    # resumes them) and merged back by merge_and_unload.
    full = ["visual"] if not cfg.freeze_vision_tower else (
        ["merger", "deepstack_merger_list"] if not cfg.freeze_projector else [])
    peft_cfg = PeftLoraConfig(
        r=cfg.lora.r, lora_alpha=cfg.lora.alpha, lora_dropout=cfg.lora.dropout, target_modules=pattern,
        task_type="CAUSAL_LM", modules_to_save=full or None,
    )
    model = get_peft_model(model, peft_cfg)
    return model


def load_model(cfg: ModelConfig, *, device: str | None = None) -> tuple[Any, Any]:
    """(model, processor) for `cfg`. The model is in train mode only if the caller puts it there."""
    from transformers import AutoModelForImageTextToText

    check_model_path(cfg.name_or_path)

    model = AutoModelForImageTextToText.from_pretrained(
        cfg.name_or_path, dtype=_torch_dtype(cfg.dtype), attn_implementation=cfg.attn_implementation
    )
    counts = freeze_parts(model, vision_tower=cfg.freeze_vision_tower, projector=cfg.freeze_projector)
    if cfg.gradient_checkpointing:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        model.config.use_cache = False
    if cfg.lora is not None:
        model = _apply_lora(model, cfg)
        counts["trainable"] = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if device is not None:
        model.to(device)  # type: ignore[arg-type]
    logger.info("loaded %s: %s", cfg.name_or_path, counts)
    processor = load_processor(cfg.name_or_path, min_pixels=cfg.min_pixels, max_pixels=cfg.max_pixels)
    return model, processor
