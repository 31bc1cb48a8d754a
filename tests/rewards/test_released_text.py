"""The released rewards' readings of the response text (`rewards.released_text`): which answer each scores and its
format check, hand-derived from the released lines quoted in the comments:

- CodeVision (ByteDance-BandAI/CodeVision @ e098588): recipe/codevision/reward.py `extract_answer`,
  verl/workers/reward_manager/uvtr.py `_compute_format_reward`;
- CodeV (RenlyH/CodeV_internal @ c7eed11): rl/verl/utils/reward_score/vl_agent.py `extract_answer`,
  `check_format_errors`, `extract_and_verify_answer`;
- DeepEyes (Visual-Agent/DeepEyes @ 6c5e796): verl/utils/reward_score/vl_agent.py `compute_score`;
- PyVision-RL (agents-x-project/PyVision-RL @ 62ca599): verl/utils/reward_score/multi_task_verifier.py
  `compute_score`, `extract_answer`.
"""

from __future__ import annotations

import pytest

from rewards import RewardSet, build_component, load_reward_set
from rewards.codevision_scoring import codevision_equivalent
from rewards.released_text import (codev_answer, codev_format_ok, codevision_answer, codevision_format_ok,
                                   deepeyes_format_error, pick_answer)
from rollout.trajectory import FinishReason
from tests.rewards.builders import crop, ok, task, trajectory


@pytest.mark.parametrize("text, answer", [
    # `matches = re.findall(r"<answer>(.*?)</answer>", cleaned)`; `return matches[-1].strip()`
    ("<think>a</think><answer>A</answer> more <answer> B </answer>", "B"),
    # tool responses are removed first; no complete pair: `parts = cleaned.strip().split("<answer>")` -> parts[-1]
    ("<tool_response><answer>Z</answer></tool_response> x <answer>B ", "B"),
    # no tag: `lines[-1].strip() if lines and len(lines) < 500`
    ("I looked closely.\n  The answer is B  ", "The answer is B"),
    ("x\n" * 500, None),
    ("", None),
])
def test_codevision_answer(text: str, answer: str | None) -> None:
    assert codevision_answer(text) == answer


@pytest.mark.parametrize("text, require_think, ok_", [
    ("<think>a</think><answer>B</answer>", True, True),
    # `if not stripped_text.startswith("<think>"): return 0.0`
    ("<answer>B</answer>", True, False),
    ("<answer>B</answer>", False, True),
    # `if len(answer_matches) != 1: return 0.0`
    ("<think>a</think><answer>B</answer><answer>C</answer>", True, False),
    # `re.search(r"<answer>.*?</answer>\s*$", ...)`: the answer ends the text
    ("<think>a</think><answer>B</answer> trailing", True, False),
    # `len(open_think_tags) != len(close_think_tags)`
    ("<think>a</think><think>b<answer>B</answer>", True, False),
    # tool responses are removed before the checks; trailing whitespace is fine
    ("<think>a</think><code>x</code><tool_response><answer>Q</answer></tool_response><think>b</think>"
     "<answer>B</answer>\n", True, True),
])
def test_codevision_format(text: str, require_think: bool, ok_: bool) -> None:
    assert codevision_format_ok(text, require_think) is ok_


@pytest.mark.parametrize("text, answer, format_ok", [
    ("<think>a</think><code>x</code><answer>B</answer>", "B", True),
    # the last answer counts; `has_format_error = predict_no_think.count("<answer>") > 1`
    ("<answer>A</answer><answer>B</answer>", "B", False),
    # after the last `</think>` there is no <answer>: `re.findall(r'\\boxed{([^}]+)}', ...)` -> the last one
    ("<think><answer>A</answer></think> so \\boxed{B}", "B", True),
    # unclosed: `extract_answer` returns None; no boxed -> `return 0.0, True`
    ("<answer>B", None, False),
    # an empty answer is an answer (not None): no format error, scored as a (wrong) answer
    ("<code>print(1)</code><answer></answer>", "", True),
    # `predict_after_answer.count("<code>") > 0`
    ("<answer>B</answer><code>x</code>", "B", False),
    # `count_think_open != count_think_close`
    ("<think>a<answer>B</answer>", "B", False),
])
def test_codev_answer_and_format(text: str, answer: str | None, format_ok: bool) -> None:
    assert codev_answer(text)[0] == answer
    assert codev_format_ok(text) is format_ok


def test_deepeyes_format_error() -> None:
    assert deepeyes_format_error("<think>a<answer>B</answer>")  # think 1 vs 0
    assert deepeyes_format_error("<think>a</think><answer>B")  # answer tags after </think>: 1 vs 0
    assert not deepeyes_format_error("<answer>A</answer><answer>B</answer>")  # balanced: not an error
    assert not deepeyes_format_error("no tags at all")


def test_pyvision_rules() -> None:
    t = task()
    exact = trajectory(t, [], answer="B", final_text="<answer>\n\\boxed{B}\n</answer>")
    plain = trajectory(t, [], answer="B", final_text="<answer>\\boxed{B}</answer>")
    unclosed = trajectory(t, [], answer="B", final_text="<answer>\\boxed{B}", events=["unclosed_answer"])
    # `pattern = r'<answer>\n\\boxed\{(.*?)\}\n</answer>'` needs the newlines
    assert pick_answer(exact, "pyvision") == "B" and pick_answer(plain, "pyvision") is None
    # the lenient rule keeps the protocol's answer when the tags balance, none otherwise
    assert pick_answer(plain, "closed") == "B" and pick_answer(unclosed, "closed") is None
    assert pick_answer(unclosed, "protocol") == "B"
    nested = trajectory(t, [], answer="x", final_text="<answer>\n\\boxed{\\boxed{B}}\n</answer>")
    assert pick_answer(nested, "pyvision") is None  # `"\\boxed" in answer_text` -> score 0


def test_the_codevision_protocol_writes_what_the_released_format_reward_accepts() -> None:
    from rollout.protocols import get_protocol

    p = get_protocol("codevision")
    text = (p.format_assistant("Rotate it upright first.", code="image = image.rotate(90)") +
            "\n<tool_response>\nok\n</tool_response>\n" + p.format_assistant("It reads 42.", answer="42"))
    assert codevision_format_ok(text)  # opens with <think>, balanced, one answer at the end


def test_the_pyvision_protocol_writes_the_layout_the_released_verifier_reads() -> None:
    from rollout.protocols import get_protocol

    text = get_protocol("pyvision").format_assistant("So it is B.", answer="B")
    t = task()
    assert pick_answer(trajectory(t, [], answer="B", final_text=text), "pyvision") == "B"


def test_codev_set_scores_the_last_answer_and_penalises_two() -> None:
    """tapo_code's answer and format (the judge part aside): the final message holds two answers, A then B, the
    gold is B. The protocol keeps the first (A); CodeV reads the last: acc 1, format 0 (two answer tags).
    1.0 * 1 + 0.3 * 0 = 1.0."""
    t = task()
    tr = trajectory(t, [], answer="A", final_text="<answer>A</answer><answer>B</answer>", events=["two_answers"])
    rs = RewardSet([build_component("answer_accuracy", params={"answer_rule": "codev"}),
                    build_component("codev_format", weight=0.3)])
    (b,) = rs.score([tr])
    assert b.value("answer_accuracy") == 1.0 and b.value("codev_format") == 0.0
    assert b.total == pytest.approx(1.0)
    # a clean trajectory with a step: 1 + 0.3 = 1.3
    clean = trajectory(t, [("c = image_clue_0.crop((1, 1, 9, 9))", crop((1, 1, 9, 9)))], answer="B")
    assert rs.score([clean])[0].total == pytest.approx(1.3)


def test_pyvision_set_unclosed_answer_and_long_answer() -> None:
    """pyvision_rl: `if is_format_error: score 0, is_answer_right False` (unbalanced answer tags: 2 `<answer>`,
    1 `</answer>`), so neither
    accuracy nor the env reward: 0. A right answer of >= 1000 characters: `acc_reward = 0.0` but
    `is_answer_right` stays True, so the env reward 0.1 * 2 calls is still added: 0.2."""
    rs = load_reward_set("configs/rewards/pyvision_rl.yaml")
    t = task("B" * 1000, "text", evidence=())
    two = [("a", ok()), ("b", ok())]
    boxed = "<answer>\n\\boxed{" + "B" * 1000 + "}\n</answer>"  # the released layout
    unclosed = trajectory(t, two, answer="B" * 1000, final_text=boxed + "<answer>", events=["two_answers"])
    long = trajectory(t, two, answer="B" * 1000, final_text=boxed, tid="long")
    assert [b.total for b in rs.score([unclosed, long])] == pytest.approx([0.0, 0.2])


def test_deepeyes_set_scores_the_last_answer() -> None:
    """deepeyes: `answer_text = predict_str.split("<answer>")[-1].split("</answer>")[0]` is the last answer (B,
    right); the tags balance, so no format error; an image came back: 0.8 + 1.2 = 2.0."""
    rs = load_reward_set("configs/rewards/deepeyes.yaml")
    tr = trajectory(task(), [("c", crop((1, 1, 9, 9)))], answer="A", final_text="<answer>A</answer><answer>B</answer>")
    assert rs.score([tr])[0].total == pytest.approx(2.0)


def test_codevision_code_set_reads_an_untagged_last_line() -> None:
    """codevision_code: the model ends without answer tags ("The answer is B"); the protocol records no answer, but
    reward.py `extract_answer` takes the last line and its rule finds the letter B (`re.findall(r"\\b([A-D])\\b",
    text)`): correct. S_req is empty, no code: r_mand 0 (no gate: crop not required), exact 0 (empty S_req),
    emerge 0, c_usage 0, r_spur 0, fmt 0 (no <think>): total 1.0 (0 under the protocol's answer)."""
    rs = load_reward_set("configs/rewards/codevision_code.yaml")
    tr = trajectory(task(), [], answer=None, final_text="I checked it.\nThe answer is B",
                    finish=FinishReason.STOPPED, events=["no_code_no_answer"])
    (b,) = rs.score([tr])
    assert b.value("codevision_code_accuracy") == 1.0
    assert b.total == pytest.approx(1.0)
    # after a code step the last line is still the final message's own: "B" (not glued to the tool output)
    after = trajectory(task(), [("x = 1", ok(stdout="1"))], answer=None, final_text="B",
                       finish=FinishReason.STOPPED, events=["no_code_no_answer"])
    assert pick_answer(after, "codevision") == "B"


@pytest.mark.parametrize("prediction, gold, equal", [
    ("B", "B", True),  # `float()` fails on both -> `prediction == ground_truth`
    ("b", "B", True),  # choice gold: `re.findall(r"\b([A-D])\b", text.upper())[-1]` = "B"
    ("(C) since A is wrong", "A", True),  # the LAST standalone letter: A
    ("Red", "red", False),  # no number, no letter rule: rejected (the LLM judge would decide; 0 without one)
    ("12 apples", "12", True),  # `re.findall(r"[-+]?\d*\.?\d+", ...)[-1]` = "12"
    ("100.05", "100", False),  # |100.05 - 100| > 1e-4
    ("3.50004", "3.5", True),  # |Fraction| difference 4e-5 <= 1e-4
    ("1/2", "0.5", False),  # `float("1/2")` fails; last number "2"
    ("0427", "427", True),  # `float(prediction) == float(ground_truth)`
])
def test_codevision_answer_rule(prediction: str, gold: str, equal: bool) -> None:
    assert codevision_equivalent(prediction, gold) is equal


def test_codevision_code_accuracy_uses_the_released_rule() -> None:
    """Text gold "red", answer "Red": reward.py's rules reject it and, without a judge, compute_score returns
    0.0 (`LLMJudgeClient.verify`: `if not self.client: return 0.0`); this package's rules accept it."""
    t = task("red", "text", evidence=())
    tr = trajectory(t, [], answer="Red")
    released = RewardSet([build_component("codevision_code_accuracy")])
    assert released.score([tr])[0].total == 0.0
    package = RewardSet([build_component("codevision_code_accuracy", params={"rules": "package"})])
    assert package.score([tr])[0].total == 1.0
