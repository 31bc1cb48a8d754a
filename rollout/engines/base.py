"""The generation-engine interface: one small async API, token-in/token-out with images (docs/architecture.md, rollout).

Two kinds of engine drive the episode loop:

- `TokenEngine` (RL, evaluation): `await engine.generate(prompt_ids, images, sampling) -> GenerateOutput`.
  `prompt_ids` is the *unexpanded* sequence (one `<|image_pad|>` per image, in the order of `images`); the engine
  expands it the way its backend needs (vLLM does that itself; the HF engine through `rollout.expand`). The output
  holds the sampled token ids exactly as sampled (including the token that completed a stop string or the EOS),
  the logprob of each (see "Logprobs" below), and why generation stopped. Episodes built from it are token-exact
  and usable for RL.
- `ChatEngine` (PyVision-style inference with API models, teacher trajectories, scripted oracle data):
  `await engine.chat(messages, sampling) -> ChatOutput`, message level. Episodes built from it carry text, code,
  results and images but no token arrays; they are SFT/eval data and the RL trainer refuses them.

Engine failures raise `EngineError`; the episode loop turns that into `finish_reason=engine_error` for the
episode concerned only.

Logprobs (the one statement of what `GenerateOutput.logprobs` holds). Every engine returns, for each sampled
token, its log-probability under the policy at the request's temperature T; the engines differ in whether
top-k/top-p truncation is applied first, and say so in `TokenEngine.logprobs_after_truncation`:

- False (`hf`): `log_softmax(logits / T)` over the full vocabulary, before top-k/top-p truncation and before the
  placeholder-token ban: exactly what the RL trainer computes from its own forward pass.
- True (`vllm_colocate`, `vllm_server`, which run vLLM with `logprobs_mode="processed_logprobs"`): the logprob
  under the distribution actually sampled from: after the ban (`logit_bias` -100 on placeholder tokens),
  temperature, and top-k/top-p truncation, renormalised over the tokens kept.

With `top_p == 1` and `top_k == 0` (the RL default) both equal the trainer's `log_softmax(logits / T)`, up to the
banned placeholder tokens' probability mass (e^-100 relative weight in vLLM: nothing at any precision that
matters). With truncation they differ, and an RL ratio taken between the trainer's full-vocabulary logprob and
an engine's truncated one is wrong from the first step: `trainer_logprob_mismatch` says when that is the case,
so the trainer can refuse the combination. Greedy requests (T = 0) report logprobs at T = 1.

Weights. `TokenEngine.weights_version` counts the weight updates the engine has received; every
`GenerateOutput.metadata["weights_version"]` says which weights sampled it. `TokenEngine.weight_sync` says how
the trainer gets new weights to the engine (`train.weight_sync.push_weights` dispatches on it): "shared" (the
engine reads the trainer's own module: nothing to copy, the trainer calls `weights_updated()`), "per_rank" (every
training rank loads into its own engine: `update_weights(named_tensors)`), "main_process" (one engine behind all
ranks, fed by the main process: `update_weights(named_tensors, metadata=...)`; the other ranks take part in the
ZeRO-3 gathers only), "none" (no weights: scripted engines).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
import math
from typing import Any, Literal

import numpy as np

FinishKind = Literal["stop", "length", "abort"]
WeightSync = Literal["none", "shared", "per_rank", "main_process"]
WEIGHT_SYNC_KINDS: tuple[str, ...] = ("none", "shared", "per_rank", "main_process")

# What vLLM 0.31's SamplingParams._verify_args accepts (vllm/sampling_params.py), checked here so that a bad setting
# fails when the config is built instead of turning every request into an engine_error.
MAX_TEMPERATURE = 2.0  # vLLM: "temperature must be in [0, 2]"
MIN_SAMPLING_TEMPERATURE = 0.01  # vLLM raises 0 < T < 0.01 to 0.01 (with a warning): logprobs at another T


class EngineError(RuntimeError):
    """Generation failed (backend error, unreachable server, bad request). Recorded on the episode, not raised
    into the trainer."""


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling settings. `stop` are strings that end the turn (the protocol's, e.g. `</code>`);
    the model's EOS / end-of-turn tokens always stop. `seed` makes a request reproducible (every engine takes
    per-request seeds); the episode loop gives every request its own seed.

    Validated at construction against what every engine accepts (vLLM 0.31's `SamplingParams._verify_args` is
    the strictest): `max_new_tokens` >= 1; `temperature` 0 (greedy) or in [0.01, 2] (vLLM rejects T > 2 and
    silently raises 0 < T < 0.01 to 0.01, which would make its logprobs those of another temperature); `top_p` in
    (0, 1]; `top_k` an integer >= 0 (0: off); stop strings non-empty; `seed` an integer in [0, 2^63)."""

    max_new_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        n = self.max_new_tokens
        if isinstance(n, bool) or not isinstance(n, int) or n <= 0:
            raise ValueError(f"max_new_tokens must be a positive integer, got {self.max_new_tokens!r}")
        t = self.temperature
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not math.isfinite(t):
            raise ValueError(f"temperature must be a finite number, got {t!r}")
        if t < 0 or t > MAX_TEMPERATURE:
            raise ValueError(f"temperature must be in [0, {MAX_TEMPERATURE:g}] (0 = greedy; vLLM rejects more than "
                             f"{MAX_TEMPERATURE:g}), got {t}")
        if 0 < t < MIN_SAMPLING_TEMPERATURE:
            raise ValueError(f"temperature must be 0 (greedy) or at least {MIN_SAMPLING_TEMPERATURE} (vLLM raises "
                             f"smaller values to {MIN_SAMPLING_TEMPERATURE}, so its logprobs would not be at the "
                             f"temperature asked for), got {t}")
        if isinstance(self.top_p, bool) or not isinstance(self.top_p, (int, float)) or not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p!r}")
        if isinstance(self.top_k, bool) or not isinstance(self.top_k, int) or self.top_k < 0:
            raise ValueError(f"top_k must be an integer >= 0 (0 = no top-k), got {self.top_k!r}")
        if isinstance(self.stop, str):
            raise ValueError(f"stop must be a tuple of strings, not one string: use stop=({self.stop!r},)")
        if any(not isinstance(s, str) or not s for s in self.stop):
            raise ValueError(f"stop strings must be non-empty strings, got {self.stop!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)
                                      or not 0 <= self.seed < 2**63):
            raise ValueError(f"seed must be None or an integer in [0, 2^63), got {self.seed!r}")

    @property
    def truncated(self) -> bool:
        """Whether sampling truncates the distribution (top-p < 1 or top-k > 0; never when greedy)."""
        return not self.greedy and (self.top_p < 1 or self.top_k > 0)

    @property
    def greedy(self) -> bool:
        return self.temperature == 0

    def with_(self, **changes: Any) -> SamplingParams:
        return replace(self, **changes)


@dataclass
class GenerateOutput:
    """What a token engine returns for one request.

    `token_ids` are all sampled tokens (never cut back to the stop string: the token that completed it stays, and
    so does a sampled EOS). `text` is their decoding, cut right after the stop string when one fired, and without
    a trailing EOS/end-of-turn token: what the protocol parses. `stop_reason` is the stop string, or the EOS token's
    text, that ended generation (None for "length")."""

    token_ids: list[int]
    logprobs: list[float]
    finish_reason: FinishKind
    text: str
    stop_reason: str | None = None
    metadata: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if len(self.logprobs) != len(self.token_ids):
            raise ValueError(f"{len(self.token_ids)} tokens but {len(self.logprobs)} logprobs")


@dataclass
class ChatOutput:
    """What a chat engine returns: the assistant text (cut after the stop string, which is kept) and why it stopped.

    OpenAI-style APIs strip the stop string from the text they return; `stop_reason` is the stop string that fired
    when the server says so (vLLM's `stop_reason` field), else None, so that the loop can restore it."""

    text: str
    finish_reason: FinishKind
    usage: dict[str, int] = field(default_factory=dict)
    stop_reason: str | None = None


class TokenEngine(abc.ABC):
    """Token-in/token-out generation with images. Implementations must be safe to call from many concurrent
    asyncio tasks (they batch internally)."""

    name: str = "token"
    token_level: bool = True
    logprobs_after_truncation: bool = False  # module docstring, "Logprobs"
    weight_sync: WeightSync = "none"  # module docstring, "Weights"
    weights_version: int = 0

    def weights_updated(self) -> int:
        """The trainer changed the weights this engine reads (`weight_sync == "shared"`): count a new version.
        Returns the new `weights_version`."""
        self.weights_version += 1
        return self.weights_version

    @abc.abstractmethod
    async def generate(self, prompt_ids: list[int], images: list[np.ndarray], sampling: SamplingParams) -> GenerateOutput:
        """Continue `prompt_ids` (unexpanded; one image placeholder per entry of `images`)."""

    @property
    @abc.abstractmethod
    def tokenizer(self) -> Any:
        """The tokenizer whose ids `generate` takes and returns (a transformers tokenizer)."""

    @property
    def processor(self) -> Any | None:
        """The multimodal processor, when the engine has one (used to render chat templates)."""
        return None

    def episode_started(self) -> None:
        """Hint from the episode loop that one more episode will send requests (lets batching engines launch a
        batch as soon as every episode in flight is waiting; see `rollout.engines.batcher`). Default: ignored."""

    def episode_finished(self) -> None:
        """Hint from the episode loop that an episode will send no more requests. Default: ignored."""

    async def aclose(self) -> None:
        """Release resources (threads, servers, GPU memory)."""


class ChatEngine(abc.ABC):
    """Message-level generation (OpenAI-compatible chat, scripted policies). Not usable for RL."""

    name: str = "chat"
    token_level: bool = False

    @abc.abstractmethod
    async def chat(self, messages: list[dict[str, Any]], images: list[np.ndarray], sampling: SamplingParams,
                   context: dict[str, Any] | None = None) -> ChatOutput:
        """Reply to `messages` (chat-template form: content parts `{"type": "text"}` / `{"type": "image"}`, where
        the i-th image part in the whole conversation is `images[i]`). `context` carries the episode's
        `task_id` and `trajectory_id` (for logging, caching, scripted replay)."""

    async def aclose(self) -> None:
        """Release resources."""


Engine = TokenEngine | ChatEngine


def trainer_logprob_mismatch(engine: Any, sampling: SamplingParams) -> str | None:
    """Why `engine`'s logprobs under `sampling` are not the trainer's full-vocabulary `log_softmax(logits / T)`
    (module docstring, "Logprobs"), or None when they are. The RL trainer refuses the run when this is not None.
    `engine` is an engine (or its class), or its `rollout.engines.registry.EngineSpec` (no import needed: what a
    config validator can use)."""
    if not sampling.truncated or not getattr(engine, "logprobs_after_truncation", False):
        return None
    name = getattr(engine, "name", None) or getattr(engine, "kind", None) or type(engine).__name__
    return (f"the {name} engine reports logprobs after top-k/top-p truncation (top_p={sampling.top_p}, "
            f"top_k={sampling.top_k}), but the trainer computes log_softmax(logits / T) over the full vocabulary: "
            "the importance ratio would be wrong from the first step. Set top_p: 1.0 and top_k: 0 for RL with "
            "this engine (or use the hf engine, whose logprobs are before truncation)")


def cut_at_stop(text: str, stops: tuple[str, ...]) -> tuple[str, str | None]:
    """`text` cut right after the earliest stop string (kept), and which stop fired (None if none)."""
    best: tuple[int, str] | None = None
    for s in stops:
        i = text.find(s)
        if i >= 0 and (best is None or i + len(s) < best[0] + len(best[1])):
            best = (i, s)
    if best is None:
        return text, None
    return text[: best[0] + len(best[1])], best[1]
