"""`codevl sandbox`: run a Python file in a sandbox session and print the result and the isolation layers.

    codevl sandbox snippet.py --image photo.png
    codevl sandbox snippet.py --image a.png --image b.png --timeout 5 --save-images out/
    codevl sandbox snippet.py --tier landlock            # e.g. where user namespaces are blocked

The images are loaded as `image_clue_0`, `image_clue_1`, ... (PIL images). A file may hold several blocks
separated by lines `# %%`; they run in order in one session (variables persist), like notebook cells.
Exit status: 0 when every block ran to the end, 1 otherwise, 2 for usage errors. With --json every line printed
is one JSON object: first {"layers": ...}, then one result per block.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Iterator
from pathlib import Path

from train.commands.checks import image_files, input_file, output_dir
from train.user_errors import UsageError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="Python file to run (blocks separated by '# %%%%' lines)")
    parser.add_argument("--image", action="append", default=[], help="input image (repeat for several)")
    parser.add_argument("--name-prefix", default="image_clue_", help="variable name prefix of the input images")
    parser.add_argument("--timeout", type=float, default=None, help="seconds per block (default: config timeout_s)")
    parser.add_argument("--tier", choices=["full", "landlock", "minimal"], default=None, help="isolation tier")
    parser.add_argument("--allow-weaker", action="store_true", help="fall back to a weaker tier if needed")
    parser.add_argument("--no-subprocesses", action="store_true", help="the no-fork mode")
    parser.add_argument("--save-images", default=None, help="directory to write the captured images to (PNG)")
    parser.add_argument("--json", action="store_true",
                        help="JSON lines: the layers, then one result per block (images as file names)")


def run(args: argparse.Namespace) -> int:
    from PIL import Image

    from sandbox import SandboxConfig, SandboxError, SandboxPool

    path = input_file(args.file, "file")
    image_files(args.image)
    if args.timeout is not None and args.timeout <= 0:
        raise UsageError(f"--timeout must be more than 0 seconds, got {args.timeout}")
    if args.save_images:
        output_dir(args.save_images, "--save-images")
    blocks = [b for b in _split_blocks(path.read_text()) if b.strip()]
    overrides: dict[str, object] = {}
    if args.tier:
        overrides["tier"] = args.tier
    if args.allow_weaker:
        overrides["allow_weaker"] = True
    if args.no_subprocesses or (args.tier and args.tier != "full"):
        overrides["allow_subprocesses"] = False
    images = {f"{args.name_prefix}{i}": Image.open(p).convert("RGB") for i, p in enumerate(args.image)}
    out_dir = Path(args.save_images) if args.save_images else None
    if out_dir:
        out_dir.mkdir(parents=True, exist_ok=True)
    try:
        pool = SandboxPool(SandboxConfig(**overrides))
    except SandboxError as exc:
        print(f"sandbox unavailable: {exc}", file=sys.stderr)
        return 2
    ok = True
    saved = 0
    try:
        with pool.sync_session(images=images) as s:
            layers = s.layers.summary() if s.layers else "unknown"
            print(json.dumps({"layers": layers}) if args.json else f"layers: {layers}")
            for k, code in enumerate(blocks):
                r = s.run(code, timeout=args.timeout)
                ok = ok and r.ok
                names = []
                for im in r.images:
                    if out_dir:
                        name = f"image_{saved:03d}.png"
                        Image.fromarray(im.array).save(out_dir / name)
                        names.append(name)
                        saved += 1
                if args.json:
                    file_names = iter(names)

                    def file_name(_array: object, it: Iterator[str] = file_names) -> str:
                        return next(it, "")

                    print(json.dumps(r.to_dict(file_name)), flush=True)
                    continue
                print(f"--- block {k + 1}/{len(blocks)}: {r.status.value} in {r.duration_s * 1000:.1f} ms")
                if r.stdout:
                    print(r.stdout, end="" if r.stdout.endswith("\n") else "\n")
                if r.value_repr is not None:
                    print(f"=> {r.value_repr}")
                if r.stderr:
                    print(f"[stderr]\n{r.stderr}", end="" if r.stderr.endswith("\n") else "\n")
                if r.error:
                    print(r.error.traceback or f"{r.error.type}: {r.error.message}", end="")
                for j, im in enumerate(r.images):
                    region = f" region input {im.region.input_index} box {tuple(round(v, 1) for v in im.region.box)} " \
                             f"ops {im.region.ops}" if im.region else ""
                    where = f" -> {out_dir / names[j]}" if out_dir and names else ""
                    print(f"[image {j}] {im.size[0]}x{im.size[1]} via {im.source}{region}{where}")
                for o in r.ops:
                    box = f" box {tuple(round(v, 1) for v in o.box)}" if o.box else ""
                    src = f" on input {o.input_index}" if o.input_index is not None else ""
                    print(f"[op] {o.op} ({o.api}){src}{box}")
                for n in r.notes:
                    print(f"[note] {n}")
    finally:
        pool.close()
    return 0 if ok else 1


def _split_blocks(text: str) -> list[str]:
    blocks: list[str] = []
    cur: list[str] = []
    for line in text.splitlines(keepends=True):
        if line.strip().startswith("# %%"):
            blocks.append("".join(cur))
            cur = []
        else:
            cur.append(line)
    blocks.append("".join(cur))
    return blocks
