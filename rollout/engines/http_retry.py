"""POST a JSON request with retries: what the HTTP engines (`openai_chat`, `vllm_server`) share.

Transient failures are retried with exponential backoff and jitter: connection errors, timeouts, dropped
connections, 408, 429 and 5xx. A `Retry-After` header (seconds or an HTTP date) is honoured: the wait is at least
what the server asked for, up to `max_retry_after_s`. Any other 4xx is the caller's mistake and is raised at once as
`HTTPEngineError` carrying the server's own message, so the episode records why. Exhausted retries raise
`EngineError` naming the last failure.
"""

from __future__ import annotations

import asyncio
import email.utils
import json
import random
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from rollout.engines.base import EngineError

RETRY_STATUSES = frozenset({408, 429})


class HTTPEngineError(EngineError):
    """The server answered with an error status (`status`); the message includes the server's own words."""

    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


@dataclass(frozen=True)
class RetryPolicy:
    """How many times and how long to retry a request (`max_retries` retries after the first attempt)."""

    max_retries: int = 5
    backoff_base_s: float = 1.0
    backoff_max_s: float = 60.0
    max_retry_after_s: float = 300.0

    def __post_init__(self) -> None:
        if self.max_retries < 0 or self.backoff_base_s < 0 or self.backoff_max_s < 0:
            raise ValueError("retry settings must be non-negative")

    def backoff(self, attempt: int, rng: random.Random) -> float:
        """Wait before retry number `attempt` (0-based): exponential, capped, with "equal jitter" (half fixed,
        half random) so that many clients that failed together do not retry together."""
        d = min(self.backoff_max_s, self.backoff_base_s * (2 ** attempt))
        return d / 2 + rng.uniform(0, d / 2)


def retry_after_seconds(value: str | None, now: float | None = None) -> float | None:
    """Seconds a `Retry-After` header asks for (delta-seconds or an HTTP date), or None if absent/unreadable."""
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def error_message(response: httpx.Response) -> str:
    """The server's explanation of an error response: OpenAI's `{"error": {"message"}}`, FastAPI's `{"detail"}`,
    vLLM's `{"message"}`, or the raw body (cut)."""
    try:
        data = response.json()
    except (json.JSONDecodeError, ValueError):
        data = None
    if isinstance(data, dict):
        err = data.get("error")
        if isinstance(err, dict) and err.get("message"):
            return str(err["message"])
        if isinstance(err, str):
            return err
        for key in ("detail", "message"):
            if data.get(key):
                return str(data[key]) if not isinstance(data[key], str) else data[key]
    text = response.text.strip()
    return text[:2000] if text else response.reason_phrase


async def post_json(client: httpx.AsyncClient, url: str, payload: Mapping[str, Any], *, policy: RetryPolicy,
                    headers: Mapping[str, str] | None = None, timeout: httpx.Timeout | float | None = None,
                    slot: asyncio.Semaphore | None = None, rng: random.Random | None = None,
                    on_retry: Callable[[int, str, float], None] | None = None,
                    sleep: Callable[[float], Awaitable[Any]] = asyncio.sleep,
                    hint_4xx: Callable[[int], str] | None = None) -> Any:
    """POST `payload` as JSON and return the decoded JSON answer (None for an empty body), retrying transient
    failures (module docstring). `slot` is held during each attempt, not while waiting to retry, so it bounds
    requests in flight. `on_retry(attempt, reason, delay)` is called before each wait."""
    rng = rng or random.Random()
    last = "no attempt made"
    for attempt in range(policy.max_retries + 1):
        retry_after: float | None = None
        try:
            if slot is not None:
                async with slot:
                    response = await client.post(url, json=payload, headers=dict(headers or {}),
                                                 **({"timeout": timeout} if timeout is not None else {}))  # type: ignore[arg-type]
            else:
                response = await client.post(url, json=payload, headers=dict(headers or {}),
                                             **({"timeout": timeout} if timeout is not None else {}))  # type: ignore[arg-type]
        except httpx.TimeoutException as exc:
            last = f"timed out ({type(exc).__name__})"
        except httpx.TransportError as exc:  # connect errors, dropped connections, protocol errors
            last = f"{type(exc).__name__}: {exc}"
        else:
            status = response.status_code
            if status < 400:
                if not response.content:
                    return None
                try:
                    return response.json()
                except (json.JSONDecodeError, ValueError) as exc:
                    raise EngineError(f"POST {url}: the server answered {status} with a body that is not JSON: "
                                      f"{response.text[:500]!r}") from exc
            message = error_message(response)
            if status in RETRY_STATUSES or status >= 500:
                last = f"HTTP {status}: {message}"
                retry_after = retry_after_seconds(response.headers.get("retry-after"))
            else:
                hint = hint_4xx(status) if hint_4xx else ""
                raise HTTPEngineError(f"POST {url} failed with HTTP {status}: {message}{hint}", status)
        if attempt == policy.max_retries:
            break
        delay = policy.backoff(attempt, rng)
        if retry_after is not None:
            delay = max(delay, min(retry_after, policy.max_retry_after_s))
        if on_retry is not None:
            on_retry(attempt + 1, last, delay)
        await sleep(delay)
    raise EngineError(f"POST {url} failed after {policy.max_retries + 1} attempt(s): {last}")
