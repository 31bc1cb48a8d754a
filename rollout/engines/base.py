"""The generation-engine interface: one small async API, token-in/token-out with images (DESIGN.md, rollout).

Two kinds of engine drive the episode loop:

- `TokenEngine` (RL, evaluation): `await engine.generate(prompt_ids, images, sampling) -> GenerateOutput`.
  `prompt_ids` is the *unexpanded* sequence (one `<|image_pad|>` per image, in the order of `images`); the engine
  expands it the way its backend needs (vLLM does that itself; the HF engine through `rollout.expand`). The output
  holds the sampled token ids exactly as sampled (including the token that completed a stop string or the EOS),
  the logprob of each under the sampling distribution (logits / temperature, before top-p/top-k truncation),
  and why generation stopped. Episodes built from it are token-exact and usable for RL.
- `ChatEngine` (PyVision-style inference with API models, teacher trajectories, scripted oracle data):
  `await engine.chat(messages, sampling) -> ChatOutput`, message level. Episodes built from it carry text, code,
  results and images but no token arrays; they are SFT/eval data and the RL trainer refuses them.

Engine failures raise `EngineError`; the episode loop turns that into `finish_reason=engine_error` for the
episode concerned only.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field, replace
from typing import Any, Literal

import numpy as np

FinishKind = Literal["stop", "length", "abort"]


class EngineError(RuntimeError):
    """Generation failed (backend error, unreachable server, bad request). Recorded on the episode, not raised
    into the trainer."""


@dataclass(frozen=True)
class SamplingParams:
    """Per-request sampling settings. `stop` are strings that end the turn (the protocol's, e.g. `</code>`);
    the model's EOS / end-of-turn tokens always stop. `seed` makes a request reproducible where the backend
    supports per-request seeds (vLLM); the episode loop gives every request its own seed."""

    max_new_tokens: int = 512
    temperature: float = 1.0
    top_p: float = 1.0
    top_k: int = 0  # 0: no top-k
    stop: tuple[str, ...] = ()
    seed: int | None = None

    def __post_init__(self) -> None:
        if self.max_new_tokens <= 0:
            raise ValueError(f"max_new_tokens must be positive, got {self.max_new_tokens}")
        if self.temperature < 0:
            raise ValueError(f"temperature must be >= 0 (0 = greedy), got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")

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
