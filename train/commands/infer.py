"""`codevl infer`: PyVision-style inference: any model as a code-writing agent on your image.

    codevl infer --image photo.png --question "What does the small sign say?" --engine hf --model runs/sft/final
    codevl infer --image a.png --image b.png --question "What changed?" --engine openai --model gpt-4.1 \
        --base-url https://api.openai.com/v1 --protocol pyvision
    codevl infer --image x.png --question "..." --engine vllm --model Qwen/Qwen2.5-VL-7B-Instruct   # GPU node

Every code block runs in the sandbox; the conversation (code, outputs, captured images, traced operations) is
printed, and the trajectory is saved as JSONL with its images (`--out`, default runs/infer/<time>/).
Options, images (decoded), the model path and --out are checked before the model loads. Exit status 1 when the
episode ended in an engine or sandbox error (the trajectory is still saved, with the error), 2 for usage errors.
"""

from __future__ import annotations

import argparse
import asyncio
import time
from pathlib import Path
from typing import Any

from train.commands.checks import at_least, image_files, not_blank, output_dir, output_file
from train.user_errors import RunFailed, UsageError

ENGINES = ("hf", "vllm", "openai")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--image", action="append", required=True, help="input image (repeat for several)")
    parser.add_argument("--question", required=True)
    parser.add_argument("--engine", choices=ENGINES, default="hf")
    parser.add_argument("--model", required=True, help="local checkpoint directory / hub id, or the API model name")
    parser.add_argument("--protocol", default="codevl", help="prompt style: codevl, pyvision, codevision, codev")
    parser.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (engine openai)")
    parser.add_argument("--api-key-env", default="OPENAI_API_KEY", help="environment variable holding the API key")
    parser.add_argument("--max-retries", type=int, default=5,
                        help="engine openai: retries of a failed request (connection errors, 429, 5xx) with backoff")
    parser.add_argument("--max-turns", type=int, default=8)
    parser.add_argument("--max-new-tokens", type=int, default=1024, help="per assistant turn")
    parser.add_argument("--max-total-tokens", type=int, default=16384)
    parser.add_argument("--temperature", type=float, default=0.6, help="PyVision uses 0.6; 0 = greedy")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per code block (protocol default)")
    parser.add_argument("--dtype", default="auto", choices=["auto", "float32", "bfloat16", "float16"])
    parser.add_argument("--device", default=None, help="torch device for engine hf (default: cuda if available)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default=None, help="run directory for the trajectory (default runs/infer/<time>)")


def build_engine(args: argparse.Namespace) -> Any:
    """The engine named by --engine (imports only what that engine needs)."""
    if args.engine == "hf":
        import torch

        from rollout.engines.hf import HFEngine
        from train.config.model import ModelConfig
        from train.model.loading import load_model

        device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
        model, processor = load_model(ModelConfig(name_or_path=args.model, dtype=args.dtype, attn_implementation="sdpa",
                                                  freeze_vision_tower=False, freeze_projector=False), device=device)
        model.eval()
        return HFEngine(model, processor)
    from rollout.engines.registry import create_engine

    if args.engine == "vllm":
        return create_engine("vllm_colocate", args.model, seed=args.seed, dtype=args.dtype)
    return create_engine("openai", args.model, base_url=args.base_url, api_key_env=args.api_key_env or None,
                         max_retries=args.max_retries)


def check(args: argparse.Namespace) -> Path:
    """Every check that can fail before the model loads; returns the output folder."""
    not_blank(args.question, "--question")
    at_least(args.max_turns, 1, "--max-turns")
    at_least(args.max_new_tokens, 1, "--max-new-tokens")
    at_least(args.max_total_tokens, 1, "--max-total-tokens")
    at_least(args.temperature, 0, "--temperature")
    at_least(args.max_retries, 0, "--max-retries")
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {args.timeout}")
    if args.engine == "openai" and not args.base_url:
        raise UsageError("--engine openai needs --base-url (e.g. https://api.openai.com/v1 or http://localhost:8000/v1)")
    image_files(args.image)
    if args.engine == "hf":
        from train.model.paths import check_model_path

        check_model_path(args.model)  # ModelPathError: exit 2 (a mistyped path is not a hub connection error)
    out = output_dir(args.out or f"runs/infer/{time.strftime('%Y%m%d-%H%M%S')}", "--out")
    output_file(out / "trajectories" / "infer.jsonl", "--out")
    return out


def interrupted(args: argparse.Namespace) -> str:
    return "nothing was saved (the trajectory is written when the episode ends)"


def run(args: argparse.Namespace) -> int:
    from rollout.engines.base import SamplingParams
    from rollout.loop import EpisodeLimits, run_episodes
    from rollout.pretty import format_trajectory
    from rollout.protocols import get_protocol
    from rollout.task import Task
    from rollout.trajectory import FinishReason, save_trajectories
    from sandbox import SandboxConfig, SandboxPool

    try:
        protocol = get_protocol(args.protocol)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    out = check(args)
    task = Task(id="infer", images=[str(Path(p).resolve()) for p in args.image], question=args.question, answer="",
                answer_type="text", source="codevl infer", split="infer", metadata={"unlabelled": True})
    engine = build_engine(args)
    limits = EpisodeLimits(max_turns=args.max_turns, max_new_tokens_per_turn=args.max_new_tokens,
                           max_total_tokens=args.max_total_tokens, code_timeout_s=args.timeout)
    pool = SandboxPool(SandboxConfig())
    try:
        traj = asyncio.run(run_episodes([task], engine, protocol=protocol, pool=pool, limits=limits, seed=args.seed,
                                        sampling=SamplingParams(temperature=args.temperature)))[0]
    finally:
        pool.close()
    print(format_trajectory(traj))
    save_trajectories(out / "trajectories" / "infer.jsonl", [traj])
    print(f"saved to {out / 'trajectories' / 'infer.jsonl'}")
    if traj.finish_reason in (FinishReason.ENGINE_ERROR, FinishReason.SANDBOX_ERROR):
        raise RunFailed(f"the episode ended in {traj.finish_reason.value}: {traj.error}")
    return 0
