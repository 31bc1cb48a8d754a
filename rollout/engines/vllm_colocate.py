"""vLLM inside the training processes (TRL's "colocate" mode): generation and training share the GPUs.

    # under the training launcher, e.g. accelerate launch --config_file configs/accelerate/zero3.yaml ...
    engine = VLLMColocateEngine("Qwen/Qwen2.5-VL-7B-Instruct", processor=processor, gpu_memory_utilization=0.35,
                                max_model_len=16384, enable_sleep_mode=True)
    engine.sleep()                                        # free the GPU for the optimizer step
    ...
    push_weights(model, engine)                           # after each optimizer step (train.weight_sync; wakes
                                                          # the weights first, then engine.update_weights(...))
    engine.wake_up()                                      # before rollouts (generate also wakes what sleeps)
    trajectories = await run_episodes(tasks, engine, ...)

Each training rank holds its own `vllm.LLM` created with `distributed_executor_backend="external_launcher"`: vLLM
runs in the rank's own process on the rank's GPU, joins the process group the launcher set up (RANK, WORLD_SIZE,
MASTER_ADDR, ... ; a single process without a launcher gets rank 0 of 1), and ranks generate independently (data
parallel), each for its own episodes. Concurrent `generate` calls from the episode loop are micro-batched into one
`LLM.generate` per batch (`MicroBatcher`), so sandbox work overlaps generation.

Threads: every vLLM call, from the `vllm.LLM` constructor to the last `generate`, `sleep`, `wake_up` and weight
load, runs on one dedicated thread of this process (`rollout.engines.device_thread.DeviceThread`), bound to the
rank's CUDA device (LOCAL_RANK) before anything else. The device and vLLM's compute stream are per thread (vLLM
keeps its stream in a thread-local, `vllm.utils.torch_utils.current_stream`), so calls from `asyncio.to_thread`'s
pool would run on cuda:0 on every rank and on a stream that is not ordered with vLLM's. The trainer-facing methods
are synchronous and may be called from any thread: they hand the work to the device thread and wait.

Requests (`rollout.engines.vllm_requests`): the *unexpanded* prompt ids plus the images as PIL images
(`{"prompt_token_ids": ..., "multi_modal_data": {"image": [...]}}`); vLLM's multimodal processor expands each
`<|image_pad|>` itself. An expanded prompt is rejected before it reaches vLLM (it would be expanded twice and
silently corrupted). Placeholder tokens are banned by `logit_bias`; every request has its own seed; stop strings
stay in the output; logprobs are vLLM's processed logprobs of the sampled token.

Weight sync: `update_weights(named_tensors)` (normally through `train.weight_sync.push_weights`) wakes the
weights if they sleep, loads the tensors into the driver worker's model one at a time (`model.load_weights`, which
maps Hugging Face checkpoint names such as `model.language_model.layers.0...` / `model.visual...` /
`lm_head.weight` onto vLLM's modules through `Qwen2_5_VLForConditionalGeneration.hf_to_vllm_mapper`), synchronises
the device, then resets the prefix (KV) cache, the multimodal processor cache and the vision-encoder output cache:
the encoder cache is keyed by image hash only, so without `reset_encoder_cache` repeated images would keep
embeddings computed by the old vision tower (vLLM issue #44910; TRL issue #7198). Each sync increments
`weights_version`, recorded in every `GenerateOutput.metadata` so the trainer can tell which policy sampled a
trajectory. Pass the names of the unwrapped Hugging Face model (no `module.`/PEFT prefixes; ZeRO-3 parameters
gathered): `train.weight_sync.hf_weights` yields exactly that.

Sleep mode (`enable_sleep_mode=True`): `sleep(level=1)` offloads the weights to CPU memory and drops the KV cache;
`sleep(level=2)` drops both (the next `update_weights` must then push every tensor before generating). `wake_up()`
restores what sleeps; `generate` wakes it too.

Written against vLLM 0.31.0 (pinned in pyproject) as TRL 1.16 uses it, and checked by reading vLLM 0.31.0's
source: `LLMEngine.model_executor` exists in-process (external_launcher forces VLLM_ENABLE_V1_MULTIPROCESSING=0)
and the driver model is `llm.llm_engine.model_executor.driver_worker.model_runner.model` (TRL's path);
`LLM.reset_mm_cache()`, `LLM.reset_prefix_cache()`, `LLM.sleep(level)` and `LLM.wake_up(tags)` exist;
`reset_encoder_cache()` is on `LLMEngine`, not on `LLM`. Not run on a GPU in this repository: vLLM cannot be
installed on the machines it was written on (tests/rollout/test_engine_vllm_gpu.py runs it where it can).
`tensor_parallel_size > 1` is refused for now: with `external_launcher` every rank of a tensor-parallel group must
run identical batches in lock step, which the concurrent episode loop does not give; use `VLLMServerEngine` for
models that need tensor parallelism.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.engines.base import EngineError, GenerateOutput, SamplingParams, TokenEngine
from rollout.engines.batcher import MicroBatcher
from rollout.engines.device_thread import DeviceThread
from rollout.engines.hf import BANNED_TOKENS
from rollout.engines.vllm_requests import (
    TokenLayout,
    build_output,
    check_unexpanded_prompt,
    colocate_llm_kwargs,
    completion_from_vllm,
    expanded_length,
    external_launcher_env,
    generation_eos_ids,
    import_vllm,
    prompt_inputs,
    request_seed,
    sampling_kwargs,
)

logger = logging.getLogger(__name__)

SLEEP_TAGS = ("weights", "kv_cache")


@dataclass
class _Request:
    prompt_ids: list[int]
    images: list[Any]
    sampling: SamplingParams
    seed: int


class VLLMColocateEngine(TokenEngine):
    """A `TokenEngine` over an in-process `vllm.LLM` (see the module docstring)."""

    name = "vllm_colocate"
    logprobs_after_truncation = True  # processed_logprobs: after logit_bias, temperature, top-k/top-p
    weight_sync = "per_rank"

    def __init__(self, model: str, *, processor: Any | None = None, tensor_parallel_size: int = 1,
                 gpu_memory_utilization: float = 0.3, max_model_len: int | None = None,
                 max_images_per_prompt: int = 16, enable_sleep_mode: bool = True, seed: int = 0,
                 dtype: str = "auto", max_num_seqs: int | None = None, max_num_batched_tokens: int | None = None,
                 enable_prefix_caching: bool = True, enforce_eager: bool = False,
                 mm_processor_kwargs: Mapping[str, Any] | None = None, max_batch_size: int = 256,
                 wait_s: float = 0.005, banned_tokens: Sequence[str] = BANNED_TOKENS, check_image_tokens: bool = True,
                 llm_kwargs: Mapping[str, Any] | None = None, device_index: int | None = None,
                 vllm_module: Any | None = None) -> None:
        """
        model: local directory or hub id of the policy's initial weights (what the trainer loaded).
        processor: the trainer's processor (chat template, tokenizer, image settings); loaded from `model` if None.
        tensor_parallel_size: must be 1 for now (module docstring).
        gpu_memory_utilization: share of the GPU vLLM may take (weights + KV cache); the trainer needs the rest.
        max_model_len: context length in *expanded* tokens (images count in full); None: the model's.
        max_images_per_prompt: vLLM's `limit_mm_per_prompt` for images (videos: 0). Keep >= EpisodeLimits.max_images.
        enable_sleep_mode: allow `sleep()` / `wake_up()`.
        seed: engine seed; each request still gets its own seed. Ranks get `seed + RANK`.
        mm_processor_kwargs: image processor overrides (e.g. `{"min_pixels": ..., "max_pixels": ...}`); they must
            match the trainer's processor or rollouts and training see different numbers of image tokens.
        max_batch_size / wait_s: micro-batching of concurrent requests (`MicroBatcher`).
        banned_tokens: tokens that can never be sampled (image/video/vision placeholders).
        check_image_tokens: check that vLLM expanded every prompt to the length the trainer's processor gives
            (a mismatch means vLLM and the trainer process images differently: the request fails loudly).
        llm_kwargs: further `vllm.LLM` arguments, merged last.
        device_index: the CUDA device of the engine's thread; None: LOCAL_RANK (the launcher's), else 0.
        vllm_module: what provides `LLM` and `SamplingParams`; None: `import vllm`. Tests of the thread discipline
            pass a stand-in here (there is no vLLM on CPU machines).
        """
        if tensor_parallel_size != 1:
            raise NotImplementedError(
                "VLLMColocateEngine supports tensor_parallel_size=1 only: with external_launcher every rank of a "
                "tensor-parallel group must run identical batches in lock step, which concurrent episodes do not "
                "give. Use rollout.engine=vllm_server (its own GPUs, any tensor parallelism) for larger models")
        vllm = import_vllm() if vllm_module is None else vllm_module  # first: a clear error without vLLM
        self._vllm = vllm
        for k, v in external_launcher_env(os.environ).items():
            os.environ[k] = v
        if processor is None:
            from transformers import AutoProcessor

            processor = AutoProcessor.from_pretrained(model)
        self._processor = processor
        self._tokenizer = getattr(processor, "tokenizer", processor)
        self.layout = TokenLayout.from_tokenizer(self._tokenizer, extra_eos=generation_eos_ids(model),
                                                 banned_tokens=banned_tokens)
        self.enable_sleep_mode = enable_sleep_mode
        rank = int(os.environ.get("RANK", "0"))
        self.seed = seed + rank
        self.llm_kwargs = colocate_llm_kwargs(
            model, tensor_parallel_size=tensor_parallel_size, gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len, max_images_per_prompt=max_images_per_prompt,
            enable_sleep_mode=enable_sleep_mode, seed=self.seed, dtype=dtype, max_num_seqs=max_num_seqs,
            max_num_batched_tokens=max_num_batched_tokens, enable_prefix_caching=enable_prefix_caching,
            enforce_eager=enforce_eager, mm_processor_kwargs=mm_processor_kwargs, extra=llm_kwargs)
        self.max_images_per_prompt = max_images_per_prompt
        self.check_image_tokens = check_image_tokens
        # Every vLLM call, the constructor included, runs on this one thread (bound to the rank's device first).
        self._thread = DeviceThread(device_index, name="vllm-colocate")
        self.llm = self._thread.call(vllm.LLM, **self.llm_kwargs)
        self._asleep: set[str] = set()
        self._weights_discarded = False
        self.weights_version = 0
        self._counter = 0
        self._batcher: MicroBatcher[_Request, GenerateOutput | EngineError] = MicroBatcher(
            self._run_batch, max_batch_size=max_batch_size, wait_s=wait_s, name="vllm_colocate",
            executor=self._thread.executor)

    # ---- TokenEngine ---------------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def processor(self) -> Any:
        return self._processor

    @property
    def stats(self) -> dict[str, int]:
        return {"batches": self._batcher.batches, "requests": self._batcher.requests,
                "weights_version": self.weights_version}

    async def generate(self, prompt_ids: list[int], images: list[np.ndarray], sampling: SamplingParams) -> GenerateOutput:
        if len(images) > self.max_images_per_prompt:
            raise EngineError(f"{len(images)} images > max_images_per_prompt={self.max_images_per_prompt}")
        check_unexpanded_prompt(prompt_ids, len(images), self.layout)
        seed = request_seed(self.seed, self._counter, sampling)
        self._counter += 1
        out = await self._batcher.submit(_Request(list(prompt_ids), list(images), sampling, seed))
        if isinstance(out, EngineError):
            raise out
        return out

    def episode_started(self) -> None:
        self._batcher.episode_started()

    def episode_finished(self) -> None:
        self._batcher.episode_finished()

    async def aclose(self) -> None:
        await self._batcher.aclose()

    def close(self) -> None:
        """Stop the engine's device thread (after the calls already submitted)."""
        self._thread.shutdown()

    # ---- trainer-facing (synchronous; each runs on the device thread) --------------------------------------

    def sleep(self, level: int = 1) -> None:
        """Free GPU memory for training: level 1 offloads the weights to CPU and drops the KV cache; level 2
        drops both (push weights with `update_weights` before the next generation)."""
        if not self.enable_sleep_mode:
            raise RuntimeError("sleep() needs enable_sleep_mode=True when the engine is created")
        if level not in (1, 2):
            raise ValueError(f"sleep level must be 1 or 2, got {level}")
        self._thread.call(self._sleep, level)

    def wake_up(self, tags: Sequence[str] | None = None) -> None:
        """Restore what sleeps (`tags`: "weights", "kv_cache"; default both)."""
        want = list(tags) if tags is not None else list(SLEEP_TAGS)
        unknown = set(want) - set(SLEEP_TAGS)
        if unknown:
            raise ValueError(f"unknown wake_up tags {sorted(unknown)}; valid: {', '.join(SLEEP_TAGS)}")
        self._thread.call(self._wake, want)

    @property
    def sleeping(self) -> bool:
        return bool(self._asleep)

    def update_weights(self, named_tensors: Iterable[tuple[str, Any]]) -> int:
        """Load new policy weights (Hugging Face names, `train.weight_sync.hf_weights`), then reset the prefix,
        multimodal and encoder caches. Returns the new `weights_version`. Call between rollouts, on every rank
        (each holds its own engine).

        `named_tensors` is consumed on the caller's thread (ZeRO-3 gathers are collectives of the trainer's
        thread); each tensor is then loaded on the device thread after that thread's stream has waited for the
        caller's stream (the tensor may still be being gathered), and the device thread synchronises its stream
        before the next tensor is taken, so a gathered buffer is never released while vLLM still reads it."""
        self._thread.call(self._begin_update)
        n = 0
        for name, tensor in named_tensors:
            self._thread.call(self._load_one, name, tensor, _ready_event(tensor))
            n += 1
        if n == 0:
            raise ValueError("update_weights got no tensors")
        version = self._thread.call(self._finish_update)
        logger.info("vllm_colocate: loaded %d tensors, weights_version=%d", n, version)
        return version

    def reset_caches(self) -> None:
        """Forget everything computed with the previous weights: the prefix (KV) cache, the multimodal processor
        cache and the vision-encoder output cache (`LLM.reset_encoder_cache` where the `LLM` class has it, else
        its `LLMEngine`'s, which is where vLLM PR #33452 put it; vLLM 0.31.0 has it on `LLMEngine` only)."""
        self._thread.call(self._reset_caches)

    # ---- backend (every method below runs on the device thread) --------------------------------------------

    def _sleep(self, level: int) -> None:
        self._thread.check()
        if set(SLEEP_TAGS) <= self._asleep:
            return
        self.llm.sleep(level=level)
        self._asleep = set(SLEEP_TAGS)
        self._weights_discarded = self._weights_discarded or level == 2

    def _wake(self, tags: list[str]) -> None:
        self._thread.check()
        todo = [t for t in tags if t in self._asleep]
        if not todo:
            return
        self.llm.wake_up(tags=todo)
        self._asleep -= set(todo)

    def _begin_update(self) -> None:
        self._thread.check()
        if "weights" in self._asleep:
            _empty_cuda_cache()
            self.llm.wake_up(tags=["weights"])
            self._asleep.discard("weights")

    def _load_one(self, name: str, tensor: Any, ready: Any) -> None:
        self._thread.check()
        if ready is not None:
            import torch

            torch.cuda.current_stream().wait_event(ready)  # the caller's gather/copy comes first
        self._driver_model().load_weights([(name, tensor)])
        if getattr(tensor, "is_cuda", False):
            import torch

            torch.cuda.current_stream().synchronize()  # the copy is done before the caller frees the buffer

    def _finish_update(self) -> int:
        self._thread.check()
        _synchronize_cuda()
        self._weights_discarded = False
        self._reset_caches()
        self.weights_version += 1
        return self.weights_version

    def _reset_caches(self) -> None:
        self._thread.check()
        engine = getattr(self.llm, "llm_engine", None)
        encoder = getattr(self.llm, "reset_encoder_cache", None) or getattr(engine, "reset_encoder_cache", None)
        if encoder is None or not hasattr(self.llm, "reset_mm_cache"):
            raise RuntimeError(f"this vLLM ({getattr(self._vllm, '__version__', '?')}) cannot reset its multimodal/"
                               "encoder caches; codevl needs vLLM 0.31.0 (stale vision embeddings would be reused)")
        if self.llm.reset_prefix_cache() is False:
            raise RuntimeError("vLLM refused to reset the prefix cache (requests still running?)")
        self.llm.reset_mm_cache()
        encoder()

    def _driver_model(self) -> Any:
        try:
            return self.llm.llm_engine.model_executor.driver_worker.model_runner.model
        except AttributeError as exc:
            raise RuntimeError(
                "cannot reach the vLLM driver worker's model (llm.llm_engine.model_executor.driver_worker."
                "model_runner.model); this vLLM version lays it out differently from 0.31.0") from exc

    def _run_batch(self, requests: list[_Request]) -> list[GenerateOutput | EngineError]:
        self._thread.check()
        if self._weights_discarded:
            err = EngineError("the engine's weights were discarded by sleep(level=2): call update_weights() "
                              "before generating")
            return [err] * len(requests)
        if self._asleep:
            self.llm.wake_up(tags=[t for t in SLEEP_TAGS if t in self._asleep])
            self._asleep.clear()
        version = self.weights_version
        try:
            return self._generate(requests, version)
        except Exception as exc:  # noqa: BLE001 - one bad request must not fail the others
            if len(requests) == 1:
                return [EngineError(f"vLLM generate failed: {type(exc).__name__}: {exc}")]
            logger.warning("vllm_colocate: batch of %d failed (%s); retrying one by one", len(requests), exc)
            outs: list[GenerateOutput | EngineError] = []
            for r in requests:
                try:
                    outs += self._generate([r], version)
                except Exception as one:  # noqa: BLE001
                    outs.append(EngineError(f"vLLM generate failed: {type(one).__name__}: {one}"))
            return outs

    def _generate(self, requests: list[_Request], version: int) -> list[GenerateOutput | EngineError]:
        prompts = [prompt_inputs(r.prompt_ids, r.images) for r in requests]
        params = [self._vllm.SamplingParams(**sampling_kwargs(r.sampling, seed=r.seed, banned_ids=self.layout.banned,
                                                              stop_token_ids=self.layout.eos))
                  for r in requests]
        results = self.llm.generate(prompts, sampling_params=params, use_tqdm=False)
        if len(results) != len(requests):
            raise RuntimeError(f"vLLM returned {len(results)} results for {len(requests)} prompts")
        outs: list[GenerateOutput | EngineError] = []
        for r, res in zip(requests, results, strict=True):
            got = len(res.prompt_token_ids or [])
            meta = {"engine": self.name, "weights_version": version, "seed": r.seed, "prompt_tokens_expanded": got,
                    "cached_tokens": int(getattr(res, "num_cached_tokens", 0) or 0)}
            want = expanded_length(r.prompt_ids, r.images, self._processor) if self.check_image_tokens else None
            if want is not None and got and want != got:
                outs.append(EngineError(
                    f"vLLM expanded the prompt to {got} tokens, the trainer's processor to {want}: the two process "
                    "images differently; give the engine the trainer's min_pixels/max_pixels (mm_processor_kwargs)"))
                continue
            try:
                outs.append(build_output(completion_from_vllm(res.outputs[0]), tokenizer=self._tokenizer,
                                         eos_ids=self.layout.eos, sampling=r.sampling, metadata=meta))
            except EngineError as exc:
                outs.append(exc)
        return outs


def _ready_event(tensor: Any) -> Any:
    """A CUDA event recorded on the caller's current stream after the work that produced `tensor` (None for a
    CPU tensor)."""
    if not getattr(tensor, "is_cuda", False):
        return None
    import torch

    event = torch.cuda.Event()
    event.record(torch.cuda.current_stream(tensor.device))
    return event


def _synchronize_cuda() -> None:
    """Wait for this thread's stream (vLLM's) to finish, when CUDA is in use."""
    import torch

    if torch.cuda.is_available() and torch.cuda.is_initialized():
        torch.cuda.current_stream().synchronize()


def _empty_cuda_cache() -> None:
    import torch

    if torch.cuda.is_available():
        torch.cuda.empty_cache()
