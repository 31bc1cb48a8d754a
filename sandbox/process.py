"""The pool's handle on one session process: its socket, its pidfd, killing it and learning how it ended."""

from __future__ import annotations

import asyncio
import os
import signal
import socket

from sandbox.isolation import Layers
from sandbox.linux.pidfd import pidfd_exited, pidfd_kill
from sandbox.zygote_client import ZygoteProcess


class WorkerProcess:
    """One session process: `pid`, its `pidfd` (signals never reach a recycled pid), the pool's end of its socket,
    the warm parent that forked (and reaps) it, its scratch directory on the host (tiers without a private /tmp)
    and the layers it reported."""

    def __init__(self, pid: int, pidfd: int, sock: socket.socket, zygote: ZygoteProcess, *,
                 scratch: str | None = None, layers: Layers | None = None) -> None:
        self.pid = pid
        self.pidfd = pidfd
        self.sock = sock
        self.zygote = zygote
        self.scratch = scratch
        self.layers = layers
        self.killed = False
        self.closed = False

    def kill(self) -> None:
        if not self.closed:
            self.killed = True
            try:
                pidfd_kill(self.pidfd, signal.SIGKILL)
            except OSError:
                pass

    async def wait_exit(self, timeout_s: float) -> bool:
        """Wait until the process is gone (its pidfd turns readable); False at the deadline."""
        if self.closed or pidfd_exited(self.pidfd, 0):
            return True
        loop = asyncio.get_running_loop()
        fut: asyncio.Future[None] = loop.create_future()
        loop.add_reader(self.pidfd, lambda: fut.done() or fut.set_result(None))  # type: ignore[func-returns-value]
        try:
            await asyncio.wait_for(fut, timeout_s)
            return True
        except asyncio.TimeoutError:
            return False
        finally:
            loop.remove_reader(self.pidfd)

    def wait_exit_sync(self, timeout_s: float) -> bool:
        return self.closed or pidfd_exited(self.pidfd, timeout_s)

    async def exit_status(self, timeout_s: float = 0.5) -> int | None:
        """The wait status reported by the warm parent (None when it did not arrive in time)."""
        fut = self.zygote.exit_status(self.pid)
        try:
            return await asyncio.wait_for(asyncio.wrap_future(fut), timeout_s)
        except asyncio.TimeoutError:
            self.zygote.forget_exit(self.pid, fut)
            return None

    def close(self) -> None:
        """Kill (if still running) and release the descriptors. The warm parent reaps the process."""
        if self.closed:
            return
        self.kill()
        self.closed = True
        try:
            self.sock.close()
        except OSError:
            pass
        try:
            os.close(self.pidfd)
        except OSError:
            pass


def describe_status(status: int | None) -> tuple[str, str]:
    """(kind, text) of a wait status: kind is 'signal', 'exit' or 'unknown'."""
    if status is None or status < 0:
        return "unknown", "the session process ended (exit status unknown)"
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        try:
            name = signal.Signals(sig).name
        except ValueError:
            name = f"signal {sig}"
        return "signal", f"the session process was killed by {name}"
    if os.WIFEXITED(status):
        return "exit", f"the session process exited with code {os.WEXITSTATUS(status)}"
    return "unknown", f"the session process ended (status {status})"

