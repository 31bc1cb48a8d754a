"""The OpenAI-compatible chat engine against a small chat-completions HTTP server started inside the test (stdlib
`http.server` in a thread): request format (messages, images as PNG data URLs that decode to the same pixels,
stop, max_tokens, sampling, seed, key), retries on 429/5xx honouring Retry-After, timeouts, connection errors,
4xx surfaced with the server's message, the concurrency limit, refusal of token-level use, and a full episode
through the real episode loop and sandbox."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest
from PIL import Image

import sandbox
from rollout.engines.base import EngineError, SamplingParams
from rollout.engines.openai_chat import NOT_FOR_RL, OpenAIChatEngine, map_finish_reason, to_openai_messages
from rollout.loop import EpisodeLimits, run_episodes
from rollout.protocols import get_protocol
from rollout.task import Task
from rollout.trajectory import FinishReason


@dataclass
class Reply:
    status: int = 200
    body: Any = None  # dict (sent as JSON) or str
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0


def completion(text: str, finish: str = "stop", stop_reason: str | None = None, prompt_tokens: int = 10,
               completion_tokens: int = 5) -> dict[str, Any]:
    choice: dict[str, Any] = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if stop_reason is not None:
        choice["stop_reason"] = stop_reason
    return {"id": "cmpl-1", "object": "chat.completion", "model": "m", "choices": [choice],
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                      "total_tokens": prompt_tokens + completion_tokens}}


class ChatServer:
    """A chat-completions endpoint whose answers come from `respond(body, n)` (n: 0-based request number)."""

    def __init__(self, respond: Callable[[dict[str, Any], int], Reply]) -> None:
        self.respond = respond
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.active = 0
        self.max_active = 0
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with server._lock:
                    n = len(server.requests)
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                    server.active += 1
                    server.max_active = max(server.max_active, server.active)
                try:
                    reply = server.respond(body, n)
                    if reply.delay_s:
                        time.sleep(reply.delay_s)
                    data = reply.body if isinstance(reply.body, str) else json.dumps(reply.body)
                    raw = data.encode()
                    self.send_response(reply.status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(raw)))
                    for k, v in reply.headers.items():
                        self.send_header(k, v)
                    self.end_headers()
                    self.wfile.write(raw)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (timeout tests)
                finally:
                    with server._lock:
                        server.active -= 1

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def serve() -> Iterator[Callable[[Callable[[dict[str, Any], int], Reply]], ChatServer]]:
    servers: list[ChatServer] = []

    def start(respond: Callable[[dict[str, Any], int], Reply]) -> ChatServer:
        servers.append(ChatServer(respond))
        return servers[-1]

    yield start
    for s in servers:
        s.close()


def _engine(server: ChatServer, **kw: Any) -> OpenAIChatEngine:
    kw.setdefault("backoff_base_s", 0.01)
    kw.setdefault("api_key_env", None)
    return OpenAIChatEngine("test-model", base_url=server.base_url, **kw)


def _images() -> list[np.ndarray]:
    rng = np.random.RandomState(1)
    return [rng.randint(0, 255, (30, 40, 3), dtype=np.uint8), rng.randint(0, 255, (20, 20, 3), dtype=np.uint8),
            rng.randint(0, 255, (8, 12, 3), dtype=np.uint8)]


def _conversation() -> list[dict[str, Any]]:
    return [
        {"role": "system", "content": [{"type": "text", "text": "You write code."}]},
        {"role": "user", "content": [{"type": "image"}, {"type": "image"}, {"type": "text", "text": "What colour?"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "<code>\nshow(image_clue_0)\n</code>"}]},
        {"role": "user", "content": [{"type": "text", "text": "Output:"}, {"type": "image"}]},
    ]


def _decode_data_url(url: str) -> np.ndarray:
    assert url.startswith("data:image/png;base64,")
    return np.asarray(Image.open(io.BytesIO(base64.b64decode(url.split(",", 1)[1]))))


SP = SamplingParams(max_new_tokens=64, temperature=0.5, top_p=0.9, stop=("</code>",), seed=11)


def test_request_format_and_response(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda body, n: Reply(body=completion("Crop.\n<code>\nprint(1)\n", stop_reason="</code>")))
    monkeypatch.setenv("CODEVL_TEST_KEY", "sk-test")
    engine = _engine(server, api_key_env="CODEVL_TEST_KEY")
    images = _images()
    out = asyncio.run(engine.chat(_conversation(), images, SP, context={"task_id": "t", "trajectory_id": "t#0"}))
    assert out.text == "Crop.\n<code>\nprint(1)\n"  # returned as given (the server stripped the stop string)
    assert out.finish_reason == "stop" and out.stop_reason == "</code>"
    assert out.usage == {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15}
    (req,) = server.requests
    assert server.headers[0]["Authorization"] == "Bearer sk-test"
    assert req["model"] == "test-model" and req["max_tokens"] == 64 and "max_completion_tokens" not in req
    assert (req["temperature"], req["top_p"], req["seed"], req["stop"]) == (0.5, 0.9, 11, ["</code>"])
    assert "top_k" not in req  # not an OpenAI parameter: sent only when set
    msgs = req["messages"]
    assert [m["role"] for m in msgs] == ["system", "user", "assistant", "user"]
    assert msgs[0]["content"] == "You write code." and msgs[2]["content"] == "<code>\nshow(image_clue_0)\n</code>"
    urls = [p["image_url"]["url"] for m in msgs if isinstance(m["content"], list) for p in m["content"]
            if p["type"] == "image_url"]
    assert len(urls) == 3
    for url, arr in zip(urls, images, strict=True):  # conversation order, lossless
        assert np.array_equal(_decode_data_url(url), arr)
    assert msgs[1]["content"][2] == {"type": "text", "text": "What colour?"}
    assert msgs[3]["content"][0] == {"type": "text", "text": "Output:"}
    asyncio.run(engine.chat(_conversation(), images, SP))
    assert engine.usage["total_tokens"] == 30 and engine.stats["requests"] == 2


def test_length_fields_and_mapping(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=completion("the answer is", finish="length")))
    engine = _engine(server, max_tokens_field="both", omit_params=("top_p",), extra_body={"top_k": 5})
    out = asyncio.run(engine.chat(_conversation(), _images(), SP))
    assert out.finish_reason == "length" and out.stop_reason is None
    req = server.requests[0]
    assert req["max_tokens"] == 64 and req["max_completion_tokens"] == 64 and "top_p" not in req and req["top_k"] == 5
    assert OpenAIChatEngine("m").max_tokens_field == "max_completion_tokens"  # OpenAI's own API
    assert OpenAIChatEngine("m", base_url="http://localhost:8000/v1").max_tokens_field == "max_tokens"
    assert [map_finish_reason(r) for r in ("stop", "length", "content_filter", "tool_calls", "eos", None)] == \
           ["stop", "length", "abort", "stop", "stop", "abort"]


def test_a_kept_stop_string_is_cut_after(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=completion("<code>\nx=1\n</code>\ntrailing")))
    out = asyncio.run(_engine(server).chat(_conversation(), _images(), SP))
    assert out.text == "<code>\nx=1\n</code>" and out.stop_reason == "</code>" and out.finish_reason == "stop"


def test_retries_429_and_5xx_honouring_retry_after(serve: Any) -> None:
    replies = [Reply(429, {"error": {"message": "rate limited"}}, {"Retry-After": "1"}),
               Reply(503, "overloaded"), Reply(body=completion("ok"))]
    server = serve(lambda body, n: replies[n])
    engine = _engine(server)
    t0 = time.perf_counter()
    out = asyncio.run(engine.chat(_conversation(), _images(), SP))
    elapsed = time.perf_counter() - t0
    assert out.text == "ok" and len(server.requests) == 3
    assert elapsed >= 1.0  # Retry-After: 1 honoured (the backoff alone is ~10 ms)
    assert engine.counts["retries"] == 2 and engine.counts["failures"] == 0
    assert server.requests[0] == server.requests[2]  # the same request again


def test_retries_give_up_with_the_last_error(serve: Any) -> None:
    server = serve(lambda body, n: Reply(500, {"error": {"message": "boom"}}))
    engine = _engine(server, max_retries=2)
    with pytest.raises(EngineError, match=r"after 3 attempt\(s\): HTTP 500: boom"):
        asyncio.run(engine.chat(_conversation(), _images(), SP))
    assert len(server.requests) == 3 and engine.counts["failures"] == 1


def test_timeouts_are_retried_then_reported(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=completion("late"), delay_s=1.5))
    engine = _engine(server, timeout_s=0.3, max_retries=1)
    t0 = time.perf_counter()
    with pytest.raises(EngineError, match="timed out"):
        asyncio.run(engine.chat(_conversation(), _images(), SP))
    assert time.perf_counter() - t0 < 1.4 and len(server.requests) == 2


def test_connection_errors_are_retried(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=completion("x")))
    url = server.base_url
    server.close()  # nothing listens there any more
    engine = OpenAIChatEngine("m", base_url=url, api_key_env=None, max_retries=2, backoff_base_s=0.01)
    with pytest.raises(EngineError, match=r"after 3 attempt\(s\): ConnectError"):
        asyncio.run(engine.chat(_conversation(), _images(), SP))
    assert engine.counts["retries"] == 2


def test_client_errors_are_not_retried_and_carry_the_servers_message(serve: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    server = serve(lambda body, n: Reply(400, {"error": {"message": "'stop' must have at most 4 items"}}))
    engine = _engine(server)
    with pytest.raises(EngineError, match="HTTP 400: 'stop' must have at most 4 items"):
        asyncio.run(engine.chat(_conversation(), _images(), SP))
    assert len(server.requests) == 1
    monkeypatch.delenv("CODEVL_MISSING_KEY", raising=False)
    server401 = serve(lambda body, n: Reply(401, {"error": {"message": "Incorrect API key"}}))
    with pytest.raises(EngineError, match=r"Incorrect API key \(no API key was sent: \$CODEVL_MISSING_KEY is not set\)"):
        asyncio.run(_engine(server401, api_key_env="CODEVL_MISSING_KEY").chat(_conversation(), _images(), SP))
    assert "Authorization" not in server401.headers[0]


def test_concurrency_limit_is_honoured(serve: Any) -> None:
    server = serve(lambda body, n: Reply(body=completion(f"r{n}"), delay_s=0.2))
    engine = _engine(server, max_concurrency=3)

    async def many() -> list[Any]:
        return list(await asyncio.gather(*(engine.chat(_conversation(), _images(), SP) for _ in range(10))))

    outs = asyncio.run(many())
    assert len(outs) == 10 and len(server.requests) == 10
    assert server.max_active == 3


def test_images_must_match_the_image_parts() -> None:
    with pytest.raises(EngineError, match="more image parts than the 2 image"):
        to_openai_messages(_conversation(), _images()[:2])
    with pytest.raises(EngineError, match=r"2 image part\(s\) but 3 image"):
        to_openai_messages(_conversation()[:2], _images())


def test_refuses_token_level_use() -> None:
    engine = OpenAIChatEngine("m", base_url="http://127.0.0.1:9/v1", api_key_env=None)
    assert engine.token_level is False
    with pytest.raises(TypeError, match="not the token ids and sampling logprobs RL needs"):
        asyncio.run(engine.generate([1, 2], [], SamplingParams()))
    with pytest.raises(AttributeError, match="cannot be trained on with RL"):
        engine.tokenizer  # noqa: B018
    assert getattr(engine, "tokenizer", None) is None  # probing code still works
    assert "hf, vllm_colocate, vllm_server" in NOT_FOR_RL


@pytest.mark.skipif(not hasattr(sandbox, "SandboxPool"),
                    reason="needs sandbox.SandboxPool (the sandbox package is being built in parallel); runs once it lands")
def test_full_episode_through_the_loop_and_sandbox(serve: Any, pool: Any, task: Task) -> None:
    """The server plays a scripted model that stops at </code> the OpenAI way (stop string stripped)."""
    protocol = get_protocol("codevl")
    name = protocol.image_names(1)[0]
    turns = [protocol.format_assistant("Crop the corner.", code=f"c = {name}.crop((0, 0, 40, 40))\nshow(c)"),
             protocol.format_assistant("It is red.", answer="red")]

    def respond(body: dict[str, Any], n: int) -> Reply:
        k = sum(1 for m in body["messages"] if m["role"] == "assistant")
        text = turns[k]
        stop = next((s for s in body.get("stop", []) if s in text), None)
        if stop is not None:
            text = text[: text.index(stop)]
        return Reply(body=completion(text, stop_reason=stop))

    server = serve(respond)
    engine = _engine(server)
    tr = asyncio.run(run_episodes([task], engine, protocol=protocol, pool=pool, sampling=SamplingParams(seed=1),
                                  limits=EpisodeLimits(max_turns=4)))[0]
    assert tr.finish_reason is FinishReason.ANSWERED and tr.answer == "red"
    assert len(tr.steps) == 1 and tr.steps[0].result.ok and len(tr.images) == 2
    assert len(server.requests) == 2
    second = server.requests[1]
    urls = [p["image_url"]["url"] for m in second["messages"] if isinstance(m["content"], list)
            for p in m["content"] if p["type"] == "image_url"]
    assert len(urls) == 2
    assert _decode_data_url(urls[1]).shape[:2] == (40, 40)  # the crop came back as the observation image
    assert second["messages"][2]["role"] == "assistant" and protocol.code_close in second["messages"][2]["content"]
    assert tr.token_ids == []  # message level: no token arrays
