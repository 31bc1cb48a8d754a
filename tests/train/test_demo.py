"""`codevl demo --quick` end to end as a user runs it: SFT -> RL -> eval on the tiny model, a report, and numbers
that show the SFT stage changed behaviour; peak memory within the README's 4 GiB."""

from __future__ import annotations

import json
import os
import re
import resource
import subprocess
import sys
from pathlib import Path

import pytest

from train.config import ConfigError, load_config
from train.config.demo import DemoConfig

ROOT = Path(__file__).resolve().parents[2]
CODEVL = str(Path(sys.executable).with_name("codevl"))


def test_quick_demo_runs_sft_rl_eval_and_writes_a_report(tmp_path: Path) -> None:
    out = tmp_path / "demo"
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    proc = subprocess.run([CODEVL, "demo", "--quick", f"output_dir={out}"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"}, timeout=1200)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    peak_gib = max(before, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss) / 2**20
    assert peak_gib < 4.0
    assert "Traceback" not in proc.stderr
    stages = [m.group(0) for line in proc.stdout.splitlines() if (m := re.match(r"\[[a-z ]+\]", line))]
    assert stages == ["[model]", "[data]", "[oracle]", "[eval base]", "[sft]", "[eval sft]", "[rl]", "[eval rl]",
                      "[report]"]
    summary = json.loads((out / "summary.json").read_text())
    table = summary["stages"]
    # the SFT stage taught the model to write code that runs on held-out tasks, which the untrained model never does
    assert table["sft"]["executing_code_rate"] > table["base"]["executing_code_rate"]
    assert summary["sft_losses"][-1] < 0.5 * summary["sft_losses"][0]
    assert (out / "report.html").is_file() and (out / "eval" / "rl" / "report.html").is_file()
    page = (out / "report.html").read_text()
    assert "code executes" in page and "eval/sft/report.html" in page
    assert (out / "rl" / "final" / "model.safetensors").is_file() and (out / "rl" / "metrics.jsonl").is_file()
    assert "SFT changed the share of held-out samples with code that executes" in proc.stdout


def test_demo_config_rejects_unknown_names_and_a_bad_reward_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="visual_serach"):
        load_config(DemoConfig, None, ["data.generators=[visual_serach]"])
    with pytest.raises(ConfigError, match="sft.stpes"):
        load_config(DemoConfig, None, ["sft.stpes=3"])
    proc = subprocess.run([CODEVL, "demo", "--dry-run", "rewards=nope.yaml"], cwd=tmp_path, capture_output=True,
                          text=True, env={**os.environ, "HF_HUB_OFFLINE": "1"})
    assert proc.returncode == 2 and "nope.yaml" in proc.stderr and "Traceback" not in proc.stderr
