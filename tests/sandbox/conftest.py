"""Fixtures for the sandbox tests: a real pool per module (tier full, small limits so attacks end fast), an
`attack` harness that checks what every attack test must leave behind, and process inspection helpers."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from typing import Any
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from sandbox import ExecResult, SandboxConfig, SandboxPool

SMALL = dict(timeout_s=10, kill_grace_s=0.5, scratch_mb=64, shm_mb=16, max_file_mb=16, memory_mb=2048,
             max_output_mb=2, max_image_pixels=4_000_000, max_images=8)


@pytest.fixture(scope="session")
def shared_pool() -> Iterator[SandboxPool]:
    """One pool for all the sandbox test modules (starting one costs ~1.5 s on 2 idle cores)."""
    p = SandboxPool(SandboxConfig(**SMALL))
    try:
        yield p
    finally:
        p.close()


@pytest.fixture(scope="module")
def pool(shared_pool: SandboxPool) -> SandboxPool:
    """The pool a test module runs in (a module may override it, e.g. to run its tests in several setups)."""
    return shared_pool


def noise_image(w: int = 320, h: int = 200, seed: int = 0) -> Image.Image:
    return Image.fromarray(np.random.RandomState(seed).randint(0, 255, (h, w, 3), dtype=np.uint8))


def descendants(pid: int) -> list[int]:
    """All descendant pids of `pid` (from /proc/<pid>/task/*/children)."""
    out: list[int] = []
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            for k in kids:
                out.append(int(k))
                todo.append(int(k))
    return out


def strays(pool: SandboxPool, timeout_s: float = 5.0) -> list[int]:
    """Processes under the warm parent that are not session processes the pool holds (open sessions, spares),
    polled until there are none or the deadline passes (killed processes die asynchronously)."""
    parent = pool.stats()["warm_parent_pid"]
    assert parent is not None
    deadline = time.monotonic() + timeout_s
    while True:
        extra = sorted(set(descendants(parent)) - pool.worker_pids())
        if not extra or time.monotonic() > deadline:
            return extra
        time.sleep(0.02)


Attack = Callable[..., ExecResult]


@pytest.fixture
def attack(pool: SandboxPool) -> Iterator[Attack]:
    """Run attacking code in its own session next to a neighbour session with state, then check the aftermath:
    the neighbour keeps its state and works, the pool gives a new working session, no stray processes remain,
    nothing appeared at the host paths the attack aimed at."""
    neighbour = pool.sync_session(images={"image_clue_0": noise_image()})
    neighbour.open()
    assert neighbour.run("secret_state = 123").ok
    zygote = pool.stats()["warm_parent_pid"]
    assert zygote is not None
    results: list[ExecResult] = []
    forbidden: list[str] = []

    def run(code: str | list[str], *, timeout: float | None = None, host_paths: tuple[str, ...] = (),
            images: bool = True) -> Any:
        """Run one block (returns its result) or a list of blocks in one session (returns the list)."""
        forbidden.extend(host_paths)
        codes = [code] if isinstance(code, str) else code
        with pool.sync_session(images={"image_clue_0": noise_image()} if images else None) as s:
            out = [s.run(c, timeout=timeout) for c in codes]
        results.extend(out)
        return out[0] if isinstance(code, str) else out

    yield run
    try:
        r = neighbour.run("print(secret_state)")
        assert r.ok and r.stdout == "123\n", f"neighbour session damaged: {r}"
        with pool.sync_session() as fresh:
            assert fresh.run("1 + 1").value_repr == "2", "the pool cannot run a new session"
        left = strays(pool)
        assert not left, f"stray processes under the warm parent: {left}"
        assert pool.stats()["warm_parent_pid"] == zygote and pool.stats()["warm_parent_alive"], "the warm parent died"
        for path in forbidden:
            assert not os.path.exists(path), f"the attack wrote {path} outside its scratch directory"
    finally:
        neighbour.close()
        for path in forbidden:
            if os.path.exists(path) and os.path.isfile(path):
                os.unlink(path)
