#!/usr/bin/env bash
# RL with generation on a `vllm serve` of its own (rollout.engine: vllm_server): the trainer on some GPUs of this node,
# the server on the others. Thin launcher: starts scripts/vllm_server.sh in the background, waits for it, then runs
#
#   CUDA_VISIBLE_DEVICES=$TRAIN_GPUS accelerate launch --config_file $ACCELERATE_CONFIG --num_processes <#TRAIN_GPUS> \
#     -m train.rl --config CONFIG rollout.engine=vllm_server rollout.vllm.server_url=http://127.0.0.1:$PORT [overrides]
#
#   TRAIN_GPUS=0,1,2,3,4,5 SERVE_GPUS=6,7 bash scripts/rl_server.sh Qwen/Qwen2.5-VL-7B-Instruct configs/rl/X.yaml [overrides]
#
# MODEL must be the checkpoint the config's model.name_or_path loads (the server starts from it; the trainer pushes
# its weights over NCCL after every step). The server gets tensor parallelism over SERVE_GPUS. Settings
# (environment): TRAIN_GPUS, SERVE_GPUS (required), PORT (8000), ACCELERATE_CONFIG (configs/accelerate/zero3.yaml),
# SERVER_WAIT_S (900), SERVER_LOG (vllm_server.log), ACCELERATE_BIN (.venv/bin/accelerate), and
# scripts/vllm_server.sh's (VLLM_BIN, GPU_MEM, MAX_MODEL_LEN, MAX_IMAGES).
# Across nodes: run scripts/vllm_server.sh on the server node yourself and pass rollout.vllm.server_url=http://host:port.
set -euo pipefail
MODEL="${1:?usage: TRAIN_GPUS=.. SERVE_GPUS=.. bash scripts/rl_server.sh MODEL CONFIG [overrides]}"
CONFIG="${2:?usage: TRAIN_GPUS=.. SERVE_GPUS=.. bash scripts/rl_server.sh MODEL CONFIG [overrides]}"
shift 2
: "${TRAIN_GPUS:?set TRAIN_GPUS, e.g. 0,1,2,3,4,5}" "${SERVE_GPUS:?set SERVE_GPUS, e.g. 6,7}"
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
PORT="${PORT:-8000}"
IFS=, read -r -a serve <<< "$SERVE_GPUS"
IFS=, read -r -a train <<< "$TRAIN_GPUS"
CUDA_VISIBLE_DEVICES="$SERVE_GPUS" PORT="$PORT" TP="${#serve[@]}" bash scripts/vllm_server.sh "$MODEL" > "${SERVER_LOG:-vllm_server.log}" 2>&1 &
SERVER_PID=$!
trap 'kill "$SERVER_PID" 2>/dev/null || true' EXIT
for _ in $(seq "${SERVER_WAIT_S:-900}"); do
  curl -sf "http://127.0.0.1:$PORT/health" > /dev/null && break
  kill -0 "$SERVER_PID" 2>/dev/null || { echo "vllm serve exited; see ${SERVER_LOG:-vllm_server.log}" >&2; exit 1; }
  sleep 1
done
curl -sf "http://127.0.0.1:$PORT/health" > /dev/null || { echo "vllm serve not up after ${SERVER_WAIT_S:-900} s" >&2; exit 1; }
CUDA_VISIBLE_DEVICES="$TRAIN_GPUS" "${ACCELERATE_BIN:-$ROOT/.venv/bin/accelerate}" launch \
  --config_file "${ACCELERATE_CONFIG:-configs/accelerate/zero3.yaml}" --num_processes "${#train[@]}" \
  -m train.rl --config "$CONFIG" rollout.engine=vllm_server "rollout.vllm.server_url=http://127.0.0.1:$PORT" "$@"
