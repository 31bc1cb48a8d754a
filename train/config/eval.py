"""The evaluation config: a policy (any engine) with a protocol over a benchmark or a task file (configs/eval/).

    codevl eval --config configs/eval/tiny_synthetic.yaml model.name_or_path=runs/demo/sft/final
    codevl eval --config configs/eval/vstar.yaml data.path=/data/vstar_bench data.limit=50

Everything that changes which episodes are run or how they are scored is part of the run's identity: resuming a
run directory whose config differs in any of those keys is refused (see `EvalConfig.identity`).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, field_validator, model_validator

from rewards.faithfulness import FaithfulnessParams
from train.config.base import StrictModel
from train.config.demo import GENERATOR_NAMES

EVAL_ENGINES = ("hf", "vllm_colocate", "vllm_server", "openai", "scripted")


class EvalModel(StrictModel):
    """Which policy answers. `engine` picks how it is run:

    - `hf`: a local checkpoint through transformers (`train.model.loading.load_model`), CPU or GPU;
    - `vllm_colocate`: vLLM in this process (GPU);
    - `vllm_server`: a running `vllm serve` at `base_url` (the processor is loaded from `name_or_path`);
    - `openai`: any OpenAI-compatible chat API at `base_url` (`name_or_path` is the API's model name);
    - `scripted`: replays fixed assistant turns from `script` (a JSON file: a list of turns, or task id -> list);
      a test and replay policy, not a model.
    """

    engine: Literal["hf", "vllm_colocate", "vllm_server", "openai", "scripted"] = "hf"
    name_or_path: str | None = Field(None, description="checkpoint directory, hub id, or API model name")
    name: str | None = Field(None, description="display name (predictions file name); default: from name_or_path")
    dtype: Literal["auto", "float32", "bfloat16", "float16"] = "auto"
    attn_implementation: Literal["eager", "sdpa", "flash_attention_2"] = "sdpa"
    device: str | None = Field(None, description="hf engine: torch device (default: cuda when available, else cpu)")
    max_batch_size: int = Field(16, gt=0, description="hf engine: most sequences per generation batch")
    base_url: str | None = Field(None, description="openai / vllm_server: the endpoint")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="openai: environment variable with the API key")
    script: str | None = Field(None, description="scripted: JSON file of assistant turns")
    engine_kwargs: dict[str, Any] = Field(default_factory=dict, description="extra constructor arguments of the "
                                          "engine (see rollout/engines/registry.py)")

    @model_validator(mode="after")
    def _engine_needs(self) -> EvalModel:
        if self.engine == "scripted":
            if not self.script:
                raise ValueError("model.engine 'scripted' needs model.script (a JSON file of assistant turns)")
        elif not self.name_or_path:
            raise ValueError(f"model.engine {self.engine!r} needs model.name_or_path (a checkpoint directory or "
                             "the API model name)")
        if self.engine in ("openai", "vllm_server") and not self.base_url:
            raise ValueError(f"model.engine {self.engine!r} needs model.base_url (e.g. http://localhost:8000/v1)")
        return self

    def display_name(self) -> str:
        """A short name for files and tables: `name`, else the last part of `name_or_path` (or of `script`)."""
        if self.name:
            return self.name
        raw = (self.name_or_path or self.script or self.engine).rstrip("/")
        return raw.rsplit("/", 1)[-1].removesuffix(".json") or self.engine


class SyntheticSplit(StrictModel):
    """Tasks made by a generator (`codevl data synth`): tasks `0..n-1` of `generator` under `seed`, written to
    `output_dir/data/<generator>/`. Pick a seed the training data did not use to get a held-out split."""

    generator: str
    n: int = Field(16, gt=0, le=100000)
    seed: int = 1000
    config: dict[str, Any] = Field(default_factory=dict, description="the generator's own config keys")

    @field_validator("generator")
    @classmethod
    def _known(cls, v: str) -> str:
        if v not in GENERATOR_NAMES:
            raise ValueError(f"unknown generator {v!r}; valid: {', '.join(GENERATOR_NAMES)}")
        return v


class EvalData(StrictModel):
    """What to evaluate on, exactly one of: a benchmark read by `data.loaders.load_benchmark(benchmark, path)`, a
    task JSONL (`tasks`), or generated splits (`synthetic`)."""

    benchmark: str | None = Field(None, description="a benchmark loader name (see `codevl data convert --help`)")
    path: str | None = Field(None, description="the benchmark's local files")
    tasks: str | None = Field(None, description="a task JSONL file (codevl data synth / convert output)")
    synthetic: list[SyntheticSplit] | None = Field(None, description="generated held-out splits")
    name: str | None = Field(None, description="dataset name for tables and the predictions file (default: the "
                             "benchmark name or the task file's stem)")
    limit: int | None = Field(None, gt=0, description="evaluate the first N tasks only")
    transforms: str | list[str] | None = Field(None, description="add rotated / flipped copies: all, or a list")
    image_dir: str | None = None
    options: dict[str, Any] = Field(default_factory=dict, description="the loader's own options")

    @model_validator(mode="after")
    def _one_source(self) -> EvalData:
        if sum(x is not None for x in (self.benchmark, self.tasks, self.synthetic)) != 1:
            raise ValueError("set exactly one of data.benchmark (with data.path), data.tasks and data.synthetic")
        if self.benchmark is not None and not self.path:
            raise ValueError(f"data.benchmark {self.benchmark!r} needs data.path (where its files are)")
        return self

    def display_name(self) -> str:
        if self.name:
            return self.name
        if self.benchmark:
            return self.benchmark
        if self.synthetic:
            return "synthetic_" + "_".join(s.generator for s in self.synthetic)
        return (self.tasks or "tasks").rstrip("/").rsplit("/", 1)[-1].removesuffix(".jsonl")


class EvalLimits(StrictModel):
    """Per-episode limits (`rollout.loop.EpisodeLimits`); null timeouts / observation sizes: the protocol's."""

    max_turns: int = Field(8, gt=0)
    max_new_tokens_per_turn: int = Field(1024, gt=0)
    max_total_tokens: int = Field(16384, gt=0)
    max_images: int = Field(16, gt=0)
    observation_max_chars: int | None = Field(None, gt=0)
    code_timeout_s: float | None = Field(None, gt=0)


class EvalSampling(StrictModel):
    """Sampling of every assistant turn; temperature 0 is greedy."""

    temperature: float = Field(0.0, ge=0.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    top_k: int = Field(0, ge=0)


class EvalConfig(StrictModel):
    """`codevl eval --config configs/eval/X.yaml [key.path=value ...]`."""

    output_dir: str = Field("runs/eval", min_length=1)
    seed: int = 0
    protocol: Literal["codevl", "pyvision", "codevision", "codev"] = "codevl"
    model: EvalModel
    data: EvalData
    limits: EvalLimits = Field(default_factory=EvalLimits)
    sampling: EvalSampling = Field(default_factory=EvalSampling)
    samples_per_task: int = Field(1, gt=0, le=64, description="episodes per task; accuracy is their mean")
    rewards: str | None = Field(None, description="reward set YAML: its accuracy component decides correctness and "
                                "its breakdown is recorded per episode (default: rule-based answer matching only)")
    faithfulness: FaithfulnessParams = Field(default_factory=FaithfulnessParams,
                                             description="the CodeV faithfulness table (rules on evidence boxes)")
    max_concurrent: int = Field(16, gt=0, description="episodes in flight (each holds a sandbox session)")

    def identity(self) -> dict[str, Any]:
        """The settings that decide what a finished sample is: a resumed run must have the same ones."""
        d = self.model_dump(mode="json")
        for key in ("output_dir", "max_concurrent"):
            d.pop(key)
        d["model"].pop("max_batch_size")
        d["model"].pop("device")
        return d
