"""The pool's handle on the warm parent: starts it, asks it to fork sessions, collects their exit statuses.

A reader thread owns the receiving side of the control socket and resolves one `concurrent.futures.Future` per
request, so callers in any thread or event loop can wait on a spawn with a deadline.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from sandbox.errors import SandboxUnavailableError

ROOT = str(Path(__file__).resolve().parents[1])
THREAD_PINS = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
               "NUMEXPR_NUM_THREADS": "1", "VECLIB_MAXIMUM_THREADS": "1", "BLIS_NUM_THREADS": "1",
               "OPENCV_FOR_THREADS_NUM": "1", "MPLBACKEND": "Agg"}


def _mpl_dir() -> str:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    path = os.path.join(base, "codevl", "matplotlib")
    try:
        os.makedirs(path, exist_ok=True)
        return path
    except OSError:
        import tempfile

        return tempfile.mkdtemp(prefix="codevl-mpl-")


class ZygoteProcess:
    """One running warm parent. `alive` turns False when it exits; the pool then starts another."""

    def __init__(self, start_timeout_s: float) -> None:
        parent, child = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": "/tmp", "MPLCONFIGDIR": _mpl_dir(),
               **THREAD_PINS}
        code = f"import sys; sys.path.insert(0, {ROOT!r}); from sandbox.zygote import main; main()"
        self.proc = subprocess.Popen([sys.executable, "-I", "-c", code, str(child.fileno())], pass_fds=[child.fileno()],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, close_fds=True,
                                     start_new_session=True)
        child.close()
        self.sock = parent
        self.alive = True
        self._send_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._pending: dict[int, cf.Future[tuple[int, int]]] = {}
        self._exits: dict[int, int] = {}
        self._exit_waiters: dict[int, list[cf.Future[int]]] = {}
        self._lock = threading.Lock()
        parent.settimeout(start_timeout_s)
        try:
            data = parent.recv(1 << 20)
        except (TimeoutError, OSError) as exc:
            self.kill()
            raise SandboxUnavailableError(f"the sandbox's warm parent did not start within {start_timeout_s:g} s "
                                          f"({exc}); check that `{sys.executable} -c 'import cv2, skimage, "
                                          "matplotlib'` works") from None
        if not data:
            code_ = self.proc.wait(timeout=5)
            raise SandboxUnavailableError(f"the sandbox's warm parent exited with code {code_} while starting "
                                          "(its stderr above says why)")
        self.hello: dict[str, Any] = json.loads(data)
        parent.settimeout(None)
        self._reader = threading.Thread(target=self._read, name="codevl-sandbox-zygote", daemon=True)
        self._reader.start()

    @property
    def pid(self) -> int:
        return self.proc.pid

    def _read(self) -> None:
        while True:
            try:
                data, fds, _, _ = socket.recv_fds(self.sock, 1 << 16, 4)
            except OSError:
                data, fds = b"", []
            if not data:
                break
            msg = json.loads(data)
            if "exit" in msg:
                pid, status = int(msg["exit"]), int(msg["status"])
                with self._lock:
                    waiters = self._exit_waiters.pop(pid, [])
                    if not waiters:
                        self._exits[pid] = status
                        if len(self._exits) > 10000:  # nobody asked for these
                            for k in list(self._exits)[:5000]:
                                del self._exits[k]
                for w in waiters:
                    if not w.done():
                        w.set_result(status)
                continue
            with self._lock:
                fut = self._pending.pop(int(msg.get("id", -1)), None)
            if fut is None:
                for fd in fds:
                    os.close(fd)
                continue
            if "error" in msg:
                for fd in fds:
                    os.close(fd)
                fut.set_exception(SandboxUnavailableError(f"the warm parent could not fork a session: {msg['error']}"))
            elif fds:
                fut.set_result((int(msg["pid"]), fds[0]))
            else:
                fut.set_exception(SandboxUnavailableError("the warm parent replied without a process handle"))
        self.alive = False
        with self._lock:
            pending, self._pending = self._pending, {}
            waiters, self._exit_waiters = self._exit_waiters, {}  # type: ignore[assignment]
        for fut in pending.values():
            if not fut.done():
                fut.set_exception(SandboxUnavailableError("the sandbox's warm parent died"))
        for ws in waiters.values():  # type: ignore[attr-defined]
            for w in ws:
                if not w.done():
                    w.set_result(-1)

    def spawn(self, spec: dict[str, Any], session_sock: socket.socket) -> cf.Future[tuple[int, int]]:
        """Ask for a session process on `session_sock`; the future gives (pid, pidfd)."""
        fut: cf.Future[tuple[int, int]] = cf.Future()
        if not self.alive:
            fut.set_exception(SandboxUnavailableError("the sandbox's warm parent is not running"))
            return fut
        rid = next(self._ids)
        with self._lock:
            self._pending[rid] = fut
        data = json.dumps({"op": "spawn", "id": rid, "spec": spec}).encode()
        try:
            with self._send_lock:
                socket.send_fds(self.sock, [data], [session_sock.fileno()])
        except OSError as exc:
            with self._lock:
                self._pending.pop(rid, None)
            self.alive = False
            fut.set_exception(SandboxUnavailableError(f"the sandbox's warm parent is gone ({exc})"))
        return fut

    def exit_status(self, pid: int) -> cf.Future[int]:
        """Resolves with the session process's wait status once the warm parent reaped it (-1: unknown)."""
        fut: cf.Future[int] = cf.Future()
        with self._lock:
            if pid in self._exits:
                fut.set_result(self._exits.pop(pid))
            elif not self.alive:
                fut.set_result(-1)
            else:
                self._exit_waiters.setdefault(pid, []).append(fut)
        return fut

    def forget_exit(self, pid: int, fut: cf.Future[int]) -> None:
        with self._lock:
            ws = self._exit_waiters.get(pid)
            if ws and fut in ws:
                ws.remove(fut)
                if not ws:
                    del self._exit_waiters[pid]

    def kill(self) -> None:
        self.alive = False
        try:
            self.proc.kill()
        except OSError:
            pass
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            pass
        try:
            self.sock.close()
        except OSError:
            pass

    def close(self, timeout_s: float = 5.0) -> None:
        """Stop the warm parent: closing the socket ends its loop; then SIGKILL (its sessions die with it)."""
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        deadline = time.monotonic() + timeout_s
        try:
            self.proc.wait(timeout=max(0.0, min(0.5, deadline - time.monotonic())))
        except subprocess.TimeoutExpired:
            pass
        self.kill()
        self._reader.join(timeout=2)
        cg = self.hello.get("cgroup") if hasattr(self, "hello") else None
        if cg:
            from sandbox.linux.cgroups import remove_tree

            remove_tree(cg)
