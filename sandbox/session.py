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
from typing import TYPE_CHECKING, Any

import numpy as np

from sandbox import wire
from sandbox.errors import SandboxClosedError, SandboxUnavailableError
from sandbox.isolation import Layers
from sandbox.spawn import spawn_async
from sandbox.process import WorkerProcess, describe_status
from sandbox.result import CapturedImage, ErrorInfo, ExecResult, ExecStatus, ImageRegion, OpRecord

if TYPE_CHECKING:
    from sandbox.pool import SandboxPool

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


class _Died(Exception):
    """A session process ended before it was ready."""


class SandboxSession:
    """An async context manager holding one pool slot and one session process (restarted when it dies)."""

    def __init__(self, pool: SandboxPool, images: dict[str, Any] | None = None) -> None:
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
        self.pool._check_open()
        await self.pool._slots_acquire()
        self._slot = True
        self.pool._register(self)
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
            w.kill()
            await w.wait_exit(2.0)
            w.close()
            self.pool._cleanup_worker(w)
        self.pool._unregister(self)
        for fd in self._image_fds:
            os.close(fd)
        self._image_fds = []
        if self._slot:
            self._slot = False
            self.pool._slots.release()

    def _kill_now(self) -> None:
        """Pool shutdown: kill the process from any thread (the owner's next await sees it gone)."""
        w = self._worker
        if w is not None:
            w.kill()

    @property
    def alive(self) -> bool:
        return self._worker is not None

    # ---- starting a process ----

    async def _start(self) -> WorkerProcess:
        """A process that is up (a prespawned spare, or forked now), loaded with this session's images. A spare
        that died meanwhile (e.g. with a replaced warm parent) is skipped for a freshly forked process."""
        pool = self.pool
        deadline = time.monotonic() + pool.config.start_timeout_s
        spare = pool._spares.take() if pool._spares is not None else None
        if spare is not None:
            try:
                return await self._load(*spare, deadline)
            except _Died:
                pass
        try:
            return await self._load(*await spawn_async(pool, deadline), deadline)
        except _Died as exc:
            raise SandboxUnavailableError(f"the session process died while loading its images ({exc})") from None

    async def _load(self, w: WorkerProcess, layers: Layers, deadline: float) -> WorkerProcess:
        pool = self.pool
        token = pool._watchdog.arm(w.pidfd, deadline)
        try:
            msg = {"op": "init", "images": self._image_specs, "settings": pool._worker_settings()}
            sent = wire.send_with_fds(w.sock, msg, self._image_fds)
            (data,) = wire.encode(msg)
            if sent < len(data):
                await asyncio.get_running_loop().sock_sendall(w.sock, data[sent:])
            reply, _ = await wire.arecv(w.sock, READY_LIMITS)
            if reply.get("op") != "ready":
                raise wire.ProtocolError(f"expected ready, got {reply.get('op')!r}")
        except BaseException as exc:
            fired = pool._watchdog.disarm(token)
            w.close()
            pool._cleanup_worker(w)
            if isinstance(exc, (EOFError, OSError, wire.ProtocolError)):
                raise _Died("start_timeout_s passed" if fired else describe_status(await w.exit_status())[1]) from None
            raise
        pool._watchdog.disarm(token)
        self.layers = layers
        return w

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
                self.pool._check_open()
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
        token = pool._watchdog.arm(w.pidfd, time.monotonic() + timeout + cfg.kill_grace_s)
        msg: dict[str, Any] | None = None
        blobs: list[np.ndarray] = []
        violation = None
        # The watchdog kills the process at the hard deadline, which closes its end of the socket; as a backstop
        # (a watchdog that could not run), our end is shut down 10 s later. A timer, not wait_for: no extra task.
        backstop = asyncio.get_running_loop().call_later(timeout + cfg.kill_grace_s + 10.0, _shutdown, w.sock)
        try:
            await wire.asend(w.sock, {"op": "run", "code": code, "timeout": timeout})
            msg, blobs = await wire.arecv(w.sock, pool._result_limits)
        except (EOFError, ConnectionError, OSError):
            pass
        except wire.ProtocolError as exc:
            violation = str(exc)
        except BaseException:  # cancelled: the process's state is unknown, so it goes
            backstop.cancel()
            pool._watchdog.disarm(token)
            await self._retire(w)
            raise
        backstop.cancel()
        fired = pool._watchdog.disarm(token)
        if msg is not None and violation is None:
            try:
                result = self._parse(msg, blobs)
            except (KeyError, TypeError, ValueError) as exc:
                violation = f"malformed result ({type(exc).__name__}: {exc})"
            else:
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
        w.kill()
        await w.wait_exit(2.0)
        w.close()
        self.pool._cleanup_worker(w)
        if self._worker is w:
            self._worker = None

    def _parse(self, msg: dict[str, Any], blobs: list[np.ndarray]) -> ExecResult:
        if msg.get("op") != "result":
            raise ValueError(f"unexpected message {msg.get('op')!r}")
        cfg = self.pool.config
        status = ExecStatus(msg["status"])
        metas = msg.get("images") or []
        if len(metas) != len(blobs):
            raise ValueError("image count does not match the pixel blobs")
        if msg.get("png"):
            blobs = [_decode_png(b, cfg.max_image_pixels) for b in blobs]
        images = []
        for meta, arr in zip(metas, blobs, strict=True):
            region = None
            if meta.get("region"):
                try:
                    region = ImageRegion.from_dict(meta["region"])
                except (KeyError, TypeError, ValueError):
                    region = None
            images.append(CapturedImage(arr, str(meta.get("source", "show")), region))
        ops = []
        for o in (msg.get("ops") or [])[: cfg.max_ops]:
            try:
                ops.append(OpRecord.from_dict(o))
            except (KeyError, TypeError, ValueError, AttributeError):
                continue
        err = msg.get("error")
        error = ErrorInfo(str(err.get("type", "Exception")), str(err.get("message", "")), str(err.get("traceback", "")),
                          int(err["line"]) if isinstance(err.get("line"), int) else None) if isinstance(err, dict) else None
        value_repr = msg.get("value_repr")
        return ExecResult(
            status=status,
            stdout=str(msg.get("stdout", ""))[: cfg.max_stdout_bytes * 2],
            stderr=str(msg.get("stderr", ""))[: cfg.max_stderr_bytes * 2],
            error=error, images=images, ops=ops,
            value_repr=str(value_repr)[: cfg.max_value_repr_chars] if value_repr is not None else None,
            notes=[str(n)[:500] for n in (msg.get("notes") or [])][:50],
        )


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


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass


def os_sig(status: int) -> int:
    import os

    return os.WTERMSIG(status) if os.WIFSIGNALED(status) else 0


def _decode_png(blob: np.ndarray, max_pixels: int) -> np.ndarray:
    import io

    from PIL import Image

    with Image.open(io.BytesIO(blob.tobytes())) as im:
        if im.width * im.height > max_pixels:
            raise ValueError("PNG larger than max_image_pixels")
        im.load()
        return np.asarray(im.convert("RGBA" if "A" in im.mode else ("L" if im.mode == "L" else "RGB")))

