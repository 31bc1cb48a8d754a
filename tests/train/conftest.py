"""Shared fixtures for the training-stage tests: the offline tiny models and oracle SFT data built in the sandbox."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from train.model.tiny import ARCHS, build_tiny_model

    root = tmp_path_factory.mktemp("tiny-models")
    return {arch: build_tiny_model(arch, root / arch, seed=0) for arch in ARCHS}


def build_oracle_file(out: Path, *, generators: dict[str, int], variants: list[str], protocol: str = "codevl",
                      seed: int = 0) -> tuple[Path, list[Any]]:
    """Synthetic tasks and their oracle trajectories (every block run in the real sandbox) saved as SFT JSONL."""
    import sandbox
    from data import read_tasks
    from data.generators import generate_to_dir
    from data.oracle import build_oracle_trajectories
    from rollout.protocols import get_protocol
    from rollout.trajectory import save_trajectories

    small = {"orientation": {"min_side": 256, "max_side": 384}, "visual_search": {"min_side": 512, "max_side": 640},
             "multi_tool": {"min_side": 512, "max_side": 640}, "symbolic": {"min_side": 256, "max_side": 320}}
    tasks = []
    for i, (name, n) in enumerate(generators.items()):
        res = generate_to_dir(name, n, out / "tasks" / name, seed=seed + i, config=small[name], workers=1,
                              progress=False)
        tasks += read_tasks(res.path)
    pool = sandbox.SandboxPool(sandbox.SandboxConfig())
    try:
        result = build_oracle_trajectories(tasks, protocol=get_protocol(protocol), pool=pool, variants=variants,
                                           seed=seed, progress=False)
    finally:
        pool.close()
    assert result.trajectories and not result.failures, result.summary()
    path = out / "sft" / "oracle.jsonl"
    save_trajectories(path, result.trajectories)
    return path, tasks


@pytest.fixture(scope="session")
def oracle_sft(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[Any]]:
    """(oracle.jsonl, tasks): 3 orientation + 3 visual-search tasks, single-tool, multi-crop and error-recovery."""
    return build_oracle_file(tmp_path_factory.mktemp("oracle"), generators={"orientation": 3, "visual_search": 3},
                             variants=["single_tool", "error_recovery"])
