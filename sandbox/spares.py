"""Session processes forked and isolated ahead of demand, so that opening a session only loads its images.

A background thread keeps `target` spare processes that are up (isolated, layers checked) and idle; `take()`
hands one out (skipping any that are no longer usable, e.g. forked by a warm parent that has since been
replaced) and wakes the thread to refill. The launcher owns it and gives it three functions: spawn one process,
tell whether one is still usable, and release one.
"""

from __future__ import annotations

import collections
import logging
import threading
from collections.abc import Callable

from sandbox.errors import SandboxError
from sandbox.process import WorkerProcess

logger = logging.getLogger(__name__)


class Spares:
    def __init__(self, target: int, spawn: Callable[[], WorkerProcess], usable: Callable[[WorkerProcess], bool],
                 release: Callable[[WorkerProcess], None]) -> None:
        self.target = target
        self._spawn = spawn
        self._usable = usable
        self._release = release
        self._ready: collections.deque[WorkerProcess] = collections.deque()
        self._cv = threading.Condition()
        self._stop = False
        self._thread = threading.Thread(target=self._loop, name="codevl-sandbox-spares", daemon=True)
        if target > 0:
            self._thread.start()

    def take(self) -> WorkerProcess | None:
        with self._cv:
            while self._ready:
                w = self._ready.popleft()
                self._cv.notify()
                if self._usable(w):
                    return w
                self._release(w)
        return None

    def pids(self) -> set[int]:
        with self._cv:
            return {w.pid for w in self._ready}

    def _loop(self) -> None:
        failures = 0
        while True:
            with self._cv:
                while not self._stop and len(self._ready) >= self.target:
                    self._cv.wait(1.0)
                if self._stop:
                    return
            try:
                w = self._spawn()
                failures = 0
            except SandboxError as exc:
                failures += 1
                logger.warning("sandbox: could not prespawn a session: %s", exc)
                with self._cv:
                    self._cv.wait(min(30.0, 0.5 * 2**failures))
                continue
            except Exception:  # noqa: BLE001 - the pool is closing (sockets gone) or similar
                with self._cv:
                    if self._stop:
                        return
                    self._cv.wait(1.0)
                continue
            with self._cv:
                if not self._stop:
                    self._ready.append(w)
                    continue
            self._release(w)
            return

    def stop(self) -> None:
        with self._cv:
            self._stop = True
            ready, self._ready = list(self._ready), collections.deque()
            self._cv.notify_all()
        for w in ready:
            self._release(w)
        if self._thread.is_alive():
            self._thread.join(timeout=5)
