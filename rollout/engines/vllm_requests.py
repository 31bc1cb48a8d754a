"""What the two vLLM engines send and how they read back what vLLM returns: pure functions, no vLLM import.

Both vLLM engines (`vllm_colocate`, `vllm_server`) build their requests here as plain dicts, so that the settings
that make rollouts token-exact are unit-tested on machines without vLLM (`tests/rollout/test_engine_vllm_requests.py`);
the engines only wrap them (`vllm.SamplingParams(**sampling_kwargs(...))`, or the JSON body of an HTTP request).

The settings, and why:

- Prompts are the trajectory's *unexpanded* token ids (one `<|image_pad|>` per image, inside
  `<|vision_start|>...<|vision_end|>`). `check_unexpanded_prompt` rejects an already-expanded prompt with a clear
  error instead of letting it be silently corrupted (docs/methods.md, "Pitfalls"). What each backend then needs differs:
  `LLM.generate` takes the unexpanded ids plus the images and expands the placeholders itself (`prompt_inputs`);
  the server's token endpoint takes *expanded* ids plus pre-processed image features (`expand_for_features`, see
  `rollout.engines.vllm_server`).
- Image/video placeholder and vision-boundary tokens are banned from sampling with `logit_bias` of -100 (the bound
  the OpenAI-compatible API accepts; e^-100 is zero at any precision that matters). `logit_bias` takes token ids,
  so nothing depends on how a tokenizer splits a `bad_words` string, and it works the same in `vllm.SamplingParams`
  and in JSON.
- `logprobs=0` returns the logprob of the sampled token only. The engines run vLLM with
  `logprobs_mode="processed_logprobs"`: the logprob under the distribution actually sampled from (after the bans,
  temperature, and top-k/top-p). With `top_p=1, top_k=0` (the RL default) this equals the HF engine's and the
  trainer's `log_softmax(logits / T)` except that the banned tokens' probability mass (normally ~0) is excluded
  from the normaliser; with top-k/top-p it is the truncated distribution's logprob.
- Stop strings are kept in the output (`include_stop_str_in_output=True`) and special tokens are not skipped, so
  vLLM's stop detection sees the same text the protocol parses. The end-of-turn/EOS ids are passed as
  `stop_token_ids`, so both engines stop on the same tokens whatever vLLM reads from `generation_config.json`. Repetition/presence/frequency penalties and min_p
  are pinned to neutral values so a model's `generation_config.json` defaults cannot leak in.
- Every request carries its own `seed` (the loop gives each one a distinct seed; `request_seed` derives one when
  it does not), so the G rollouts of a group that share a prompt are independent and reproducible.

Output mapping (`build_output`) gives vLLM results the HF engine's semantics (`rollout.engines.base.GenerateOutput`):
token ids exactly as sampled, up to and including the token that completed a stop string or the EOS (tokens after
that, which only multi-token steps such as speculative decoding can produce, are dropped); `text` decoded with the
same tokenizer, without a trailing EOS and cut right after the stop string; `stop_reason` the stop string or the
EOS token's text.
"""

from __future__ import annotations

import hashlib
import math
import os
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from rollout.engines.base import EngineError, FinishKind, GenerateOutput, SamplingParams, cut_at_stop
from rollout.engines.hf import BANNED_TOKENS, special_token_ids
from rollout.expand import process_images, to_pil, tokens_per_image

BAN_LOGIT_BIAS = -100.0
VLLM_MISSING = ("vLLM is not installed: install the `vllm` extra on a GPU node: "
                "CODEVL_EXTRAS=dev,deepspeed,vllm bash scripts/install.sh")


class VLLMUnavailable(ImportError):
    """vLLM cannot be imported here (a user's setup, reported without a traceback by the command line)."""


def import_vllm() -> Any:
    """`import vllm`, or an error that says how to get it (it is a GPU-only extra)."""
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailable(f"{VLLM_MISSING} ({exc})") from exc
    return vllm


# ---- token ids the engines need ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenLayout:
    """The special token ids that matter for vLLM requests, read once from the tokenizer."""

    image_pad: int
    vision_start: int | None
    vision_end: int | None
    video_pad: int | None
    banned: tuple[int, ...]
    eos: tuple[int, ...]

    @classmethod
    def from_tokenizer(cls, tokenizer: Any, *, extra_eos: Sequence[int] = (),
                       banned_tokens: Sequence[str] = BANNED_TOKENS) -> TokenLayout:
        """`extra_eos`: the model's `generation_config.eos_token_id` (vLLM stops on those too)."""
        tok = getattr(tokenizer, "tokenizer", tokenizer)

        def one(name: str) -> int | None:
            ids = special_token_ids(tok, [name])
            return ids[0] if ids else None

        pad = one("<|image_pad|>")
        if pad is None:
            raise ValueError("the tokenizer has no <|image_pad|> token: the vLLM engines support Qwen-VL models")
        eos = set(special_token_ids(tok, ["<|im_end|>", "<|endoftext|>"])) | {int(e) for e in extra_eos}
        if tok.eos_token_id is not None:
            eos.add(int(tok.eos_token_id))
        return cls(image_pad=pad, vision_start=one("<|vision_start|>"), vision_end=one("<|vision_end|>"),
                   video_pad=one("<|video_pad|>"), banned=tuple(special_token_ids(tok, banned_tokens)),
                   eos=tuple(sorted(eos)))


def generation_eos_ids(model_path: str) -> list[int]:
    """EOS ids from a local model directory's `generation_config.json` (empty if there is none)."""
    import json

    path = os.path.join(model_path, "generation_config.json")
    if not os.path.isfile(path):
        return []
    with open(path) as f:
        eos = json.load(f).get("eos_token_id")
    if eos is None:
        return []
    return [int(eos)] if isinstance(eos, int) else [int(e) for e in eos]


# ---- prompts -------------------------------------------------------------------------------------------------


def check_unexpanded_prompt(prompt_ids: Sequence[int], n_images: int, layout: TokenLayout) -> list[int]:
    """Positions of the image placeholders of an unexpanded prompt. Raises `EngineError` when the prompt is
    expanded (a run of placeholders), when placeholders and images differ in number, when a placeholder is not
    wrapped in `<|vision_start|>...<|vision_end|>`, or when the prompt holds video placeholders."""
    pad = layout.image_pad
    positions = [i for i, t in enumerate(prompt_ids) if t == pad]
    for a, b in zip(positions, positions[1:], strict=False):
        if b == a + 1:
            run = 2
            while a + run < len(prompt_ids) and prompt_ids[a + run] == pad:
                run += 1
            raise EngineError(
                f"the prompt is already expanded (a run of {run} <|image_pad|> tokens at position {a}); vLLM engines "
                "take the unexpanded prompt, one <|image_pad|> per image, and expand it themselves. Pass the "
                "trajectory's token_ids, not rollout.expand's input_ids")
    if len(positions) != n_images:
        raise EngineError(f"the prompt has {len(positions)} image placeholder(s) but {n_images} image(s) were given; "
                          "each image must appear exactly once as an unexpanded <|image_pad|>, in order")
    if layout.video_pad is not None and layout.video_pad in prompt_ids:
        raise EngineError("the prompt holds <|video_pad|> tokens: video inputs are not supported by the rollout engines")
    for p in positions:
        before = prompt_ids[p - 1] if p > 0 else None
        after = prompt_ids[p + 1] if p + 1 < len(prompt_ids) else None
        if (layout.vision_start is not None and before != layout.vision_start) or (
                layout.vision_end is not None and after != layout.vision_end):
            raise EngineError(f"the <|image_pad|> at position {p} is not wrapped as "
                              "<|vision_start|><|image_pad|><|vision_end|>; render prompts with the chat template")
    return positions


def prompt_inputs(prompt_ids: Sequence[int], images: Sequence[Any]) -> dict[str, Any]:
    """The prompt for `vllm.LLM.generate`: unexpanded token ids plus the images as RGB PIL images, in order
    (vLLM's multimodal processor expands each placeholder for its image)."""
    out: dict[str, Any] = {"prompt_token_ids": [int(t) for t in prompt_ids]}
    if images:
        out["multi_modal_data"] = {"image": [to_pil(im) for im in images]}
    return out


def expand_for_features(prompt_ids: Sequence[int], positions: Sequence[int], lengths: Sequence[int],
                        image_pad: int) -> tuple[list[int], list[dict[str, int]]]:
    """For the server's token endpoint: the prompt with placeholder `k` (at `positions[k]`) repeated `lengths[k]`
    times, and the `{"offset", "length"}` of every run in the expanded sequence (the image features' placement)."""
    if len(positions) != len(lengths):
        raise ValueError(f"{len(positions)} placeholders but {len(lengths)} lengths")
    ids: list[int] = []
    runs: list[dict[str, int]] = []
    start = 0
    for p, n in zip(positions, lengths, strict=True):
        if n <= 0:
            raise EngineError(f"the server reported {n} tokens for an image")
        ids.extend(prompt_ids[start:p])
        runs.append({"offset": len(ids), "length": int(n)})
        ids.extend([image_pad] * int(n))
        start = p + 1
    ids.extend(prompt_ids[start:])
    return [int(t) for t in ids], runs


def processor_image_tokens(processor: Any, image: Any) -> int | None:
    """How many `<|image_pad|>` tokens the trainer's processor gives `image` (None if it cannot say cheaply)."""
    ip = getattr(processor, "image_processor", None)
    if ip is None:
        return None
    h, w = np.asarray(image).shape[:2]
    merge = int(getattr(ip, "merge_size", 2) or 2) ** 2
    fn = getattr(ip, "get_number_of_image_patches", None)
    if fn is not None:
        try:
            return int(fn(int(h), int(w), {})) // merge
        except (TypeError, ValueError):
            pass
    _, grid = process_images(processor, [image])  # the image processor itself: slower, exact
    return tokens_per_image(processor, grid)[0]


def expanded_length(prompt_ids: Sequence[int], images: Sequence[Any], processor: Any) -> int | None:
    """Length of `prompt_ids` once the trainer's processor expands its placeholders (None if it cannot say)."""
    counts = [processor_image_tokens(processor, im) for im in images]
    if any(c is None for c in counts):
        return None
    return len(prompt_ids) - len(images) + sum(int(c) for c in counts if c is not None)


# ---- sampling ------------------------------------------------------------------------------------------------


def request_seed(engine_seed: int, counter: int, sampling: SamplingParams) -> int:
    """The request's own seed when the caller set one, else a distinct one derived from the engine's seed and a
    per-engine request counter (31 bits, what every backend accepts)."""
    if sampling.seed is not None:
        return int(sampling.seed)
    h = hashlib.blake2b(f"{engine_seed}|{counter}".encode(), digest_size=8).digest()
    return int.from_bytes(h, "little") & 0x7FFFFFFF


def sampling_kwargs(sampling: SamplingParams, *, seed: int, banned_ids: Sequence[int],
                    stop_token_ids: Sequence[int] = ()) -> dict[str, Any]:
    """Keyword arguments of `vllm.SamplingParams` for one request (also valid, as JSON, for the server's
    `/inference/v1/generate`; `logit_bias` keys become strings there, which vLLM converts back).
    `stop_token_ids`: the end-of-turn/EOS ids (`TokenLayout.eos`), named explicitly so that both engines stop on
    the same tokens whether or not vLLM reads the checkpoint's generation_config.json."""
    return {
        "n": 1,
        "temperature": float(sampling.temperature),
        "top_p": float(sampling.top_p),
        "top_k": int(sampling.top_k) if sampling.top_k > 0 else 0,  # 0: no top-k
        "min_p": 0.0,
        "repetition_penalty": 1.0,
        "presence_penalty": 0.0,
        "frequency_penalty": 0.0,
        "max_tokens": int(sampling.max_new_tokens),
        "stop": list(sampling.stop),
        "stop_token_ids": [int(t) for t in stop_token_ids],
        "include_stop_str_in_output": True,
        "logprobs": 0,
        "seed": int(seed),
        "logit_bias": {int(t): BAN_LOGIT_BIAS for t in banned_ids},
        "skip_special_tokens": False,
        "spaces_between_special_tokens": False,
    }


def colocate_llm_kwargs(model: str, *, tensor_parallel_size: int = 1, gpu_memory_utilization: float = 0.3,
                        max_model_len: int | None = None, max_images_per_prompt: int = 16,
                        enable_sleep_mode: bool = True, seed: int = 0, dtype: str = "auto",
                        max_num_seqs: int | None = None, max_num_batched_tokens: int | None = None,
                        enable_prefix_caching: bool = True, enforce_eager: bool = False,
                        mm_processor_kwargs: Mapping[str, Any] | None = None,
                        extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """Keyword arguments of `vllm.LLM` for an engine inside the training processes (TRL's colocate mode):
    `external_launcher` makes each training rank its own vLLM driver (no extra processes), and processed logprobs
    match the sampling distribution (see the module docstring). `extra` is merged last."""
    kw: dict[str, Any] = {
        "model": model,
        "tensor_parallel_size": int(tensor_parallel_size),
        "gpu_memory_utilization": float(gpu_memory_utilization),
        "max_model_len": max_model_len,
        "limit_mm_per_prompt": {"image": int(max_images_per_prompt), "video": 0},
        "enable_sleep_mode": bool(enable_sleep_mode),
        "distributed_executor_backend": "external_launcher",
        "seed": int(seed),
        "dtype": dtype,
        "logprobs_mode": "processed_logprobs",
        "enable_prefix_caching": bool(enable_prefix_caching),
        "enforce_eager": bool(enforce_eager),
    }
    if max_num_seqs is not None:
        kw["max_num_seqs"] = int(max_num_seqs)
    if max_num_batched_tokens is not None:
        kw["max_num_batched_tokens"] = int(max_num_batched_tokens)
    if mm_processor_kwargs:
        kw["mm_processor_kwargs"] = dict(mm_processor_kwargs)
    kw.update(extra or {})
    return kw


def external_launcher_env(environ: Mapping[str, str], *, master_port: int = 29511) -> dict[str, str]:
    """The torch.distributed variables vLLM's `external_launcher` reads, for those missing from `environ`: a
    launcher (accelerate, torchrun) sets them all; a single process without one gets rank 0 of 1."""
    defaults = {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1", "MASTER_ADDR": "127.0.0.1",
                "MASTER_PORT": str(master_port)}
    return {k: v for k, v in defaults.items() if k not in environ}


# ---- outputs -------------------------------------------------------------------------------------------------


@dataclass
class SampledCompletion:
    """One completion as vLLM reports it: sampled ids, the logprob of each, finish and stop reasons (vLLM's
    `stop_reason` is the stop string, a stop token id, or None for EOS; the server's token endpoint omits it)."""

    token_ids: list[int]
    logprobs: list[float] | None
    finish_reason: str | None
    stop_reason: str | int | None = None


def completion_from_vllm(output: Any) -> SampledCompletion:
    """From a `vllm.outputs.CompletionOutput` (fields `token_ids`, `logprobs` (one `{token_id: Logprob}` per
    position, the sampled token always present), `finish_reason`, `stop_reason`)."""
    ids = [int(t) for t in output.token_ids]
    lps: list[float] | None = None
    if output.logprobs is not None:
        lps = []
        for k, (tok, entry) in enumerate(zip(ids, output.logprobs, strict=True)):
            if tok not in entry:
                raise EngineError(f"vLLM returned no logprob for the sampled token {tok} at position {k}")
            lps.append(float(entry[tok].logprob))
    return SampledCompletion(ids, lps, output.finish_reason, output.stop_reason)


def completion_from_json(choice: Mapping[str, Any]) -> SampledCompletion:
    """From one choice of the server's `/inference/v1/generate` response (`token_ids`, `finish_reason`,
    `logprobs.content[i].logprob`)."""
    ids = [int(t) for t in choice.get("token_ids") or []]
    lp = choice.get("logprobs")
    lps = None
    if lp is not None:
        content = lp.get("content") or []
        lps = [float(e["logprob"]) for e in content]
    return SampledCompletion(ids, lps, choice.get("finish_reason"), choice.get("stop_reason"))


def _decode(tokenizer: Any, ids: Sequence[int]) -> str:
    return tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False)


def stop_string_end(ids: Sequence[int], stops: Sequence[str], decode: Callable[[Sequence[int]], str]) -> int | None:
    """Smallest k such that decode(ids[:k]) contains a stop string, or None (binary search; containment is
    monotone in k)."""
    if not stops or not ids or cut_at_stop(decode(ids), tuple(stops))[1] is None:
        return None
    lo, hi = 1, len(ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if cut_at_stop(decode(ids[:mid]), tuple(stops))[1] is not None:
            hi = mid
        else:
            lo = mid + 1
    return lo


def build_output(c: SampledCompletion, *, tokenizer: Any, eos_ids: Sequence[int], sampling: SamplingParams,
                 metadata: dict[str, Any] | None = None) -> GenerateOutput:
    """`GenerateOutput` with the HF engine's semantics (module docstring). Raises `EngineError` for an errored
    request or missing logprobs."""
    tok = getattr(tokenizer, "tokenizer", tokenizer)
    reason = c.finish_reason
    if reason not in ("stop", "length", "abort"):
        raise EngineError(f"vLLM finished the request with finish_reason={reason!r}")
    if c.logprobs is None:
        raise EngineError("vLLM returned no logprobs (the request must ask for logprobs=0)")
    if len(c.logprobs) != len(c.token_ids):
        raise EngineError(f"vLLM returned {len(c.token_ids)} tokens but {len(c.logprobs)} logprobs")
    bad = [k for k, v in enumerate(c.logprobs) if math.isnan(v)]
    if bad:
        raise EngineError(f"vLLM returned NaN logprobs at positions {bad[:5]}")
    eos = set(int(e) for e in eos_ids)
    if isinstance(c.stop_reason, int):
        eos.add(int(c.stop_reason))  # a stop token id ends the turn like an EOS
    ids = list(c.token_ids)
    lps = list(c.logprobs)
    decode = lambda seq: _decode(tok, seq)  # noqa: E731
    # Where the turn really ended: the first EOS, or the token completing the first stop string, or the length limit.
    limit = min(len(ids), sampling.max_new_tokens)
    eos_at = next((k for k, t in enumerate(ids[:limit]) if t in eos), None)
    end = limit if eos_at is None else eos_at + 1
    stop_end = stop_string_end(ids[:end], sampling.stop, decode)
    finish: FinishKind
    stop_reason: str | None
    if stop_end is not None and (eos_at is None or stop_end <= eos_at):
        end, finish = stop_end, "stop"
        stop_reason = cut_at_stop(decode(ids[:end]), sampling.stop)[1]
    elif eos_at is not None:
        end, finish, stop_reason = eos_at + 1, "stop", decode([ids[eos_at]])
    else:
        # The length limit, an abort, or a stop on something this tokenizer does not show (keep vLLM's word).
        end, finish = limit, reason  # type: ignore[assignment]
        stop_reason = c.stop_reason if finish == "stop" and isinstance(c.stop_reason, str) else None
    ids, lps = ids[:end], lps[:end]
    body = ids[:-1] if ids and ids[-1] in eos else ids
    text, _ = cut_at_stop(decode(body), sampling.stop)
    return GenerateOutput(token_ids=ids, logprobs=lps, finish_reason=finish, text=text, stop_reason=stop_reason,
                          metadata=dict(metadata or {}))
