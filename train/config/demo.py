"""The CPU demo's config: everything small enough for a laptop, nothing downloaded (configs/demo/cpu.yaml).

`codevl demo --quick` applies `QUICK_OVERRIDES` (the test suite's smaller variant) before the user's overrides.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator

from train.config.base import StrictModel

GENERATOR_NAMES = ("orientation", "visual_search", "multi_tool", "symbolic")
ORACLE_VARIANTS = ("single_tool", "multi_tool", "multi_crop", "error_recovery", "no_tool")

# The smaller variant: two generators with short oracle trajectories, one RL step, a short held-out eval.
QUICK_OVERRIDES = (
    "data.tasks_per_generator=4", "data.eval_tasks_per_generator=2",
    "rl.steps=1", "rl.prompts_per_step=2", "rl.samples_per_task=2", "eval.max_turns=2",
)


def _small_images() -> dict[str, dict[str, Any]]:
    # Generators' defaults are training-sized (visual search up to 2400 px); the demo keeps images small.
    return {
        "orientation": {"min_side": 256, "max_side": 448},
        "visual_search": {"min_side": 512, "max_side": 768},
        "multi_tool": {"min_side": 512, "max_side": 768},
        "symbolic": {"min_side": 256, "max_side": 384},
    }


def _only(names: list[str], valid: tuple[str, ...], what: str, *, allow_empty: bool = False) -> list[str]:
    bad = [n for n in names if n not in valid]
    if bad or (not names and not allow_empty):
        raise ValueError(f"unknown {what}(s) {bad or '(none given)'}; valid: {', '.join(valid)}")
    return names


class DemoData(StrictModel):
    """Synthetic tasks (train and held-out eval) and the oracle trajectories of the train tasks (the SFT data)."""

    tasks_per_generator: int = Field(6, gt=0, le=1000)
    eval_tasks_per_generator: int = Field(4, gt=0, le=1000, description="held-out tasks (other seeds)")
    # visual_search and multi_tool are left out by default: their search-then-zoom oracle trajectories run to
    # ~1,000-1,450 tokens, more than a quarter-million-parameter model learns in a CPU demo's minutes
    generators: list[str] = Field(default_factory=lambda: ["orientation", "symbolic"])
    generator_config: dict[str, dict[str, Any]] = Field(default_factory=_small_images,
                                                        description="per generator: its config keys")
    oracle_variants: list[str] = Field(default_factory=lambda: ["single_tool"])

    @field_validator("generators")
    @classmethod
    def _known_generators(cls, v: list[str]) -> list[str]:
        return _only(v, GENERATOR_NAMES, "generator")

    @field_validator("generator_config")
    @classmethod
    def _known_generator_keys(cls, v: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        _only(list(v), GENERATOR_NAMES, "generator_config entry", allow_empty=True)
        return v

    @field_validator("oracle_variants")
    @classmethod
    def _known_variants(cls, v: list[str]) -> list[str]:
        return _only(v, ORACLE_VARIANTS, "oracle variant")


class DemoSFT(StrictModel):
    """The SFT stage (`train/sft.py`) on the oracle trajectories."""

    steps: int = Field(150, gt=0)
    lr: float = Field(3e-3, gt=0.0)
    max_tokens_per_batch: int = Field(16384, gt=0)


class DemoRL(StrictModel):
    """A few steps of the RL stage (`train/rl.py`) with the HF engine and real sandboxed multi-turn rollouts."""

    steps: int = Field(3, gt=0)
    prompts_per_step: int = Field(4, gt=0)
    samples_per_task: int = Field(4, ge=2, le=64)
    lr: float = Field(1e-4, gt=0.0)
    temperature: float = Field(1.0, gt=0.0, le=2.0)
    advantage: Literal["outcome", "dense"] = "dense"
    max_turns: int = Field(3, gt=0)
    max_new_tokens_per_turn: int = Field(192, gt=0)
    max_total_tokens: int = Field(3072, gt=0)


class DemoEval(StrictModel):
    """Greedy evaluation on the held-out tasks before SFT, after SFT and after RL."""

    max_turns: int = Field(3, gt=0)
    max_new_tokens_per_turn: int = Field(256, gt=0)
    max_total_tokens: int = Field(3072, gt=0)


class DemoConfig(StrictModel):
    """`codevl demo [--quick] [--config configs/demo/cpu.yaml] [key.path=value ...]`."""

    output_dir: str = Field("runs/demo", min_length=1)
    arch: Literal["qwen2_5_vl", "qwen3_vl"] = "qwen2_5_vl"
    seed: int = 0
    protocol: Literal["codevl", "pyvision", "codevision", "codev"] = "codevl"
    rewards: str = Field("configs/rewards/tapo.yaml", description="reward set YAML of the RL stage and the evals")
    data: DemoData = Field(default_factory=DemoData)
    sft: DemoSFT = Field(default_factory=DemoSFT)
    rl: DemoRL = Field(default_factory=DemoRL)
    eval: DemoEval = Field(default_factory=DemoEval)
