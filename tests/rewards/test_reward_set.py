"""Reward-set composition: the breakdown formulas, scopes, weights, failures, groups and the recorded dict."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence

import pytest

from rewards import (
    ComponentError,
    ComponentValue,
    JudgeFailed,
    RewardBreakdown,
    RewardComponent,
    RewardConfigError,
    RewardSet,
    build_component,
    reward_metrics,
)
from rewards.context import ScoringContext
from rewards.params import ComponentParams
from rollout.trajectory import FinishReason, Trajectory
from tests.rewards.builders import crop, failed, ok, task, trajectory


def _set(*entries: tuple[str, float, dict]) -> RewardSet:
    return RewardSet([build_component(n, weight=w, params=p) for n, w, p in entries], name="test")


def test_episode_and_step_components_combine_exactly() -> None:
    rs = _set(("answer_accuracy", 1.0, {}), ("format", 0.1, {}), ("exec_error", -0.05, {}), ("exec_success", 0.2, {}))
    tr = trajectory(task(), [("a", ok()), ("b", failed()), ("c", ok())], answer="B")
    (b,) = rs.score([tr])
    # episode = 1.0 * 1 + 0.1 * 1 = 1.1
    assert b.episode == pytest.approx(1.1)
    # exec_error (sum): -0.05 * [0, 1, 0]; exec_success (mean over 3 steps): 0.2 * [1, 0, 1] / 3
    assert b.steps == pytest.approx([0.2 / 3, -0.05, 0.2 / 3])
    # total = 1.1 + 0.4 / 3 - 0.05 = 1.18333...
    assert b.total == pytest.approx(1.1 + 0.4 / 3 - 0.05)
    assert b.total == b.episode + sum(b.steps)
    c = b.components
    assert (c["exec_success"].value, c["exec_success"].steps, c["exec_success"].reduce) == (pytest.approx(2 / 3), [1.0, 0.0, 1.0], "mean")
    assert (c["exec_error"].value, c["exec_error"].contribution) == (1.0, pytest.approx(-0.05))
    assert c["answer_accuracy"].scope == "episode" and c["answer_accuracy"].info["correct"] is True
    assert tr.reward == b.to_dict()  # recorded
    assert RewardBreakdown.from_dict(json.loads(json.dumps(tr.reward))) == b


def test_no_code_steps() -> None:
    rs = _set(("answer_accuracy", 1.0, {}), ("exec_error", -0.05, {}), ("exec_success", 0.2, {}))
    (b,) = rs.score([trajectory(task(), [], answer="C")])
    assert b.steps == [] and b.total == 0.0 and b.episode == 0.0
    assert b.components["exec_error"].value == 0.0 and b.components["exec_error"].status == "ok"  # sum of nothing
    assert b.components["exec_success"].status == "n/a"  # a rate over no steps is undefined
    m = reward_metrics([b])
    assert "reward/exec_success/mean" not in m and m["reward/exec_success/na"] == 1.0


def test_all_failed_steps() -> None:
    rs = _set(("exec_error", -0.05, {}), ("exec_success", 1.0, {}))
    (b,) = rs.score([trajectory(task(), [("a", failed()), ("b", failed("timeout")), ("c", failed("crashed"))])])
    # every step: -0.05 (failed) + 1.0 * 0 / 3
    assert b.steps == pytest.approx([-0.05, -0.05, -0.05]) and b.total == pytest.approx(-0.15)
    assert b.components["exec_success"].value == 0.0
    # only chosen statuses count as failed calls
    rs = _set(("exec_error", -1.0, {"statuses": ["timeout"]}))
    (b,) = rs.score([trajectory(task(), [("a", failed()), ("b", failed("timeout")), ("c", None)])])
    assert b.steps == [0.0, -1.0, 0.0]


def test_weight_zero_is_computed_and_logged_not_trained_on() -> None:
    rs = _set(("answer_accuracy", 0.0, {}), ("format", 1.0, {}))
    (b,) = rs.score([trajectory(task(), answer="B")])
    assert b.total == 1.0 and b.components["answer_accuracy"].value == 1.0
    assert b.components["answer_accuracy"].contribution == 0.0
    assert reward_metrics([b])["reward/answer_accuracy/mean"] == 1.0


class _Boom(RewardComponent):
    name = "boom"
    scope = "episode"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        if traj.id == "bad":
            raise KeyError("no such thing")
        return 1.0


class _Judgy(RewardComponent):
    name = "judgy"
    scope = "step"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float]:
        if traj.id == "bad":
            raise JudgeFailed("judge timed out after 3 attempts")
        return [0.5] * len(traj.steps)


class _Shape(RewardComponent):
    name = "shape"
    scope = "step"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> list[float]:
        return [1.0]


class _NaN(RewardComponent):
    name = "nan"
    scope = "episode"

    def score(self, traj: Trajectory, ctx: ScoringContext) -> float:
        return math.nan


def test_an_exception_names_the_component_and_the_trajectory() -> None:
    rs = RewardSet([_Boom(label="my_boom")])
    with pytest.raises(ComponentError, match=r"reward component 'my_boom' failed on trajectory 'bad': KeyError") as exc:
        rs.score([trajectory(task(), tid="good"), trajectory(task(), tid="bad")])
    assert exc.value.trajectory_ids == ["bad"] and isinstance(exc.value.cause, KeyError)
    two_steps = trajectory(task(), [("a", ok()), ("b", ok())])
    with pytest.raises(ComponentError, match="'shape'.*1 step values for 2 code steps"):
        RewardSet([_Shape()]).score([two_steps])
    with pytest.raises(ComponentError, match="'nan'.*not a finite number"):
        RewardSet([_NaN()]).score([two_steps])


def test_a_failed_judge_is_recorded_not_scored_zero() -> None:
    rs = RewardSet([_Judgy(weight=2.0), build_component("answer_accuracy")])
    good = trajectory(task(), [("a", ok())], tid="good")
    bad = trajectory(task(), [("a", ok())], tid="bad")
    b_good, b_bad = rs.score([good, bad])
    assert b_good.steps == [1.0] and b_good.total == 2.0
    c = b_bad.components["judgy"]
    assert (c.status, c.value, c.contribution, c.error) == ("failed", None, 0.0, "judge timed out after 3 attempts")
    assert b_bad.steps == [0.0] and b_bad.total == 1.0  # excluded from the total, the rest still counts
    assert b_bad.failed() == ["judgy"]
    m = reward_metrics([b_good, b_bad])
    assert m["reward/judgy/failed"] == 0.5 and m["reward/judgy/mean"] == 0.5  # mean over the ok one only


class _GroupSize(RewardComponent):
    name = "group_size"
    scope = "group"

    def score_group(self, trajs: Sequence[Trajectory], ctx: ScoringContext) -> list[float]:
        return [float(len(trajs))] * len(trajs)


def test_groups_by_group_id_explicit_groups_and_empty_input() -> None:
    rs = RewardSet([_GroupSize()])
    trs = [trajectory(task(), tid=f"t{i}", group=g) for i, g in enumerate(["a", "b", "a", None, "a"])]
    bs = rs.score(trs)
    # "b" is a real group of one (it has an id); the rollout without a group id has no group: n/a, not 0 or 1
    assert [b.total for b in bs] == [3.0, 1.0, 3.0, 0.0, 3.0]
    assert bs[3].na() == {"group_size": "no group id (rollout scored without its group)"}
    assert [b.components["group_size"].status for b in bs] == ["ok", "ok", "ok", "n/a", "ok"]
    assert [b.total for b in rs.score(trs, groups=[[0, 1], [], [2, 3, 4]])] == [2.0, 2.0, 3.0, 3.0, 3.0]
    assert rs.score([]) == []
    with pytest.raises(ValueError, match="cover 4 of 5"):
        rs.score(trs, groups=[[0, 1], [2, 3]])
    with pytest.raises(ValueError, match="more than one group"):
        rs.score(trs, groups=[[0, 1, 2], [2, 3, 4]])
    with pytest.raises(ValueError, match="out of range"):
        rs.score(trs, groups=[[0, 1, 2, 3, 4, 5]])


def test_labels_allow_a_component_twice_and_keys_must_be_unique() -> None:
    rs = RewardSet([build_component("answer_accuracy"),
                    build_component("answer_accuracy", label="acc_loose", weight=0.0, params={"rel_tol": 0.1})])
    (b,) = rs.score([trajectory(task(10, "number"), answer="10.5")])
    # 10.5 vs 10: default rel_tol 1e-3 -> wrong; 0.1 -> |0.5| <= 1.0 right
    assert b.components["answer_accuracy"].value == 0.0 and b.components["acc_loose"].value == 1.0
    with pytest.raises(RewardConfigError, match="more than once"):
        RewardSet([build_component("format"), build_component("format")])
    with pytest.raises(RewardConfigError, match="reserved"):
        RewardSet([build_component("format", label="total")])


def test_the_first_accuracy_component_defines_correctness_for_the_others() -> None:
    tr = trajectory(task(10, "number"), [("x", ok())], answer="10.5")
    strict = _set(("answer_accuracy", 1.0, {}), ("deepeyes_tool_bonus", 1.0, {"require_image": False}))
    loose = _set(("answer_accuracy", 1.0, {"rel_tol": 0.1}), ("deepeyes_tool_bonus", 1.0, {"require_image": False}))
    assert strict.score([tr])[0].components["deepeyes_tool_bonus"].value == 0.0
    assert loose.score([tr])[0].components["deepeyes_tool_bonus"].value == 1.0


def test_component_params_are_typed_and_strict() -> None:
    with pytest.raises(ValueError, match="extra"):
        build_component("format", params={"bad_evnts": []})
    assert build_component("tapo_tool").reduce == "mean" and build_component("exec_error").reduce == "sum"
    assert build_component("tapo_tool", params={"reduce": "sum"}).reduce == "sum"

    class P(ComponentParams):
        x: int = 1

    class C(RewardComponent):
        name = "c"
        Params = P

        def score(self, traj: Trajectory, ctx: ScoringContext) -> ComponentValue:
            return ComponentValue(value=float(self.params.x), info={"x": self.params.x})  # type: ignore[attr-defined]

    (b,) = RewardSet([C({"x": 3}, weight=0.5)]).score([trajectory(task())])
    assert b.total == 1.5 and b.components["c"].info == {"x": 3}


def test_record_false_leaves_trajectories_untouched() -> None:
    tr = trajectory(task(), [("a", crop((0, 0, 4, 4)))])
    _set(("format", 1.0, {})).score([tr], record=False)
    assert tr.reward is None


def test_format_reads_the_protocol_events() -> None:
    rs = _set(("format", 1.0, {}))
    good = trajectory(task(), answer="B")
    two = trajectory(task(), answer="B", events=["two_answers"])
    cut = trajectory(task(), [("a", ok())], answer=None, finish=FinishReason.TOKEN_LIMIT, events=["unclosed_code_block"])
    scores = [b.components["format"] for b in rs.score([good, two, cut])]
    assert [s.value for s in scores] == [1.0, 0.0, 0.0]
    assert scores[1].info["problems"] == ["two_answers"]
    assert scores[2].info["problems"] == ["finish:token_limit", "no_answer", "unclosed_code_block"]
    lenient = _set(("format", 1.0, {"bad_events": [], "finish_reasons": ["answered", "token_limit"], "require_answer": False}))
    assert [b.total for b in lenient.score([two, cut])] == [1.0, 1.0]
