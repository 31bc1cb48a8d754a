"""Losses against hand-computed values and gradients (the arithmetic is in the comments)."""

from __future__ import annotations

import math

import pytest
import torch

from train.losses import aggregate, importance_weights, kl_penalty, policy_loss

L = math.log
CLIP = {"clip_low": 0.2, "clip_high": 0.28}


def _close(t: torch.Tensor, want: list[list[float]], atol: float = 1e-9) -> None:
    torch.testing.assert_close(t.detach().double(), torch.tensor(want, dtype=torch.float64), atol=atol, rtol=0)


def _leaf(rows: list[list[float]]) -> torch.Tensor:
    return torch.tensor(rows, dtype=torch.float64, requires_grad=True)


def test_on_policy_ratio_is_one_clipping_is_inert_and_gradients_are_minus_a_over_n() -> None:
    old = torch.tensor([[-0.7, -1.2, -3.0], [-0.1, -2.0, -0.5]], dtype=torch.float64)
    adv = torch.tensor([[1.0, 1.0, 1.0], [-0.5, -0.5, -0.5]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    grads = {}
    for name, kw in {"clipped": CLIP, "unclipped": {"clip_low": 0.999, "clip_high": 1e9}}.items():
        lp = old.clone().requires_grad_(True)
        loss, m = policy_loss(lp, old, adv, mask, **kw)
        loss.backward()
        grads[name] = (loss.item(), lp.grad.clone())
        assert m["ratio_mean"].item() == m["ratio_min"].item() == m["ratio_max"].item() == 1.0
        assert m["clip_frac_low"].item() == m["clip_frac_high"].item() == 0.0
    assert grads["clipped"][0] == grads["unclipped"][0]
    assert torch.equal(grads["clipped"][1], grads["unclipped"][1])
    # r = 1: loss = -sum(m * A) / N = -(1 + 1 - 0.5 * 3) / 5 = -0.1; d loss / d logp_t = -A_t * m_t / 5
    assert grads["clipped"][0] == pytest.approx(-0.1)
    _close(grads["clipped"][1], [[-0.2, -0.2, 0.0], [0.1, 0.1, 0.1]])


def test_on_policy_gradients_under_each_aggregation() -> None:
    old = torch.zeros(2, 3, dtype=torch.float64)
    adv = torch.tensor([[1.0, 1.0, 1.0], [-0.5, -0.5, -0.5]], dtype=torch.float64)
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    expect = {
        # seq 0 has 2 tokens, seq 1 has 3; two sequences: -A / (2 * n_i)
        "seq_mean": [[-0.25, -0.25, 0.0], [0.5 / 6, 0.5 / 6, 0.5 / 6]],
        # Dr. GRPO with max_tokens 4: -A / (2 * 4)
        "dr_grpo": [[-0.125, -0.125, 0.0], [0.0625, 0.0625, 0.0625]],
    }
    for agg, want in expect.items():
        lp = old.clone().requires_grad_(True)
        loss, _ = policy_loss(lp, old, adv, mask, aggregation=agg, max_tokens=4, **CLIP)  # type: ignore[arg-type]
        loss.backward()
        _close(lp.grad, want)


# token ratios r = exp(logp - old): [[1.5, 0.5, 1], [0.5, 1.5, 4]] with A = [[1, 1, 2], [-1, -1, -1]]
LOG_R = [[L(1.5), L(0.5), 0.0], [L(0.5), L(1.5), L(4.0)]]
ADV = [[1.0, 1.0, 2.0], [-1.0, -1.0, -1.0]]


def test_clip_higher_and_dual_clip_by_hand() -> None:
    old = torch.zeros(2, 3, dtype=torch.float64)
    adv = torch.tensor(ADV, dtype=torch.float64)
    mask = torch.ones(2, 3)
    # per token -min(rA, clip(r, 0.8, 1.28) A):
    #  (0,0) r 1.5, A 1: min(1.5, 1.28) -> -1.28, clipped high, grad 0
    #  (0,1) r 0.5, A 1: min(0.5, 0.8) -> -0.5, grad -rA = -0.5
    #  (0,2) r 1,   A 2: -2, grad -2
    #  (1,0) r 0.5, A -1: min(-0.5, -0.8) -> 0.8, clipped low, grad 0
    #  (1,1) r 1.5, A -1: min(-1.5, -1.28) -> 1.5 (the high bound never binds for A < 0), grad 1.5
    #  (1,2) r 4,   A -1: min(-4, -1.28) -> 4, grad 4
    # token mean: (-1.28 - 0.5 - 2 + 0.8 + 1.5 + 4) / 6 = 2.52 / 6 = 0.42; grads / 6
    lp = _leaf(LOG_R)
    loss, m = policy_loss(lp, old, adv, mask, **CLIP)
    loss.backward()
    assert loss.item() == pytest.approx(0.42)
    _close(lp.grad, [[0.0, -0.5 / 6, -2 / 6], [0.0, 1.5 / 6, 4 / 6]])
    assert m["clip_frac_low"].item() == pytest.approx(1 / 6) and m["clip_frac_high"].item() == pytest.approx(1 / 6)
    # ratio mean (1.5 + 0.5 + 1 + 0.5 + 1.5 + 4) / 6 = 1.5, min 0.5, max 4
    assert (m["ratio_mean"].item(), m["ratio_min"].item(), m["ratio_max"].item()) == pytest.approx((1.5, 0.5, 4.0))
    # dual clip c = 3: (1,2) becomes min(4, -A * 3 = 3) = 3 with no gradient: sum 1.52, loss 0.253333
    lp = _leaf(LOG_R)
    loss, m = policy_loss(lp, old, adv, mask, dual_clip=3.0, **CLIP)
    loss.backward()
    assert loss.item() == pytest.approx(1.52 / 6)
    _close(lp.grad, [[0.0, -0.5 / 6, -2 / 6], [0.0, 1.5 / 6, 0.0]])
    assert m["dual_clip_frac"].item() == pytest.approx(1 / 6)
    # symmetric clipping 0.2/0.2: (0,0) is clipped at 1.2 instead: sum 2.52 + 1.28 - 1.2 = 2.6
    loss, _ = policy_loss(_leaf(LOG_R), old, adv, mask, clip_low=0.2, clip_high=0.2)
    assert loss.item() == pytest.approx(2.6 / 6)


def test_sequence_level_ratio_gspo_by_hand() -> None:
    old = torch.zeros(2, 3, dtype=torch.float64)
    adv = torch.tensor(ADV, dtype=torch.float64)
    mask = torch.ones(2, 3)
    # s0 = exp((L1.5 + L0.5 + 0) / 3) = 0.75^(1/3) = 0.908560 (inside [0.8, 1.28]);
    # s1 = exp((L0.5 + L1.5 + L4) / 3) = 3^(1/3) = 1.442250 (> 1.28 but A < 0: unclipped)
    s0, s1 = 0.75 ** (1 / 3), 3 ** (1 / 3)
    lp = _leaf(LOG_R)
    loss, m = policy_loss(lp, old, adv, mask, ratio_level="sequence", **CLIP)
    loss.backward()
    # loss = (-s0 * (1 + 1 + 2) + s1 * 3) / 6 = (-3.634241 + 4.326749) / 6 = 0.115418
    assert loss.item() == pytest.approx((-4 * s0 + 3 * s1) / 6)
    assert loss.item() == pytest.approx(0.115418, abs=1e-6)
    # d/dlogp_t: seq 0: -(sum A) * s0 * (1/3) / 6 = -4 * 0.908560 / 18 = -0.201902 on each of its tokens;
    # seq 1: 3 * s1 * (1/3) / 6 = 0.240375
    _close(lp.grad, [[-0.201902] * 3, [0.240375] * 3], atol=1e-6)
    assert m["ratio_max"].item() == pytest.approx(s1)


def test_masked_tokens_carry_nothing_even_when_nan() -> None:
    lp = _leaf([[0.0, float("nan")], [0.1, 0.2]])
    old = torch.tensor([[0.0, float("nan")], [0.1, 0.2]], dtype=torch.float64)
    adv = torch.tensor([[1.0, float("nan")], [2.0, 2.0]], dtype=torch.float64)
    mask = torch.tensor([[1, 0], [1, 1]])
    loss, m = policy_loss(lp, old, adv, mask, **CLIP)
    loss.backward()
    # on policy: -(1 + 2 + 2) / 3
    assert loss.item() == pytest.approx(-5 / 3)
    assert torch.isfinite(lp.grad).all() and lp.grad[0, 1].item() == 0.0
    assert m["tokens"].item() == 3


def test_importance_weights_multiply_the_token_loss() -> None:
    old = torch.zeros(1, 2, dtype=torch.float64)
    adv = torch.tensor([[1.0, 1.0]], dtype=torch.float64)
    w = torch.tensor([[0.5, 2.0]], dtype=torch.float64)
    lp = torch.zeros(1, 2, dtype=torch.float64, requires_grad=True)
    loss, _ = policy_loss(lp, old, adv, torch.ones(1, 2), is_weights=w, **CLIP)
    loss.backward()
    # on policy: -(0.5 * 1 + 2 * 1) / 2 = -1.25; grads -w * A / 2
    assert loss.item() == pytest.approx(-1.25)
    _close(lp.grad, [[-0.25, -1.0]])


def test_aggregations_by_hand_and_micro_batch_totals() -> None:
    values = torch.tensor([[1.0, 2.0, 100.0], [3.0, 4.0, 5.0]])
    mask = torch.tensor([[1, 1, 0], [1, 1, 1]])
    assert aggregate(values, mask, aggregation="token_mean").item() == pytest.approx(15 / 5)  # 3
    assert aggregate(values, mask, aggregation="seq_mean").item() == pytest.approx((1.5 + 4.0) / 2)  # 2.75
    assert aggregate(values, mask, aggregation="dr_grpo", max_tokens=4).item() == pytest.approx(15 / 8)  # 1.875
    # as one micro-batch of a 10-token / 4-sequence optimizer batch
    assert aggregate(values, mask, total_tokens=10).item() == pytest.approx(1.5)
    assert aggregate(values, mask, aggregation="seq_mean", total_sequences=4).item() == pytest.approx(5.5 / 4)
    # a sequence without loss tokens does not count as a sequence
    assert aggregate(values, torch.tensor([[0, 0, 0], [1, 1, 1]]), aggregation="seq_mean").item() == pytest.approx(4.0)
    with pytest.raises(ValueError, match="max_tokens"):
        aggregate(values, mask, aggregation="dr_grpo")
    with pytest.raises(ValueError, match="token_mean, seq_mean, dr_grpo"):
        aggregate(values, mask, aggregation="sum")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="same layout"):
        aggregate(values[:, :2], mask)


def test_kl_estimators_by_hand() -> None:
    lp = torch.tensor([[L(0.5), L(0.25)]], dtype=torch.float64, requires_grad=True)
    ref = torch.tensor([[L(0.25), L(0.25)]], dtype=torch.float64)
    k1 = kl_penalty(lp, ref, "k1")
    # k1 = log 0.5 - log 0.25 = log 2 = 0.693147; 0 where equal
    _close(k1, [[0.693147, 0.0]], atol=1e-6)
    k3 = kl_penalty(lp, ref, "k3")
    # d = ref - logp = -log 2: exp(d) - d - 1 = 0.5 + 0.693147 - 1 = 0.193147; d k3 / d logp = 1 - exp(d) = 0.5
    _close(k3, [[0.193147, 0.0]], atol=1e-6)
    k3.sum().backward()
    _close(lp.grad, [[0.5, 0.0]])


# trainer_old - engine log ratios: [[L3, L0.25, 0], [L1.1, L0.9, L100 (masked)]]
IS_OLD = torch.tensor([[L(3.0), L(0.25), 0.0], [L(1.1), L(0.9), L(100.0)]])
IS_ENGINE = torch.zeros(2, 3)
IS_MASK = torch.tensor([[1, 1, 1], [1, 1, 0]])


def test_truncated_and_masked_token_level_importance_weights() -> None:
    w, m = importance_weights(IS_OLD, IS_ENGINE, IS_MASK, mode="truncated", level="token", cap=2.0)
    # min(rho, 2): [[2, 0.25, 1], [1.1, 0.9, 0 (off the mask)]]; one of five tokens truncated
    _close(w, [[2.0, 0.25, 1.0], [1.1, 0.9, 0.0]], atol=1e-6)
    assert not w.requires_grad
    assert m["is_frac_truncated"].item() == pytest.approx(0.2)
    # ratio mean over masked tokens (3 + 0.25 + 1 + 1.1 + 0.9) / 5 = 1.25, min 0.25, max 3
    assert (m["is_ratio_mean"].item(), m["is_ratio_min"].item(), m["is_ratio_max"].item()) == pytest.approx(
        (1.25, 0.25, 3.0), abs=1e-6)
    w, m = importance_weights(IS_OLD, IS_ENGINE, IS_MASK, mode="masked", level="token", cap=2.0)
    # keep rho in [0.5, 2]: 3 and 0.25 are dropped
    assert w.tolist() == [[0.0, 0.0, 1.0], [1.0, 1.0, 0.0]]
    assert m["is_frac_masked"].item() == pytest.approx(0.4)


def test_sequence_level_importance_weights_use_the_product_of_ratios() -> None:
    # seq 0: 3 * 0.25 * 1 = 0.75; seq 1: 1.1 * 0.9 = 0.99 (the masked 100 is not in the product)
    w, m = importance_weights(IS_OLD, IS_ENGINE, IS_MASK, mode="truncated", level="sequence", cap=2.0)
    _close(w, [[0.75] * 3, [0.99, 0.99, 0.0]], atol=1e-6)
    assert m["is_ratio_mean"].item() == pytest.approx((0.75 + 0.99) / 2, abs=1e-6)
    # cap 1.2: keep [0.8333, 1.2] -> seq 0 (0.75) dropped, seq 1 kept
    w, m = importance_weights(IS_OLD, IS_ENGINE, IS_MASK, mode="masked", level="sequence", cap=1.2)
    assert w.tolist() == [[0.0, 0.0, 0.0], [1.0, 1.0, 0.0]]
    assert m["is_frac_masked"].item() == pytest.approx(0.5)


def test_mismatch_kl_is_zero_on_policy_and_matches_k3_by_hand() -> None:
    _, m = importance_weights(IS_ENGINE, IS_ENGINE, IS_MASK)
    assert m["mismatch_k3"].item() == 0.0
    old = torch.tensor([[L(2.0)]])
    _, m = importance_weights(old, torch.zeros(1, 1), torch.ones(1, 1))
    # samples from the engine, rho = 2: (rho - 1) - log rho = 1 - 0.693147 = 0.306853
    assert m["mismatch_k3"].item() == pytest.approx(0.306853, abs=1e-6)


def test_bad_arguments_are_clear_errors() -> None:
    z = torch.zeros(1, 2)
    with pytest.raises(ValueError, match="dual_clip must be > 1"):
        policy_loss(z, z, z, z, dual_clip=0.5, **CLIP)
    with pytest.raises(ValueError, match="token, sequence"):
        policy_loss(z, z, z, z, ratio_level="seq", **CLIP)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="cap must be > 1"):
        importance_weights(z, z, z, cap=1.0)
    with pytest.raises(ValueError, match="k1, k3"):
        kl_penalty(z, z, "k2")  # type: ignore[arg-type]
