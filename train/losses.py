"""The GRPO objective as pure torch functions on (batch, seq) tensors with a loss mask: no model, no trainer state.

Every tensor argument is (B, T), aligned with the trainer's expanded token sequence: entry t belongs to token t
(`train.logprobs.token_logprobs` gives the trainer's logprobs in that layout, `rollout.expand.trainer_inputs` the
engine's). `mask` is 1 on the tokens that carry loss (the policy's sampled tokens of valid episodes) and 0
elsewhere; values off the mask are ignored, whatever they are (NaN included).

- `policy_loss`: PPO-clipped surrogate with symmetric or clip-higher (DAPO) bounds, optional dual-clip, token or
  sequence (GSPO) ratio, token-mean / sequence-mean / Dr. GRPO aggregation, optional importance weights.
- `kl_penalty`: per-token KL estimators to a reference policy (k1, k3).
- `importance_weights`: truncated (TIS) or masked (MIS) correction for the mismatch between the rollout engine's
  and the trainer's probabilities of the same policy.
- `aggregate`: the one place where per-token values become a scalar.

Metrics come back as detached 0-d tensors (no device sync here); the trainer reduces and logs them.
"""

from __future__ import annotations

import math
from typing import Literal

import torch

Aggregation = Literal["token_mean", "seq_mean", "dr_grpo"]
RatioLevel = Literal["token", "sequence"]
KLKind = Literal["k1", "k3"]
ISMode = Literal["truncated", "masked"]

_AGGREGATIONS = ("token_mean", "seq_mean", "dr_grpo")


def _choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")


def _check_shapes(mask: torch.Tensor, **tensors: torch.Tensor | None) -> None:
    if mask.dim() != 2:
        raise ValueError(f"mask must be (batch, seq), got shape {tuple(mask.shape)}")
    for name, t in tensors.items():
        if t is not None and t.shape != mask.shape:
            raise ValueError(f"{name} has shape {tuple(t.shape)} but mask has {tuple(mask.shape)}; every per-token "
                             "tensor must be (batch, seq) in the same layout")


def aggregate(values: torch.Tensor, mask: torch.Tensor, *, aggregation: Aggregation = "token_mean",
              max_tokens: int | None = None, total_tokens: float | None = None,
              total_sequences: float | None = None) -> torch.Tensor:
    """Reduce per-token `values` (B, T) over `mask` to a scalar.

    - token_mean: sum_{i,t} m_it v_it / sum_{i,t} m_it  (every token weighs the same; DAPO, CodeVision);
    - seq_mean:   (1 / S) sum_i [sum_t m_it v_it / sum_t m_it] over the S sequences with at least one masked token
      (every sequence weighs the same; the original GRPO);
    - dr_grpo:    sum_{i,t} m_it v_it / (B * max_tokens)  (a constant normaliser, Dr. GRPO, Liu et al. 2025).

    When an optimizer batch is split into micro-batches, pass the whole batch's `total_tokens` (token_mean) or
    `total_sequences` (seq_mean, dr_grpo) so that the micro-batch losses sum to the batch's loss; otherwise the
    normaliser is this call's own. An empty mask gives a differentiable 0.
    """
    _choice("aggregation", aggregation, _AGGREGATIONS)
    _check_shapes(mask, values=values)
    m = mask.to(values.dtype)
    masked = torch.where(mask.bool(), values, torch.zeros_like(values))
    if aggregation == "token_mean":
        denom = float(total_tokens) if total_tokens is not None else m.sum().clamp(min=1.0)
        return masked.sum() / denom
    if aggregation == "seq_mean":
        per_seq_tokens = m.sum(dim=1)
        per_seq = masked.sum(dim=1) / per_seq_tokens.clamp(min=1.0)
        denom = float(total_sequences) if total_sequences is not None else (per_seq_tokens > 0).sum().clamp(min=1)
        return per_seq.sum() / denom
    if max_tokens is None or max_tokens <= 0:
        raise ValueError("aggregation=dr_grpo needs max_tokens > 0 (the constant normaliser: the maximum number of "
                         "response tokens, e.g. rollout.max_total_tokens)")
    n_seq = float(total_sequences) if total_sequences is not None else float(values.shape[0])
    return masked.sum() / (n_seq * max_tokens)


def _masked_stats(x: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(mean, min, max) of x over mask, detached; zeros for an empty mask."""
    b = mask.bool()
    x = x.detach()
    if not bool(b.any()):
        z = x.new_zeros(())
        return z, z, z
    sel = x[b]
    return sel.mean(), sel.min(), sel.max()


def _frac(flag: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    b = mask.bool()
    return (flag & b).sum().float().detach() / b.sum().clamp(min=1).float()


def sequence_log_ratio(log_ratio: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """(B, 1): the mean over each sequence's masked tokens of the token log ratios (GSPO's length-normalised
    sequence ratio, in log space); 0 for a sequence without masked tokens."""
    m = mask.to(log_ratio.dtype)
    return ((log_ratio * m).sum(dim=1, keepdim=True) / m.sum(dim=1, keepdim=True).clamp(min=1.0))


def policy_loss(logprobs: torch.Tensor, old_logprobs: torch.Tensor, advantages: torch.Tensor, mask: torch.Tensor, *,
                clip_low: float, clip_high: float, dual_clip: float | None = None, ratio_level: RatioLevel = "token",
                aggregation: Aggregation = "token_mean", max_tokens: int | None = None,
                is_weights: torch.Tensor | None = None, total_tokens: float | None = None,
                total_sequences: float | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The PPO-clipped policy-gradient loss and its metrics.

    Per token, with ratio r = exp(logprobs - old_logprobs) (gradient through `logprobs` only) and advantage A::

        l = -min(r * A, clip(r, 1 - clip_low, 1 + clip_high) * A)   (PPO; clip-higher: clip_high > clip_low)
        l = min(l, -dual_clip * A)  where A < 0, when dual_clip is set  (dual-clip PPO)

    Dual-clip (Ye et al. 2020, "Mastering Complex Control in MOBA Games with Deep Reinforcement Learning", eq. 5)
    bounds the loss of a negative-advantage token whose ratio has grown far above 1, where the plain PPO objective is
    unbounded: the objective becomes max(min(rA, clip(r)A), c*A) for A < 0, with c = dual_clip > 1.

    `ratio_level="sequence"` (GSPO, Zheng et al. 2025) uses for every token of sequence i the same ratio
    s_i = exp(mean over the sequence's masked tokens of (logprobs - old_logprobs)), clipped the same way.
    `is_weights` (from `importance_weights`, detached) multiplies each token's loss. The result is reduced by
    `aggregate` (see there for `max_tokens`, `total_tokens`, `total_sequences`).

    Metrics: `clip_frac_low` (A < 0 and r < 1 - clip_low: the lower bound binds, no gradient), `clip_frac_high`
    (A > 0 and r > 1 + clip_high), `dual_clip_frac` (A < 0 and r > dual_clip), `ratio_mean/min/max` over the
    masked tokens, `advantage_mean`, and `tokens` (the number of masked tokens).
    """
    _check_shapes(mask, logprobs=logprobs, old_logprobs=old_logprobs, advantages=advantages, is_weights=is_weights)
    if clip_low < 0 or clip_low >= 1 or clip_high < 0:
        raise ValueError(f"clip bounds must satisfy 0 <= clip_low < 1 and clip_high >= 0 (got {clip_low}, {clip_high})")
    if dual_clip is not None and dual_clip <= 1:
        raise ValueError(f"dual_clip must be > 1 (the bound c in max(.., c * A) for A < 0), got {dual_clip}")
    _choice("ratio_level", ratio_level, ("token", "sequence"))
    on = mask.bool()
    old = old_logprobs.detach()
    # off the mask the ratio is 1 whatever the inputs hold (padding, NaN), so exp never overflows there
    log_ratio = torch.where(on, logprobs - old, torch.zeros_like(logprobs))
    if ratio_level == "sequence":
        log_ratio = sequence_log_ratio(log_ratio, mask).expand_as(logprobs)
    ratio = torch.exp(log_ratio)
    adv = torch.where(on, advantages.detach().to(ratio.dtype), torch.zeros_like(ratio))
    unclipped = -adv * ratio
    clipped = -adv * torch.clamp(ratio, 1.0 - clip_low, 1.0 + clip_high)
    loss_tok = torch.maximum(unclipped, clipped)
    metrics: dict[str, torch.Tensor] = {}
    if dual_clip is not None:
        bounded = torch.minimum(loss_tok, -adv * dual_clip)
        loss_tok = torch.where(adv < 0, bounded, loss_tok)
        metrics["dual_clip_frac"] = _frac((adv < 0) & (ratio.detach() > dual_clip), mask)
    if is_weights is not None:
        loss_tok = loss_tok * is_weights.detach().to(loss_tok.dtype)
    loss = aggregate(loss_tok, mask, aggregation=aggregation, max_tokens=max_tokens, total_tokens=total_tokens,
                     total_sequences=total_sequences)
    r = ratio.detach()
    metrics["clip_frac_low"] = _frac((adv < 0) & (r < 1.0 - clip_low), mask)
    metrics["clip_frac_high"] = _frac((adv > 0) & (r > 1.0 + clip_high), mask)
    metrics["ratio_mean"], metrics["ratio_min"], metrics["ratio_max"] = _masked_stats(r, mask)
    metrics["advantage_mean"] = _masked_stats(adv, mask)[0]
    metrics["tokens"] = on.sum().detach()
    return loss, metrics


def kl_penalty(logprobs: torch.Tensor, ref_logprobs: torch.Tensor, kind: KLKind = "k3") -> torch.Tensor:
    """Per-token estimator of KL(policy || reference) at the sampled tokens (Schulman, "Approximating KL
    Divergence", 2020), with d = ref_logprobs - logprobs (the reference is detached):

    - k1 = -d = logprobs - ref_logprobs  (unbiased, can be negative);
    - k3 = exp(d) - d - 1                (unbiased, always >= 0, lower variance; GRPO's choice).

    Reduce it with `aggregate` over the loss mask and add `kl_coef` times it to the loss.
    """
    _choice("kind", kind, ("k1", "k3"))
    d = ref_logprobs.detach() - logprobs
    if kind == "k1":
        return -d
    return torch.exp(d) - d - 1.0


def importance_weights(trainer_old_logprobs: torch.Tensor, engine_logprobs: torch.Tensor, mask: torch.Tensor, *,
                       mode: ISMode = "truncated", level: RatioLevel = "token",
                       cap: float = 2.0) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Detached (B, T) weights that correct for the rollout engine sampling from a slightly different distribution
    than the trainer computes (other kernels, precision, or a stale copy of the weights).

    rho = pi_trainer_old / pi_engine per token (`level="token"`), or per sequence the product over its masked
    tokens, rho_i = exp(sum_t (trainer_old - engine)) (`level="sequence"`, broadcast to its tokens). Then

    - `truncated` (TIS, Yao et al. 2025, "Your Efficient RL Framework Secretly Brings You Off-Policy RL
      Training"): w = min(rho, cap);
    - `masked` (MIS): w = 1 if 1/cap <= rho <= cap else 0, dropping the tokens (or whole sequences) whose
      mismatch is too large to correct.

    Weights are 0 off the mask. Metrics: `is_ratio_mean/min/max` over the masked tokens (sequence level: over the
    sequences with masked tokens), `is_frac_truncated` or `is_frac_masked`, and `mismatch_k3`, the token-mean k3
    estimate of KL(engine || trainer).
    """
    _check_shapes(mask, trainer_old_logprobs=trainer_old_logprobs, engine_logprobs=engine_logprobs)
    _choice("mode", mode, ("truncated", "masked"))
    _choice("level", level, ("token", "sequence"))
    if cap <= 1:
        raise ValueError(f"cap must be > 1 (weights are bounded to [1/cap, cap] or truncated at cap), got {cap}")
    on = mask.bool()
    with torch.no_grad():
        log_rho = torch.where(on, trainer_old_logprobs.float() - engine_logprobs.float(),
                              torch.zeros_like(trainer_old_logprobs, dtype=torch.float32))
        mismatch = aggregate(torch.exp(log_rho) - log_rho - 1.0, mask)  # k3 with samples from the engine
        stat_mask = on
        if level == "sequence":
            seq_log = log_rho.sum(dim=1, keepdim=True)
            log_rho = seq_log.expand_as(log_rho)
            stat_mask = on.any(dim=1, keepdim=True)
            stats_src = seq_log
        else:
            stats_src = log_rho
        log_cap = math.log(cap)
        if mode == "truncated":
            weights = torch.exp(torch.clamp(log_rho, max=log_cap))  # min(rho, cap) without overflow
            flagged = stats_src > log_cap
        else:
            inside = log_rho.abs() <= log_cap
            weights = inside.float()
            flagged = stats_src.abs() > log_cap
        weights = torch.where(on, weights, torch.zeros_like(weights))
        # ratio statistics in log space first so that a huge sequence product does not overflow to inf silently
        _, lmin, lmax = _masked_stats(stats_src, stat_mask)
        metrics = {
            "is_ratio_mean": _masked_stats(torch.exp(torch.clamp(stats_src, max=80.0)), stat_mask)[0],
            "is_ratio_min": torch.exp(lmin), "is_ratio_max": torch.exp(torch.clamp(lmax, max=80.0)),
            ("is_frac_truncated" if mode == "truncated" else "is_frac_masked"): _frac(flagged, stat_mask),
            "mismatch_k3": mismatch,
        }
    return weights, metrics
