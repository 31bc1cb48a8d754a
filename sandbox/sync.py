"""`SyncSession`: the session API for scripts without an event loop (`with pool.sync_session(...) as s:`).

It drives an ordinary `SandboxSession` on a private event loop, so the behaviour (deadlines, restarts, results)
is exactly the async one.
"""

from __future__ import annotations

import asyncio
from typing import Any

from sandbox.isolation import Layers
from sandbox.result import ExecResult
from sandbox.session import SandboxSession, SessionHost


class SyncSession:
    """A `SandboxSession` driven on a private event loop (one thread at a time)."""

    def __init__(self, pool: SessionHost, images: dict[str, Any] | None = None) -> None:
        self._loop = asyncio.new_event_loop()
        self._session = SandboxSession(pool, images)

    def __enter__(self) -> SyncSession:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        try:
            self._loop.run_until_complete(self._session.open())
        except BaseException:
            self._loop.close()
            raise

    def run(self, code: str, timeout: float | None = None) -> ExecResult:
        return self._loop.run_until_complete(self._session.run(code, timeout=timeout))

    @property
    def layers(self) -> Layers | None:
        return self._session.layers

    @property
    def pid(self) -> int | None:
        return self._session.pid

    @property
    def restarts(self) -> int:
        return self._session.restarts

    def close(self) -> None:
        if self._loop.is_closed():
            return
        try:
            self._loop.run_until_complete(self._session.close())
        finally:
            self._loop.close()
