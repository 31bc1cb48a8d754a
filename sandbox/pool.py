"""`SandboxPool`: session slots, the isolation tier in force, and the public API over a `Launcher`.

    pool = SandboxPool(SandboxConfig())          # starts the warm parent, proves the tier with a probe session
    async with pool.session(images={"image_clue_0": img}) as s:
        result = await s.run(code, timeout=20)
    pool.close()

The pool can be shared by any number of asyncio tasks, event loops and threads: `session()` waits for a free
slot (up to `session_wait_s`); the launcher (`sandbox.launcher`) owns the processes: every wait on one has a
deadline enforced by a watchdog thread (SIGKILL through a pidfd), and a dead warm parent is replaced on the next
spawn.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import threading
from typing import Any

from sandbox.config import TIER_LAYERS, TIER_ORDER, SandboxConfig, Tier
from sandbox.errors import SandboxBusyError, SandboxClosedError, SandboxUnavailableError
from sandbox.isolation import Layers
from sandbox.launcher import Launcher
from sandbox.result import ExecResult
from sandbox.result_frame import result_limits
from sandbox.session import SandboxSession
from sandbox.slots import Slots
from sandbox.sync import SyncSession
from sandbox import wire

logger = logging.getLogger(__name__)


class SandboxPool:
    """Sessions for many concurrent trajectories. Create once per process; `close()` when done."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.closed = False
        self.tier: Tier = self.config.tier
        self.layers: Layers | None = None
        self.result_limits: wire.FrameLimits = result_limits(self.config)
        self._slots = Slots(self.config.max_sessions)
        self._lock = threading.Lock()
        self.launcher = Launcher(self.config, self.tier)
        try:
            self._choose_tier()
            self.launcher.start_spares()
        except BaseException:
            self.close()
            raise
        atexit.register(self.close)

    def _choose_tier(self) -> None:
        """Prove the configured tier with a probe session; fall back only when the config allows it."""
        tiers = TIER_ORDER[TIER_ORDER.index(self.config.tier):]
        errors = []
        for tier in tiers:
            self.tier = self.launcher.tier = tier
            try:
                self.layers = _run_in_thread(self._probe())
            except SandboxUnavailableError as exc:
                errors.append(f"tier {tier}: {exc}")
                if not self.config.allow_weaker:
                    raise
                continue
            if tier != self.config.tier:
                logger.warning("sandbox: tier %s unavailable, running with the weaker tier %s (%s)",
                               self.config.tier, tier, TIER_LAYERS[tier])
            return
        raise SandboxUnavailableError("no sandbox tier works on this machine:\n  " + "\n  ".join(errors))

    async def _probe(self) -> Layers:
        async with SandboxSession(self) as s:
            assert s.layers is not None
            return s.layers

    # ---- public API ----

    def session(self, images: dict[str, Any] | None = None) -> SandboxSession:
        """A session for one trajectory: `async with pool.session(images={...}) as s: await s.run(code)`.

        `images` maps variable names to PIL images or uint8 arrays; inside the session they are PIL images."""
        self.check_open()
        return SandboxSession(self, images)

    def sync_session(self, images: dict[str, Any] | None = None) -> SyncSession:
        """The same for scripts: `with pool.sync_session(images={...}) as s: s.run(code)`."""
        self.check_open()
        return SyncSession(self, images)

    def run_once(self, code: str, images: dict[str, Any] | None = None, timeout: float | None = None) -> ExecResult:
        """Run one block in a fresh session (synchronous convenience)."""
        with self.sync_session(images) as s:
            return s.run(code, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        return {"tier": self.tier, "sessions_open": self._slots.in_use, "max_sessions": self._slots.capacity,
                "warm_parent_pid": self.launcher.warm_parent_pid,
                "warm_parent_alive": self.launcher.warm_parent_alive}

    def worker_pids(self) -> set[int]:
        """Pids of the session processes the pool holds (open sessions and prespawned spares)."""
        return self.launcher.pids()

    def close(self) -> None:
        """Kill every session process and the warm parent (idempotent; sessions then report `killed`)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        self.launcher.close()
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- for sessions ----

    def check_open(self) -> None:
        if self.closed:
            raise SandboxClosedError("the sandbox pool is closed")

    async def acquire_slot(self) -> None:
        """Wait for a free session slot (up to `session_wait_s`); SandboxBusyError / SandboxClosedError."""
        try:
            await self._slots.acquire(self.config.session_wait_s)
        except asyncio.TimeoutError:
            raise SandboxBusyError(f"no free sandbox session within session_wait_s={self.config.session_wait_s:g} s "
                                   f"({self.config.max_sessions} in use); raise sandbox.max_sessions or close "
                                   "sessions sooner") from None
        if self.closed:
            self._slots.release()
            raise SandboxClosedError("the sandbox pool is closed")

    def release_slot(self) -> None:
        self._slots.release()

    def worker_settings(self) -> dict[str, Any]:
        """What a session process needs to know about capture and caps (sent with its images)."""
        c = self.config
        return {"max_stdout": c.max_stdout_bytes, "max_stderr": c.max_stderr_bytes,
                "max_output_chars": int(c.max_output_mb * (1 << 20)), "max_images": c.max_images,
                "max_pixels": c.max_image_pixels, "max_ops": c.max_ops, "trace": c.trace,
                "max_repr": c.max_value_repr_chars, "encoding": c.image_encoding}


def _run_in_thread(coro: Any) -> Any:
    """Run a coroutine to completion on a private loop in a helper thread (safe inside a running loop)."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = asyncio.run(coro)
        except BaseException as exc:  # noqa: BLE001
            box["error"] = exc

    t = threading.Thread(target=target, name="codevl-sandbox-probe")
    t.start()
    t.join()
    if "error" in box:
        raise box["error"]
    return box["value"]
