#!/usr/bin/env bash
# Multi-node SFT under Slurm: one task per node, each running `accelerate launch` for its node's 8 GPUs.
#
#   sbatch --nodes=2 --gres=gpu:8 --ntasks-per-node=1 scripts/slurm_sft.sh configs/sft/codevision_qwen2_5_vl_7b.yaml [key=value ...]
#
# Uses configs/accelerate/zero3_multinode.yaml (DeepSpeed ZeRO-3, settings in configs/deepspeed/zero3.json); the
# node count and process count are taken from Slurm. Resume is automatic: resubmitting the same command continues
# from the newest complete checkpoint in run.output_dir.
set -euo pipefail
CONFIG=${1:?usage: slurm_sft.sh CONFIG.yaml [key=value ...]}
shift
cd "${SLURM_SUBMIT_DIR:-$(dirname "$0")/..}"
NODES=${SLURM_NNODES:-1}
GPUS_PER_NODE=${GPUS_PER_NODE:-8}
MASTER_ADDR=$(scontrol show hostnames "${SLURM_JOB_NODELIST}" | head -n 1)
MASTER_PORT=${MASTER_PORT:-29500}
srun --kill-on-bad-exit=1 bash -c "
  .venv/bin/accelerate launch --config_file configs/accelerate/zero3_multinode.yaml \
    --num_machines ${NODES} --num_processes $((NODES * GPUS_PER_NODE)) \
    --machine_rank \${SLURM_NODEID} --main_process_ip ${MASTER_ADDR} --main_process_port ${MASTER_PORT} \
    -m train.sft --config ${CONFIG} $*
"
