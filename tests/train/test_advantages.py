"""Advantages against hand-computed values (stds are sample stds, ddof=1; the arithmetic is in the comments)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from train.advantages import (
    dense_step_advantages,
    discounted_reward_to_go,
    fill_groups,
    informative_groups,
    outcome_advantages,
    token_advantages,
)

# group a: 4 valid; group b: one invalid outlier (5.0); group c: one valid member; group d: all equal
REWARDS = [1.0, 0.0, 1.0, 0.0, 2.0, 0.0, 5.0, 1.0, 3.0, 7.0, 0.5, 0.5]
GROUPS = ["a", "a", "a", "a", "b", "b", "b", "b", "c", "c", "d", "d"]
VALID = [True, True, True, True, True, True, False, True, True, False, True, True]


def test_outcome_group_scale_excludes_invalid_episodes_from_the_statistics() -> None:
    adv = outcome_advantages(REWARDS, GROUPS, VALID, scale="group")
    # a: mean 0.5, centred +-0.5, std = sqrt(4 * 0.25 / 3) = 0.57735 -> +-0.866025
    assert adv[:4] == pytest.approx([0.866025, -0.866025, 0.866025, -0.866025], abs=1e-5)
    # b: valid [2, 0, 1] (the invalid 5.0 is left out): mean 1, centred [1, -1, 0], std sqrt((1 + 1 + 0) / 2) = 1
    # (with the 5.0 the mean would be 2 and every value would differ)
    assert adv[4:8] == pytest.approx([1.0, -1.0, 0.0, 0.0], abs=1e-5)
    # c: one valid member -> 0; the invalid one -> 0.  d: all equal -> centred 0 -> 0
    assert adv[8:] == pytest.approx([0.0, 0.0, 0.0, 0.0], abs=0)


def test_outcome_group_batch_and_no_scaling_differ_as_computed() -> None:
    rewards, groups, valid = [1.0, 0.0, 4.0, 0.0], [0, 0, 1, 1], [True] * 4
    # group: x centred +-0.5, std sqrt(0.5) = 0.70711 -> +-0.70711; y centred +-2, std sqrt(8) -> +-0.70711
    group = outcome_advantages(rewards, groups, valid, scale="group")
    assert group == pytest.approx([0.707107, -0.707107, 0.707107, -0.707107], abs=1e-5)
    # batch: std of [1, 0, 4, 0]: mean 1.25, squared deviations 0.0625 + 1.5625 + 7.5625 + 1.5625 = 10.75,
    # / 3 = 3.58333, sqrt = 1.892969 -> x: +-0.5 / 1.892969 = +-0.264135; y: +-2 / 1.892969 = +-1.056544
    batch = outcome_advantages(rewards, groups, valid, scale="batch")
    assert batch == pytest.approx([0.264135, -0.264135, 1.056544, -1.056544], abs=1e-5)
    # none: centred only
    assert outcome_advantages(rewards, groups, valid, scale="none") == pytest.approx([0.5, -0.5, 2.0, -2.0])


def test_outcome_batch_std_ignores_invalid_rewards() -> None:
    # valid [1, 0] in x; y: an invalid 100 and a valid 3 (alone in its group: advantage 0, but a valid reward of
    # the batch). batch std = std([1, 0, 3]): mean 4/3, squared deviations 1/9 + 16/9 + 25/9 = 42/9, / 2 = 7/3,
    # sqrt = 1.527525 -> x: +-0.5 / 1.527525 = +-0.327327 (with the 100 it would be about 0.01)
    adv = outcome_advantages([1.0, 0.0, 100.0, 3.0], ["x", "x", "y", "y"], [True, True, False, True], scale="batch")
    assert adv == pytest.approx([0.327327, -0.327327, 0.0, 0.0], abs=1e-5)


def test_outcome_rejects_bad_input_with_clear_messages() -> None:
    with pytest.raises(ValueError, match="one entry per episode"):
        outcome_advantages([1.0, 2.0], ["a"], [True, True])
    with pytest.raises(ValueError, match="episode 1 is marked valid"):
        outcome_advantages([1.0, float("nan")], ["a", "a"], [True, True])
    # a NaN on an invalid episode is fine: it is in no statistic
    assert outcome_advantages([1.0, float("nan"), 0.0], ["a"] * 3, [True, False, True]).tolist() == pytest.approx(
        [0.707107, 0.0, -0.707107], abs=1e-5)
    with pytest.raises(ValueError, match="group, batch, none"):
        outcome_advantages([1.0], ["a"], [True], scale="global")  # type: ignore[arg-type]


# one group: e0 two steps, e1 one step, e2 three steps, e3 invalid (its 5s must not count)
STEPS = [[1.0, 0.0], [0.0], [1.0, 1.0, 1.0], [5.0, 5.0]]
SGROUPS = ["g"] * 4
SVALID = [True, True, True, False]


def _lists(out: list[np.ndarray]) -> list[list[float]]:
    return [x.tolist() for x in out]


def test_dense_pooled_over_the_groups_steps() -> None:
    # pool [1, 0, 0, 1, 1, 1]: mean 2/3
    none = dense_step_advantages(STEPS, SGROUPS, SVALID, normalise="pooled", scale="none")
    expect = [[1 / 3, -2 / 3], [-2 / 3], [1 / 3, 1 / 3, 1 / 3], [0.0, 0.0]]
    for got, want in zip(_lists(none), expect, strict=True):
        assert got == pytest.approx(want, abs=1e-9)
    # std: squared deviations 4 * 1/9 + 2 * 4/9 = 12/9, / 5 = 4/15, sqrt = 0.516398
    group = dense_step_advantages(STEPS, SGROUPS, SVALID, normalise="pooled", scale="group")
    assert group[0].tolist() == pytest.approx([0.645497, -1.290994], abs=1e-5)
    assert group[1].tolist() == pytest.approx([-1.290994], abs=1e-5)
    assert group[3].tolist() == [0.0, 0.0]


def test_dense_per_index_uses_only_the_episodes_that_reached_the_index() -> None:
    none = dense_step_advantages(STEPS, SGROUPS, SVALID, normalise="per_index", scale="none")
    # index 0: [1, 0, 1] mean 2/3 -> [1/3, -2/3, 1/3]; index 1: e0 0, e2 1, mean 0.5 -> [-0.5, 0.5];
    # index 2: only e2 -> nothing to compare against -> 0
    expect = [[1 / 3, -0.5], [-2 / 3], [1 / 3, 0.5, 0.0], [0.0, 0.0]]
    for got, want in zip(_lists(none), expect, strict=True):
        assert got == pytest.approx(want, abs=1e-9)
    group = dense_step_advantages(STEPS, SGROUPS, SVALID, normalise="per_index", scale="group")
    # index 0: std sqrt((1/9 + 4/9 + 1/9) / 2) = 0.57735 -> [0.57735, -1.154701, 0.57735]
    # index 1: two values -> +-0.5 / (0.5 * sqrt 2) = +-0.707107
    assert group[0].tolist() == pytest.approx([0.57735, -0.707107], abs=1e-5)
    assert group[1].tolist() == pytest.approx([-1.154701], abs=1e-5)
    assert group[2].tolist() == pytest.approx([0.57735, 0.707107, 0.0], abs=1e-5)


def test_dense_reward_to_go() -> None:
    # G2 = 3, G1 = 2 + 0.5 * 3 = 3.5, G0 = 1 + 0.5 * 3.5 = 2.75
    assert discounted_reward_to_go([1.0, 2.0, 3.0], 0.5).tolist() == [2.75, 3.5, 3.0]
    out = dense_step_advantages(STEPS, SGROUPS, SVALID, normalise="pooled", reward_to_go=True, gamma=0.5,
                                scale="none")
    # e0: [1 + 0.5 * 0, 0] = [1, 0]; e1: [0]; e2: [1 + 0.5 * 1.5, 1 + 0.5 * 1, 1] = [1.75, 1.5, 1]
    # pool sum 1 + 0 + 0 + 1.75 + 1.5 + 1 = 5.25, mean 0.875
    expect = [[0.125, -0.875], [-0.875], [0.875, 0.625, 0.125], [0.0, 0.0]]
    for got, want in zip(_lists(out), expect, strict=True):
        assert got == pytest.approx(want, abs=1e-9)


def test_dense_batch_scale_and_separate_groups() -> None:
    steps = [*STEPS, [2.0], [0.0], []]
    groups = [*SGROUPS, "h", "h", "h"]
    valid = [*SVALID, True, True, True]
    out = dense_step_advantages(steps, groups, valid, normalise="pooled", scale="batch")
    # batch pool of valid steps [1, 0, 0, 1, 1, 1, 2, 0]: mean 0.75, sum sq 8 - 8 * 0.5625 = 3.5, / 7 = 0.5,
    # std 0.707107. h: mean 1 -> [1] / 0.707107 = 1.414214, [-1] -> -1.414214; g: (1 - 2/3) / 0.707107 = 0.471405
    assert out[4].tolist() == pytest.approx([1.414214], abs=1e-5)
    assert out[5].tolist() == pytest.approx([-1.414214], abs=1e-5)
    assert out[6].tolist() == []  # an episode without code steps
    assert out[0].tolist() == pytest.approx([0.471405, -0.942809], abs=1e-5)


def test_dense_rejects_non_finite_step_rewards_on_valid_episodes() -> None:
    with pytest.raises(ValueError, match="episode 0 is marked valid"):
        dense_step_advantages([[float("nan")], [1.0]], ["g", "g"], [True, True])
    with pytest.raises(ValueError, match="pooled, per_index"):
        dense_step_advantages([[1.0]], ["g"], [True], normalise="index")  # type: ignore[arg-type]


# A multi-turn layout (expanded, as rollout.expand.trainer_inputs gives it):
#   prompt (3 tokens, step -1) | step 0 code (4 sampled) | observation 0 (text 1 + image pad copies 2, the copies
#   carry step -1) | step 1 code (3 sampled) | observation 1 (2) | answer turn (step 2 == number of code steps, 2 sampled)
STEP_IDS = [-1, -1, -1, 0, 0, 0, 0, 0, -1, -1, 1, 1, 1, 1, 1, 2, 2]
LOSS_MASK = [0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 1, 1, 1, 0, 0, 1, 1]


def test_dense_placement_on_a_multi_turn_layout() -> None:
    adv = token_advantages(0.5, np.array([1.0, -2.0]), STEP_IDS, LOSS_MASK, step_coef=0.1)
    # step 0 code: 0.5 + 0.1 * 1 = 0.6; step 1 code: 0.5 + 0.1 * (-2) = 0.3; answer turn: 0.5; the rest 0
    expect = [0, 0, 0, 0.6, 0.6, 0.6, 0.6, 0, 0, 0, 0.3, 0.3, 0.3, 0, 0, 0.5, 0.5]
    assert adv.tolist() == pytest.approx(expect, abs=1e-12)


def test_outcome_placement_broadcasts_over_sampled_tokens_only() -> None:
    adv = token_advantages(-1.25, None, STEP_IDS, LOSS_MASK, step_coef=1.0)
    assert adv.tolist() == [-1.25 if m else 0.0 for m in LOSS_MASK]


def test_placement_rejects_inconsistent_step_indices() -> None:
    bad = list(STEP_IDS)
    bad[15] = 3  # an answer token claiming step 3 of a 2-step episode
    with pytest.raises(ValueError, match="valid: 0..2"):
        token_advantages(0.0, np.array([1.0, 1.0]), bad, LOSS_MASK)
    bad[15] = -1  # a sampled token in the prompt's step
    with pytest.raises(ValueError, match="step indices"):
        token_advantages(0.0, np.array([1.0, 1.0]), bad, LOSS_MASK)
    with pytest.raises(ValueError, match="one entry per token"):
        token_advantages(0.0, None, STEP_IDS[:-1], LOSS_MASK)


def test_informative_groups_and_deterministic_refill() -> None:
    # a: 1/0 varies; b: valid 2/0/1 varies; c: one valid member; d: all equal
    assert informative_groups(REWARDS, GROUPS, VALID) == {"a", "b"}
    # equal valid rewards with a different invalid one: not informative; a difference below tol: not informative
    assert informative_groups([1.0, 1.0, 0.0], ["e"] * 3, [True, True, False]) == set()
    assert informative_groups([1.0, 1.0 + 1e-12], ["f", "f"], [True, True]) == set()
    assert fill_groups(["a", "b", "c", "d", "e", "f"], {"b", "d", "f"}, 2) == ["b", "d"]
    assert fill_groups(["a", "b", "c", "d", "e", "f"], {"b", "d", "f"}, 5) == ["b", "d", "f"]  # caller resamples
    with pytest.raises(ValueError, match="unique"):
        fill_groups(["a", "a"], {"a"}, 1)


def test_sum_of_group_advantages_is_zero_without_std_scaling() -> None:
    rng = np.random.default_rng(0)
    rewards = rng.normal(size=40)
    groups = np.repeat(np.arange(5), 8)
    valid = rng.random(40) > 0.2
    adv = outcome_advantages(rewards, groups, valid, scale="none")
    for g in range(5):
        members = (groups == g) & valid
        assert math.isclose(adv[members].sum(), 0.0, abs_tol=1e-12)
    assert np.all(adv[~valid] == 0)
