"""Scripted policies: replay fixed assistant turns through the real episode loop.

- `ScriptedPolicy` (message level, a `ChatEngine`): oracle SFT trajectories (`data`), curation tests. The code in
  the script really runs in the sandbox and the observations are real; only the model's words are fixed.
- `ScriptedTokenEngine` (token level, a `TokenEngine`): replays the turns as token ids from a real tokenizer, to
  test the loop's token bookkeeping (masks, step ids, limits, finish reasons) against hand-written expectations
  and against a full render of the conversation. It emulates what an engine does at the edges: it stops right
  after a stop string, ends a turn without a stop string with the end-of-turn token, and cuts at max_new_tokens.
  Its logprobs are 0.0 (a deterministic policy). It is a test policy, not a stand-in for a model.

A script is a list of assistant texts (the same for every task) or a dict from task id to such a list. The turn to
play is the number of assistant turns already in the conversation; past the end of the script the policy says so
in a plain text turn (which ends the episode as `stopped`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from rollout.engines.base import ChatEngine, ChatOutput, GenerateOutput, SamplingParams, TokenEngine, cut_at_stop

END_OF_SCRIPT = "(end of script)"

Script = Sequence[str] | Mapping[str, Sequence[str]]


def _turns_for(script: Script, key: str | None) -> Sequence[str]:
    if isinstance(script, Mapping):
        if key is None or key not in script:
            raise KeyError(f"no script for task {key!r}; scripted tasks: {', '.join(list(script)[:10])}")
        return script[key]
    return script


class ScriptedPolicy(ChatEngine):
    """Message-level replay. With a dict script, the episode's task id (passed by the loop in `context`) picks the
    turns; `task_id=` fixes it for a single-task policy."""

    name = "scripted"

    def __init__(self, script: Script, *, task_id: str | None = None) -> None:
        self.script = script
        self.task_id = task_id
        self.calls = 0

    async def chat(self, messages: list[dict[str, Any]], images: list[np.ndarray], sampling: SamplingParams,
                   context: dict[str, Any] | None = None) -> ChatOutput:
        self.calls += 1
        k = sum(1 for m in messages if m["role"] == "assistant")
        key = self.task_id or (context or {}).get("task_id")
        turns = _turns_for(self.script, key)
        text = turns[k] if k < len(turns) else END_OF_SCRIPT
        cut, fired = cut_at_stop(text, sampling.stop)
        return ChatOutput(text=cut, finish_reason="stop")


class ScriptedTokenEngine(TokenEngine):
    """Token-level replay with a real tokenizer (see the module docstring)."""

    name = "scripted_tokens"

    def __init__(self, processor: Any, script: Sequence[str], *, end_of_turn: str = "<|im_end|>") -> None:
        self._processor = processor
        self._tokenizer = getattr(processor, "tokenizer", processor)
        self.script = list(script)
        self.end_id = self._tokenizer.convert_tokens_to_ids(end_of_turn)
        self._start = self._tokenizer.encode("<|im_start|>assistant", add_special_tokens=False)
        self.requests: list[tuple[list[int], int, SamplingParams]] = []

    @property
    def tokenizer(self) -> Any:
        return self._tokenizer

    @property
    def processor(self) -> Any:
        return self._processor

    def _turn_index(self, prompt_ids: list[int]) -> int:
        s, n = self._start, 0
        for i in range(len(prompt_ids) - len(s) + 1):
            if prompt_ids[i : i + len(s)] == s:
                n += 1
        return n - 1  # the last one is the generation prompt

    async def generate(self, prompt_ids: list[int], images: list[np.ndarray], sampling: SamplingParams) -> GenerateOutput:
        self.requests.append((list(prompt_ids), len(images), sampling))
        k = self._turn_index(prompt_ids)
        text = self.script[k] if k < len(self.script) else END_OF_SCRIPT
        cut, fired = cut_at_stop(text, sampling.stop)
        ids = list(self._tokenizer.encode(cut, add_special_tokens=False))
        if fired is None:
            ids.append(self.end_id)
        finish = "stop"
        if len(ids) > sampling.max_new_tokens:
            ids, finish, fired = ids[: sampling.max_new_tokens], "length", None
        body = ids[:-1] if ids and ids[-1] == self.end_id else ids
        out_text, _ = cut_at_stop(self._tokenizer.decode(body, skip_special_tokens=False), sampling.stop)
        return GenerateOutput(token_ids=ids, logprobs=[0.0] * len(ids), finish_reason=finish, text=out_text,  # type: ignore[arg-type]
                              stop_reason=fired if finish == "stop" else None)
