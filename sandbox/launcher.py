"""`Launcher`: the one owner of session processes' lifecycle, from fork to reaping.

    launcher = Launcher(config, tier)
    w = await launcher.start(deadline)                  # a prespawned spare, or forked now; isolated, layers checked
    await launcher.load(w, init_message, image_fds, deadline)   # the session's images and settings: "ready"
    ...                                                 # the session runs blocks on w.sock (see session.py)
    await launcher.retire(w)                            # kill, wait, release descriptors, remove its scratch
    launcher.pids(); launcher.close()                   # live processes; kill them all and the warm parent

It holds the warm parent (replaced when it dies), the kill watchdog, the spare processes and the scratch
directories of tiers without a private /tmp. Every wait on a process before it is ready (its "up" report, its
"ready" reply) goes through one guarded exchange: a watchdog deadline, and on any failure the process is killed,
its resources released, and `ProcessDied` raised with how it ended.
"""

from __future__ import annotations

import asyncio
import concurrent.futures as cf
import logging
import os
import shutil
import socket
import tempfile
import threading
import time
from typing import Any

from sandbox import wire
from sandbox.config import TIER_LAYERS, SandboxConfig, Tier
from sandbox.errors import SandboxClosedError, SandboxUnavailableError
from sandbox.isolation import Layers, missing_layers
from sandbox.linux.pidfd import pidfd_exited, pidfd_kill
from sandbox.process import WorkerProcess, describe_status
from sandbox.spares import Spares
from sandbox.watchdog import Watchdog
from sandbox.zygote_client import THREAD_PINS, ZygoteProcess

logger = logging.getLogger(__name__)

HANDSHAKE_LIMITS = wire.FrameLimits(max_json_bytes=1 << 20, max_blob_bytes=0, max_blobs=0, max_pixels=1)
SO_SNDBUFFORCE = 32

_ADVICE = {
    "full": ("user namespaces are blocked here (Docker's default seccomp profile, "
             "kernel.apparmor_restrict_unprivileged_userns=1 on Ubuntu 24.04, or user.max_user_namespaces=0), or "
             "the session uid range is not mapped in this container. Fix: allow user namespaces (sysctl "
             "kernel.apparmor_restrict_unprivileged_userns=0, or run the container with --security-opt "
             "seccomp=unconfined), set sandbox.session_uid_base to a uid range this container maps, or set "
             "sandbox.tier=landlock (Landlock + seccomp + rlimits, no namespaces), or sandbox.allow_weaker=true to "
             "take the best tier available"),
    "landlock": ("Landlock is missing or too old (needs Linux >= 6.7 with landlock in the lsm= boot list for TCP "
                 "rules; >= 6.12 for signal scoping). Fix: upgrade the kernel / enable Landlock, or set "
                 "sandbox.tier=minimal (no filesystem confinement!) or sandbox.allow_weaker=true"),
}


class ProcessDied(SandboxUnavailableError):
    """A session process ended (or missed its deadline) before it was ready."""


def advice(tier: Tier, what: str) -> str:
    """`what` went wrong while starting a session of `tier`: the message, what the tier needs, and the fix."""
    low = what.lower()
    if any(k in low for k in ("namespace", "clone", "uid_map", "mount", "pivot_root", "uid")):
        fix = _ADVICE["full"]
    elif "landlock" in low:
        fix = _ADVICE["landlock"]
    else:
        fix = ("if this machine is unusual, try sandbox.tier=landlock or sandbox.allow_weaker=true; otherwise "
               "report it as a sandbox bug")
    return f"{what}. Tier {tier} needs: {TIER_LAYERS[tier]}. {fix}."


def grow_send_buffer(sock: socket.socket, size: int = 8 << 20) -> None:
    """Let the session send a whole image without waiting for the pool to drain the socket (fewer wake-ups).
    SO_SNDBUFFORCE needs CAP_NET_ADMIN; otherwise SO_SNDBUF, which the kernel caps at net.core.wmem_max."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, SO_SNDBUFFORCE, size)
    except OSError:
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, size)
        except OSError:
            pass


class Launcher:
    """Starts, loads, retires and counts session processes for one pool (thread-safe)."""

    def __init__(self, config: SandboxConfig, tier: Tier) -> None:
        self.config = config
        self._tier: Tier = tier
        self.closed = False
        self.watchdog = Watchdog()
        self._lock = threading.Lock()
        self._live: set[WorkerProcess] = set()  # handed out by start() and not yet retired
        self._spec: dict[str, Any] | None = None
        self._scratch_base: str | None = None
        self._scratch_ids = 0
        self._spares: Spares | None = None
        self._zygote: ZygoteProcess | None = None
        try:
            self._zygote = ZygoteProcess(max(30.0, config.start_timeout_s))
        except BaseException:
            self.watchdog.stop()
            raise

    # ---- public interface ----

    @property
    def tier(self) -> Tier:
        return self._tier

    @tier.setter
    def tier(self, tier: Tier) -> None:
        """The tier new processes get (the pool steps down while it proves which one works)."""
        with self._lock:
            self._tier, self._spec = tier, None

    @property
    def warm_parent_pid(self) -> int | None:
        z = self._zygote
        return z.pid if z is not None else None

    @property
    def warm_parent_alive(self) -> bool:
        z = self._zygote
        return bool(z and z.alive)

    def start_spares(self) -> None:
        """Keep `config.prespawn` processes started ahead of demand (after the tier is settled)."""
        if self._spares is None:
            self._spares = Spares(self.config.prespawn, self._spawn_blocking, self._usable, self._release)

    async def start(self, deadline: float) -> WorkerProcess:
        """A process that is up, isolated and checked against the tier: a spare, or one forked now."""
        spare = self._spares.take() if self._spares is not None else None
        w = spare if spare is not None else await self.spawn(deadline)
        with self._lock:
            self._live.add(w)
        return w

    async def spawn(self, deadline: float) -> WorkerProcess:
        """Fork a new process and wait until it reports its layers (raises ProcessDied / SandboxUnavailableError)."""
        fut, a, scratch, zygote = self._request()
        try:
            pid, pidfd = await asyncio.wait_for(asyncio.shield(asyncio.wrap_future(fut)),
                                                max(0.0, deadline - time.monotonic()))
        except BaseException as exc:
            a.close()
            self._remove_scratch(scratch)
            fut.add_done_callback(_discard_spawn)  # a late reply: kill that process
            if isinstance(exc, asyncio.TimeoutError):
                raise SandboxUnavailableError(f"no session process within start_timeout_s="
                                              f"{self.config.start_timeout_s:g} s (machine overloaded? raise "
                                              "sandbox.start_timeout_s)") from None
            raise
        w = WorkerProcess(pid, pidfd, a, zygote, scratch=scratch)
        a.setblocking(False)
        msg = await self._exchange(w, deadline, "starting")
        if msg.get("op") == "failed":
            self._release(w)
            raise SandboxUnavailableError(advice(self.tier, f"session setup failed: {msg.get('error')}"))
        layers = Layers.from_dict(msg.get("layers", {})) if msg.get("op") == "up" else None
        missing = missing_layers(self.tier, layers) if layers is not None else ["an 'up' report"]
        if missing:
            self._release(w)
            raise SandboxUnavailableError(advice(self.tier, f"the session lacks {', '.join(missing)}"))
        w.layers = layers
        return w

    async def load(self, w: WorkerProcess, init: dict[str, Any], fds: list[int], deadline: float) -> None:
        """Send the session's `init` message (images as descriptors) and wait for "ready"."""
        msg = await self._exchange(w, deadline, "loading its images", init, fds)
        if msg.get("op") != "ready":
            self._release(w)
            raise ProcessDied(f"the session process answered {msg.get('op')!r} instead of 'ready'")

    async def retire(self, w: WorkerProcess) -> None:
        """Kill the process, wait (briefly) until it is gone, release its descriptors and scratch directory."""
        w.kill()
        await w.wait_exit(2.0)
        self._release(w)

    def pids(self) -> set[int]:
        """Pids of the processes held: handed out and not retired, and spares."""
        with self._lock:
            pids = {w.pid for w in self._live}
        return pids | (self._spares.pids() if self._spares is not None else set())

    def close(self) -> None:
        """Kill every process and the warm parent; remove scratch directories (idempotent)."""
        with self._lock:
            if self.closed:
                return
            self.closed = True
            live = list(self._live)
        if self._spares is not None:
            self._spares.stop()
        for w in live:
            w.kill()  # their sessions see them gone at their next wait, and retire them
        if self._zygote is not None:
            self._zygote.close()
        self.watchdog.stop()
        if self._scratch_base:
            shutil.rmtree(self._scratch_base, ignore_errors=True)

    # ---- internals ----

    async def _exchange(self, w: WorkerProcess, deadline: float, what: str, request: dict[str, Any] | None = None,
                        fds: list[int] | None = None) -> dict[str, Any]:
        """Send `request` (if any), receive one handshake frame; the process dies at `deadline`. On any failure
        the process is killed and released, and ProcessDied says how it ended."""
        token = self.watchdog.arm(w.pidfd, deadline)
        try:
            if request is not None:
                sent = wire.send_with_fds(w.sock, request, fds or [])
                (data,) = wire.encode(request)
                if sent < len(data):
                    await asyncio.get_running_loop().sock_sendall(w.sock, data[sent:])
            reply, _ = await wire.arecv(w.sock, HANDSHAKE_LIMITS)
        except BaseException as exc:
            fired = self.watchdog.disarm(token)
            self._release(w)
            if isinstance(exc, (EOFError, OSError, wire.ProtocolError)):
                why = "start_timeout_s passed" if fired else describe_status(await w.exit_status())[1]
                raise ProcessDied(f"the session process died while {what} ({why})") from None
            raise
        self.watchdog.disarm(token)
        return reply

    def _release(self, w: WorkerProcess) -> None:
        w.close()
        with self._lock:
            self._live.discard(w)
        self._remove_scratch(w.scratch)

    def _usable(self, w: WorkerProcess) -> bool:
        return w.zygote.alive and w.zygote is self._zygote and not pidfd_exited(w.pidfd, 0)

    def _spawn_blocking(self) -> WorkerProcess:
        """`spawn` for the spares thread (its own event loop per call: spawns are not on a hot path)."""
        return asyncio.run(self.spawn(time.monotonic() + self.config.start_timeout_s))

    def _zygote_for_spawn(self) -> ZygoteProcess:
        with self._lock:
            if self.closed:
                raise SandboxClosedError("the sandbox pool is closed")
            z = self._zygote
            if z is None or not z.alive:
                if z is not None:
                    logger.warning("sandbox: the warm parent died; starting a new one")
                    z.kill()
                self._zygote = z = ZygoteProcess(max(30.0, self.config.start_timeout_s))
                self._spec = None
            return z

    def _request(self) -> tuple[cf.Future[tuple[int, int]], socket.socket, str | None, ZygoteProcess]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        grow_send_buffer(b)
        scratch = None
        try:
            zygote = self._zygote_for_spawn()
            spec = self._session_spec(zygote)
            if self.tier != "full":
                scratch = spec["scratch_dir"] = self._new_scratch()
            fut = zygote.spawn(spec, b)
        except BaseException:
            a.close()
            b.close()
            self._remove_scratch(scratch)
            raise
        b.close()
        return fut, a, scratch, zygote

    def _session_spec(self, zygote: ZygoteProcess) -> dict[str, Any]:
        c = self.config
        with self._lock:
            if self._spec is None:
                self._spec = {
                    "tier": self._tier, "scratch_bytes": c.scratch_mb << 20, "shm_bytes": c.shm_mb << 20,
                    "memory_bytes": c.memory_mb << 20, "cpu_s": c.session_cpu_s, "file_bytes": c.max_file_mb << 20,
                    "open_files": c.max_open_files, "processes": c.max_processes,
                    "allow_subprocesses": c.allow_subprocesses and self._tier == "full",
                    "uid_base": c.session_uid_base, "uid_count": c.max_sessions + c.prespawn + 64,
                    "pids_cgroup": c.pids_cgroup, "parent_ns": zygote.hello.get("parent_ns", {}),
                    "env": dict(THREAD_PINS),
                }
            return dict(self._spec)

    def _new_scratch(self) -> str:
        with self._lock:
            if self._scratch_base is None:
                self._scratch_base = tempfile.mkdtemp(prefix="codevl-sandbox-")
                os.chmod(self._scratch_base, 0o711)  # sessions' own uids pass through, cannot list it
            self._scratch_ids += 1
            path = os.path.join(self._scratch_base, f"s{self._scratch_ids}")
        os.mkdir(path, 0o700)
        return path

    @staticmethod
    def _remove_scratch(path: str | None) -> None:
        if path:
            shutil.rmtree(path, ignore_errors=True)


def _discard_spawn(fut: cf.Future[tuple[int, int]]) -> None:
    """A spawn reply that came after its caller gave up: kill that process and close its handle."""
    if fut.cancelled() or fut.exception() is not None:
        return
    _, pidfd = fut.result()
    try:
        pidfd_kill(pidfd)
    finally:
        os.close(pidfd)
