"""A judge model behind an OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...).

Used by the TAPO judge-based step reward, the TAPO process score, the faithfulness judge and the optional answer
judge. Design (docs/methods.md, "Pitfalls": required judge servers block users, so the judge must be optional and its
failures visible):

- `JudgeConfig` (typed, unknown keys rejected) names the endpoint, model, timeouts, retries and cache;
- requests are `POST {base_url}/chat/completions` with `httpx`; images travel as base64 PNG data URLs
  (downscaled so that the longer side is at most `image_max_side`);
- transport errors, HTTP 408/409/429 and 5xx are retried with exponential backoff
  (`backoff_s * 2**attempt`, capped at `max_backoff_s`); other HTTP errors fail at once;
- successful replies are cached by the SHA-256 of the request body (model, messages, sampling) in memory and,
  with `cache_dir`, on disk, so re-scoring a run does not call the judge again;
- a failure is returned as `JudgeReply(ok=False, error=...)`, never raised: callers record it as a failed
  status (`rewards.errors.JudgeFailed`), never as a silent 0, and never crash the trainer.

The API key is read from the environment variable `api_key_env` (default `OPENAI_API_KEY`) when it is set;
local servers need none.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import os
import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Message = dict[str, Any]


class JudgeConfig(BaseModel):
    """Where and how to call the judge."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    base_url: str = Field(..., min_length=1, description="e.g. http://localhost:8000/v1")
    model: str = Field(..., min_length=1, description="model name the server expects")
    api_key_env: str | None = Field("OPENAI_API_KEY", description="environment variable with the API key, if any")
    timeout_s: float = Field(60.0, gt=0.0)
    max_retries: int = Field(3, ge=0)
    backoff_s: float = Field(1.0, ge=0.0)
    max_backoff_s: float = Field(30.0, ge=0.0)
    max_concurrency: int = Field(8, ge=1, description="parallel requests when scoring a batch")
    cache_dir: str | None = Field(None, description="directory for the on-disk reply cache (none: memory only)")
    temperature: float = Field(0.0, ge=0.0)
    max_tokens: int = Field(512, gt=0)
    image_max_side: int = Field(1024, gt=0, description="downscale images so the longer side is at most this")


@dataclass(frozen=True)
class JudgeReply:
    """One judge call's outcome: the reply text when `ok`, else the error; `cached` when no request was sent."""

    ok: bool
    text: str | None = None
    error: str | None = None
    cached: bool = False
    attempts: int = 0


def text_part(text: str) -> dict[str, Any]:
    return {"type": "text", "text": text}


def image_part(array: np.ndarray, max_side: int = 1024) -> dict[str, Any]:
    """An image as an OpenAI `image_url` part with a base64 PNG data URL (downscaled to `max_side`)."""
    from PIL import Image

    im = Image.fromarray(np.ascontiguousarray(array))
    if max(im.size) > max_side:
        scale = max_side / max(im.size)
        im = im.resize((max(1, round(im.size[0] * scale)), max(1, round(im.size[1] * scale))), Image.BICUBIC)  # type: ignore[attr-defined]
    if im.mode not in ("RGB", "L", "RGBA"):
        im = im.convert("RGB")
    buf = io.BytesIO()
    im.save(buf, format="PNG")
    return {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()}}


def parse_tagged_number(text: str, tag: str, *, low: float, high: float) -> float:
    """The number after the last `TAG:` in a judge reply (case-insensitive), checked to lie in [low, high].
    Raises ValueError (the caller records a failed judge call) when there is none or it is out of range."""
    found = re.findall(rf"{re.escape(tag)}\s*[:=]\s*\**\s*([-+]?\d+(?:\.\d+)?)", text, flags=re.IGNORECASE)
    if not found:
        raise ValueError(f"judge reply has no '{tag}: <number>': {text[:200]!r}")
    value = float(found[-1])
    if not (low <= value <= high):
        raise ValueError(f"judge {tag} {value} is outside [{low}, {high}]")
    return value


class JudgeClient:
    """Thread-safe client with retries and a reply cache (see the module docstring)."""

    RETRY_STATUS = frozenset({408, 409, 429})

    def __init__(self, config: JudgeConfig, *, http: httpx.Client | None = None,
                 sleep: Any = time.sleep) -> None:
        self.config = config
        self._http = http or httpx.Client(timeout=config.timeout_s)
        self._sleep = sleep
        self._cache: dict[str, str] = {}
        self._lock = threading.Lock()
        self.stats = {"requests": 0, "cache_hits": 0, "failures": 0, "retries": 0}

    @property
    def url(self) -> str:
        return self.config.base_url.rstrip("/") + "/chat/completions"

    def body(self, messages: Sequence[Message]) -> dict[str, Any]:
        c = self.config
        return {"model": c.model, "messages": list(messages), "temperature": c.temperature, "max_tokens": c.max_tokens}

    @staticmethod
    def cache_key(body: dict[str, Any]) -> str:
        return hashlib.sha256(json.dumps(body, sort_keys=True, separators=(",", ":")).encode()).hexdigest()

    def _disk_path(self, key: str) -> Path | None:
        return Path(self.config.cache_dir) / key[:2] / f"{key}.json" if self.config.cache_dir else None

    def _cached(self, key: str) -> str | None:
        with self._lock:
            if key in self._cache:
                return self._cache[key]
        path = self._disk_path(key)
        if path is not None and path.is_file():
            try:
                text = json.loads(path.read_text())["text"]
            except (OSError, ValueError, KeyError):
                return None
            with self._lock:
                self._cache[key] = text
            return text
        return None

    def _store(self, key: str, text: str) -> None:
        with self._lock:
            self._cache[key] = text
        path = self._disk_path(key)
        if path is not None:
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(f".{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps({"text": text, "model": self.config.model}))
            tmp.replace(path)

    def _headers(self) -> dict[str, str]:
        env = self.config.api_key_env
        key = os.environ.get(env) if env else None
        return {"Authorization": f"Bearer {key}"} if key else {}

    def complete(self, messages: Sequence[Message]) -> JudgeReply:
        """One chat completion; never raises for network or server trouble (see `JudgeReply`)."""
        body = self.body(messages)
        key = self.cache_key(body)
        hit = self._cached(key)
        if hit is not None:
            with self._lock:
                self.stats["cache_hits"] += 1
            return JudgeReply(True, hit, cached=True)
        c = self.config
        error = "no attempt made"
        attempts = 0
        for attempt in range(c.max_retries + 1):
            attempts = attempt + 1
            retryable = True
            with self._lock:
                self.stats["requests"] += 1
            try:
                resp = self._http.post(self.url, json=body, headers=self._headers(), timeout=c.timeout_s)
            except httpx.HTTPError as exc:
                error = f"{type(exc).__name__}: {exc}"
            else:
                if resp.status_code == 200:
                    try:
                        text = resp.json()["choices"][0]["message"]["content"]
                        if not isinstance(text, str):
                            raise TypeError(f"message content is {type(text).__name__}, not text")
                    except (ValueError, KeyError, IndexError, TypeError) as exc:
                        error = f"malformed reply from {self.url}: {type(exc).__name__}: {exc}"
                        retryable = False
                    else:
                        self._store(key, text)
                        return JudgeReply(True, text, attempts=attempts)
                else:
                    error = f"HTTP {resp.status_code} from {self.url}: {resp.text[:300]}"
                    retryable = resp.status_code in self.RETRY_STATUS or resp.status_code >= 500
            if not retryable or attempt == c.max_retries:
                break
            with self._lock:
                self.stats["retries"] += 1
            self._sleep(min(c.max_backoff_s, c.backoff_s * 2**attempt))
        with self._lock:
            self.stats["failures"] += 1
        return JudgeReply(False, error=f"judge call failed after {attempts} attempt(s): {error}", attempts=attempts)

    def complete_many(self, requests: Sequence[Sequence[Message]]) -> list[JudgeReply]:
        """Several calls, `max_concurrency` at a time; replies in request order."""
        if not requests:
            return []
        if len(requests) == 1 or self.config.max_concurrency == 1:
            return [self.complete(r) for r in requests]
        with ThreadPoolExecutor(max_workers=min(self.config.max_concurrency, len(requests))) as pool:
            return list(pool.map(self.complete, requests))


_CLIENTS: dict[str, JudgeClient] = {}
_CLIENTS_LOCK = threading.Lock()


def get_judge(config: JudgeConfig) -> JudgeClient:
    """The process-wide client for `config` (components with the same judge share its memory cache)."""
    key = config.model_dump_json()
    with _CLIENTS_LOCK:
        client = _CLIENTS.get(key)
        if client is None:
            client = _CLIENTS[key] = JudgeClient(config)
        return client
