"""Generation engines by name, constructed lazily (importing this imports no engine, torch or vLLM).

    from rollout.engines.registry import ENGINE_KINDS, create_engine, engine_spec
    from rollout.engines.base import SamplingParams, trainer_logprob_mismatch
    engine = create_engine("vllm_server", base_url="http://gpu-node:8000", processor=processor)
    engine_spec("openai").token_level   # False: message level, not usable for RL
    trainer_logprob_mismatch(engine_spec("vllm_colocate"), sampling)   # config-time check, nothing imported

| kind            | class (module:Class)                             | level   | for                                       |
| --------------- | ------------------------------------------------ | ------- | ----------------------------------------- |
| hf              | rollout.engines.hf:HFEngine                      | token   | tests, demo, small runs (CPU or GPU)      |
| vllm_colocate   | rollout.engines.vllm_colocate:VLLMColocateEngine | token   | RL: vLLM inside the training ranks        |
| vllm_server     | rollout.engines.vllm_server:VLLMServerEngine     | token   | RL / eval: `vllm serve` on its own GPUs   |
| openai          | rollout.engines.openai_chat:OpenAIChatEngine     | message | API models (PyVision-style), teacher data |
| scripted        | rollout.scripted:ScriptedPolicy                  | message | oracle SFT trajectories, tests            |
| scripted_tokens | rollout.scripted:ScriptedTokenEngine             | token   | loop bookkeeping tests                    |

Constructor arguments are the engines' own, explicit and documented in each class's `__init__`:

- hf: `HFEngine(model, processor, *, max_batch_size=16, wait_s=0.002, banned_tokens=...)`
- vllm_colocate: `VLLMColocateEngine(model, *, processor=None, tensor_parallel_size=1, gpu_memory_utilization=0.3,
  max_model_len=None, max_images_per_prompt=16, enable_sleep_mode=True, seed=0, dtype="auto", max_num_seqs=None,
  max_num_batched_tokens=None, enable_prefix_caching=True, enforce_eager=False, mm_processor_kwargs=None,
  max_batch_size=256, wait_s=0.005, banned_tokens=..., check_image_tokens=True, llm_kwargs=None, device_index=None,
  vllm_module=None)`
- vllm_server: `VLLMServerEngine(base_url, processor, *, model=None, timeout_s=900, connect_timeout_s=10,
  max_retries=3, backoff_base_s=1, backoff_max_s=30, max_concurrency=512, seed=0, banned_tokens=..., extra_eos=(),
  check_image_tokens=True, feature_cache_mb=2048, group_port=51216, server_wait_s=240,
  image_transport="content_parts")`
- openai: `OpenAIChatEngine(model, *, base_url="https://api.openai.com/v1", api_key_env="OPENAI_API_KEY",
  max_concurrency=16, timeout_s=300, connect_timeout_s=10, max_retries=5, backoff_base_s=1, backoff_max_s=60,
  max_tokens_field="auto", image_detail=None, omit_params=(), extra_body=None, headers=None)`
- scripted: `ScriptedPolicy(script, *, task_id=None)`
- scripted_tokens: `ScriptedTokenEngine(processor, script, *, end_of_turn="<|im_end|>")`
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class EngineSpec:
    kind: str
    target: str  # "module:Class"
    token_level: bool  # token ids + logprobs (usable for RL) or message level
    purpose: str
    # the engine class's own `logprobs_after_truncation` (rollout.engines.base, "Logprobs"), readable without
    # importing the engine (configs load without torch); tests check the two agree
    logprobs_after_truncation: bool = False

    def load(self) -> type:
        """The engine class (imports its module)."""
        module, _, cls = self.target.partition(":")
        return getattr(importlib.import_module(module), cls)


ENGINE_SPECS: dict[str, EngineSpec] = {s.kind: s for s in (
    EngineSpec("hf", "rollout.engines.hf:HFEngine", True, "Hugging Face transformers; tests, demo, small runs"),
    EngineSpec("vllm_colocate", "rollout.engines.vllm_colocate:VLLMColocateEngine", True,
               "vLLM inside the training ranks (sleep/wake, in-process weight sync)", logprobs_after_truncation=True),
    EngineSpec("vllm_server", "rollout.engines.vllm_server:VLLMServerEngine", True,
               "a `vllm serve` process on its own GPUs (HTTP generation, NCCL weight sync)",
               logprobs_after_truncation=True),
    EngineSpec("openai", "rollout.engines.openai_chat:OpenAIChatEngine", False,
               "any OpenAI-compatible chat API: API models, teacher trajectories (not for RL)"),
    EngineSpec("scripted", "rollout.scripted:ScriptedPolicy", False, "replays fixed assistant turns (oracle data)"),
    EngineSpec("scripted_tokens", "rollout.scripted:ScriptedTokenEngine", True,
               "replays fixed turns as token ids (loop tests)"),
)}

ENGINE_KINDS: frozenset[str] = frozenset(ENGINE_SPECS)


def engine_spec(kind: str) -> EngineSpec:
    """The spec of engine `kind`; an unknown name is an error that lists the valid ones."""
    try:
        return ENGINE_SPECS[kind]
    except KeyError:
        valid = ", ".join(sorted(ENGINE_SPECS))
        raise ValueError(f"unknown engine {kind!r}; valid engines: {valid}") from None


def create_engine(kind: str, *args: Any, **kwargs: Any) -> Any:
    """Construct engine `kind` with its own constructor's arguments (module docstring)."""
    return engine_spec(kind).load()(*args, **kwargs)
