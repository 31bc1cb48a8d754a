"""Shared fixtures of the train tests: a finished evaluation run of the scripted fixture benchmark."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def eval_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An evaluation run directory (tests/train/eval_fixture.py under its scripted policy, real sandbox), scored
    with the CodeVision reward set so that episodes carry reward breakdowns."""
    from tests.train.eval_fixture import eval_overrides, make_benchmark
    from train.config import load_config
    from train.config.eval import EvalConfig
    from train.eval import evaluate

    root = tmp_path_factory.mktemp("eval_run")
    tasks, script = make_benchmark(root / "bench")
    repo = Path(__file__).resolve().parents[2]
    cfg = load_config(EvalConfig, repo / "configs/eval/scripted_fixture.yaml",
                      [*eval_overrides(tasks, script, root / "run"),
                       f"rewards={repo / 'configs/rewards/codevision.yaml'}"])
    evaluate(cfg)
    return root / "run"
