"""Model section: which checkpoint, precision, what is frozen, LoRA, memory savers."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from train.config.base import StrictModel


class LoraConfig(StrictModel):
    """LoRA through PEFT on the language model's linear layers (the vision tower stays frozen or full)."""

    r: int = Field(64, gt=0, description="adapter rank")
    alpha: int = Field(128, gt=0, description="scaling numerator (effective scale alpha / r)")
    dropout: float = Field(0.05, ge=0.0, lt=1.0)
    target_modules: list[str] = Field(
        default_factory=lambda: ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
        min_length=1,
        description="module name suffixes in the language model to adapt",
    )


class ModelConfig(StrictModel):
    """How to load the policy. `name_or_path` is a local directory (or a hub id where the hub is reachable)."""

    name_or_path: str = Field(..., min_length=1)
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "bfloat16"
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] = "sdpa"
    freeze_vision_tower: bool = True
    freeze_projector: bool = True
    gradient_checkpointing: bool = False
    min_pixels: int | None = Field(None, gt=0, description="image processor lower bound on pixels per image")
    max_pixels: int | None = Field(None, gt=0, description="image processor upper bound on pixels per image")
    finetune: Literal["full", "lora"] | None = Field(
        None, description="full or lora; unset: lora when a `lora` section is given, else full")
    lora: LoraConfig | None = None

    @model_validator(mode="after")
    def _pixels_ordered(self) -> ModelConfig:
        if self.finetune == "full" and self.lora is not None:
            raise ValueError("model.finetune=full asks for full fine-tuning but model.lora is set too; remove the "
                             "lora section for full fine-tuning, or set model.finetune=lora")
        if self.finetune == "lora" and self.lora is None:
            self.lora = LoraConfig()
        if self.min_pixels is not None and self.max_pixels is not None and self.min_pixels > self.max_pixels:
            raise ValueError(
                f"model.min_pixels ({self.min_pixels}) is larger than model.max_pixels ({self.max_pixels}); "
                "lower min_pixels or raise max_pixels"
            )
        if self.freeze_projector and not self.freeze_vision_tower:
            raise ValueError(
                "model.freeze_projector=true with model.freeze_vision_tower=false trains the vision tower under a "
                "frozen projector; set both to the same value, or freeze_projector=false"
            )
        return self
