#!/usr/bin/env bash
# Every GPU check of codevl in one run on one GPU node (at most 8 minutes: each step has a time limit), logs into
# $OUT (default runs/gpu-checks): the `gpu`-marked tests (bf16 ZeRO-2/3 SFT and RL steps with the HF engine,
# weight sync, the HF engine on CUDA, per-phase CUDA memory; the vLLM tests skip where vLLM is not installed), RL steps of a
# random-initialised 3B-size Qwen2.5-VL under ZeRO-2 against TRL's GRPOTrainer (add `--zero 3` runs by hand when
# time allows), and the chunked logprob memory at 2k/8k/16k tokens against the full-vocabulary computation.
#   bash scripts/gpu_wheels.sh     # where PyPI can be reached: the wheels a bare node lacks, into .whl/
#   bash scripts/gpu_checks.sh     # on the GPU node, in the repository root (installs .whl/*.whl if present)
set -uo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-runs/gpu-checks}
PY=${PYTHON:-python3}
mkdir -p "$OUT"
export HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 PYTHONPATH=$PWD TOKENIZERS_PARALLELISM=false
if compgen -G ".whl/*.whl" >/dev/null; then  # into the interpreter itself: the sandbox's warm parent runs `python -I`
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir .whl/*.whl || exit 1
fi
{ date -u; nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
  "$PY" -c "import torch, transformers, accelerate, deepspeed, trl; print('torch', torch.__version__, 'transformers',
transformers.__version__, 'accelerate', accelerate.__version__, 'deepspeed', deepspeed.__version__, 'trl', trl.__version__)"
  echo 'print("sandbox ok")' > /tmp/codevl-probe.py; "$PY" -m train.cli sandbox /tmp/codevl-probe.py --json
} > "$OUT/machine.txt" 2>&1
step() {  # name, time limit (s), command...
  local name=$1 limit=$2; shift 2
  echo "== $name" | tee -a "$OUT/summary.txt"
  timeout "$limit" "$@" > "$OUT/$name.log" 2>&1
  local rc=$?
  tail -n 25 "$OUT/$name.log" >> "$OUT/summary.txt"
  echo "== $name: exit $rc" | tee -a "$OUT/summary.txt"
}
step gpu_tests 240 "$PY" -m pytest -q -m gpu -p no:cacheprovider --basetemp=/tmp/codevl-gpu tests
step rl_step_3b_zero2 170 "$PY" scripts/bench/rl_step.py --device cuda --model-config 3b --zero 2 --steps 3 \
  --prompts 8 --group 4 --max-new 256 --work /tmp/codevl-bench-rl2
step logprob_memory 60 "$PY" scripts/bench/logprob_memory.py --device cuda --hidden 2048 --dtype bfloat16 \
  --full-max-tokens 16384
cat "$OUT/summary.txt"
