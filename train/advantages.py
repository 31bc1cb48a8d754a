"""GRPO advantages as pure functions on NumPy arrays: outcome (one scalar per episode), dense (one per code step),
their placement on tokens, and the DAPO filter of groups that carry no signal.

A *group* is the G episodes sampled for one task in one RL step; every statistic is taken over a group's *valid*
episodes only. An invalid episode (engine or sandbox error, a failed judge, or one masked by policy, e.g. because
it hit a limit) gets advantage 0, is excluded from every mean and std, and so never shifts its group's baseline:
scoring it as a 0 reward would push the policy away from whatever it sampled there for no reason.

Standard deviations are sample standard deviations (ddof=1), the convention of TRL's and veRL's GRPO. Every
function here is deterministic and free of torch, so the trainer's numbers can be checked by hand
(`tests/train/test_advantages.py` does).

Modes, as the trainer uses them:

- `outcome` (CodeV/TAPO, CodeVision's code, DeepEyes): `outcome_advantages` of the reward set's total, broadcast
  by `token_advantages` over the episode's sampled tokens (`step_adv=None`).
- `dense`: `outcome_advantages` of the episode-scope reward plus `dense_step_advantages` of the step rewards,
  each step's advantage added (times `step_coef`) on that step's own sampled tokens only.
"""

from __future__ import annotations

from collections.abc import Hashable, Sequence
from typing import Literal

import numpy as np

Scale = Literal["group", "batch", "none"]
StepNormalise = Literal["pooled", "per_index"]

_SCALES = ("group", "batch", "none")
_NORMALISE = ("pooled", "per_index")


def _check_choice(name: str, value: str, valid: tuple[str, ...]) -> None:
    if value not in valid:
        raise ValueError(f"{name}={value!r} is not one of {', '.join(valid)}")


def _as_inputs(rewards: Sequence[float] | np.ndarray, group_ids: Sequence[Hashable] | np.ndarray,
               valid: Sequence[bool] | np.ndarray) -> tuple[np.ndarray, list[Hashable], np.ndarray]:
    r = np.asarray(rewards, dtype=np.float64).reshape(-1)
    ids = list(np.asarray(group_ids).reshape(-1).tolist()) if isinstance(group_ids, np.ndarray) else list(group_ids)
    ok = np.asarray(valid, dtype=bool).reshape(-1)
    if not (len(r) == len(ids) == len(ok)):
        raise ValueError(f"rewards ({len(r)}), group_ids ({len(ids)}) and valid ({len(ok)}) must have one entry per "
                         "episode")
    bad = np.flatnonzero(ok & ~np.isfinite(r))
    if bad.size:
        raise ValueError(f"episode {int(bad[0])} is marked valid but its reward is {r[bad[0]]}; mark failed episodes "
                         "invalid instead of giving them a non-finite reward")
    return r, ids, ok


def _groups(ids: list[Hashable]) -> dict[Hashable, np.ndarray]:
    """group id -> indices of its episodes, groups in order of first appearance."""
    out: dict[Hashable, list[int]] = {}
    for i, g in enumerate(ids):
        out.setdefault(g, []).append(i)
    return {g: np.asarray(idx, dtype=np.int64) for g, idx in out.items()}


def _std(x: np.ndarray) -> float:
    """Sample standard deviation (ddof=1); 0 for fewer than two values."""
    return float(np.std(x, ddof=1)) if x.size >= 2 else 0.0


def outcome_advantages(rewards: Sequence[float] | np.ndarray, group_ids: Sequence[Hashable] | np.ndarray,
                       valid: Sequence[bool] | np.ndarray, *, scale: Scale = "group", eps: float = 1e-6) -> np.ndarray:
    """Group-relative outcome advantage of each episode (float64, one per episode).

    For a valid episode i of group g, with V_g the valid episodes of g (|V_g| >= 2)::

        A_i = (r_i - mean_{j in V_g} r_j) / (s + eps)

    where s is std_{j in V_g} r_j for `scale="group"` (GRPO), the std of the rewards of every valid episode of the
    batch for `scale="batch"` (group mean, batch std: "PPO Lite", TRL's `scale_rewards="batch"`), and s + eps is
    replaced by 1 for `scale="none"` (Dr. GRPO). An invalid episode, and every member of a group with fewer than
    two valid episodes, gets 0. A group whose valid rewards are all equal gets 0 everywhere (its centred rewards are
    0), whatever the scale.
    """
    _check_choice("scale", scale, _SCALES)
    r, ids, ok = _as_inputs(rewards, group_ids, valid)
    adv = np.zeros_like(r)
    batch_std = _std(r[ok])
    for idx in _groups(ids).values():
        members = idx[ok[idx]]
        if members.size < 2:
            continue
        centred = r[members] - r[members].mean()
        if scale == "group":
            centred = centred / (_std(r[members]) + eps)
        elif scale == "batch":
            centred = centred / (batch_std + eps)
        adv[members] = centred
    return adv


def discounted_reward_to_go(step_rewards: Sequence[float] | np.ndarray, gamma: float) -> np.ndarray:
    """G_k = sum_{j >= k} gamma^(j - k) * r_j for each step k (float64)."""
    r = np.asarray(step_rewards, dtype=np.float64).reshape(-1)
    out = np.zeros_like(r)
    running = 0.0
    for k in range(len(r) - 1, -1, -1):
        running = r[k] + gamma * running
        out[k] = running
    return out


def dense_step_advantages(step_rewards: Sequence[Sequence[float] | np.ndarray],
                          group_ids: Sequence[Hashable] | np.ndarray,
                          valid: Sequence[bool] | np.ndarray, *, normalise: StepNormalise = "pooled",
                          reward_to_go: bool = False, gamma: float = 1.0, scale: Scale = "group",
                          eps: float = 1e-6) -> list[np.ndarray]:
    """Per-step advantages of each episode: a list with one float64 array per episode, one entry per code step.

    Step k of episode i has value x_ik: its step reward r_ik, or with `reward_to_go` its discounted return
    G_ik = sum_{j >= k} gamma^(j - k) r_ij within the episode. The value is centred and scaled over a *reference
    set* of the group's valid episodes' step values:

    - `normalise="pooled"`: every step of every valid episode of the group,
      A_ik = (x_ik - mean_{j in V_g, l} x_jl) / (s + eps);
    - `normalise="per_index"`: the steps with the same index k,
      A_ik = (x_ik - mean_{j in V_g, K_j > k} x_jk) / (s + eps),

    with s the std of the same reference set (`scale="group"`), of every valid step value in the batch
    (`scale="batch"`), or s + eps := 1 (`scale="none"`). A reference set of fewer than two values gives 0 (there is
    nothing to compare against). Invalid episodes get zeros and are in no reference set; an episode without code
    steps gets an empty array.

    Bias of `per_index` when the policy decides how many steps to take: the reference set at index k holds only
    the episodes that chose to take more than k steps, a subset selected by the policy itself, not a random
    sample of the group. Its baseline is therefore the value of a k-th step *given that the episode went on that
    long*: a step is compared only with other long episodes, the decision to continue is never credited or blamed
    (an episode whose extra steps all score below the group's typical step still gets centred, zero-sum advantages
    at those indices), and each index carries the same total weight whatever the number of episodes that reached
    it. The late-index statistics also rest on few values (often one, which gives 0, or two, whose std makes every
    advantage +-0.71 whatever the gap), so they are noisy. `pooled` compares every step with every step of the
    group and has none of these selection effects, but treats steps at different depths as exchangeable. With
    `reward_to_go`, pooled returns of early steps sum more terms than those of late steps, so early steps sit above
    the pooled mean by construction when rewards are positive: prefer `per_index` or gamma < 1 there, knowingly.
    """
    _check_choice("normalise", normalise, _NORMALISE)
    _check_choice("scale", scale, _SCALES)
    _, ids, ok = _as_inputs(np.zeros(len(step_rewards)), group_ids, valid)
    values: list[np.ndarray] = []
    for i, steps in enumerate(step_rewards):
        x = np.asarray(steps, dtype=np.float64).reshape(-1)
        if ok[i] and not np.all(np.isfinite(x)):
            raise ValueError(f"episode {i} is marked valid but has a non-finite step reward {x.tolist()}; mark it "
                             "invalid instead")
        values.append(discounted_reward_to_go(x, gamma) if reward_to_go else x)
    out = [np.zeros_like(x) for x in values]
    batch_pool = np.concatenate([values[i] for i in range(len(values)) if ok[i]] or [np.zeros(0)])
    batch_std = _std(batch_pool)

    def centre(x: np.ndarray, ref: np.ndarray) -> np.ndarray:
        centred = x - ref.mean()
        if scale == "group":
            return centred / (_std(ref) + eps)
        if scale == "batch":
            return centred / (batch_std + eps)
        return centred

    for idx in _groups(ids).values():
        members = [int(i) for i in idx if ok[i]]
        if normalise == "pooled":
            ref = np.concatenate([values[i] for i in members] or [np.zeros(0)])
            if ref.size < 2:
                continue
            for i in members:
                out[i] = centre(values[i], ref)
        else:
            depth = max((len(values[i]) for i in members), default=0)
            for k in range(depth):
                at_k = [i for i in members if len(values[i]) > k]
                if len(at_k) < 2:
                    continue
                ref = np.asarray([values[i][k] for i in at_k])
                adv_k = centre(ref, ref)
                for i, a in zip(at_k, adv_k, strict=True):
                    out[i][k] = a
    return out


def token_advantages(episode_adv: float, step_adv: np.ndarray | Sequence[float] | None,
                     step_ids: np.ndarray | Sequence[int],
                     loss_mask: np.ndarray | Sequence[int], *, step_coef: float = 1.0) -> np.ndarray:
    """Advantage of every token of one episode (float64, same length as `loss_mask`).

    adv_t = loss_mask_t * (episode_adv + step_coef * step_adv[step_ids_t])  where step_ids_t < len(step_adv),
    adv_t = loss_mask_t * episode_adv                                        otherwise,

    i.e. the episode part on every sampled token, and step k's advantage only on the sampled tokens of assistant
    turn k (the code that step k ran). The answer turn (step index == number of code steps) gets only the episode
    part; prompt, observation and image tokens (loss mask 0) get 0. `step_adv=None` is the outcome mode.
    Sampled tokens whose step index is negative or beyond the answer turn mean the arrays disagree: ValueError.
    """
    mask = np.asarray(loss_mask).reshape(-1).astype(bool)
    sid = np.asarray(step_ids, dtype=np.int64).reshape(-1)
    if sid.shape != mask.shape:
        raise ValueError(f"step_ids ({sid.size}) and loss_mask ({mask.size}) must have one entry per token")
    adv = np.where(mask, float(episode_adv), 0.0)
    if step_adv is None:
        return adv
    steps = np.asarray(step_adv, dtype=np.float64).reshape(-1)
    sampled = sid[mask]
    if sampled.size and (sampled.min() < 0 or sampled.max() > len(steps)):
        raise ValueError(f"sampled tokens carry step indices {sorted(set(sampled.tolist()))} but the episode has "
                         f"{len(steps)} code step advantage(s) (valid: 0..{len(steps)}, the last one being the answer "
                         "turn)")
    on_step = mask & (sid >= 0) & (sid < len(steps))
    adv[on_step] += step_coef * steps[sid[on_step]]
    return adv


def informative_groups(rewards: Sequence[float] | np.ndarray, group_ids: Sequence[Hashable] | np.ndarray,
                       valid: Sequence[bool] | np.ndarray, *, tol: float = 1e-9) -> set[Hashable]:
    """Ids of the groups whose valid rewards are not all equal: max - min > tol over at least two valid episodes.

    The others have zero advantage everywhere and would only dilute the batch (DAPO's dynamic sampling drops them).
    """
    r, ids, ok = _as_inputs(rewards, group_ids, valid)
    out: set[Hashable] = set()
    for g, idx in _groups(ids).items():
        vals = r[idx[ok[idx]]]
        if vals.size >= 2 and float(vals.max() - vals.min()) > tol:
            out.add(g)
    return out


def fill_groups(candidates: Sequence[Hashable], keep: set[Hashable], required: int) -> list[Hashable]:
    """The first `required` groups of `candidates` (in the order they were sampled) that are in `keep`.

    Deterministic refill after filtering: the trainer samples more groups than it needs (oversampling), keeps the
    informative ones in sampling order, and stops at the batch size. Fewer than `required` are returned when the
    candidates run out: the caller samples another round and calls again with the new candidates appended (the
    already-chosen ones stay first), or stops with a message. Duplicate ids in `candidates` are a bug: ValueError.
    """
    if required < 0:
        raise ValueError(f"required must be >= 0, got {required}")
    if len(set(candidates)) != len(candidates):
        raise ValueError("candidate group ids must be unique (the same task sampled twice in one step must get two "
                         "group ids)")
    return [g for g in candidates if g in keep][:required]
