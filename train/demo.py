"""The CPU demo: the whole pipeline, SFT -> RL -> eval, on the tiny model and generated data, in minutes.

    codevl demo                                    # defaults (configs/demo/cpu.yaml holds the same values)
    codevl demo --quick                            # the smaller variant the test suite runs
    codevl demo --config configs/demo/cpu.yaml rl.steps=5 rewards=configs/rewards/codevision.yaml

Stages, each written under `output_dir`:
1. model   a tiny Qwen-VL built offline (`tiny-model/`), loaded by the loader that loads real checkpoints;
2. data    synthetic train tasks and held-out eval tasks (other seeds) from each generator (`data/`);
3. oracle  correct code-as-tool trajectories for the train tasks, every block run in the real sandbox
           (`sft/oracle.jsonl`): the SFT data;
4. eval    the untrained model on the held-out tasks (`eval/base/`);
5. sft     the SFT stage (`train/sft.py`) on the oracle trajectories (`sft/`, model in `sft/final/`);
6. eval    after SFT (`eval/sft/`);
7. rl      a few steps of the RL stage (`train/rl.py`): real multi-turn rollouts in the sandbox, the reward set,
           advantages, updates (`rl/`, model in `rl/final/`);
8. eval    after RL (`eval/rl/`);
9. report  `report.html`: the stage table, links to each run's report (episodes, code, images, rewards, plots).

A model of a few hundred thousand parameters cannot read text off an image: what the demo shows is the machinery
and what each stage changes in behaviour (code that executes, answers in the format), not accuracy. Its first
lines say so with the measured numbers.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from train.config import load_config, save_resolved
from train.config.demo import DemoConfig
from train.config.loader import project_path

ROOT = Path(__file__).resolve().parents[1]
STAGES = ("base", "sft", "rl")


def _stage(timings: dict[str, float], name: str, say: Callable[[str], None]) -> Callable[[str], None]:
    t0 = time.perf_counter()

    def done(message: str) -> None:
        timings[name] = round(time.perf_counter() - t0, 2)
        say(f"[{name}] {message} ({timings[name]:.1f} s)")

    return done


def make_tasks(cfg: DemoConfig, out: Path, *, split: str) -> tuple[list[Any], list[Path]]:
    """Train tasks (seeds seed+i) or held-out eval tasks (seeds 1000+seed+i) of every configured generator."""
    from data import read_tasks
    from data.generators import generate_to_dir

    n = cfg.data.tasks_per_generator if split == "train" else cfg.data.eval_tasks_per_generator
    base = cfg.seed if split == "train" else 1000 + cfg.seed
    tasks, files = [], []
    for i, name in enumerate(cfg.data.generators):
        res = generate_to_dir(name, n, out / "data" / split / name, seed=base + i,
                              config=cfg.data.generator_config.get(name), workers=1, progress=False)
        tasks += read_tasks(res.path)
        files.append(res.path)
    return tasks, files


def evaluate_stage(cfg: DemoConfig, out: Path, name: str, model_dir: Path, eval_file: Path, pool: Any) -> dict[str, Any]:
    """Greedy evaluation of the model in `model_dir` on the held-out tasks (`eval/<name>/`)."""
    from train.config.eval import EvalConfig
    from train.eval.runner import evaluate

    e = cfg.eval
    ecfg = load_config(EvalConfig, None, [
        f"output_dir={out / 'eval' / name}", f"seed={cfg.seed}", f"protocol={cfg.protocol}", "model.engine=hf",
        f"model.name_or_path={model_dir}", "model.dtype=float32", "model.attn_implementation=sdpa",
        "model.device=cpu", f"model.name=demo-{name}", f"data.tasks={eval_file}", "data.name=demo_heldout",
        f"limits.max_turns={e.max_turns}", f"limits.max_new_tokens_per_turn={e.max_new_tokens_per_turn}",
        f"limits.max_total_tokens={e.max_total_tokens}", "sampling.temperature=0", f"rewards={str(project_path(cfg.rewards))}"])
    return evaluate(ecfg, pool=pool, restart=True, progress=True)


def run_demo(cfg: DemoConfig, say: Callable[[str], None] = lambda s: None) -> dict[str, Any]:
    """Run the demo; returns a summary (also written to output_dir/summary.json). `say` receives progress lines."""
    import sandbox
    from data import write_tasks
    from data.oracle import build_oracle_trajectories
    from rewards import load_reward_set
    from rollout.protocols import get_protocol
    from rollout.trajectory import save_trajectories
    from train.config.rl import RLConfig
    from train.config.sft import SFTConfig
    from train.model.tiny import build_tiny_model
    from train.rl import run_rl
    from train.sft import run_sft

    out = Path(cfg.output_dir)
    save_resolved(cfg, out)
    rewards_path = str(project_path(cfg.rewards))
    load_reward_set(rewards_path)  # a bad reward file fails before any work
    protocol = get_protocol(cfg.protocol)
    timings: dict[str, float] = {}
    t_all = time.perf_counter()

    done = _stage(timings, "model", say)
    model_dir = build_tiny_model(cfg.arch, out / "tiny-model", seed=cfg.seed)
    done(f"tiny {cfg.arch} in {model_dir}")

    done = _stage(timings, "data", say)
    train_tasks, train_files = make_tasks(cfg, out, split="train")
    eval_tasks, _ = make_tasks(cfg, out, split="eval")
    eval_file = out / "data" / "eval" / "tasks.jsonl"
    write_tasks(eval_file, eval_tasks)
    done(f"{len(train_tasks)} train and {len(eval_tasks)} held-out synthetic tasks ({', '.join(cfg.data.generators)})")

    pool = sandbox.SandboxPool(sandbox.SandboxConfig())
    evals: dict[str, dict[str, Any]] = {}
    try:
        done = _stage(timings, "oracle", say)
        oracle = build_oracle_trajectories(train_tasks, protocol=protocol, pool=pool, variants=cfg.data.oracle_variants,
                                           seed=cfg.seed, progress=False)
        if not oracle.trajectories:
            raise RuntimeError(f"no oracle trajectory passed its check: {oracle.summary()}")
        sft_data = out / "sft" / "oracle.jsonl"
        save_trajectories(sft_data, oracle.trajectories)
        done(f"{oracle.summary()}; every block ran in the sandbox")

        done = _stage(timings, "eval base", say)
        evals["base"] = evaluate_stage(cfg, out, "base", model_dir, eval_file, pool)
        done(_eval_line(evals["base"]))

        done = _stage(timings, "sft", say)
        s = cfg.sft
        sft_cfg = load_config(SFTConfig, None, [
            f"run.output_dir={out / 'sft'}", f"run.seed={cfg.seed}", "run.logging_steps=5", "run.save_steps=1000000",
            f"model.name_or_path={model_dir}", "model.dtype=float32", "model.attn_implementation=sdpa",
            "model.freeze_vision_tower=false", "model.freeze_projector=false", f"data.train_files=[{sft_data}]",
            f"data.protocol={cfg.protocol}", f"data.max_length={s.max_tokens_per_batch}", f"train.max_steps={s.steps}",
            f"train.max_tokens_per_batch={s.max_tokens_per_batch}", "train.mixed_precision=no",
            "train.merge_lora=false", "train.resume=never", f"optim.lr={s.lr}", "optim.scheduler=constant"])
        sft = run_sft(sft_cfg, say=lambda line: None)
        done(f"{sft.steps} steps on {len(oracle.trajectories)} oracle trajectories: loss {sft.losses[0]:.3f} -> "
             f"{sft.losses[-1]:.3f}; model in {sft.final_dir}")

        done = _stage(timings, "eval sft", say)
        evals["sft"] = evaluate_stage(cfg, out, "sft", sft.final_dir, eval_file, pool)
        done(_eval_line(evals["sft"]))
    finally:
        pool.close()

    done = _stage(timings, "rl", say)
    r = cfg.rl
    rl_cfg = load_config(RLConfig, None, [
        f"run.output_dir={out / 'rl'}", f"run.seed={cfg.seed}", "run.save_steps=1000000",
        f"model.name_or_path={sft.final_dir}", "model.dtype=float32", "model.attn_implementation=sdpa",
        "model.freeze_vision_tower=false", "model.freeze_projector=false",
        f"data.train_files=[{','.join(str(f) for f in train_files)}]", f"rewards={rewards_path}",
        f"optim.lr={r.lr}", "optim.scheduler=constant", "rollout.engine=hf", f"rollout.protocol={cfg.protocol}",
        f"rollout.num_generations={r.samples_per_task}", f"rollout.temperature={r.temperature}",
        f"rollout.max_turns={r.max_turns}", f"rollout.max_new_tokens_per_turn={r.max_new_tokens_per_turn}",
        f"rollout.max_total_tokens={r.max_total_tokens}", f"algo.advantage={r.advantage}", "algo.max_refill_rounds=1",
        f"train.steps={r.steps}", f"train.prompts_per_step={r.prompts_per_step}", "train.resume=never",
        "train.max_tokens_per_microbatch=8192"])
    rl = run_rl(rl_cfg, say=lambda line: None)
    hist = rl.history
    done(f"{rl.steps} steps x {r.prompts_per_step} tasks x {r.samples_per_task} episodes: reward "
         f"{hist[0]['reward/total/mean']:.3f} -> {hist[-1]['reward/total/mean']:.3f}, tool calls per episode "
         f"{hist[0].get('tools/calls_mean', 0):.2f} -> {hist[-1].get('tools/calls_mean', 0):.2f}; model in {rl.final_dir}")

    pool = sandbox.SandboxPool(sandbox.SandboxConfig())
    try:
        done = _stage(timings, "eval rl", say)
        evals["rl"] = evaluate_stage(cfg, out, "rl", Path(rl.final_dir or out / "rl" / "final"), eval_file, pool)
        done(_eval_line(evals["rl"]))
    finally:
        pool.close()

    done = _stage(timings, "report", say)
    table = stage_table(evals)
    summary = {
        "output_dir": str(out), "arch": cfg.arch, "train_tasks": len(train_tasks), "eval_tasks": len(eval_tasks),
        "oracle_trajectories": len(oracle.trajectories), "sft_losses": [round(x, 4) for x in sft.losses],
        "sft_steps": sft.steps, "rl_steps": rl.steps,
        "rl_reward": [round(m["reward/total/mean"], 4) for m in hist],
        "stages": table, "timings_s": timings, "seconds": round(time.perf_counter() - t_all, 2),
    }
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n")
    report = write_demo_report(out, summary)
    done(f"{report}")
    summary["report"] = str(report)
    return summary


def _eval_line(s: dict[str, Any]) -> str:
    t, a = s["tools"], s["accuracy"]["overall"]
    return (f"{s['samples']} held-out samples: code that executes {_pct(t['executing_code_rate'])}, answered in "
            f"format {_pct(t['answered_rate'])}, accuracy {_pct(a['accuracy'])}, mean reward "
            f"{(s.get('reward') or {}).get('total_mean') or 0:.3f}")


def _pct(v: float | None) -> str:
    return "n/a" if v is None else f"{100 * v:.0f}%"


def stage_table(evals: dict[str, dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Per stage: executing-code rate, answered rate, accuracy, mean reward on the held-out tasks."""
    return {name: {"executing_code_rate": s["tools"]["executing_code_rate"], "answered_rate": s["tools"]["answered_rate"],
                   "accuracy": s["accuracy"]["overall"]["accuracy"],
                   "reward_mean": (s.get("reward") or {}).get("total_mean")} for name, s in evals.items()}


def headline(table: dict[str, dict[str, float | None]]) -> list[str]:
    """What changed at each stage, with numbers, and plainly what did not."""
    rows = [f"{'stage':<6} {'code executes':>13} {'answered':>9} {'accuracy':>9} {'reward':>8}"]
    for name in STAGES:
        if name in table:
            t = table[name]
            rows.append(f"{name:<6} {_pct(t['executing_code_rate']):>13} {_pct(t['answered_rate']):>9} "
                        f"{_pct(t['accuracy']):>9} {(t['reward_mean'] or 0):>8.3f}")
    b, s = table.get("base", {}), table.get("sft", {})
    lines = [*rows]
    if b and s:
        change = (s["executing_code_rate"] or 0) - (b["executing_code_rate"] or 0)
        lines.append(f"SFT changed the share of held-out samples with code that executes by {100 * change:+.0f} points"
                     f" and answers in the format by {100 * ((s['answered_rate'] or 0) - (b['answered_rate'] or 0)):+.0f}.")
    r = table.get("rl", {})
    if s and r:
        moved = {k: (r[k] or 0) - (s[k] or 0) for k in ("executing_code_rate", "answered_rate", "accuracy")}
        if all(abs(v) < 1e-9 for v in moved.values()):
            lines.append("RL did not change the held-out numbers: a few steps at a small learning rate move a policy "
                         "little (its reward and tool use per step are in rl/metrics.jsonl and the RL report).")
        else:
            lines.append(f"RL changed code that executes by {100 * moved['executing_code_rate']:+.0f} points, answers "
                         f"in the format by {100 * moved['answered_rate']:+.0f} and accuracy by "
                         f"{100 * moved['accuracy']:+.0f}.")
    acc = [table[n]["accuracy"] for n in STAGES if n in table]
    if all((x or 0) < 0.9 for x in acc):
        lines.append("Accuracy is not the point, and is not expected to be good: a model this small cannot read text "
                     "off an image. The demo shows the machinery and what each stage changes in behaviour; accuracy "
                     "needs a real checkpoint and a GPU.")
    return lines


def write_demo_report(out: Path, summary: dict[str, Any]) -> Path:
    """`report.html` (stage table and links) plus each run's own report (`<run>/report.html`)."""
    from html import escape

    from train.report.html import write_report
    from train.report.run_dir import RunDirError

    links = []
    for name, sub in (("held-out eval, before SFT", "eval/base"), ("SFT run", "sft"), ("held-out eval, after SFT", "eval/sft"),
                      ("RL run", "rl"), ("held-out eval, after RL", "eval/rl")):
        try:
            page = write_report(out / sub)
            links.append(f'<li><a href="{escape(str(page.relative_to(out)))}">{escape(name)}</a></li>')
        except RunDirError as exc:  # a run with nothing to show is said on the page
            links.append(f"<li>{escape(name)}: no report ({escape(str(exc))})</li>")
    head = "\n".join(headline(summary["stages"]))
    page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>codevl demo</title>"  # type: ignore[assignment]
            "<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;padding:1em;white-space:pre-wrap}"
            f"</style></head><body><h1>codevl demo</h1><pre>{escape(head)}</pre><h2>reports</h2><ul>{''.join(links)}</ul>"
            f"<h2>summary.json</h2><pre>{escape(json.dumps(summary, indent=2))}</pre></body></html>")
    path = out / "report.html"
    path.write_text(page, encoding="utf-8")  # type: ignore[arg-type]
    return path
