#!/usr/bin/env bash
# Multi-node RL under Slurm: DeepSpeed ZeRO-3 across nodes, vLLM colocated in every training rank
# (rollout.engine: vllm_colocate; each rank generates for its own episodes, weights synced in-process).
# Thin launcher: one Slurm task per node, each running accelerate with its node rank. Submit from the repository root:
#
#   sbatch --nodes 2 scripts/slurm_rl.sh configs/rl/X.yaml [dotted.key=value overrides]
#
# which runs, on every node (N nodes, G GPUs each, the first node as rendezvous):
#
#   accelerate launch --config_file configs/accelerate/zero3_multinode.yaml --num_machines N --num_processes N*G \
#     --machine_rank $SLURM_NODEID --main_process_ip <first node> --main_process_port $PORT \
#     -m train.rl --config configs/rl/X.yaml [overrides]
#
# Settings (environment): GPUS_PER_NODE (8), PORT (29500), ACCELERATE_BIN (.venv/bin/accelerate), ACCELERATE_CONFIG
# (configs/accelerate/zero3_multinode.yaml;
# configs/accelerate/zero2.yaml-style files work too). Set rollout.vllm.gpu_memory_utilization so that vLLM and the
# trainer fit on one GPU together (sleep mode frees vLLM's share during the update).
#SBATCH --job-name=codevl-rl
#SBATCH --ntasks-per-node=1
#SBATCH --gpus-per-node=8
#SBATCH --exclusive
set -euo pipefail
CONFIG="${1:?usage: sbatch --nodes N scripts/slurm_rl.sh CONFIG [overrides]}"
shift
ROOT="${SLURM_SUBMIT_DIR:-$(pwd)}"
cd "$ROOT"
export GPUS_PER_NODE="${GPUS_PER_NODE:-8}" PORT="${PORT:-29500}"
export ACCELERATE_CONFIG="${ACCELERATE_CONFIG:-configs/accelerate/zero3_multinode.yaml}"
export MAIN_ADDR="$(scontrol show hostnames "$SLURM_JOB_NODELIST" | head -n 1)"
export NUM_NODES="$SLURM_JOB_NUM_NODES" ACCELERATE_BIN="${ACCELERATE_BIN:-$ROOT/.venv/bin/accelerate}"
srun --kill-on-bad-exit=1 --ntasks-per-node=1 bash -c 'exec "$ACCELERATE_BIN" launch \
  --config_file "$ACCELERATE_CONFIG" --num_machines "$NUM_NODES" --num_processes "$((NUM_NODES * GPUS_PER_NODE))" \
  --machine_rank "$SLURM_NODEID" --main_process_ip "$MAIN_ADDR" --main_process_port "$PORT" \
  -m train.rl --config "$@"' _ "$CONFIG" "$@"
