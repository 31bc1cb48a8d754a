"""`codevl tiny-model`: build a tiny randomly initialised Qwen-VL model offline (tests, demo, smoke runs).

    codevl tiny-model --arch qwen2_5_vl --out runs/tiny-qwen2_5_vl
    codevl tiny-model --arch qwen3_vl --out runs/tiny-qwen3_vl --seed 1
"""

from __future__ import annotations

import argparse

from train.commands.checks import output_dir
from train.model.tiny import ARCHS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--arch", choices=ARCHS, default="qwen2_5_vl", help="architecture (real transformers class)")
    parser.add_argument("--out", required=True, help="directory to write the model, tokenizer and processor to")
    parser.add_argument("--seed", type=int, default=0, help="seed for the tokenizer corpus and the weights")


def run(args: argparse.Namespace) -> int:
    from train.model.tiny import build_tiny_model, describe

    output_dir(args.out, "--out")
    out = build_tiny_model(args.arch, args.out, seed=args.seed)
    print(describe(out))
    return 0
