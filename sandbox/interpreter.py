"""One session's interpreter: runs code blocks in a persistent namespace, notebook style.

A block runs with stdout/stderr captured (capped), a soft timeout (SIGALRM raises `SoftTimeout`, a
BaseException, inside the code; the pool SIGKILLs the process `kill_grace_s` later if the code swallowed it),
image capture and the operation trace. Statements before a failing one keep their effects; the last expression's
value is shown (an image is captured, anything else is returned as its repr). Builtins, sys.stdout/stderr and
trace hooks are restored before every block, so code that breaks them only breaks its own block.
"""

from __future__ import annotations

import ast
import builtins
import linecache
import os
import signal
import sys
import threading
import time
import traceback
from typing import Any

import numpy as np

from sandbox import capture as C
from sandbox.output import CappedStream, OutputBudget, OutputLimitExceeded
from sandbox.trace import TRACER


class SoftTimeout(BaseException):
    """The block ran past its time limit (raised inside the code by SIGALRM)."""


class CpuLimit(BaseException):
    """The session used up its CPU seconds (SIGXCPU)."""


class _Null:
    def write(self, s: str) -> int:
        return len(s)

    def flush(self) -> None:
        pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise SoftTimeout("the code block ran past its time limit")


def _on_xcpu(signum: int, frame: Any) -> None:
    raise CpuLimit("the session used up its CPU time")


def _is_artist(value: Any) -> bool:
    try:
        from matplotlib.artist import Artist
    except ImportError:
        return False
    if isinstance(value, Artist):
        return True
    return isinstance(value, (list, tuple)) and bool(value) and all(isinstance(v, Artist) for v in value)


_SANDBOX_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep


def _short_frame(frame: traceback.FrameSummary) -> traceback.FrameSummary:
    """`frame` with its file named relative to the import path it came from (no host directories)."""
    name = frame.filename
    if name.startswith("<"):
        return frame
    roots = [p.rstrip(os.sep) + os.sep for p in sys.path if p and name.startswith(p.rstrip(os.sep) + os.sep)]
    short = name[len(max(roots, key=len)):] if roots else os.path.basename(name)
    return traceback.FrameSummary(short, frame.lineno, frame.name, line=frame.line)


def _trim_traceback(exc: BaseException, cell_name: str) -> tuple[str, int | None]:
    """The traceback from the first frame in user code on, and the failing line of this block. Frames of the sandbox
    itself (its tracing wrappers) are left out and library frames name their module path (`PIL/Image.py`), so an
    observation never shows a host path."""
    frames = traceback.extract_tb(exc.__traceback__)
    start = next((i for i, f in enumerate(frames) if f.filename.startswith("<cell ")), len(frames))
    kept = [_short_frame(f) for f in frames[start:] if not f.filename.startswith(_SANDBOX_DIR)]
    line = next((f.lineno for f in reversed(kept) if f.filename == cell_name), None)
    if len(kept) > 30:
        head, tail = kept[:5], kept[-20:]
        body = "".join(traceback.format_list(head)) + f"  ... {len(kept) - 25} frames omitted ...\n" + \
            "".join(traceback.format_list(tail))
    else:
        body = "".join(traceback.StackSummary.from_list(kept).format())
    only = "".join(traceback.format_exception_only(type(exc), exc))
    text = ("Traceback (most recent call last):\n" + body if kept else "") + only
    return text, line


class Interpreter:
    """The namespace and settings of one session."""

    def __init__(self, namespace: dict[str, Any], settings: dict[str, Any]) -> None:
        self.ns = namespace
        self.settings = settings
        self.cells = 0
        self._builtins = dict(builtins.__dict__)
        self._helpers = {"show": C.show, "display": C.display}
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.signal(signal.SIGXCPU, _on_xcpu)
        sys.stdout = sys.stderr = _Null()

    def _restore_builtins(self) -> None:
        if builtins.__dict__ != self._builtins:
            builtins.__dict__.clear()
            builtins.__dict__.update(self._builtins)

    def _restore(self) -> None:
        self._restore_builtins()
        sys.settrace(None)
        sys.setprofile(None)
        threading.settrace(None)
        for k, v in self._helpers.items():
            self.ns.setdefault(k, v)
        signal.signal(signal.SIGALRM, _on_alarm)
        signal.signal(signal.SIGXCPU, _on_xcpu)

    def run(self, code: str, timeout_s: float) -> tuple[dict[str, Any], list[np.ndarray]]:
        """Run one block; returns the result message (ExecResult fields) and the captured pixels."""
        self._restore()
        self.cells += 1
        s = self.settings
        name = f"<cell {self.cells}>"
        linecache.cache[name] = (len(code), None, code.splitlines(True), name)
        budget = OutputBudget(int(s["max_output_chars"]))
        out = CappedStream("stdout", int(s["max_stdout"]), budget)
        err = CappedStream("stderr", int(s["max_stderr"]), budget)
        C.CURRENT = C.Capture(max_images=int(s["max_images"]), max_pixels=int(s["max_pixels"]))
        TRACER.begin(int(s["max_ops"]))
        TRACER.enabled = bool(s["trace"])
        threads_before = set(threading.enumerate())
        status, error, value_repr = "ok", None, None
        notes: list[str] = []
        t0 = time.perf_counter()
        timed_out = False
        sys.stdout, sys.stderr = out, err
        try:
            signal.setitimer(signal.ITIMER_REAL, max(timeout_s, 0.001))
            try:
                tree = ast.parse(code, filename=name, mode="exec")
                last = None
                if tree.body and isinstance(tree.body[-1], ast.Expr):
                    last = ast.Expression(tree.body.pop().value)  # type: ignore[attr-defined]
                exec(compile(tree, name, "exec"), self.ns)  # noqa: S102 - this is the sandbox
                if last is not None:
                    value = eval(compile(last, name, "eval"), self.ns)  # noqa: S307
                    value_repr = self._show_value(value)
            finally:
                signal.setitimer(signal.ITIMER_REAL, 0)
        except SoftTimeout:
            timed_out = True
        except CpuLimit:
            timed_out = True
            notes.append("the session used up its CPU time (session_cpu_s)")
        except OutputLimitExceeded:
            pass
        except MemoryError as exc:
            status = "memory"
            error = self._error(exc, name)
        except SyntaxError as exc:
            status = "error"
            error = {"type": type(exc).__name__, "message": str(exc.msg),
                     "traceback": "".join(traceback.format_exception_only(type(exc), exc)), "line": exc.lineno}
        except SystemExit as exc:
            status = "error"
            error = {"type": "SystemExit", "message": f"the code called exit({exc.code!r}); the interpreter keeps "
                                                      "running, variables are kept", "traceback": "", "line": None}
            error["traceback"], error["line"] = _trim_traceback(exc, name)
        except BaseException as exc:  # noqa: BLE001 - user code may raise anything
            status = "error"
            error = self._error(exc, name)
        finally:
            sys.stdout = sys.stderr = _Null()
            self._restore_builtins()  # the sandbox's own code below needs them intact
            sys.settrace(None)
            sys.setprofile(None)
        duration = time.perf_counter() - t0
        if timed_out:
            status, error = "timeout", None
        elif budget.exceeded:
            status, error = "output_limit", None
            notes.append(f"output limit: more than {budget.hard_limit} characters written")
        if status in ("ok", "error"):
            try:
                C.CURRENT.add_open_figures("figure")
            except BaseException as exc:  # noqa: BLE001
                notes.append(f"open figures could not be captured: {type(exc).__name__}")
            try:
                TRACER.scan(self.ns)
            except BaseException:  # noqa: BLE001
                TRACER.errors += 1
        C.CURRENT.finish()
        notes += C.CURRENT.notes
        stdout, n1 = out.text()
        stderr, n2 = err.text()
        notes += [n for n in (n1, n2) if n]
        if TRACER.dropped:
            notes.append(f"operation trace: {TRACER.dropped} more ops not recorded (max {s['max_ops']} per run)")
        alive = [t for t in threading.enumerate() if t not in threads_before and t.is_alive()]
        if alive:
            notes.append(f"{len(alive)} thread(s) started by this block are still running in the session")
        images = C.CURRENT.images
        msg = {
            "status": status, "stdout": stdout, "stderr": stderr, "error": error, "value_repr": value_repr,
            "duration_s": duration, "notes": notes,
            "images": [{"source": im.source, "region": im.region.to_dict() if im.region else None} for im in images],
            "ops": [o.to_dict() for o in TRACER.records],
        }
        return msg, [im.array for im in images]

    def _error(self, exc: BaseException, name: str) -> dict[str, Any]:
        tb, line = _trim_traceback(exc, name)
        try:
            message = str(exc)
        except Exception:  # noqa: BLE001
            message = "<unprintable>"
        return {"type": type(exc).__name__, "message": message[:2000], "traceback": tb[-8000:], "line": line}

    def _show_value(self, value: Any) -> str | None:
        if value is None:
            return None
        self.ns["_"] = value
        if C.is_showable(value):
            if isinstance(value, np.ndarray) and TRACER.enabled:
                try:  # a NumPy view shown as the last expression: its ops were the user's
                    TRACER.consume_for_user(value, "capture:last_expr")
                except Exception:  # noqa: BLE001 - the trace is best effort, never an error in user code
                    TRACER.errors += 1
            C.CURRENT.add(value, "last_expr")
            from matplotlib.figure import Figure

            if isinstance(value, Figure):
                import matplotlib.pyplot as plt

                plt.close(value)
            return None
        if _is_artist(value):
            return None
        try:
            text = repr(value)
        except Exception as exc:  # noqa: BLE001
            text = f"<repr failed: {type(exc).__name__}>"
        limit = int(self.settings["max_repr"])
        return text if len(text) <= limit else text[: limit - 20] + f"... [{len(text) - limit + 20} chars cut]"
