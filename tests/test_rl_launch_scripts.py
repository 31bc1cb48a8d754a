"""The RL launchers (scripts/slurm_rl.sh, scripts/rl_server.sh) run the commands their header comments promise.

No Slurm, GPU or vLLM here: stand-in `srun`, `scontrol`, `accelerate` and `vllm` executables on PATH record the
arguments they get (and the fake `vllm serve` answers /health), so what is checked is the scripts' own argument
and environment plumbing (node rank, process counts, GPU split, overrides passed through with their quoting).
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _exe(path: Path, body: str) -> Path:
    path.write_text("#!/usr/bin/env bash\n" + body)
    path.chmod(0o755)
    return path


def _recorder(path: Path, log: Path) -> Path:
    """An executable that appends its CUDA_VISIBLE_DEVICES, SLURM_NODEID and arguments (one per line) to `log`."""
    return _exe(path, f'{{ echo "CVD=${{CUDA_VISIBLE_DEVICES:-}} NODE=${{SLURM_NODEID:-}}"; printf "%s\\n" "$@"; '
                      f'echo ---; }} >> {log}\n')


def test_slurm_rl_runs_accelerate_on_every_node_with_its_rank(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "accelerate.log"
    _exe(bin_dir / "scontrol", 'printf "node-a\\nnode-b\\n"\n')
    # srun: run the command once per node, as Slurm would, with that node's SLURM_NODEID
    _exe(bin_dir / "srun", 'while [[ "$1" == --* ]]; do shift; done\n'
                           'for n in 0 1; do SLURM_NODEID=$n "$@"; done\n')
    acc = _recorder(bin_dir / "accelerate", log)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "SLURM_JOB_NODELIST": "node-[a-b]",
           "SLURM_JOB_NUM_NODES": "2", "SLURM_SUBMIT_DIR": str(ROOT), "ACCELERATE_BIN": str(acc)}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "slurm_rl.sh"), "configs/rl/x.yaml", "optim.lr=1e-6",
                          "run.name=a b"], env=env, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    calls = [c.strip().splitlines() for c in log.read_text().split("---") if c.strip()]
    assert len(calls) == 2
    for node, call in enumerate(calls):
        assert call[0] == f"CVD= NODE={node}"
        assert call[1:] == ["launch", "--config_file", "configs/accelerate/zero3_multinode.yaml", "--num_machines",
                            "2", "--num_processes", "16", "--machine_rank", str(node), "--main_process_ip", "node-a",
                            "--main_process_port", "29500", "-m", "train.rl", "--config", "configs/rl/x.yaml",
                            "optim.lr=1e-6", "run.name=a b"]


def test_rl_server_starts_the_server_on_its_gpus_then_the_trainer_on_the_others(tmp_path: Path) -> None:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    log = tmp_path / "calls.log"
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = int(sock.getsockname()[1])
    # a `vllm serve` stand-in: records its arguments, then answers /health until killed
    vllm = _exe(bin_dir / "vllm", f'{{ echo "CVD=$CUDA_VISIBLE_DEVICES DEV=$VLLM_SERVER_DEV_MODE"; '
                                  f'printf "%s\\n" "$@"; echo ---; }} >> {log}\n'
                                  f'exec {sys.executable} -m http.server {port} --bind 127.0.0.1 '
                                  f'--directory {tmp_path / "www"} > /dev/null 2>&1\n')
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "health").write_text("ok")
    acc = _recorder(bin_dir / "accelerate", log)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}", "VLLM_BIN": str(vllm), "ACCELERATE_BIN": str(acc),
           "TRAIN_GPUS": "0,1,2,3,4,5", "SERVE_GPUS": "6,7", "PORT": str(port), "SERVER_WAIT_S": "30",
           "SERVER_LOG": str(tmp_path / "server.log")}
    run = subprocess.run(["bash", str(ROOT / "scripts" / "rl_server.sh"), "Qwen/Qwen2.5-VL-7B-Instruct",
                          "configs/rl/x.yaml", "optim.lr=1e-6"], env=env, capture_output=True, text=True,
                         timeout=120, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    server, trainer = [c.strip().splitlines() for c in log.read_text().split("---") if c.strip()]
    assert server[0] == "CVD=6,7 DEV=1"
    assert server[1:3] == ["serve", "Qwen/Qwen2.5-VL-7B-Instruct"]
    assert server[server.index("--tensor-parallel-size") + 1] == "2" and server[server.index("--port") + 1] == str(port)
    assert trainer[0] == "CVD=0,1,2,3,4,5 NODE="
    assert trainer[1:] == ["launch", "--config_file", "configs/accelerate/zero3.yaml", "--num_processes", "6",
                           "-m", "train.rl", "--config", "configs/rl/x.yaml", "rollout.engine=vllm_server",
                           f"rollout.vllm.server_url=http://127.0.0.1:{port}", "optim.lr=1e-6"]
