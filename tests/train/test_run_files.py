"""Run-directory files: the newest complete checkpoint, the metrics log, and refusing another run's directory."""

from __future__ import annotations

from pathlib import Path

import pytest

from train.run_files import MetricsLog, RunDirError, check_same_config, latest_checkpoint, read_metrics


def test_a_checkpoint_torn_by_a_kill_is_skipped(tmp_path: Path) -> None:
    for step, complete in ((2, True), (4, True), (6, False)):  # killed while writing checkpoint-6
        d = tmp_path / f"checkpoint-{step}"
        d.mkdir()
        (d / "model.safetensors").write_bytes(b"x")
        if complete:
            (d / "trainer_state.json").write_text("{}")
    (tmp_path / "checkpoint-x").mkdir()
    assert latest_checkpoint(tmp_path, "trainer_state.json") == tmp_path / "checkpoint-4"
    assert latest_checkpoint(tmp_path / "none", "trainer_state.json") is None


def test_metrics_log_keeps_steps_and_nulls_non_finite(tmp_path: Path) -> None:
    log = MetricsLog(tmp_path)
    log.write(1, {"loss": 2.5, "bad": float("nan"), "note": "x", "skip": [1]})
    with (tmp_path / "metrics.jsonl").open("a") as f:
        f.write('{"step": 2, "loss"')  # a line torn by a kill
    assert read_metrics(tmp_path) == [{"step": 1, "loss": 2.5, "bad": None, "note": "x"}]


def test_another_runs_directory_is_refused(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("optim:\n  lr: 0.001\ntrain:\n  resume: auto\n")
    check_same_config(tmp_path, {"optim": {"lr": 0.001}, "train": {"resume": "never"}}, ignore=("train.resume",))
    with pytest.raises(RunDirError, match=r"optim.lr: 0.001 -> 0.002"):
        check_same_config(tmp_path, {"optim": {"lr": 0.002}, "train": {"resume": "auto"}})
