"""`codevl data`: build, convert, check and curate training data (the `data` package).

    codevl data synth visual_search -n 10000 --out data/synth/vs --workers 2           # tasks.jsonl + images/
    codevl data synth orientation -n 2000 --out data/synth/or --set transforms=[rotate90,flip_h] --oracle all
    codevl data convert vstar /data/vstar_bench --out data/bench/vstar.jsonl
    codevl data convert ocrbench /data/OCRBench --out data/bench/ocrbench_t.jsonl --transforms all
    codevl data convert hrbench /data/HR-Bench/hr_bench_8k.parquet --out data/bench/hr8k.jsonl --image-dir data/bench/hr8k
    codevl data convert tasks data/synth/vs/tasks.jsonl --to-hf data/hf/vs                  # -> datasets.save_to_disk
    codevl data validate data/synth/vs/tasks.jsonl [--skip-invalid --rejects bad.jsonl]   # task or trajectory files
    codevl data curate data/synth/vs/tasks.jsonl --out runs/curate/oracle --teacher oracle
    codevl data curate tasks.jsonl --out runs/curate/gpt41 --teacher openai --model gpt-4.1 \
        --base-url https://api.openai.com/v1 --samples 4 --balance equal
    codevl data stats data/synth/vs/tasks.jsonl runs/curate/oracle/sft.jsonl

Every long step shows a progress bar. Errors in input files name file:line and the field. Exit status: 0 ok,
1 the data failed (invalid rows or images, a teacher that answered nothing), 2 usage (bad options or paths),
130 interrupted (what was committed is kept; see each subcommand's help).

`synth` refuses a non-empty --out unless --overwrite (which replaces tasks.jsonl, images/ and oracle/), or
--start N > 0 with an existing tasks.jsonl, which appends tasks N.. to it (the same --seed extends the set).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

from train.commands.checks import at_least, output_file
from train.user_errors import RunFailed, UsageError, user_error


def _kv(items: list[str] | None, what: str) -> dict[str, Any]:
    """`key=value` pairs with YAML values (`transforms=[rotate90,flip_h]`, `min_side=800`)."""
    import yaml

    out: dict[str, Any] = {}
    for item in items or []:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"{what} {item!r} is not key=value")
        out[key.strip()] = yaml.safe_load(value)
    return out


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from data.generators import GENERATORS
    from data.loaders import LOADERS
    from data.oracle.variants import VARIANTS

    sub = parser.add_subparsers(dest="data_command", metavar="<synth|convert|validate|curate|stats>", required=True)

    p = sub.add_parser("synth", help="generate synthetic tasks (and oracle SFT trajectories)")
    p.add_argument("generator", choices=list(GENERATORS), help="; ".join(f"{k}: {v.description}" for k, v in GENERATORS.items()).replace("%", "%%"))
    p.add_argument("-n", "--num", type=int, required=True, help="how many tasks")
    p.add_argument("--out", required=True, help="output folder (tasks.jsonl, images/)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--start", type=int, default=0, help="first task index (to extend a set: same seed, next indices)")
    p.add_argument("--workers", type=int, default=None, help="processes (default: all cores)")
    p.add_argument("--set", action="append", metavar="KEY=VALUE", help="generator config, e.g. min_side=800 (repeat)")
    p.add_argument("--oracle", default=None, metavar="VARIANTS",
                   help=f"also write oracle SFT trajectories to <out>/oracle/: 'all' or a comma list of {', '.join(VARIANTS)}")
    p.add_argument("--protocol", default="codevl", help="prompt format of the oracle trajectories")
    p.add_argument("--overwrite", action="store_true",
                   help="replace tasks.jsonl, images/ and oracle/ in a non-empty --out (default: refuse)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("convert", help="convert a benchmark (or a task file) to task JSONL or a datasets folder")
    p.add_argument("source", choices=[*LOADERS, "tasks"], help="benchmark format, or 'tasks' for a task JSONL file")
    p.add_argument("path", help="where the benchmark files are (see the loader's docstring for the layout)")
    p.add_argument("--out", default=None, help="task JSONL to write")
    p.add_argument("--to-hf", default=None, metavar="DIR", help="also/instead write a datasets folder (save_to_disk)")
    p.add_argument("--embed-images", action="store_true", help="with --to-hf: embed image bytes in the dataset")
    p.add_argument("--image-dir", default=None, help="where embedded / transformed images are written")
    p.add_argument("--limit", type=int, default=None, help="first N items only")
    p.add_argument("--transforms", default=None, help="'all' or e.g. rotate90,flip_h: add rotated/flipped copies")
    p.add_argument("--no-original", action="store_true", help="with --transforms: only the transformed copies")
    p.add_argument("--option", action="append", metavar="KEY=VALUE", help="loader option, e.g. version=8k (repeat)")
    p.add_argument("--skip-invalid", action="store_true", help="source tasks: leave out bad rows (see --rejects)")
    p.add_argument("--rejects", default=None, help="where rejected rows go (default: <file>.rejected.jsonl)")
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("validate", help="check task or trajectory files (every row, image and box)")
    p.add_argument("files", nargs="+")
    p.add_argument("--skip-invalid", action="store_true",
                   help="set bad task rows aside (--rejects) and write the valid ones to <file>.valid.jsonl")
    p.add_argument("--rejects", default=None, help="where rejected rows go (default: <file>.rejected.jsonl)")
    p.add_argument("--images", choices=["none", "exists", "header", "decode"], default="decode",
                   help="how hard to check images (default decode: reads every pixel, finds truncated files)")

    p = sub.add_parser("curate", help="run a teacher over tasks and keep correct trajectories with valid tool use")
    p.add_argument("tasks", help="task JSONL")
    p.add_argument("--out", required=True, help="output folder (resumable: re-run the same command to continue)")
    p.add_argument("--merge", action="store_true",
                   help="--out already holds tasks of another task file: keep them in sft.jsonl (default: refuse)")
    p.add_argument("--skip-invalid", action="store_true", help="leave out bad task rows (see --rejects)")
    p.add_argument("--rejects", default=None, help="where rejected rows go (default: <tasks>.rejected.jsonl)")
    p.add_argument("--teacher", choices=["oracle", "openai", "hf", "vllm_server"], default="oracle")
    p.add_argument("--model", default=None, help="API model name, local checkpoint, or served model")
    p.add_argument("--base-url", default=None, help="OpenAI-compatible endpoint (openai) or vLLM server (vllm_server)")
    p.add_argument("--api-key-env", default="OPENAI_API_KEY")
    p.add_argument("--max-retries", type=int, default=5,
                   help="openai teacher: retries of a failed request (connection errors, 429, 5xx) with backoff")
    p.add_argument("--samples", type=int, default=1, help="episodes per task (engine teachers)")
    p.add_argument("--variants", default="all", help=f"oracle teacher: 'all' or a comma list of {', '.join(VARIANTS)}")
    p.add_argument("--protocol", default="codevl")
    p.add_argument("--reward-set", default=None, help="reward set YAML for the checks (default: built-in curation set)")
    p.add_argument("--rule", action="append", metavar="KEY=VALUE", help="curation rule, e.g. min_crop_iou=0.2 (repeat)")
    p.add_argument("--batch-size", type=int, default=16, help="tasks per batch (progress is committed per batch)")
    p.add_argument("--max-per-task", type=int, default=1, help="kept trajectories per task (per variant for oracle)")
    p.add_argument("--balance-by", choices=["task_type", "source", "variant"], default="task_type")
    p.add_argument("--max-per-type", type=int, default=None)
    p.add_argument("--balance", choices=["none", "equal"], default="none")
    p.add_argument("--max-turns", type=int, default=8)
    p.add_argument("--max-new-tokens", type=int, default=2048)
    p.add_argument("--max-total-tokens", type=int, default=16384)
    p.add_argument("--temperature", type=float, default=0.7)
    p.add_argument("--concurrency", type=int, default=4, help="episodes in flight")
    p.add_argument("--limit", type=int, default=None, help="first N tasks only")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true")

    p = sub.add_parser("stats", help="summarise task or trajectory files")
    p.add_argument("files", nargs="+")
    p.add_argument("--json", action="store_true", help="print JSON instead of text")
    p.add_argument("--max-pixels", type=int, default=None,
                   help="the model's input resolution for the legibility figures (default: 1003520 = 1280*28*28)")


# ---- helpers -------------------------------------------------------------------------------------------------


def _is_trajectory_file(path: Path) -> bool:
    """True for trajectory JSONL (rows with `schema` and `turns`), False for anything else that is text."""
    try:
        return _first_row_is_trajectory(path)
    except UnicodeDecodeError:
        raise UsageError(f"{path}: not a JSONL text file (it is not UTF-8); give task or trajectory JSONL") from None


def _first_row_is_trajectory(path: Path) -> bool:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if line.strip():
                try:
                    row = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(row, dict) and "schema" in row and "turns" in row
    return False


def _variants(spec: str) -> list[str]:
    from data.oracle.variants import VARIANTS, check_variant

    return list(VARIANTS) if spec == "all" else [check_variant(v.strip()) for v in spec.split(",") if v.strip()]


def _pool() -> Any:
    import sandbox

    if not hasattr(sandbox, "SandboxPool"):
        raise ValueError("this checkout's sandbox package has no SandboxPool yet; oracle trajectories and curation run "
                         "code in the sandbox, so they need it")
    return sandbox.SandboxPool(sandbox.SandboxConfig())


# ---- subcommands ---------------------------------------------------------------------------------------------


SYNTH_OUTPUTS = ("tasks.jsonl", "images", "oracle")  # what `synth` writes in --out (and --overwrite replaces)
EXTEND_PART = ".extend.jsonl"  # the new rows while extending, appended to tasks.jsonl at the end


def _synth_plan(args: argparse.Namespace, gen: Any) -> bool:
    """Check --out before any work; True when extending its tasks.jsonl. --overwrite clears the old outputs."""
    import shutil

    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; give a folder (tasks.jsonl and images/ are written in it)")
    present = sorted(p.name for p in out.iterdir()) if out.is_dir() else []
    tasks_file = out / "tasks.jsonl"
    if args.start > 0 and tasks_file.is_file() and not args.overwrite:
        old = {json.loads(x).get("id") for x in tasks_file.read_text(encoding="utf-8").splitlines() if x.strip()}
        new = [gen.task_id(args.seed, i) for i in range(args.start, args.start + args.num)]
        clash = [i for i in new if i in old]
        if clash:
            raise UsageError(f"{tasks_file} already holds {len(clash)} of the tasks to generate (e.g. {clash[0]!r}); "
                             f"extend with --start {args.start + args.num if clash[-1] == new[-1] else 'N'} past "
                             "the indices it has, or pass --overwrite to start over")
        return True
    if present and not args.overwrite:
        shown = ", ".join(present[:5]) + (" ..." if len(present) > 5 else "")
        raise UsageError(f"--out {out} is not empty ({shown}); pass --overwrite to replace its tasks.jsonl, images/ "
                         "and oracle/, use --start N (with the same --seed) to append tasks N.. to its tasks.jsonl, "
                         "or choose a new folder")
    for name in SYNTH_OUTPUTS if args.overwrite else ():
        target = out / name
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
    return False


def _remove_images(out: Path, ids: set[str]) -> int:
    """Delete the images of tasks `ids` (named `<task id>_<k>.<ext>`) from out/images; returns how many."""
    n = 0
    image_dir = out / "images"
    for p in image_dir.iterdir() if image_dir.is_dir() else ():
        if p.stem.rsplit("_", 1)[0] in ids:
            p.unlink()
            n += 1
    return n


def _synth(args: argparse.Namespace) -> int:
    from data.generators import generate_to_dir, get_generator

    at_least(args.num, 1, "-n/--num")
    at_least(args.start, 0, "--start")
    if args.workers is not None:
        at_least(args.workers, 1, "--workers")
    config = _kv(args.set, "--set")
    gen = get_generator(args.generator, config)
    if args.oracle:  # checked before generating (a typo would otherwise fail only after the tasks are written)
        from rollout.protocols import get_protocol

        variants = _variants(args.oracle)
        protocol = get_protocol(args.protocol)
    out = Path(args.out)
    created = not out.exists()
    extend = _synth_plan(args, gen)
    tasks_file = out / "tasks.jsonl"
    new_ids = {gen.task_id(args.seed, i) for i in range(args.start, args.start + args.num)}
    part = EXTEND_PART if extend else tasks_file.name
    committed = False
    try:
        res = generate_to_dir(args.generator, args.num, out, seed=args.seed, config=config, workers=args.workers,
                              progress=not args.no_progress, start=args.start, filename=part)
        if extend:  # old rows + new rows, replaced in one step
            tmp = tasks_file.with_name(tasks_file.name + ".tmp")
            tmp.write_text(tasks_file.read_text(encoding="utf-8") + (out / part).read_text(encoding="utf-8"),
                           encoding="utf-8")
            tmp.replace(tasks_file)
        committed = True
    finally:
        for leftover in (out / (part + ".tmp"), tasks_file.with_name(tasks_file.name + ".tmp"),
                         *((out / part,) if extend else ())):
            leftover.unlink(missing_ok=True)
        if not committed:  # interrupted or failed: the images of tasks that were not written go too
            _remove_images(out, new_ids)
            for folder in (out / "images", out) if created else (out / "images",):
                if folder.is_dir() and not any(folder.iterdir()):
                    folder.rmdir()
    how = f"appended to {tasks_file} (tasks {args.start}..{args.start + res.count - 1})" if extend else f"-> {res.path}"
    print(f"{res.count} {args.generator} tasks {how} in {res.seconds:.1f} s ({res.tasks_per_s:.1f} tasks/s)")
    if args.oracle:
        from data.curate import OracleTeacher, curate
        from data.task_file import read_tasks

        tasks = read_tasks(tasks_file)
        pool = _pool()
        try:
            report = curate(tasks, OracleTeacher(variants, seed=args.seed), out / "oracle", protocol=protocol,
                            pool=pool, max_per_task=1, balance_by="variant", progress=not args.no_progress,
                            seed=args.seed)
        finally:
            pool.close()
        print(report.summary())
        _check_curation(report)
    return 0


def _convert(args: argparse.Namespace) -> int:
    from data.task_file import read_tasks, write_tasks

    if not args.out and not args.to_hf:
        raise UsageError("convert needs --out FILE.jsonl and/or --to-hf DIR")
    if args.out:
        output_file(args.out, "--out")
    if args.limit is not None:
        at_least(args.limit, 0, "--limit")
    if args.source == "tasks":
        tasks = read_tasks(args.path, progress=not args.no_progress, skip_invalid=args.skip_invalid,
                           rejects_path=args.rejects)
        if args.limit is not None:
            tasks = tasks[: args.limit]
        if args.transforms:
            from data.transformed_tasks import transformed_variants

            idir = args.image_dir or str(Path(args.out or args.to_hf).with_suffix("")) + "_images"
            tasks = transformed_variants(tasks, args.transforms.split(",") if args.transforms != "all" else
                                         ["rotate90", "rotate180", "rotate270", "flip_h", "flip_v"], idir,
                                         include_original=not args.no_original)
    else:
        from data.loaders import load_benchmark

        out_base = Path(args.out or args.to_hf)
        image_dir = args.image_dir or (str(out_base.with_suffix("")) + "_images")
        tasks = load_benchmark(args.source, args.path, image_dir=image_dir, limit=args.limit,
                               transforms=args.transforms, include_original=not args.no_original,
                               progress=not args.no_progress, **_kv(args.option, "--option"))
    if args.out:
        n = write_tasks(args.out, tasks)
        print(f"{n} tasks -> {args.out}")
    if args.to_hf:
        from data.task_dataset import tasks_to_dataset

        tasks_to_dataset(tasks, embed_images=args.embed_images).save_to_disk(args.to_hf)
        print(f"{len(tasks)} tasks -> datasets folder {args.to_hf}")
    return 0


def _validate(args: argparse.Namespace) -> int:
    from data.task_file import TaskFileError, read_tasks_report, write_tasks

    status = 0
    for f in args.files:
        path = Path(f)
        if not path.exists():
            print(f"codevl data validate: {path}: not found", file=sys.stderr)
            status = 2  # bad input (module docstring)
            continue
        if path.is_dir():
            print(f"codevl data validate: {path}: is a directory; give task or trajectory JSONL files",
                  file=sys.stderr)
            status = 2
            continue
        try:
            is_trajectory = _is_trajectory_file(path)
        except UsageError as exc:
            print(f"codevl data validate: {exc}", file=sys.stderr)
            status = 2
            continue
        if is_trajectory:
            from rollout.trajectory import iter_trajectories

            try:
                n = sum(1 for _ in iter_trajectories(path))
            except ValueError as exc:
                print(exc, file=sys.stderr)
                status = max(status, 1)
                continue
            print(f"{path}: {n} valid trajectories")
            continue
        try:
            report = read_tasks_report(path, skip_invalid=args.skip_invalid, rejects_path=args.rejects,
                                       image_check=args.images, progress=True)
        except TaskFileError as exc:
            print(exc, file=sys.stderr)
            status = max(status, 1)
            continue
        print(report.summary())
        for p in report.problems[:20]:
            print(f"  {p}")
        if report.num_rejected:
            status = max(status, 1)
            if args.skip_invalid:
                cleaned = path.with_name(path.stem + ".valid.jsonl")
                write_tasks(cleaned, report.tasks)
                print(f"{len(report.tasks)} valid task(s) -> {cleaned}")
    return status


def _build_engine(args: argparse.Namespace) -> Any:
    from rollout.engines.registry import create_engine

    if args.teacher == "openai":
        if not (args.model and args.base_url):
            raise ValueError("--teacher openai needs --model and --base-url")
        return create_engine("openai", args.model, base_url=args.base_url, api_key_env=args.api_key_env,
                             max_retries=args.max_retries)
    if args.teacher == "vllm_server":
        if not (args.model and args.base_url):
            raise ValueError("--teacher vllm_server needs --model (for its processor) and --base-url")
        from train.model.processor import load_processor

        return create_engine("vllm_server", args.base_url, load_processor(args.model), model=args.model)
    if not args.model:
        raise ValueError("--teacher hf needs --model (a local checkpoint directory)")
    import torch

    from train.config.model import ModelConfig
    from train.model.loading import load_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model, processor = load_model(ModelConfig(name_or_path=args.model, dtype="auto", attn_implementation="sdpa",
                                              freeze_vision_tower=False, freeze_projector=False), device=device)
    model.eval()
    return create_engine("hf", model, processor)


def _curate(args: argparse.Namespace) -> int:
    from data.curate import EngineTeacher, OracleTeacher, curate
    from data.task_file import read_tasks
    from rollout.engines.base import SamplingParams
    from rollout.loop import EpisodeLimits
    from rollout.protocols import get_protocol

    for value, low, name in ((args.samples, 1, "--samples"), (args.batch_size, 1, "--batch-size"),
                             (args.max_per_task, 1, "--max-per-task"), (args.max_turns, 1, "--max-turns"),
                             (args.max_new_tokens, 1, "--max-new-tokens"), (args.max_total_tokens, 1,
                             "--max-total-tokens"), (args.temperature, 0, "--temperature"),
                             (args.concurrency, 1, "--concurrency"), (args.limit, 0, "--limit"),
                             (args.max_per_type, 1, "--max-per-type"), (args.max_retries, 0, "--max-retries")):
        if value is not None:
            at_least(value, low, name)
    if Path(args.out).is_file():
        raise UsageError(f"--out {args.out} is a file; give a folder (curation writes sft.jsonl, report.json, ... in it)")
    # every option is checked before the task file is read and the teacher is built
    rules = _rules(_kv(args.rule, "--rule"))
    protocol = get_protocol(args.protocol)
    variants = _variants(args.variants) if args.teacher == "oracle" else []
    if args.teacher in ("openai", "vllm_server") and not (args.model and args.base_url):
        raise UsageError(f"--teacher {args.teacher} needs --model and --base-url")
    reward_set = None
    if args.reward_set:
        from rewards import load_reward_set

        reward_set = load_reward_set(args.reward_set)
    tasks = read_tasks(args.tasks, progress=not args.no_progress, skip_invalid=args.skip_invalid,
                       rejects_path=args.rejects)
    if args.limit is not None:
        tasks = tasks[: args.limit]
    if args.teacher == "oracle":
        teacher: Any = OracleTeacher(variants, seed=args.seed, max_concurrent=args.concurrency)
    else:
        teacher = EngineTeacher(_build_engine(args), name=f"{args.teacher}:{args.model}", samples_per_task=args.samples,
                                sampling=SamplingParams(temperature=args.temperature), seed=args.seed,
                                max_concurrent=args.concurrency)
    limits = EpisodeLimits(max_turns=args.max_turns, max_new_tokens_per_turn=args.max_new_tokens,
                           max_total_tokens=args.max_total_tokens)
    pool = _pool()
    try:
        report = curate(tasks, teacher, args.out, protocol=protocol, pool=pool, limits=limits,
                        reward_set=reward_set, rules=rules, batch_size=args.batch_size, max_per_task=args.max_per_task,
                        balance_by=args.balance_by, max_per_type=args.max_per_type, balance=args.balance,
                        seed=args.seed, progress=not args.no_progress, merge=args.merge)
    finally:
        pool.close()
    print(report.summary())
    _check_curation(report)
    return 0


def _rules(values: dict[str, Any]) -> Any:
    """CurationRules from --rule KEY=VALUE; a bad key or value names it and lists the valid keys."""
    from pydantic import ValidationError

    from data.curate import CurationRules

    try:
        return CurationRules(**values)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: "
                             f"{'unknown rule' if e['type'] == 'extra_forbidden' else e['msg']}" for e in exc.errors())
        raise UsageError(f"--rule: {problems}; valid rules: "
                         f"{', '.join(f'{k}={v.default}' for k, v in CurationRules.model_fields.items())}") from None


def _check_curation(report: Any) -> None:
    """Exit 1 when the teacher or the sandbox failed on every task run now (nothing was curated)."""
    if report.tasks_failed and not report.tasks_run:
        raise RunFailed(f"no task was curated: the teacher or the sandbox failed on {report.tasks_failed} task(s) "
                        f"(first error: {report.first_failure}); they are not marked done, so re-running the same "
                        "command retries them")


def _task_stats(path: Path, max_pixels: int | None = None) -> dict[str, Any]:
    from data.resolution import DEFAULT_MAX_PIXELS
    from data.task_file import read_tasks
    from data.task_stats import evidence_stats

    tasks = read_tasks(path, image_check="none")
    return {
        "kind": "tasks", "count": len(tasks),
        "source": dict(Counter(t.source for t in tasks).most_common()),
        "task_type": dict(Counter(str(t.metadata.get("task_type", t.source)) for t in tasks).most_common()),
        "answer_type": dict(Counter(t.answer_type for t in tasks).most_common()),
        "split": dict(Counter(t.split for t in tasks).most_common()),
        "required_ops": dict(Counter("+".join(t.required_ops) or "(none)" for t in tasks).most_common()),
        "with_evidence": sum(1 for t in tasks if t.evidence),
        **evidence_stats(tasks, max_pixels or DEFAULT_MAX_PIXELS),
    }


def _trajectory_stats(path: Path) -> dict[str, Any]:
    rows = [json.loads(x) for x in path.read_text().splitlines() if x.strip()]
    ops: Counter[str] = Counter()
    for r in rows:
        for s in r.get("steps", []):
            for o in (s.get("result") or {}).get("ops", []):
                ops[o["op"]] += 1
    return {
        "kind": "trajectories", "count": len(rows),
        "teacher": dict(Counter(str(r.get("metadata", {}).get("teacher")) for r in rows).most_common()),
        "oracle_variant": dict(Counter(str(r.get("metadata", {}).get("oracle_variant")) for r in rows
                                       if r.get("metadata", {}).get("oracle_variant")).most_common()),
        "task_type": dict(Counter(str(r["task"].get("metadata", {}).get("task_type", r["task"].get("source")))
                                  for r in rows).most_common()),
        "finish_reason": dict(Counter(str(r.get("finish_reason")) for r in rows).most_common()),
        "code_steps": dict(sorted(Counter(len(r.get("steps", [])) for r in rows).items())),
        "traced_ops": dict(ops.most_common()),
        "tokenized": sum(1 for r in rows if r.get("token_ids")),
    }


def _stats(args: argparse.Namespace) -> int:
    out = {}
    for f in args.files:
        path = Path(f)
        out[f] = _trajectory_stats(path) if _is_trajectory_file(path) else _task_stats(path, args.max_pixels)
    if args.json:
        print(json.dumps(out, indent=1))
        return 0
    for f, s in out.items():
        print(f"{f}: {s['count']} {s['kind']}")
        for k, v in s.items():
            if k not in ("kind", "count"):
                print(f"  {k}: {v}")
    return 0


def interrupted(args: argparse.Namespace) -> str:
    """What a Ctrl-C leaves behind (train.cli prints it)."""
    if args.data_command == "synth":
        return (f"{Path(args.out) / 'tasks.jsonl'} is written only once every task is generated, so an interrupted "
                "generation leaves it as it was and removes the images of the unwritten tasks; with --oracle, "
                "the committed oracle batches are kept in oracle/")
    if args.data_command == "curate":
        return (f"every committed batch is kept in {args.out} (sft.jsonl and report.json rebuilt from them); "
                "re-run the same command to continue")
    return "nothing half-written is left (outputs are written whole at the end)"


def run(args: argparse.Namespace) -> int:
    handlers = {"synth": _synth, "convert": _convert, "validate": _validate, "curate": _curate, "stats": _stats}
    try:
        return handlers[args.data_command](args)
    except ValueError as exc:  # bad options, configs and names: the message says what is valid
        if user_error(exc) is not None:  # a registered error type: train.cli reports it with its own exit code
            raise
        raise UsageError(str(exc)) from None
