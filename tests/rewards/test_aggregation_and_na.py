"""Step aggregation declared per set (issue 14 item 11) and n/a never disguised as 0 (item 10): the breakdown
contract the RL trainer relies on, hand-computed."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from rewards import RewardConfigError, RewardSet, build_component, load_reward_set, reward_metrics
from rewards.breakdown import RewardBreakdown
from tests.rewards.builders import crop, failed, ok, task, trajectory

SHIPPED = sorted(Path("configs/rewards").rglob("*.yaml"))


def test_a_step_component_sums_or_averages_its_executed_steps_as_the_set_declares() -> None:
    # exec_success on [ok, failed, never executed]: values [1, 0, n/a]
    tr = trajectory(task(), [("a", ok()), ("b", failed()), ("c", None)])
    summed = RewardSet([build_component("exec_success", weight=0.4, reduce="sum")]).score([tr])[0]
    averaged = RewardSet([build_component("exec_success", weight=0.4, reduce="mean")]).score([tr])[0]
    # sum: 0.4 * (1 + 0) = 0.4, on step 0; mean over the 2 executed steps: 0.4 * (1 + 0) / 2 = 0.2
    assert summed.components["exec_success"].steps == [1.0, 0.0, None]
    assert summed.steps == pytest.approx([0.4, 0.0, 0.0]) and summed.total == pytest.approx(0.4)
    assert averaged.steps == pytest.approx([0.2, 0.0, 0.0]) and averaged.total == pytest.approx(0.2)
    assert averaged.components["exec_success"].value == 0.5 and averaged.components["exec_success"].reduce == "mean"
    # the contract: total = episode + sum(steps); episode holds only episode/group components; one share per step
    for b in (summed, averaged):
        assert b.total == pytest.approx(b.episode + sum(b.steps)) and b.episode == 0.0 and len(b.steps) == 3


def test_episode_and_step_parts_of_a_mixed_set() -> None:
    rs = RewardSet([build_component("answer_accuracy", weight=1.0), build_component("exec_error", weight=-0.1),
                    build_component("tapo_tool", weight=0.5, params={"mode": "rule"})])
    (b,) = rs.score([trajectory(task(), [("a", crop((90, 30, 130, 70))), ("b", failed())], answer="B")])
    # episode: 1.0 * 1 = 1.0; tapo_tool (mean): [1, -1] / 2 -> shares [0.25, -0.25]; exec_error (sum): [0, 1] * -0.1
    assert b.episode == 1.0
    assert b.steps == pytest.approx([0.25, -0.35])
    assert b.total == pytest.approx(0.9)  # 1 + 0.5 * 0 - 0.1
    assert RewardBreakdown.from_dict(b.to_dict()) == b


def test_every_shipped_set_declares_how_each_step_component_aggregates() -> None:
    for path in SHIPPED:
        rs = load_reward_set(path)
        text = path.read_text()
        for c in rs:
            if c.scope == "step":
                assert c.reduce in ("sum", "mean")
                assert "reduce:" in text.split(f"name: {c.name}", 1)[1].split("- name:", 1)[0], (path, c.name)
    assert load_reward_set("configs/rewards/codevision.yaml")["codevision_must_use"].reduce == "sum"
    assert load_reward_set("configs/rewards/tapo.yaml")["tapo_tool"].reduce == "mean"


def test_reduce_mistakes_are_clear_errors(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text("components:\n  - name: format\n    reduce: sum\n  - name: exec_error\n    reduce: median\n")
    with pytest.raises(RewardConfigError) as exc:
        load_reward_set(p)
    msg = str(exc.value)
    assert f"{p}:3: components[0].reduce only step components aggregate steps; 'format' has scope 'episode'" in msg
    assert f"{p}:5: components[1].reduce must be 'sum' or 'mean', got 'median'" in msg
    with pytest.raises(ValueError, match="contradicts params.reduce 'sum'"):
        build_component("tapo_tool", params={"reduce": "sum"}, reduce="mean")


def test_na_is_counted_never_scored_zero_and_warned_once_per_run(caplog: pytest.LogCaptureFixture) -> None:
    rs = RewardSet([build_component("answer_accuracy"), build_component("tapo_tool", weight=0.5, params={"mode": "rule"}),
                    build_component("codevision_suggested_tool", weight=0.2), build_component("faithful_crop", weight=0.0)])
    no_box = task(evidence=(), tid="no_box")
    trs = [trajectory(no_box, [("a", crop((0, 0, 50, 50)))], answer="B", tid="x", group=None),
           trajectory(task(tid="boxed"), [("a", crop((90, 30, 130, 70)))], answer="B", tid="y", group=None)]
    with caplog.at_level(logging.WARNING, logger="rewards"):
        bx, by = rs.score(trs)
    # x: tapo_tool has nothing to judge (no box, no judge), no group id for the group component, no box for
    # faithfulness: three n/a, each contributing nothing; total = accuracy 1
    assert set(bx.na()) == {"tapo_tool", "codevision_suggested_tool", "faithful_crop"}
    assert bx.total == 1.0 and all(bx.components[k].contribution == 0.0 for k in bx.na())
    assert by.na() == {"codevision_suggested_tool": "no group id (rollout scored without its group)"}
    assert by.total == pytest.approx(1.5)  # 1 + 0.5 * 1 (hit)
    m = reward_metrics([bx, by])
    assert (m["reward/tapo_tool/na_count"], m["reward/codevision_suggested_tool/na_count"],
            m["reward/faithful_crop/na_count"], m["reward/answer_accuracy/na_count"]) == (1.0, 2.0, 1.0, 0.0)
    assert "reward/codevision_suggested_tool/mean" not in m  # never a mean of made-up zeros
    # one warning per (component, reason), naming the tasks
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 3
    assert any("'tapo_tool' is n/a" in w and "no evidence box" in w and "no_box" in w for w in warnings)
    assert any("'codevision_suggested_tool' is n/a (counted, not scored 0) on 2 task(s)" in w and "no_box, boxed" in w for w in warnings)
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="rewards"):
        rs.score(trs)
    assert caplog.records == []  # once per run
    assert rs.na_seen[("tapo_tool", bx.na()["tapo_tool"])] == {"no_box"}


def test_an_empty_reward_set_is_an_error() -> None:
    with pytest.raises(RewardConfigError, match="has no components"):
        RewardSet([])
