"""Capped text streams for a code block's stdout and stderr.

Each stream keeps the head and the tail of what was written up to `keep` characters, and all streams of a block
share a hard budget: past it, every write raises `OutputLimitExceeded` (a BaseException, so `except Exception`
in the code does not swallow it) and the block ends with status output_limit.
"""

from __future__ import annotations

import io
from collections import deque


class OutputLimitExceeded(BaseException):
    """The block wrote more text than the sandbox's hard output limit."""


class OutputBudget:
    def __init__(self, hard_limit: int) -> None:
        self.hard_limit = hard_limit
        self.total = 0
        self.exceeded = False


class CappedStream(io.TextIOBase):
    """A text stream that keeps head + tail of at most `keep` characters and charges a shared budget."""

    def __init__(self, name: str, keep: int, budget: OutputBudget) -> None:
        super().__init__()
        self.name = name
        self._head_cap = keep - keep // 4
        self._tail_cap = keep // 4
        self._head: list[str] = []
        self._head_len = 0
        self._tail: deque[str] = deque()
        self._tail_len = 0
        self.written = 0
        self._budget = budget

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return "utf-8"

    def isatty(self) -> bool:
        return False

    def write(self, s: str) -> int:
        if not isinstance(s, str):
            raise TypeError(f"write() argument must be str, not {type(s).__name__}")
        n = len(s)
        b = self._budget
        if b.exceeded or b.total + n > b.hard_limit:
            b.exceeded = True
            raise OutputLimitExceeded(f"more than {b.hard_limit} characters of output")
        b.total += n
        self.written += n
        room = self._head_cap - self._head_len
        if room > 0:
            part = s[:room]
            self._head.append(part)
            self._head_len += len(part)
            s = s[room:]
        if s:
            self._tail.append(s)
            self._tail_len += len(s)
            while self._tail and self._tail_len - len(self._tail[0]) >= self._tail_cap:
                self._tail_len -= len(self._tail.popleft())
        return n

    def flush(self) -> None:
        pass

    def text(self) -> tuple[str, str | None]:
        """(kept text, a note when something was dropped)."""
        head = "".join(self._head)
        if not self._tail:
            return head, None
        tail = "".join(self._tail)
        if len(tail) > self._tail_cap:
            tail = tail[len(tail) - self._tail_cap:]
        dropped = self.written - len(head) - len(tail)
        if dropped <= 0:
            return head + tail, None
        return (f"{head}\n... [{dropped} characters dropped] ...\n{tail}",
                f"{self.name} truncated: kept the first {len(head)} and last {len(tail)} of {self.written} characters")
