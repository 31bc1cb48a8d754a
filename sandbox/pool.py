"""`SandboxPool`: the warm parent, the session slots, the kill watchdog, and the isolation tier in force.

    pool = SandboxPool(SandboxConfig())          # starts the warm parent, proves the tier with a probe session
    async with pool.session(images={"image_clue_0": img}) as s:
        result = await s.run(code, timeout=20)
    pool.close()

The pool can be shared by any number of asyncio tasks, event loops and threads: `session()` waits for a free
slot (up to `session_wait_s`), every wait on a session process has a deadline enforced by a watchdog thread
(SIGKILL through a pidfd), and a dead warm parent is replaced on the next spawn.
"""

from __future__ import annotations

import asyncio
import atexit
import concurrent.futures as cf
import logging
import os
import shutil
import tempfile
import threading
import weakref
from typing import Any

from sandbox.config import TIER_LAYERS, TIER_ORDER, SandboxConfig, Tier
from sandbox.errors import SandboxBusyError, SandboxClosedError, SandboxUnavailableError
from sandbox.isolation import Layers
from sandbox.process import WorkerProcess
from sandbox.result import ExecResult
from sandbox.result_frame import result_limits
from sandbox.session import SandboxSession
from sandbox.slots import Slots
from sandbox.spares import Spares
from sandbox.sync import SyncSession
from sandbox.watchdog import Watchdog
from sandbox import wire
from sandbox.zygote_client import ROOT, THREAD_PINS, ZygoteProcess

logger = logging.getLogger(__name__)

_ADVICE = {
    "full": ("user namespaces are blocked here (Docker's default seccomp profile, "
             "kernel.apparmor_restrict_unprivileged_userns=1 on Ubuntu 24.04, or user.max_user_namespaces=0). "
             "Fix: allow them (sysctl kernel.apparmor_restrict_unprivileged_userns=0, or run the container with "
             "--security-opt seccomp=unconfined), or set sandbox.tier=landlock (Landlock + seccomp + rlimits, no "
             "namespaces), or sandbox.allow_weaker=true to take the best tier available"),
    "landlock": ("Landlock is missing or too old (needs Linux >= 6.7 with landlock in the lsm= boot list for TCP "
                 "rules; >= 6.12 for signal scoping). Fix: upgrade the kernel / enable Landlock, or set "
                 "sandbox.tier=minimal (no filesystem confinement!) or sandbox.allow_weaker=true"),
    "minimal": "seccomp or rlimits could not be applied; this machine cannot run the sandbox",
}


class SandboxPool:
    """Sessions for many concurrent trajectories. Create once per process; `close()` when done."""

    def __init__(self, config: SandboxConfig | None = None) -> None:
        self.config = config or SandboxConfig()
        self.closed = False
        self.tier: Tier = self.config.tier
        self.layers: Layers | None = None
        self._slots = Slots(self.config.max_sessions)
        self._watchdog = Watchdog()
        self._sessions: weakref.WeakSet[SandboxSession] = weakref.WeakSet()
        self._lock = threading.Lock()
        self._zygote: ZygoteProcess | None = None
        self._scratch_base: str | None = None
        self._scratch_ids = 0
        self._spec_cache: dict[str, Any] | None = None
        self._spares: Spares | None = None
        c = self.config
        self._result_limits = result_limits(c)
        try:
            self._zygote = ZygoteProcess(max(30.0, c.start_timeout_s))
            self._choose_tier()
            self._spares = Spares(self, c.prespawn)
        except BaseException:
            self.close()
            raise
        atexit.register(self.close)

    # ---- tier ----

    def _choose_tier(self) -> None:
        """Prove the configured tier with a probe session; fall back only when the config allows it."""
        tiers = TIER_ORDER[TIER_ORDER.index(self.config.tier):]
        errors = []
        for tier in tiers:
            self.tier = tier
            self._spec_cache = None
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
        s = SandboxSession(self)
        async with s:
            assert s.layers is not None
            return s.layers

    def _advice(self, what: str) -> str:
        low = what.lower()
        if any(k in low for k in ("namespace", "clone", "uid_map", "mount(")):
            fix = _ADVICE["full"]
        elif "landlock" in low:
            fix = _ADVICE["landlock"]
        else:
            fix = ("if this machine is unusual, try sandbox.tier=landlock or sandbox.allow_weaker=true; otherwise "
                   "report it as a sandbox bug")
        return f"{what}. Tier {self.tier} needs: {TIER_LAYERS[self.tier]}. {fix}."

    # ---- public API ----

    def session(self, images: dict[str, Any] | None = None) -> SandboxSession:
        """A session for one trajectory: `async with pool.session(images={...}) as s: await s.run(code)`.

        `images` maps variable names to PIL images or uint8 arrays; inside the session they are PIL images."""
        self._check_open()
        return SandboxSession(self, images)

    def sync_session(self, images: dict[str, Any] | None = None) -> SyncSession:
        """The same for scripts: `with pool.sync_session(images={...}) as s: s.run(code)`."""
        self._check_open()
        return SyncSession(self, images)

    def run_once(self, code: str, images: dict[str, Any] | None = None, timeout: float | None = None) -> ExecResult:
        """Run one block in a fresh session (synchronous convenience)."""
        with self.sync_session(images) as s:
            return s.run(code, timeout=timeout)

    def stats(self) -> dict[str, Any]:
        return {"tier": self.tier, "sessions_open": self._slots.in_use, "max_sessions": self._slots.capacity,
                "warm_parent_pid": self._zygote.pid if self._zygote else None,
                "warm_parent_alive": bool(self._zygote and self._zygote.alive)}

    def worker_pids(self) -> set[int]:
        """Pids of the session processes the pool holds (open sessions and prespawned spares)."""
        pids = {s._worker.pid for s in list(self._sessions) if s._worker is not None}
        if self._spares is not None:
            pids |= self._spares.pids()
        return pids

    def close(self) -> None:
        """Kill every session process and the warm parent (idempotent; sessions then report `killed`)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
        if self._spares is not None:
            self._spares.stop()
        for s in list(self._sessions):
            s._kill_now()
        if self._zygote is not None:
            self._zygote.close()
        self._watchdog.stop()
        if self._scratch_base:
            shutil.rmtree(self._scratch_base, ignore_errors=True)
        try:
            atexit.unregister(self.close)
        except Exception:  # noqa: BLE001
            pass

    def __enter__(self) -> SandboxPool:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- internals used by sessions ----

    def _check_open(self) -> None:
        if self.closed:
            raise SandboxClosedError("the sandbox pool is closed")

    async def _slots_acquire(self) -> None:
        try:
            await self._slots.acquire(self.config.session_wait_s)
        except asyncio.TimeoutError:
            raise SandboxBusyError(f"no free sandbox session within session_wait_s={self.config.session_wait_s:g} s "
                                   f"({self.config.max_sessions} in use); raise sandbox.max_sessions or close "
                                   "sessions sooner") from None
        if self.closed:
            self._slots.release()
            raise SandboxClosedError("the sandbox pool is closed")

    def _register(self, s: SandboxSession) -> None:
        self._sessions.add(s)

    def _unregister(self, s: SandboxSession) -> None:
        self._sessions.discard(s)

    def _zygote_for_spawn(self) -> ZygoteProcess:
        with self._lock:
            self._check_open()
            z = self._zygote
            if z is None or not z.alive:
                if z is not None:
                    logger.warning("sandbox: the warm parent died; starting a new one")
                    z.kill()
                self._zygote = z = ZygoteProcess(max(30.0, self.config.start_timeout_s))
                self._spec_cache = None
            return z

    def _session_spec(self) -> dict[str, Any]:
        c = self.config
        if self._spec_cache is None:
            z = self._zygote
            self._spec_cache = {
                "tier": self.tier, "scratch_bytes": c.scratch_mb << 20, "shm_bytes": c.shm_mb << 20,
                "memory_bytes": c.memory_mb << 20, "cpu_s": c.session_cpu_s, "file_bytes": c.max_file_mb << 20,
                "open_files": c.max_open_files, "processes": c.max_processes,
                "allow_subprocesses": c.allow_subprocesses and self.tier == "full",
                "uid_base": c.session_uid_base, "uid_count": c.max_sessions + c.prespawn + 64,
                "pids_cgroup": c.pids_cgroup, "parent_ns": z.hello.get("parent_ns", {}) if z else {},
                "env": dict(THREAD_PINS),
            }
        spec = self._spec_cache
        if self.tier != "full":
            spec = dict(spec)
            with self._lock:
                if self._scratch_base is None:
                    self._scratch_base = tempfile.mkdtemp(prefix="codevl-sandbox-")
                    os.chmod(self._scratch_base, 0o711)  # sessions' own uids pass through, cannot list it
                self._scratch_ids += 1
                path = os.path.join(self._scratch_base, f"s{self._scratch_ids}")
            os.mkdir(path, 0o700)
            spec["scratch_dir"] = path
        return spec

    def _worker_settings(self) -> dict[str, Any]:
        c = self.config
        return {"max_stdout": c.max_stdout_bytes, "max_stderr": c.max_stderr_bytes,
                "max_output_chars": int(c.max_output_mb * (1 << 20)), "max_images": c.max_images,
                "max_pixels": c.max_image_pixels, "max_ops": c.max_ops, "trace": c.trace,
                "max_repr": c.max_value_repr_chars, "encoding": c.image_encoding}

    def _cleanup_worker(self, w: WorkerProcess) -> None:
        scratch = getattr(w, "scratch", None)
        if scratch:
            shutil.rmtree(scratch, ignore_errors=True)

    def _discard_spawn(self, fut: cf.Future[tuple[int, int]]) -> None:
        """A spawn reply that came after its caller gave up: kill that process and close its handle."""
        if fut.cancelled() or fut.exception() is not None:
            return
        from sandbox.linux.pidfd import pidfd_kill

        _, pidfd = fut.result()
        try:
            pidfd_kill(pidfd)
        finally:
            os.close(pidfd)


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
