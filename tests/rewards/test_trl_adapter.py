"""The TRL adapter: called exactly as TRL's GRPOTrainer calls a custom reward function
(`f(prompts=..., completions=..., completion_ids=..., **dataset_columns, trainer_state=..., log_extra=...,
log_metric=...)`), returning one float or None per completion."""

from __future__ import annotations

import pytest

from rewards import RewardSet, TRLRewardFunction, build_component, load_reward_set
from rewards.trl_adapter import completion_texts, trajectory_from_text
from tests.rewards.builders import task


def trl_call(fn: TRLRewardFunction, prompts: list, completions: list, **columns: list) -> tuple[list, dict]:
    logged: dict[str, float] = {}
    out = fn(prompts=prompts, completions=completions, completion_ids=[[1, 2]] * len(completions),
             trainer_state=object(), log_extra=lambda *a, **k: None, log_metric=lambda k, v: logged.__setitem__(k, v),
             **columns)
    return out, logged


def test_reward_set_as_a_trl_reward_function() -> None:
    fn = TRLRewardFunction(load_reward_set("configs/rewards/deepeyes.yaml"))
    assert fn.__name__ == "codevl_deepeyes"  # TRL names reward functions by __name__
    prompts = [[{"role": "user", "content": "q1"}]] * 2 + [[{"role": "user", "content": "q2"}]] * 2
    completions = [[{"role": "assistant", "content": "Looks like a dog. <answer>B</answer>"}],
                   [{"role": "assistant", "content": [{"type": "text", "text": "so \\boxed{B}"}]}],
                   [{"role": "assistant", "content": "<answer>A</answer>"}],
                   [{"role": "assistant", "content": "I don't know"}]]
    out, logged = trl_call(fn, prompts, completions, answer=["B", "B", "B", "B"], answer_type=["choice"] * 4,
                           choices=[["cat", "dog"]] * 4)
    # 0.8 acc - 0.2 [format error] (+ 1.2 tool bonus: no code ran in text-only scoring); no tag imbalance here,
    # so the two correct answers score 0.8 each, the wrong one and the non-answer 0 (DeepEyes: no answer tag is
    # not a format error)
    assert out == pytest.approx([0.8, 0.8, 0.0, 0.0])
    assert logged["reward/deepeyes_accuracy/mean"] == 0.5 and logged["reward/total/mean"] == pytest.approx(0.4)


def test_single_component_and_not_applicable_values() -> None:
    fn = TRLRewardFunction(build_component("format", weight=0.5))
    assert fn.__name__ == "codevl_format"
    out, _ = trl_call(fn, ["p", "p"], ["<answer>x</answer>", "<code>\n```python\nprint(1)\n```\n</code>"], answer=["x", "x"])
    assert out == [0.5, 0.0]
    faithful = TRLRewardFunction(build_component("faithful_crop"))
    out, _ = trl_call(faithful, ["p"], ["<answer>x</answer>"], answer=["x"])  # no evidence boxes: n/a -> None
    assert out == [None]


def test_task_column_groups_and_code_steps() -> None:
    t = task(12, "number", evidence=(), tid="count")
    rs = RewardSet([build_component("answer_accuracy"), build_component("codevision_suggested_tool", weight=1.0),
                    build_component("exec_error", weight=-1.0)])
    fn = TRLRewardFunction(rs, name="mine")
    completions = ["<code>\n```python\nprint(1)\n```\n</code>", "<answer>12</answer>", "<answer>\\boxed{12}</answer>"]
    out, _ = trl_call(fn, ["p", "p", "p"], completions, task=[t.model_dump(), t, t.model_dump_json()])
    # steps were not run, so nobody "used a tool" and a block that never ran is not a failed call
    assert out == [0.0, 1.0, 1.0] and fn.__name__ == "mine"


def test_helpers() -> None:
    assert completion_texts("abc") == ["abc"]
    assert completion_texts([{"role": "assistant", "content": "a"}, {"role": "tool", "content": "x"},
                             {"role": "assistant", "content": [{"type": "text", "text": "b"}, {"type": "image"}]}]) == ["a", "b"]
    tr = trajectory_from_text(["<code>\n```python\nx = 1\n```\n</code>", "<answer>7</answer>"], task("7", "text"))
    assert len(tr.steps) == 1 and tr.steps[0].result is None and tr.steps[0].skipped == "not_executed"
    assert tr.answer == "7" and tr.finish_reason.value == "answered"
    with pytest.raises(ValueError, match="needs a 'task' column"):
        TRLRewardFunction(build_component("format"))(prompts=["p"], completions=["x"])
