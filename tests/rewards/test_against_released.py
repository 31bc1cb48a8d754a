"""The shipped released-code sets against the released reward code itself, on randomised trajectories (opt-in).

The released files are not part of this repository. Point `CODEVL_RELEASED_SOURCES` at a folder of checkouts
named after their repositories (each test skips when its checkout is missing):

    CodeVision/       ByteDance-BandAI/CodeVision      (checked at e098588)
    DeepEyes/         Visual-Agent/DeepEyes            (6c5e796)
    CodeV_internal/   RenlyH/CodeV_internal            (c7eed11)
    PyVision-RL/      agents-x-project/PyVision-RL     (62ca599)
    Pixel-Reasoner/   TIGER-AI-Lab/Pixel-Reasoner      (a3a6c3a)

Only the released functions under comparison are loaded (through the AST, so their module-level imports of
torch, ray or openai never run). What needs a server is replaced by a deterministic stand-in on both sides: no
LLM judge for CodeVision (its `verify` returns 0 without one), a judge that accepts exactly the gold text for
DeepEyes and PyVision-RL, exact string equality for CodeV's `math_verify` and a 0 rubric score. Each test scores
the same trajectories with the released code (on the response text, `rewards.released_text.response_text`) and
with the shipped set, and requires equal totals.
"""

from __future__ import annotations

import ast
import os
import random
import re
import textwrap
import types
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import yaml

from rewards import RewardSet, load_reward_set, reward_set_from_config
from rewards.registry import component_class
from rewards.released_text import response_text
from rollout.trajectory import Trajectory
from sandbox.result import ExecResult
from tests.rewards.builders import crop, failed, ok, task, trajectory

ROOT = os.environ.get("CODEVL_RELEASED_SOURCES")


def source(repo: str, path: str) -> str:
    """The text of a released file, or a skip when its checkout is not there."""
    if not ROOT:
        pytest.skip("set CODEVL_RELEASED_SOURCES to a folder of released checkouts (see the module docstring)")
    f = Path(ROOT) / repo / path
    if not f.is_file():
        pytest.skip(f"{f} not found")
    return f.read_text()


def functions(text: str, names: set[str], cls: str | None = None, env: dict[str, Any] | None = None) -> dict[str, Any]:
    """The named top-level functions (or methods of class `cls`, as a class `Released`) of a released file."""
    tree = ast.parse(text)
    body: list[ast.stmt] = tree.body
    if cls is not None:
        body = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == cls).body
    picked: list[ast.stmt] = [n for n in body if isinstance(n, ast.FunctionDef) and n.name in names]
    if cls is not None:
        picked = [ast.ClassDef(name="Released", bases=[], keywords=[], body=picked, decorator_list=[])]
    module = ast.fix_missing_locations(ast.Module(body=picked, type_ignores=[]))
    ns: dict[str, Any] = {"re": re, "random": random, "np": np, "Any": object, **(env or {})}
    exec(compile(module, "<released>", "exec"), ns)  # noqa: S102 - the released code under comparison
    return ns


def judge_reply(text: str) -> Any:
    return types.SimpleNamespace(choices=[types.SimpleNamespace(message=types.SimpleNamespace(content=text))])


# ---- CodeVision -------------------------------------------------------------------------------------------------

CV_CODES = ["r = image.rotate(90, expand=True)", "r = image.rotate(-90, expand=True)", "r = image.rotate(180)",
            "r = image.transpose(Image.FLIP_LEFT_RIGHT)", "r = ImageOps.flip(image)", "r = np.rot90(np.array(image), 3)",
            "c = image.crop((100, 40, 120, 60))", "c = image.crop((90, 30, 130, 70))", "c = image.crop((0, 0, 200, 100))",
            "x1, y1 = 95, 35\nc = image.crop((x1, y1, x1 + 30, y1 + 30))", "w, h = image.size\nc = image.crop((0, 0, w // 2, h))",
            "c = image.crop((100, 40, 120, 60)).resize((200, 200))", "g = ImageEnhance.Contrast(image).enhance(1.8)",
            "g = image.convert('L')", "print(image.size)", "c = image.crop((100, 40, 120, 160))",
            "r = cv2.rotate(a, cv2.ROTATE_90_CLOCKWISE)"]
CV_FINALS = ["<answer>B</answer>", "<think>x</think><answer>B</answer>", "<answer>A</answer><answer>B</answer>",
             "The answer is B", "<think>t</think>\n<answer>C</answer>", "<answer>B", "<think>a</think><answer>b</answer>",
             "<think>a</think>answer: (B)", "<answer>B</answer> done"]
# this package's must-use op -> the released data's `transform` whose inverse it is (`_expected_transforms`)
CV_TRANSFORM = {"rotate90": "rotate_270", "rotate180": "rotate_180", "rotate270": "rotate_90",
                "flip_h": "flip_horizontal", "flip_v": "flip_vertical", "crop": "crop"}


def codevision_released() -> tuple[Any, Any, Any, Any]:
    methods = {"_compute_tool_reward_group_stats", "_compute_tool_reward_for_sample", "_expected_transforms",
               "_mandatory_reward", "_code_usage_penalty", "_spurious_penalty", "_exact_match_reward",
               "_emerging_tool_bonus", "_best_crop_iou", "_tool_reward_detail_string"}
    fake_torch = types.SimpleNamespace(tensor=lambda v, dtype=None, device=None: v)
    agg = functions(source("CodeVision", "verl/experimental/agent_loop/agent_loop.py"), methods,
                    "AgentLoopManager", {"torch": fake_torch})["Released"]()
    fmt = functions(source("CodeVision", "verl/workers/reward_manager/uvtr.py"), {"_compute_format_reward"},
                    "UVTRRewardManager")["Released"]()
    scoring = functions(source("CodeVision", "recipe/codevision/reward.py"),
                        {"extract_answer", "verify_answer_rule", "are_answers_equivalent"},
                        env={"Fraction": __import__("fractions").Fraction})
    judge_src = source("CodeVision", "verl/utils/reward_score/tool_use_judge.py")
    helpers = {n.name for n in ast.parse(judge_src).body if isinstance(n, ast.FunctionDef)}
    detector = functions(judge_src, helpers, env={"ast": ast, "List": list, "Dict": dict, "Tuple": tuple,
                                                   "Optional": object})
    return agg, fmt, scoring, detector


def heuristic_parse(detector: dict[str, Any], code: str) -> tuple[list[str], list[list[float]]]:
    """`ToolUseJudgeClient.heuristic_parse(code, "")` from the released helpers."""
    boxes = detector["_dedup_boxes"](detector["_extract_crop_boxes_from_ast"](code) + detector["_regex_literal_crops"](code))
    used = detector["_rotations_from_code"](code) + detector["_flips_from_code"](code) + \
        detector["_other_transforms_from_code"](code)
    if boxes:
        used.append("crop")
    return detector["_unique_preserve_order"](used), boxes


@pytest.mark.parametrize("beta", [0.0, 0.2])
def test_codevision_code_set_equals_the_released_reward(beta: float) -> None:
    agg, fmt, scoring, detector = codevision_released()
    data = yaml.safe_load(Path("configs/rewards/codevision_code.yaml").read_text())
    for entry in data["components"]:
        if "ops_source" in component_class(entry["name"]).Params.model_fields:
            entry["params"] = {**entry.get("params", {}), "ops_source": "released"}
        if entry["name"] == "codevision_code_necessity":
            entry["weight"] = beta
    rs = reward_set_from_config(data)
    params = {"alpha": 1.0, "beta": beta, "gamma": 0.5, "fmt_weight": 0.1, "exec_weight": 0.0, "emerge_weight": 0.2,
              "allowed_spurious_ops": {"rotate_90", "rotate_180", "rotate_270", "flip_horizontal", "flip_vertical"}}
    params["core_ops"] = params["allowed_spurious_ops"] | {"crop"}
    rng = random.Random(7)
    for g in range(150):
        req = ([rng.choice(["rotate90", "rotate180", "rotate270", "flip_h", "flip_v"])] if rng.random() < 0.6 else []) \
            + (["crop"] if rng.random() < 0.7 else [])
        has_box = "crop" in req or rng.random() < 0.5  # crop required without a box is n/a here (documented)
        t = task(required=req, evidence=((100, 40, 120, 60),) if has_box else (), tid=f"t{g}")
        trajs: list[Trajectory] = []
        for k in range(4):
            steps: list[tuple[str, ExecResult | None]] = [
                (rng.choice(CV_CODES), rng.choice([ok(), ok(), failed(line=1)])) for _ in range(rng.randint(0, 3))]
            if steps and rng.random() < 0.2:
                steps.append((rng.choice(CV_CODES), None))  # cut by the turn limit
            trajs.append(trajectory(t, steps, answer="B", final_text=rng.choice(CV_FINALS), tid=f"g{g}r{k}",
                                    group=f"g{g}", protocol="codevision"))
        meta: dict[str, list[Any]] = {k: [] for k in ("uid_list", "used_any_tool_list", "tools_used_list",
                                                      "tool_crop_boxes_list", "gt_bbox_list", "code_count_list",
                                                      "required_transforms_list", "tool_exec_success_ratio_list")}
        correct, fmts = [], []
        for tr in trajs:
            codes = [s.code for s in tr.steps if s.result is not None]
            used, boxes = [], []
            for code in codes:
                u, b = heuristic_parse(detector, code)
                used, boxes = used + u, boxes + b
            for key, value in (("uid_list", tr.group_id), ("used_any_tool_list", bool(used) or bool(codes)),
                               ("tools_used_list", used), ("tool_crop_boxes_list", boxes),
                               ("gt_bbox_list", [100, 40, 120, 60] if has_box else None),
                               ("code_count_list", len(codes)), ("tool_exec_success_ratio_list", 0.0),
                               ("required_transforms_list", [CV_TRANSFORM[o] for o in req])):
                meta[key].append(value)
            text = response_text(tr)
            answer = scoring["extract_answer"](text)
            correct.append(answer is not None and scoring["are_answers_equivalent"](answer, "B"))  # no judge: 0
            fmts.append(fmt._compute_format_reward(text))
        stats = agg._compute_tool_reward_group_stats(list(range(4)), meta["used_any_tool_list"], correct)
        base = {"base_scores": types.SimpleNamespace(dtype=None, device=None)}
        released = [agg._compute_tool_reward_for_sample(idx=i, base=base, meta=meta, params=params, group_stats=stats,
                                                        is_correct=correct[i], format_reward=fmts[i])["r_total"]
                    for i in range(4)]
        ours = [b.total for b in rs.score(trajs)]
        assert ours == pytest.approx(released, abs=1e-9), (g, [[s.code for s in tr.steps] for tr in trajs])


# ---- DeepEyes, CodeV, PyVision-RL, Pixel-Reasoner ------------------------------------------------------------------

def test_deepeyes_set_equals_the_released_reward() -> None:
    text = source("DeepEyes", "verl/utils/reward_score/vl_agent.py")
    seen: dict[str, str] = {}

    def create(model: str, messages: list, seed: int | None = None, temperature: float | None = None) -> Any:
        answer = messages[-1]["content"].split("[Model_answer] :")[-1].split("Judgement:")[0].strip()
        seen["answer"] = answer
        return judge_reply("Judgement: 1" if answer == "B" else "Judgement: 0")

    client = types.SimpleNamespace(chat=types.SimpleNamespace(completions=types.SimpleNamespace(create=create)))
    released = functions(text, {"get_chat_template", "get_gpt4_score_ICE", "get_prompt", "compute_score"},
                         env={"client_list": [client], "model_name_list": ["judge"]})
    rs = load_reward_set("configs/rewards/deepeyes.yaml")
    finals = ["<answer>B</answer>", "<think>x</think><answer>B</answer>", "<answer>A</answer><answer>B</answer>",
              "<answer>B</answer><answer>A</answer>", "<think>t<answer>B</answer>", "<answer>B", "B",
              "<answer>" + "B" * 1200 + "</answer>", "<think>a</think><think>b</think><answer> B </answer>"]
    rng = random.Random(3)
    for i in range(300):
        steps = [("c = image.crop((1, 1, 9, 9))", rng.choice([crop((1, 1, 9, 9)), ok(stdout="x"), failed(line=1)]))
                 for _ in range(rng.randint(0, 3))]
        tr = trajectory(task(tid=f"t{i}"), steps, answer="B", final_text=rng.choice(finals), tid=f"r{i}", group=None)
        # the decoded response holds one vision-token pair per image a tool returned
        decoded = "\n".join(t.text + "<|vision_start|><|image_pad|><|vision_end|>" * len(t.image_indices)
                            for t in tr.turns)
        assert rs.score([tr])[0].total == pytest.approx(released["compute_score"](decoded, "B", {"question": "q"}))


def test_codev_set_equals_the_released_reward_without_the_judge_term() -> None:
    text = source("CodeV_internal", "rl/verl/utils/reward_score/vl_agent.py")
    stubs = {"rule_math_verify": lambda gold, answer: gold.strip() == answer.strip(),
             "generative_verify": lambda q, gold, answer: False, "rubrics_judge": lambda *a, **k: 0.0}
    names = ["RUBRIC_VS_USAGE", "RUBRICS_JUDGE_SYSTEM_PROMPT_VS", "RUBRIC_CALCULATION_USAGE",
             "RUBRICS_JUDGE_SYSTEM_PROMPT_CALCULATION", "RUBRIC_ICON_USAGE", "RUBRICS_JUDGE_SYSTEM_PROMPT_ICON"]
    released = functions(text, {"extract_answer", "check_format_errors", "extract_and_verify_answer",
                                "compute_score_generative"}, env={**stubs, **dict.fromkeys(names, "")})
    data = yaml.safe_load(Path("configs/rewards/tapo_code.yaml").read_text())
    data["components"] = [e for e in data["components"] if e["name"] != "tapo_process"]  # the judge term: 0 both
    rs = reward_set_from_config(data)
    finals = ["<answer>B</answer>", "<think>x</think><answer>B</answer>", "<answer>A</answer><answer>B</answer>",
              "<answer>B</answer><answer>A</answer>", "<think>t<answer>B</answer>", "<answer>B", "so \\boxed{B}",
              "<think>a</think> \\boxed{A} and \\boxed{B}", "<answer>B</answer><code>x</code>", "<answer></answer>",
              "<think><answer>A</answer></think><answer>B</answer>", "<answer>B</answer></think>", "nothing"]
    rng = random.Random(5)
    for i in range(300):
        steps = [("x = 1", rng.choice([ok(), failed(line=1)])) for _ in range(rng.randint(0, 2))]
        tr = trajectory(task(tid=f"t{i}"), steps, answer="B", final_text=rng.choice(finals), tid=f"r{i}", group=None,
                        protocol="codev")
        want = released["compute_score_generative"](response_text(tr), "B", {"question": "q"}, data_source="vstar")
        assert rs.score([tr])[0].total == pytest.approx(want["score"])


def test_pyvision_rl_set_equals_the_released_reward() -> None:
    text = source("PyVision-RL", "verl_agents/verl/utils/reward_score/multi_task_verifier.py")
    gold = {"text": ""}
    seen: dict[str, str] = {}

    class Client:
        def __init__(self, **_: Any) -> None:
            self.chat = types.SimpleNamespace(completions=types.SimpleNamespace(create=self.create))

        def create(self, **_: Any) -> Any:
            return judge_reply("Judgement: 1" if seen["answer"] == gold["text"] else "Judgement: 0")

    def get_prompt(answer_text: str, *_: Any) -> str:
        seen["answer"] = answer_text
        return "prompt"

    released = functions(text, {"extract_answer", "compute_score"}, env={"OpenAI": Client, "get_prompt": get_prompt})
    rs = load_reward_set("configs/rewards/pyvision_rl.yaml")
    rng = random.Random(11)
    for i in range(300):
        gold["text"] = "B" * rng.choice([1, 1, 1000])
        steps: list[tuple[str, ExecResult | None]] = [("x", rng.choice([ok(), failed(line=1)]))
                                                      for _ in range(rng.randint(0, 3))]
        if steps and rng.random() < 0.2:
            steps.append(("y", None))
        a = rng.choice([gold["text"], "A"])
        final = rng.choice([f"<answer>\n\\boxed{{{a}}}\n</answer>", f"<answer>\\boxed{{{a}}}</answer>",
                            f"<answer>\n\\boxed{{{a}}}\n</answer><answer>", f"<answer>\n\\boxed{{\\boxed{{{a}}}}}\n</answer>"])
        tr = trajectory(task(gold["text"], "text", evidence=(), tid=f"t{i}"), steps, answer=a, final_text=final,
                        tid=f"r{i}", group=None, protocol="pyvision")
        decoded = "\n".join(t.text + ("</interpreter>" if t.role == "observation" else "") for t in tr.turns)
        score = released["compute_score"](decoded, gold["text"], {"question": "q"}, {"api_key": "", "base_url": "",
                                                                                   "model_name": "judge"}, "vstar")
        env_reward = 0.1 * sum(1 for s in tr.steps if s.result is not None)  # per executed call, errors included
        want = score["score"] + (env_reward if score["is_answer_right"] else 0.0)
        assert rs.score([tr])[0].total == pytest.approx(want)


def test_pixel_reasoner_set_equals_the_released_shaping() -> None:
    text = source("Pixel-Reasoner", "curiosity_driven_rl/openrlhf/trainer/ppo_utils/experience_maker.py")
    lines = text.splitlines()
    start = next(i for i, line in enumerate(lines) if "for idx in range(0, len(rets_round1), nsample):" in line)
    end = next(i for i, line in enumerate(lines) if "uniformity.extend([float(is_uniform)]*nsample)" in line)
    loop = compile(textwrap.dedent("\n".join(lines[start:end + 1])), "<experience_maker>", "exec")
    rs: RewardSet = load_reward_set("configs/rewards/pixel_reasoner.yaml")
    rng = random.Random(13)
    for g in range(200):
        trajs, calls, flags, correct = [], [], [], []
        for k in range(8):
            steps: list[tuple[str, ExecResult | None]] = [("x", rng.choice([ok(), ok(), failed(line=1)]))
                                                          for _ in range(rng.choice([0, 0, 0, 1, 2, 3]))]
            if steps and rng.random() < 0.2:
                steps.append(("y", None))  # requested, never executed: counted by num_toolcalls
            answer = rng.choice(["B", "A"])
            trajs.append(trajectory(task(tid=f"t{g}"), steps, answer=answer, tid=f"g{g}r{k}", group=f"g{g}"))
            executed = [r for _, r in steps if r is not None]
            calls.append(len(steps))
            flags.append(bool(executed) and executed[-1].status.value != "ok")
            correct.append(1.0 if answer == "B" else 0.0)
        env: dict[str, Any] = {"np": np, "rets_round1": [(c,) for c in correct], "nsample": 8, "num_toolcalls": calls,
                               "all_video_flags": [False] * 8, "final_error_flags": flags, "shaped_rewards": [],
                               "curiosity_bonus": [], "penalty_bonus": [], "uniformity": [], "efficiency_labels": []}
        exec(loop, env)  # noqa: S102 - the released group loop, one group per batch (its index bug is then moot)
        assert [b.total for b in rs.score(trajs)] == pytest.approx(env["shaped_rewards"])

