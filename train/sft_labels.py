"""Which tokens of a trajectory SFT trains on: one rule for message-level and token-exact data.

The loss covers exactly the tokens the assistant wrote plus the end-of-turn token (`<|im_end|>`) that closes each
assistant turn; system and user prompts, observations, image placeholders and padding carry none.

- Message-level trajectories (oracle, teacher, curated data) are rendered through the model's chat template by
  `rollout.render.ChatRenderer.render_ids`, which marks each assistant message's content and its end-of-turn token.
- Token-exact trajectories (rollouts) carry a loss mask of what the policy sampled. A turn that stopped at a stop
  string (`</code>`) did not sample its `<|im_end|>`: the template closed it. SFT must still teach the model to end
  its turn there, as message-level data does, so the first end-of-turn token after a turn's sampled tokens is added
  to the mask. A turn whose `<|im_end|>` was sampled already has it.

So the same conversation gives the same labels whichever kind it is stored as (tested token for token).
"""

from __future__ import annotations

from collections.abc import Sequence

from rollout.render import ChatRenderer
from rollout.trajectory import Trajectory


def close_assistant_turns(token_ids: Sequence[int], loss_mask: Sequence[int], turn_spans: Sequence[tuple[int, int]],
                          end_of_turn_ids: set[int]) -> list[int]:
    """`loss_mask` with, in each assistant span `[start, end)`, the first end-of-turn token after its last sampled
    token set to 1 (a no-op when the turn sampled its own end-of-turn token)."""
    mask = list(loss_mask)
    for start, end in turn_spans:
        sampled = [i for i in range(start, end) if mask[i]]
        if not sampled:
            continue
        last = sampled[-1]
        if token_ids[last] in end_of_turn_ids:
            continue
        for i in range(last + 1, end):
            if token_ids[i] in end_of_turn_ids:
                mask[i] = 1
                break
    return mask


def sft_tokens(traj: Trajectory, renderer: ChatRenderer) -> tuple[list[int], list[int]]:
    """(unexpanded token ids, SFT loss mask) of a trajectory, by the module's rule."""
    if traj.tokenized:
        spans = [(t.start, t.end) for t in traj.turns if t.role == "assistant"]
        return list(traj.token_ids), close_assistant_turns(traj.token_ids, traj.loss_mask, spans,
                                                           renderer.end_of_turn_ids)
    rendered = renderer.render_ids(traj.messages())
    return rendered.token_ids, rendered.assistant_mask
