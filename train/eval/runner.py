"""`evaluate(cfg) -> summary`: run a policy over a benchmark or task file and write a resumable evaluation run.

    from train.config import load_config
    from train.config.eval import EvalConfig
    from train.eval import evaluate
    summary = evaluate(load_config(EvalConfig, "configs/eval/tiny_synthetic.yaml"))
    summary = evaluate(cfg, engine=my_engine, pool=my_pool)      # an engine / sandbox pool already in memory

Run directory (`output_dir`):

    config.yaml                  the resolved config (a resumed run must have the same identity, EvalConfig.identity)
    samples.jsonl                one record per finished episode (train.eval.records), appended as episodes finish
    trajectories/eval.jsonl      the episodes (rollout.trajectory format; `codevl view`, `codevl rescore` read it)
    summary.json                 accuracy overall and per source / category / transform, tool use, faithfulness,
                                 reward, timing (train.eval.summary)
    {model}_{dataset}.tsv        predictions in VLMEvalKit's result format (train.eval.predictions)

Deterministic: every episode's id is `<task id>#<sample index>` and every generation request's seed derives from
the run seed, that id and the turn (`rollout.loop.request_seed`), so a run gives the same samples whatever the
batching, the concurrency or the point at which it was interrupted. Resumable: rerunning the same config skips
finished samples (a sample whose episode failed with an engine or sandbox error is run again); a kill loses at most
the episodes in flight. Scoring groups are the samples of a task run in the same invocation.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import yaml

from rollout.task import Task
from train.config import resolved_yaml
from train.config.eval import EvalConfig
from train.eval.engines import EvalSetupError, build_engine, check_model
from train.eval.predictions import original_row, prediction_text, predictions_path, write_predictions
from train.eval.records import (append_records, finished_keys, make_record, read_records, sample_key)
from train.eval.summary import summarize

logger = logging.getLogger(__name__)

SAMPLES_NAME = "samples.jsonl"
SUMMARY_NAME = "summary.json"
TRAJECTORY_FILE = "trajectories/eval.jsonl"


def load_eval_tasks(cfg: EvalConfig) -> list[Task]:
    """The tasks of `cfg.data` (a benchmark through its loader, a task file, or generated splits written under
    output_dir/data/), limited to `data.limit`."""
    d = cfg.data
    if d.synthetic is not None:
        from data import read_tasks
        from data.generators import generate_to_dir

        tasks = []
        for i, split in enumerate(d.synthetic):
            out = Path(cfg.output_dir) / "data" / f"{split.generator}_seed{split.seed}"
            try:
                res = generate_to_dir(split.generator, split.n, out, seed=split.seed, config=split.config or None,
                                      workers=1, progress=False)
            except ValueError as exc:  # the generator rejected its config
                raise EvalSetupError(f"data.synthetic[{i}] ({split.generator}): {exc}") from None
            tasks += read_tasks(res.path)
        tasks = tasks[: d.limit] if d.limit else tasks
    elif d.tasks is not None:
        from data import read_tasks

        tasks = read_tasks(d.tasks)
        if d.transforms:
            from data.transformed_tasks import parse_transforms, transformed_variants

            tdir = Path(d.image_dir) if d.image_dir else Path(d.tasks).parent / "transformed_images"
            tasks = transformed_variants(tasks, parse_transforms(d.transforms), tdir)
        tasks = tasks[: d.limit] if d.limit else tasks
    else:
        from data.loaders import load_benchmark

        assert d.benchmark is not None and d.path is not None
        tasks = load_benchmark(d.benchmark, d.path, image_dir=d.image_dir, limit=d.limit, transforms=d.transforms,
                               **d.options)
    if not tasks:
        raise EvalSetupError(f"no tasks in {d.tasks or d.path}")
    seen: dict[str, int] = {}
    for i, t in enumerate(tasks):
        if t.id in seen:
            raise EvalSetupError(f"task id {t.id!r} appears twice (positions {seen[t.id]} and {i}); evaluation "
                                 "matches samples by task id, so ids must be unique")
        seen[t.id] = i
    return tasks


def preflight(cfg: EvalConfig, *, model: bool = True) -> Any:
    """Every check that needs no model and no episode: the reward set loads, the protocol exists, the model's
    script or directory (unless `model=False`: an engine is given) and the data's files are there. Returns the
    reward set (or None). `--dry-run` runs it."""
    from rewards import load_reward_set
    from rollout.protocols import get_protocol

    reward_set = load_reward_set(cfg.rewards) if cfg.rewards else None
    get_protocol(cfg.protocol)
    if model:
        check_model(cfg.model)
    d = cfg.data
    if d.tasks is not None and not Path(d.tasks).is_file():
        raise EvalSetupError(f"data.tasks {d.tasks} not found (a task JSONL, e.g. from `codevl data synth`)")
    if d.benchmark is not None:
        from data.loaders import get_loader

        try:
            get_loader(d.benchmark)
        except ValueError as exc:
            raise EvalSetupError(f"data.benchmark: {exc}") from None
        if not Path(d.path or "").expanduser().exists():
            raise EvalSetupError(f"data.path {d.path} not found (where the {d.benchmark} files are)")
    return reward_set


def _diff(a: Any, b: Any, prefix: str = "") -> list[str]:
    if isinstance(a, dict) and isinstance(b, dict):
        out: list[str] = []
        for k in sorted(set(a) | set(b)):
            out += _diff(a.get(k), b.get(k), f"{prefix}.{k}" if prefix else str(k))
        return out
    return [] if a == b else [f"{prefix}: {a!r} -> {b!r}"]


def check_resume(cfg: EvalConfig, out: Path) -> None:
    """Refuse to resume a run directory made with different settings (EvalConfig.identity); limits aside."""
    old_path = out / "config.yaml"
    if not (out / SAMPLES_NAME).exists() or not old_path.exists():
        return
    try:
        old = EvalConfig.model_validate(yaml.safe_load(old_path.read_text()))
    except Exception as exc:  # noqa: BLE001 - any unreadable old config: say so, do not guess
        raise EvalSetupError(f"{old_path} cannot be read as an eval config ({exc}); "
                             "choose another output_dir") from None
    a, b = old.identity(), cfg.identity()
    a["data"].pop("limit"), b["data"].pop("limit")
    changes = _diff(a, b)
    if changes:
        raise EvalSetupError(f"{out} holds an evaluation with other settings; resuming it would mix results:\n  "
                             + "\n  ".join(changes[:10])
                             + "\nchoose another output_dir, or pass --restart to discard the old samples")


def _clean_trajectory_file(path: Path, keep_ids: set[str]) -> None:
    """Keep only the trajectories of finished samples (and no torn last line) before appending more."""
    if not path.exists():
        return
    raw = path.read_bytes()
    kept, changed = [], False
    for line in raw.split(b"\n"):
        if not line.strip():
            continue
        try:
            tid = json.loads(line)["id"]
        except (ValueError, KeyError, TypeError):
            changed = True
            continue
        if tid in keep_ids:
            kept.append(line)
        else:
            changed = True
    if changed:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(b"".join(x + b"\n" for x in kept))
        tmp.replace(path)


class _GroupScorer:
    """Scores the finished episodes of one task together and turns them into records."""

    def __init__(self, cfg: EvalConfig, reward_set: Any, traj_file: Path, samples_file: Path) -> None:
        self.cfg, self.reward_set = cfg, reward_set
        self.traj_file, self.samples_file = traj_file, samples_file

    def __call__(self, trajs: Sequence[Any], position: int) -> list[dict[str, Any]]:
        from rewards import evaluate_faithfulness
        from rewards.context import ScoringContext
        from rewards.errors import JudgeFailed
        from rewards.metrics import recorded_correctness
        from rollout.trajectory import save_trajectories

        ctx = self.reward_set.context() if self.reward_set is not None else ScoringContext()
        if self.reward_set is not None:
            self.reward_set.score(trajs, record=True, ctx=ctx)
        verdicts: list[tuple[bool | None, str | None, float | None]] = []
        for t in trajs:
            try:
                m = ctx.answer(t)
                verdict: tuple[bool | None, str | None, float | None] = (m.correct, m.method, m.score)
            except JudgeFailed as exc:
                verdict = (None, f"judge failed: {exc}", None)
            rec = recorded_correctness(t)
            verdicts.append((rec, verdict[1], verdict[2]) if rec is not None else verdict)
        faith = evaluate_faithfulness(trajs, self.cfg.faithfulness, correct=[v[0] for v in verdicts], ctx=ctx)
        rel = TRAJECTORY_FILE
        records = [make_record(t, correct=v[0], match=v[1], score=v[2], tool_use=ctx.tool_use(t),
                               faithfulness=f, trajectory_file=rel, task_position=position)
                   for t, v, f in zip(trajs, verdicts, faith.samples, strict=True)]
        keep = [t for t, r in zip(trajs, records, strict=True) if not r["failed"]]
        if keep:
            save_trajectories(self.traj_file, keep, append=True)
        append_records(self.samples_file, records)
        return records


async def _run_jobs(jobs: list[tuple[int, Task, list[int]]], runner: Any, scorer: _GroupScorer,
                    max_concurrent: int, on_episode: Callable[[], None]) -> None:
    sem = asyncio.Semaphore(max_concurrent)
    lock = asyncio.Lock()

    async def episode(task: Task, g: int) -> Any:
        async with sem:
            traj = await runner.run(task, sample_index=g, group_id=task.id, trajectory_id=sample_key(task.id, g))
        on_episode()
        return traj

    async def group(position: int, task: Task, samples: list[int]) -> None:
        trajs = await asyncio.gather(*(episode(task, g) for g in samples))
        async with lock:
            await asyncio.to_thread(scorer, trajs, position)

    await asyncio.gather(*(group(p, t, s) for p, t, s in jobs))


def evaluate(cfg: EvalConfig, *, engine: Any = None, pool: Any = None, restart: bool = False,
             progress: bool = False, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Evaluate (see the module docstring); returns the summary, also written to output_dir/summary.json.

    `engine` / `pool`: use these instead of building them from `cfg.model` / a default sandbox pool (the demo
    evaluates models it holds in memory). `restart`: discard an existing run in output_dir first."""
    from rollout.engines.base import SamplingParams
    from rollout.loop import EpisodeLimits, EpisodeRunner
    from rollout.protocols import get_protocol

    out = Path(cfg.output_dir)
    samples_file, traj_file = out / SAMPLES_NAME, out / TRAJECTORY_FILE
    if restart:
        for p in (samples_file, traj_file, out / SUMMARY_NAME):
            p.unlink(missing_ok=True)
    check_resume(cfg, out)
    reward_set = preflight(cfg, model=engine is None)
    protocol = get_protocol(cfg.protocol)
    tasks = load_eval_tasks(cfg)
    out.mkdir(parents=True, exist_ok=True)
    traj_file.parent.mkdir(parents=True, exist_ok=True)
    (out / "config.yaml").write_text(resolved_yaml(cfg))

    previous = read_records(samples_file, repair=True)
    done = finished_keys(previous)
    _clean_trajectory_file(traj_file, {r["trajectory"]["id"] for r in previous if r["key"] in done})
    k = cfg.samples_per_task
    jobs = [(pos, t, todo) for pos, t in enumerate(tasks)
            if (todo := [g for g in range(k) if sample_key(t.id, g) not in done])]
    n_todo = sum(len(j[2]) for j in jobs)
    total = len(tasks) * k
    if done:
        say(f"[eval] resuming {out}: {total - n_todo} of {total} samples already finished")
    t0 = time.perf_counter()
    if n_todo:
        own_pool = pool is None
        if engine is None:
            engine = build_engine(cfg.model, seed=cfg.seed)
        if own_pool:
            from sandbox import SandboxConfig, SandboxPool

            pool = SandboxPool(SandboxConfig())
        lim = cfg.limits
        runner = EpisodeRunner(engine, protocol, pool, seed=cfg.seed, metadata={"eval": cfg.data.display_name()},
                               limits=EpisodeLimits(max_turns=lim.max_turns,
                                                    max_new_tokens_per_turn=lim.max_new_tokens_per_turn,
                                                    max_total_tokens=lim.max_total_tokens, max_images=lim.max_images,
                                                    observation_max_chars=lim.observation_max_chars,
                                                    code_timeout_s=lim.code_timeout_s),
                               sampling=SamplingParams(temperature=cfg.sampling.temperature, top_p=cfg.sampling.top_p,
                                                       top_k=cfg.sampling.top_k))
        bar = None
        if progress:
            from tqdm.auto import tqdm

            bar = tqdm(total=total, initial=total - n_todo, desc=f"eval {cfg.data.display_name()}", unit="sample")
        scorer = _GroupScorer(cfg, reward_set, traj_file, samples_file)
        try:
            asyncio.run(_run_jobs(jobs, runner, scorer, cfg.max_concurrent, bar.update if bar else lambda: None))
        finally:
            if bar is not None:
                bar.close()
            if own_pool:
                pool.close()
    return write_outputs(cfg, tasks, seconds=time.perf_counter() - t0, ran=n_todo)


def write_outputs(cfg: EvalConfig, tasks: Sequence[Task], *, seconds: float = 0.0, ran: int = 0) -> dict[str, Any]:
    """Summary JSON and VLMEvalKit predictions from the run directory's records (for the current task list)."""
    out = Path(cfg.output_dir)
    wanted = {sample_key(t.id, g): t for t in tasks for g in range(cfg.samples_per_task)}
    by_key = {r["key"]: r for r in read_records(out / SAMPLES_NAME)}
    records = [by_key[key] for key in wanted if key in by_key]
    model, dataset = cfg.model.display_name(), cfg.data.display_name()
    pred_path = predictions_path(out, model, dataset)
    first = {r["task_id"]: r for r in records if r["sample_index"] == 0}
    rows = [(original_row(t, pos), prediction_text(first[t.id], first[t.id].get("last_message")))
            for pos, t in enumerate(tasks) if t.id in first]
    write_predictions(pred_path, rows)
    info = {"model": model, "engine": cfg.model.engine, "dataset": dataset, "protocol": cfg.protocol,
            "seed": cfg.seed, "samples_per_task": cfg.samples_per_task, "tasks": len(tasks),
            "missing": len(wanted) - len(records), "output_dir": str(out), "predictions": pred_path.name,
            "trajectories": TRAJECTORY_FILE, "reward_set": cfg.rewards,
            "this_invocation": {"samples_run": ran, "seconds": round(seconds, 3)}}
    summary = summarize(records, info=info)
    (out / SUMMARY_NAME).write_text(json.dumps(summary, indent=2) + "\n")
    return summary
