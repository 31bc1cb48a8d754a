"""train.weight_sync's ZeRO-3 gather on a GPU: NCCL, DeepSpeed's CUDA accelerator, one rank (a subprocess running
tests/train/zero3_worker.py, as the CPU test does with gloo). Skipped without CUDA (tests/conftest.py).

    .venv/bin/python -m pytest tests/train/test_weight_sync_gpu.py -v
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.gpu
pytest.importorskip("deepspeed")

from tests.train.test_weight_sync import _free_port  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]


def test_zero3_gather_on_cuda_gathers_one_module_at_a_time_and_merges_lora(tmp_path: Path) -> None:
    from train.model.tiny import build_tiny_model

    model_dir = build_tiny_model("qwen2_5_vl", tmp_path / "tiny", seed=0)
    proc = subprocess.run([sys.executable, str(ROOT / "tests" / "train" / "zero3_worker.py"), str(model_dir),
                           str(_free_port()), "cuda"], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.strip().splitlines()[-1])
    assert r["source_device"].startswith("cuda")  # gathered on the GPU, as vLLM will read it
    assert r["partitioned"] == r["params"] > 50 and r["most_available"] <= 4 and r["after"] == 0
    assert r["pushed"] == r["reference"] and r["max_diff"] <= 1e-6 and r["merge_effect"] > 1e-3 and r["meta_matches"]
