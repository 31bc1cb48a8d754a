"""`SandboxSession`: one trajectory's interpreter, in its own sandboxed process.

    async with pool.session(images={"image_clue_0": pil_image}) as s:
        result = await s.run("print(image_clue_0.size)", timeout=20)

Variables persist across `run` calls. A block that ends the process (timeout, memory or output limit, crash)
returns its `ExecResult`; the next `run` on the same session starts a fresh process with the input images loaded
again (a note says so). Only misuse raises: running on a closed session, or two runs at once.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from typing import Any, Protocol

import numpy as np

from sandbox import wire
from sandbox.config import SandboxConfig
from sandbox.errors import SandboxClosedError
from sandbox.isolation import Layers
from sandbox.launcher import Launcher, ProcessDied
from sandbox.process import WorkerProcess, describe_status
from sandbox.result import ExecResult, ExecStatus
from sandbox.result_frame import parse_result



class SessionHost(Protocol):
    """What a session needs from its pool (`SandboxPool` is one): the config, the launcher of its processes,
    the result frame limits, slots, and the settings its processes get."""

    config: SandboxConfig
    launcher: Launcher
    result_limits: wire.FrameLimits
    closed: bool

    def check_open(self) -> None: ...

    async def acquire_slot(self) -> None: ...

    def release_slot(self) -> None: ...

    def worker_settings(self) -> dict[str, Any]: ...

READY_LIMITS = wire.FrameLimits(max_json_bytes=1 << 20, max_blob_bytes=0, max_blobs=0, max_pixels=1)


def input_arrays(images: dict[str, Any]) -> tuple[list[str], list[np.ndarray], list[str]]:
    """Names, uint8 pixels and PIL modes of the caller's input images (PIL images or uint8 arrays)."""
    from PIL import Image

    names, arrays, modes = [], [], []
    for name, value in images.items():
        if not isinstance(name, str) or not name.isidentifier():
            raise ValueError(f"input image name {name!r} is not a Python identifier")
        if isinstance(value, Image.Image):
            im = value if value.mode in ("RGB", "RGBA", "L") else value.convert("RGBA" if "A" in value.mode else "RGB")
            arr = np.asarray(im)
            mode = im.mode
        elif isinstance(value, np.ndarray):
            arr = value
            if arr.ndim == 3 and arr.shape[2] == 1:
                arr = arr[:, :, 0]
            if arr.dtype != np.uint8 or arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (3, 4)):
                raise TypeError(f"input image {name!r}: arrays must be uint8 HxW, HxWx3 or HxWx4, got "
                                f"{arr.dtype} {arr.shape}")
            mode = "L" if arr.ndim == 2 else ("RGB" if arr.shape[2] == 3 else "RGBA")
        else:
            raise TypeError(f"input image {name!r} must be a PIL image or a uint8 numpy array, not "
                            f"{type(value).__name__}")
        names.append(name)
        arrays.append(np.ascontiguousarray(arr))
        modes.append(mode)
    return names, arrays, modes


class SandboxSession:
    """An async context manager holding one pool slot and one session process (restarted when it dies)."""

    def __init__(self, pool: SessionHost, images: dict[str, Any] | None = None) -> None:
        self.pool = pool
        names, arrays, modes = input_arrays(dict(images or {}))
        self.names = names
        self._image_specs = [{"name": n, "mode": m, "shape": list(a.shape)} for n, a, m in zip(names, arrays, modes, strict=True)]
        self._image_fds = [_sealed_memfd(a) for a in arrays]
        self.layers: Layers | None = None
        self.restarts = 0
        self._worker: WorkerProcess | None = None
        self._slot = False
        self._closed = False
        self._busy = False
        self._blocks = 0  # blocks sent to session processes; each result must carry its block's number
        self._pending_notes: list[str] = []

    # ---- lifecycle ----

    async def __aenter__(self) -> SandboxSession:
        await self.open()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def open(self) -> None:
        """Take a pool slot (waiting up to `session_wait_s`) and start the session process."""
        if self._slot or self._closed:
            raise SandboxClosedError("a session can be opened once")
        self.pool.check_open()
        await self.pool.acquire_slot()
        self._slot = True
        try:
            self._worker = await self._start()
        except BaseException:
            await self.close()
            raise

    async def close(self) -> None:
        """Kill the session process and give the slot back (idempotent)."""
        if self._closed:
            return
        self._closed = True
        w, self._worker = self._worker, None
        if w is not None:
            await self.pool.launcher.retire(w)
        for fd in self._image_fds:
            os.close(fd)
        self._image_fds = []
        if self._slot:
            self._slot = False
            self.pool.release_slot()

    @property
    def alive(self) -> bool:
        return self._worker is not None

    @property
    def pid(self) -> int | None:
        """The host pid of the session's process (None between a process's end and the next run)."""
        return self._worker.pid if self._worker is not None else None

    # ---- starting a process ----

    async def _start(self) -> WorkerProcess:
        """A process that is up (a prespawned spare, or forked now), loaded with this session's images. A spare
        that died meanwhile (e.g. with a replaced warm parent) is replaced by a freshly forked process."""
        launcher = self.pool.launcher
        deadline = time.monotonic() + self.pool.config.start_timeout_s
        init = {"op": "init", "images": self._image_specs, "settings": self.pool.worker_settings()}
        for attempt in range(2):
            w = await launcher.start(deadline)
            try:
                await launcher.load(w, init, self._image_fds, deadline)
            except ProcessDied:
                if attempt or time.monotonic() >= deadline:
                    raise
                continue
            self.layers = w.layers
            return w
        raise AssertionError("unreachable")

    # ---- running code ----

    async def run(self, code: str, timeout: float | None = None) -> ExecResult:
        """Run one code block; failures of the code come back as the result's status, never as exceptions."""
        if self._closed or not self._slot:
            raise SandboxClosedError("run() on a session that is not open (use `async with pool.session(...)`)")
        if self._busy:
            raise RuntimeError("one run() at a time per session")
        if not isinstance(code, str):
            raise TypeError(f"code must be a str, not {type(code).__name__}")
        cfg = self.pool.config
        timeout = float(timeout if timeout is not None else cfg.timeout_s)
        if timeout <= 0:
            raise ValueError("timeout must be positive")
        self._busy = True
        t0 = time.perf_counter()
        try:
            if self._worker is None:
                self.pool.check_open()
                self._worker = await self._start()
                self.restarts += 1
                self._pending_notes.append("a fresh interpreter was started for this block (the previous one ended):"
                                           " earlier variables are lost, the input images are loaded again")
            result = await self._run_on(self._worker, code, timeout)
        finally:
            self._busy = False
        result.duration_s = time.perf_counter() - t0
        if self._pending_notes:
            result.notes[:0] = self._pending_notes
            self._pending_notes = []
        return result

    async def _run_on(self, w: WorkerProcess, code: str, timeout: float) -> ExecResult:
        pool = self.pool
        cfg = pool.config
        watchdog = pool.launcher.watchdog
        token = watchdog.arm(w.pidfd, time.monotonic() + timeout + cfg.kill_grace_s)
        violation: str | None = None
        result: ExecResult | None = None
        self._blocks += 1
        block = self._blocks
        # The watchdog kills the process at the hard deadline, which closes its end of the socket; as a backstop
        # (a watchdog that could not run), our end is shut down 10 s later. A timer, not wait_for: no extra task.
        backstop = asyncio.get_running_loop().call_later(timeout + cfg.kill_grace_s + 10.0, _shutdown, w.sock)
        try:
            if _has_unread_bytes(w.sock):
                raise wire.ProtocolError("bytes arrived before the block was sent (a forged or late result)")
            await wire.asend(w.sock, {"op": "run", "id": block, "code": code, "timeout": timeout})
            msg, blobs = await wire.arecv(w.sock, pool.result_limits)
            result = parse_result(msg, blobs, block, cfg)
        except (EOFError, ConnectionError, OSError):
            pass
        except wire.ProtocolError as exc:
            violation = str(exc)
        except BaseException:  # cancelled: the process's state is unknown, so it goes
            backstop.cancel()
            watchdog.disarm(token)
            await self._retire(w)
            raise
        backstop.cancel()
        fired = watchdog.disarm(token)
        if result is not None:
            if not result.status.session_alive:
                await self._retire(w)
            return result
        # the process died, was killed, or broke the protocol
        w.kill()
        await w.wait_exit(2.0)
        status = await w.exit_status(0.5)
        await self._retire(w)
        kind, text = describe_status(status)
        notes = []
        if pool.closed:
            st = ExecStatus.KILLED
            notes.append("the sandbox pool was closed")
        elif violation is not None:
            st = ExecStatus.CRASHED
            notes.append(f"the session process broke the sandbox protocol and was killed: {violation}")
        elif fired:
            st = ExecStatus.TIMEOUT
            notes.append(f"killed after {timeout + cfg.kill_grace_s:g} s (the code did not stop at the {timeout:g} s "
                         "soft timeout); its output is lost")
        elif kind == "signal" and status is not None and status >= 0 and \
                os_sig(status) in (signal.SIGXCPU,):
            st = ExecStatus.TIMEOUT
            notes.append(f"{text} (CPU time limit)")
        else:
            st = ExecStatus.CRASHED
            notes.append(text)
        return ExecResult(status=st, notes=notes)

    async def _retire(self, w: WorkerProcess) -> None:
        await self.pool.launcher.retire(w)
        if self._worker is w:
            self._worker = None


def _sealed_memfd(arr: np.ndarray) -> int:
    """The pixels in an anonymous, sealed (immutable) memory file that session processes map read-only: images
    reach a session without crossing the socket, and a session cannot alter them for its successor."""
    import fcntl

    fd = os.memfd_create("codevl-input", os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING)
    try:
        view = memoryview(np.ascontiguousarray(arr)).cast("B")  # type: ignore[arg-type]
        done = 0
        while done < len(view):
            done += os.write(fd, view[done:])
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_WRITE | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW |
                    fcntl.F_SEAL_SEAL)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _has_unread_bytes(sock: socket.socket) -> bool:
    """Whether the session process sent anything since its last result (EOF counts as nothing: the send fails)."""
    try:
        return bool(sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT))
    except (BlockingIOError, InterruptedError):
        return False


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def os_sig(status: int) -> int:
    import os

    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0
