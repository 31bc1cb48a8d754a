"""Chat completions against any OpenAI-compatible API: PyVision-style inference with API models, teacher data.

    engine = OpenAIChatEngine("gpt-4.1", base_url="https://api.openai.com/v1")             # key: $OPENAI_API_KEY
    engine = OpenAIChatEngine("Qwen2.5-VL-72B", base_url="http://gpu-node:8000/v1", api_key_env=None)  # local vLLM
    trajectories = await run_episodes(tasks, engine, protocol=get_protocol("pyvision"), pool=pool)

Message level (`ChatEngine`): the conversation goes out as chat messages, with every `{"type": "image"}` part
replaced, in conversation order, by an `image_url` part holding the image as a base64 PNG data URL (lossless: the
model sees exactly the sandbox's pixels). What comes back is text, never token ids or logprobs, so trajectories from
this engine are inference/SFT data and cannot be trained on with RL; `generate` and `tokenizer` raise and say so.

Requests carry `stop`, `max_tokens` (or `max_completion_tokens`, which OpenAI's own API wants for newer models;
`max_tokens_field="auto"` picks it for api.openai.com / Azure), `temperature`, `top_p`, `top_k` (only when set;
not an OpenAI parameter, vLLM accepts it) and `seed`. Stop strings: OpenAI-style servers strip the stop string from
the returned text; the text is returned as given (or cut after a stop string if the server kept it), with
`finish_reason` mapped onto stop/length/abort, and `ChatOutput.stop_reason` filled from vLLM's `stop_reason` field
when the server sends one, so the loop can put back a stripped code-closing tag.

Reliability: at most `max_concurrency` requests in flight (a semaphore; waiting retries do not hold a slot), a
per-request timeout, retries with exponential backoff and jitter on connection errors, timeouts, 429 (honouring
`Retry-After`) and 5xx; any other 4xx raises `EngineError` at once with the server's message (`http_retry`). Token
usage is summed per engine (`usage`), with request, retry and failure counts (`stats`).
"""

from __future__ import annotations

import asyncio
import base64
import io
import logging
import os
import random
from collections.abc import Mapping, Sequence
from typing import Any, Literal
from urllib.parse import urlparse

import httpx
import numpy as np

from rollout.engines.base import ChatEngine, ChatOutput, EngineError, FinishKind, SamplingParams, cut_at_stop
from rollout.engines.http_retry import RetryPolicy, post_json

logger = logging.getLogger(__name__)

NOT_FOR_RL = ("OpenAIChatEngine is a message-level API client: the server returns text, not the token ids and "
              "sampling logprobs RL needs, so its trajectories cannot be trained on with RL. Use it for inference "
              "and SFT/teacher data; for RL use a token engine (hf, vllm_colocate, vllm_server)")

MaxTokensField = Literal["auto", "max_tokens", "max_completion_tokens", "both"]

_LENGTH_REASONS = {"length", "max_tokens", "model_length"}
_ABORT_REASONS = {"content_filter", "abort", "error", "cancelled"}


def png_data_url(image: Any, *, compress_level: int = 6) -> str:
    """A uint8 RGB array (H, W, 3) or PIL image as a `data:image/png;base64,...` URL (lossless). `compress_level`
    is zlib's (0-9): 1 encodes ~4x faster than the default 6 for ~20% more bytes (scripts/bench/server_image_bytes.py)."""
    from PIL import Image

    im = Image.fromarray(np.asarray(image)) if not isinstance(image, Image.Image) else image
    if im.mode not in ("RGB", "RGBA", "L"):
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG", compress_level=compress_level)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode("ascii")


def to_openai_messages(messages: Sequence[Mapping[str, Any]], images: Sequence[Any], *,
                       image_detail: str | None = None) -> list[dict[str, Any]]:
    """Chat-template messages (`{"type": "text"}` / `{"type": "image"}` parts; the i-th image part of the whole
    conversation is `images[i]`) as OpenAI chat messages. A message with text only becomes a plain string (what
    every OpenAI-compatible server accepts, for every role)."""
    out: list[dict[str, Any]] = []
    k = 0
    for m in messages:
        content = m.get("content")
        if isinstance(content, str) or content is None:
            out.append({"role": m["role"], "content": content or ""})
            continue
        parts: list[dict[str, Any]] = []
        for p in content:
            kind = p.get("type")
            if kind == "text":
                parts.append({"type": "text", "text": p.get("text", "")})
            elif kind == "image":
                if k >= len(images):
                    raise EngineError(f"the conversation has more image parts than the {len(images)} image(s) given")
                url: dict[str, Any] = {"url": png_data_url(images[k])}
                if image_detail is not None:
                    url["detail"] = image_detail
                parts.append({"type": "image_url", "image_url": url})
                k += 1
            else:
                raise EngineError(f"unsupported content part type {kind!r} in a {m['role']} message")
        if all(p["type"] == "text" for p in parts):
            out.append({"role": m["role"], "content": "".join(p["text"] for p in parts)})
        else:
            out.append({"role": m["role"], "content": parts})
    if k != len(images):
        raise EngineError(f"the conversation has {k} image part(s) but {len(images)} image(s) were given")
    return out


def map_finish_reason(reason: Any) -> FinishKind:
    """OpenAI-style finish reasons onto stop/length/abort (`content_filter` is an abort; `tool_calls`, `eos`, and
    other normal ends are stops)."""
    r = str(reason or "").lower()
    if r in _LENGTH_REASONS:
        return "length"
    if r in _ABORT_REASONS or not r:
        return "abort"
    return "stop"


def usage_counts(usage: Any) -> dict[str, int]:
    """The integer counters of a response's `usage` (nested `*_details` flattened, e.g. `reasoning_tokens`)."""
    out: dict[str, int] = {}
    if not isinstance(usage, Mapping):
        return out
    for key, value in usage.items():
        if isinstance(value, bool):
            continue
        if isinstance(value, int):
            out[key] = value
        elif isinstance(value, Mapping):
            for sub, v in value.items():
                if isinstance(v, int) and not isinstance(v, bool):
                    out[sub] = out.get(sub, 0) + v
    return out


class OpenAIChatEngine(ChatEngine):
    """A `ChatEngine` over `POST {base_url}/chat/completions` (see the module docstring)."""

    name = "openai"

    def __init__(self, model: str, *, base_url: str = "https://api.openai.com/v1",
                 api_key_env: str | None = "OPENAI_API_KEY", max_concurrency: int = 16, timeout_s: float = 300.0,
                 connect_timeout_s: float = 10.0, max_retries: int = 5, backoff_base_s: float = 1.0,
                 backoff_max_s: float = 60.0, max_tokens_field: MaxTokensField = "auto",
                 image_detail: str | None = None, omit_params: Sequence[str] = (),
                 extra_body: Mapping[str, Any] | None = None, headers: Mapping[str, str] | None = None) -> None:
        """
        model: the served model name.
        base_url: the API root including its version path (`.../v1`); `/chat/completions` is appended.
        api_key_env: name of the environment variable holding the API key (read now); None or unset: no
            Authorization header (local servers need none).
        max_concurrency: requests in flight at most.
        timeout_s / connect_timeout_s: per attempt.
        max_retries / backoff_base_s / backoff_max_s: retry policy (`http_retry.RetryPolicy`).
        max_tokens_field: which length field to send; "auto": `max_completion_tokens` for OpenAI/Azure hosts,
            `max_tokens` elsewhere; "both" sends both.
        image_detail: OpenAI's `detail` for image parts ("low", "high", "auto"); None: not sent.
        omit_params: request fields never to send (e.g. `("temperature", "top_p")` for reasoning models that
            reject them).
        extra_body: further fields merged into every request (e.g. `{"chat_template_kwargs": {...}}` for vLLM).
        headers: extra HTTP headers.
        """
        if max_concurrency <= 0:
            raise ValueError(f"max_concurrency must be positive, got {max_concurrency}")
        self.model = model
        self.base_url = base_url.rstrip("/")
        self.url = f"{self.base_url}/chat/completions"
        host = (urlparse(self.base_url).hostname or "").lower()
        if max_tokens_field == "auto":
            max_tokens_field = ("max_completion_tokens" if host.endswith(("openai.com", "azure.com"))
                                else "max_tokens")
        if max_tokens_field not in ("max_tokens", "max_completion_tokens", "both"):
            raise ValueError(f"max_tokens_field must be auto, max_tokens, max_completion_tokens or both, "
                             f"got {max_tokens_field!r}")
        self.max_tokens_field = max_tokens_field
        self.api_key_env = api_key_env
        key = os.environ.get(api_key_env) if api_key_env else None
        self._headers = dict(headers or {})
        if key:
            self._headers["Authorization"] = f"Bearer {key}"
        self.max_concurrency = max_concurrency
        self.timeout = httpx.Timeout(timeout_s, connect=min(connect_timeout_s, timeout_s))
        self.policy = RetryPolicy(max_retries=max_retries, backoff_base_s=backoff_base_s, backoff_max_s=backoff_max_s)
        self.image_detail = image_detail
        self.omit_params = frozenset(omit_params)
        self.extra_body = dict(extra_body or {})
        self.usage: dict[str, int] = {}
        self.counts = {"requests": 0, "retries": 0, "failures": 0}
        self._rng = random.Random()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._client: httpx.AsyncClient | None = None
        self._slot: asyncio.Semaphore | None = None

    # ---- not token level -----------------------------------------------------------------------------------

    @property
    def tokenizer(self) -> Any:
        raise AttributeError(NOT_FOR_RL)

    async def generate(self, *args: Any, **kwargs: Any) -> Any:
        """Token-level generation is impossible through a chat API (see `NOT_FOR_RL`)."""
        raise TypeError(NOT_FOR_RL)

    # ---- ChatEngine ----------------------------------------------------------------------------------------

    @property
    def stats(self) -> dict[str, int]:
        return {**self.counts, **self.usage}

    def request_body(self, messages: Sequence[Mapping[str, Any]], images: Sequence[Any],
                     sampling: SamplingParams) -> dict[str, Any]:
        """The JSON body of one chat completion request."""
        body: dict[str, Any] = {"model": self.model,
                                "messages": to_openai_messages(messages, images, image_detail=self.image_detail)}
        if self.max_tokens_field in ("max_tokens", "both"):
            body["max_tokens"] = sampling.max_new_tokens
        if self.max_tokens_field in ("max_completion_tokens", "both"):
            body["max_completion_tokens"] = sampling.max_new_tokens
        body["temperature"] = sampling.temperature
        body["top_p"] = sampling.top_p
        if sampling.top_k > 0:
            body["top_k"] = sampling.top_k
        if sampling.stop:
            body["stop"] = list(sampling.stop)
        if sampling.seed is not None:
            body["seed"] = sampling.seed
        body.update(self.extra_body)
        for k in self.omit_params:
            body.pop(k, None)
        return body

    async def chat(self, messages: list[dict[str, Any]], images: list[np.ndarray], sampling: SamplingParams,
                   context: dict[str, Any] | None = None) -> ChatOutput:
        body = await asyncio.to_thread(self.request_body, messages, images, sampling)  # PNG encoding off the loop
        client, slot = self._client_for_loop()
        self.counts["requests"] += 1

        def on_retry(attempt: int, reason: str, delay: float) -> None:
            self.counts["retries"] += 1
            logger.info("openai: %s retry %d in %.1fs after %s", (context or {}).get("trajectory_id", ""), attempt,
                        delay, reason)

        try:
            data = await post_json(client, self.url, body, policy=self.policy, headers=self._headers,
                                   timeout=self.timeout, slot=slot, rng=self._rng, on_retry=on_retry,
                                   hint_4xx=self._hint)
        except EngineError:
            self.counts["failures"] += 1
            raise
        return self._parse(data, sampling)

    async def aclose(self) -> None:
        if self._client is not None:
            await self._client.aclose()
        self._client, self._slot, self._loop = None, None, None

    # ---- internals -----------------------------------------------------------------------------------------

    def _client_for_loop(self) -> tuple[httpx.AsyncClient, asyncio.Semaphore]:
        """An HTTP client and semaphore bound to the running event loop (asyncio objects cannot cross loops)."""
        loop = asyncio.get_running_loop()
        if self._loop is not loop or self._client is None or self._slot is None:
            self._loop = loop
            self._client = httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(
                max_connections=self.max_concurrency, max_keepalive_connections=self.max_concurrency))
            self._slot = asyncio.Semaphore(self.max_concurrency)
        return self._client, self._slot

    def _hint(self, status: int) -> str:
        if status in (401, 403) and self.api_key_env and "Authorization" not in self._headers:
            return f" (no API key was sent: ${self.api_key_env} is not set)"
        return ""

    def _parse(self, data: Any, sampling: SamplingParams) -> ChatOutput:
        if not isinstance(data, Mapping) or not data.get("choices"):
            raise EngineError(f"the chat completion response has no choices: {str(data)[:500]}")
        choice = data["choices"][0]
        message = choice.get("message") or {}
        content = message.get("content")
        if isinstance(content, list):  # some servers return content parts
            content = "".join(p.get("text", "") for p in content if isinstance(p, Mapping))
        text = content or ""
        finish = map_finish_reason(choice.get("finish_reason"))
        server_stop = choice.get("stop_reason")
        stop_reason = server_stop if isinstance(server_stop, str) else None
        cut, fired = cut_at_stop(text, sampling.stop)
        if fired is not None:  # the server kept the stop string: cut after it, as the HF engine does
            text, stop_reason, finish = cut, fired, "stop"
        usage = usage_counts(data.get("usage"))
        for k, v in usage.items():
            self.usage[k] = self.usage.get(k, 0) + v
        return ChatOutput(text=text, finish_reason=finish, usage=usage, stop_reason=stop_reason)
