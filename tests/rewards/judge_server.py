"""A local OpenAI-compatible chat-completions server for judge tests (stdlib http.server in a thread).

`responder(body) -> (status, reply)`: reply is the assistant text for status 200 (wrapped in the OpenAI response
shape) or the raw body otherwise; `delay_s` makes it slow. Every request body and Authorization header is
recorded.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

Responder = Callable[[dict[str, Any]], tuple[int, str]]


class JudgeServer:
    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        self.responder: Responder = lambda body: (200, "SCORE: 1")
        self.delay_s = 0.0
        self.raw_reply: str | None = None  # a 200 body sent verbatim (malformed replies)
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = json.loads(self.rfile.read(length))
                with server._lock:
                    server.requests.append(body)
                    server.headers.append(dict(self.headers))
                if server.delay_s:
                    time.sleep(server.delay_s)
                if self.path != "/v1/chat/completions":
                    status, payload = 404, "not found"
                elif server.raw_reply is not None:
                    status, payload = 200, server.raw_reply
                else:
                    status, text = server.responder(body)
                    payload = (json.dumps({"choices": [{"message": {"role": "assistant", "content": text}}]})
                               if status == 200 else text)
                data = payload.encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"

    def __enter__(self) -> JudgeServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    @staticmethod
    def user_text(body: dict[str, Any]) -> str:
        """All text parts of the request's user message."""
        msg = next(m for m in body["messages"] if m["role"] == "user")
        content = msg["content"]
        return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)

    @staticmethod
    def image_urls(body: dict[str, Any]) -> list[str]:
        msg = next(m for m in body["messages"] if m["role"] == "user")
        return [p["image_url"]["url"] for p in msg["content"] if isinstance(p, dict) and p.get("type") == "image_url"]
