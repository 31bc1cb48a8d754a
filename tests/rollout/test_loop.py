"""The episode loop's bookkeeping with a scripted policy and the real sandbox: masks, step ids, images, limits,
finish reasons, for every protocol; the token arrays equal a full render of the same conversation."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from rollout.engines.base import EngineError, GenerateOutput, SamplingParams
from rollout.loop import EpisodeLimits, request_seed, run_episodes
from rollout.protocols import PROTOCOLS, get_protocol
from rollout.render import ChatRenderer
from rollout.scripted import ScriptedPolicy, ScriptedTokenEngine
from rollout.task import Task
from rollout.trajectory import FinishReason, Trajectory, load_trajectories, save_trajectories
from sandbox.result import ExecStatus
from tests.rollout.conftest import make_task


def _run(engine: Any, task: Task, pool: Any, protocol: str = "codevl", **kw: Any) -> Trajectory:
    return asyncio.run(run_episodes([task], engine, protocol=get_protocol(protocol), pool=pool, **kw))[0]


def _script(protocol: str) -> list[str]:
    p = get_protocol(protocol)
    img = p.image_names(1)[0]
    return [
        p.format_assistant("Crop the corner.", code=f"c = {img}.crop((0, 0, 40, 40))\nprint(c.size)\nshow(c)"),
        p.format_assistant("Oops.", code="print(undefined_name)"),
        p.format_assistant("It is red.", answer="red"),
    ]


def _assert_consistent(tr: Trajectory, processor: Any) -> None:
    """Loss mask 1 exactly on what the engine sampled; the arrays equal a full render of the conversation."""
    tr.check()
    renderer = ChatRenderer(processor)
    full = renderer.render_ids(tr.messages(), tr.assistant_token_ids())
    assert full.token_ids == tr.token_ids
    assert full.assistant_mask == tr.loss_mask
    pad = processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert tr.token_ids.count(pad) == len(tr.images)


@pytest.mark.parametrize("protocol", list(PROTOCOLS))
def test_bookkeeping_for_every_protocol(protocol: str, processor: Any, pool: Any, task: Task) -> None:
    engine = ScriptedTokenEngine(processor, _script(protocol))
    tr = _run(engine, task, pool, protocol)
    assert tr.finish_reason is FinishReason.ANSWERED and tr.answer == "red"
    assert [(t.role, t.step) for t in tr.turns] == [("assistant", 0), ("observation", 0), ("assistant", 1),
                                                   ("observation", 1), ("assistant", 2)]
    s0, s1 = tr.steps
    assert s0.result.status is ExecStatus.OK and "(40, 40)" in s0.result.stdout and len(s0.result.images) == 1
    assert s1.result.status is ExecStatus.ERROR and s1.result.error.type == "NameError"
    assert (s0.assistant_turn, s0.observation_turn, s1.assistant_turn, s1.observation_turn) == (0, 1, 2, 3)
    assert [im.origin for im in tr.images] == ["input", "step"] and tr.turns[1].image_indices == [1]
    # what the engine emitted, and nothing else, carries loss
    emitted = [len(engine.tokenizer.encode(t, add_special_tokens=False)) for t in _script(protocol)]
    emitted[-1] += 1  # the answer turn ends with the end-of-turn token the policy "sampled"
    assert sum(tr.loss_mask) == sum(emitted)
    for turn, n in zip(tr.assistant_turns(), emitted, strict=True):
        span = tr.loss_mask[turn.start:turn.end]
        assert span[:n] == [1] * n and not any(span[n:])  # sampled, then the template's closing tokens
    assert tr.step_ids[: tr.prompt_len] == [-1] * tr.prompt_len
    for turn in tr.turns:
        assert set(tr.step_ids[turn.start:turn.end]) == {turn.step}
    assert not any(any(tr.loss_mask[t.start:t.end]) for t in tr.turns if t.role == "observation")
    _assert_consistent(tr, processor)
    # every request was the trajectory so far, unexpanded, with the images so far
    prompts = engine.requests
    assert [n for _, n, _ in prompts] == [1, 2, 2]
    assert prompts[0][0] == tr.token_ids[: tr.prompt_len]
    assert all(sp.stop == get_protocol(protocol).stop for _, _, sp in prompts)


def test_turn_limit_runs_the_last_block_but_shows_nothing(processor: Any, pool: Any, task: Task) -> None:
    p = get_protocol("codevl")
    script = [p.format_assistant("", code=f"x = {i}\nprint(x)") for i in range(5)]
    tr = _run(ScriptedTokenEngine(processor, script), task, pool, limits=EpisodeLimits(max_turns=2))
    assert tr.finish_reason is FinishReason.TURN_LIMIT
    assert [t.role for t in tr.turns] == ["assistant", "observation", "assistant"]
    assert len(tr.steps) == 2 and tr.steps[1].result.stdout == "1\n" and tr.steps[1].observation_turn is None
    _assert_consistent(tr, processor)


def test_token_limits(processor: Any, pool: Any, task: Task) -> None:
    p = get_protocol("codevl")
    long_print = p.format_assistant("", code="print('y' * 1500)")
    # the observation would not fit: the episode ends before appending it
    tr = _run(ScriptedTokenEngine(processor, [long_print, p.format_assistant("", answer="1")]), task, pool,
              limits=EpisodeLimits(max_total_tokens=700, observation_max_chars=1500))
    assert tr.finish_reason is FinishReason.TOKEN_LIMIT and len(tr.token_ids) < 700
    assert [t.role for t in tr.turns] == ["assistant"] and tr.steps[0].result.ok
    _assert_consistent(tr, processor)
    # a turn cut by the per-turn limit in the middle of a code block: not run, token_limit
    tr = _run(ScriptedTokenEngine(processor, [long_print]), task, pool, limits=EpisodeLimits(max_new_tokens_per_turn=5))
    assert tr.finish_reason is FinishReason.TOKEN_LIMIT and tr.turns[0].events == ["unclosed_code_block"]
    assert tr.turns[0].finish == "length" and sum(tr.loss_mask) == 5 and not tr.steps


def test_image_limit_and_stopped(processor: Any, pool: Any, task: Task) -> None:
    p = get_protocol("codevl")
    show = p.format_assistant("", code="show(image_clue_0)\nshow(image_clue_0)")
    tr = _run(ScriptedTokenEngine(processor, [show]), task, pool, limits=EpisodeLimits(max_images=2))
    assert tr.finish_reason is FinishReason.IMAGE_LIMIT and len(tr.steps[0].result.images) == 2 and len(tr.images) == 1
    tr = _run(ScriptedTokenEngine(processor, ["I do not know."]), task, pool)
    assert tr.finish_reason is FinishReason.STOPPED and tr.turns[0].events == ["no_code_no_answer"]
    _assert_consistent(tr, processor)


class FailingEngine(ScriptedTokenEngine):
    """Replays a script, then fails: the backend error must end this episode only."""

    def __init__(self, processor: Any, script: list[str], fail_on: str) -> None:
        super().__init__(processor, script)
        self.fail_on = fail_on

    async def generate(self, prompt_ids: list[int], images: list[Any], sampling: SamplingParams) -> GenerateOutput:
        if self.fail_on in self.tokenizer.decode(prompt_ids):
            raise EngineError("backend unavailable")
        return await super().generate(prompt_ids, images, sampling)


def test_engine_error_ends_only_that_episode(processor: Any, pool: Any, tmp_path: Path) -> None:
    p = get_protocol("codevl")
    good, bad = make_task(tmp_path, "good"), make_task(tmp_path, "bad")
    bad = bad.model_copy(update={"question": "POISON"})
    engine = FailingEngine(processor, _script("codevl"), fail_on="POISON")
    out = asyncio.run(run_episodes([good, bad], engine, protocol=p, pool=pool))
    assert out[0].finish_reason is FinishReason.ANSWERED
    assert out[1].finish_reason is FinishReason.ENGINE_ERROR and "backend unavailable" in out[1].error
    assert not out[1].turns and out[1].token_ids[: out[1].prompt_len] == out[1].token_ids


def test_crash_gives_a_fresh_session_with_inputs(processor: Any, pool: Any, task: Task) -> None:
    p = get_protocol("codevl")
    script = [p.format_assistant("", code="x = 41"), p.format_assistant("", code="import os\nos._exit(3)"),
              p.format_assistant("", code="print(x)"), p.format_assistant("", code="print(image_clue_0.size)"),
              p.format_assistant("", answer="ok")]
    tr = _run(ScriptedTokenEngine(processor, script), task, pool)
    statuses = [s.result.status for s in tr.steps]
    assert statuses == [ExecStatus.OK, ExecStatus.CRASHED, ExecStatus.ERROR, ExecStatus.OK]
    assert tr.steps[2].result.error.type == "NameError" and tr.steps[3].result.stdout == "(120, 80)\n"
    assert "restarted" in tr.turns[3].text and tr.finish_reason is FinishReason.ANSWERED


def test_sandbox_failure_is_recorded(processor: Any, task: Task) -> None:
    from sandbox import SandboxConfig, SandboxPool

    closed = SandboxPool(SandboxConfig())
    closed.close()
    tr = _run(ScriptedTokenEngine(processor, _script("codevl")), task, closed)
    assert tr.finish_reason is FinishReason.SANDBOX_ERROR and tr.error
    assert tr.steps[0].result is None and tr.steps[0].skipped == "sandbox_error"


def test_groups_seeds_and_message_level_episodes(processor: Any, pool: Any, tmp_path: Path) -> None:
    tasks = [make_task(tmp_path, "a"), make_task(tmp_path, "b")]
    engine = ScriptedTokenEngine(processor, _script("codevl"))
    out = asyncio.run(run_episodes(tasks, engine, protocol=get_protocol("codevl"), pool=pool, samples_per_task=3,
                                   group_prefix="step0/", seed=7, max_concurrent=4))
    assert [(t.group_id, t.sample_index) for t in out] == [("step0/a", 0), ("step0/a", 1), ("step0/a", 2),
                                                          ("step0/b", 0), ("step0/b", 1), ("step0/b", 2)]
    seeds = [sp.seed for _, _, sp in engine.requests]
    assert len(seeds) == 18 and len(set(seeds)) == 18
    assert request_seed(7, "step0/a#0", 0) in seeds
    # message level: same conversation, no tokens; saved and loaded back
    p = get_protocol("pyvision")
    policy = ScriptedPolicy({"a": _script("pyvision"), "b": [p.format_assistant("", answer="blue")]})
    chat = asyncio.run(run_episodes(tasks, policy, protocol=p, pool=pool))
    assert [t.answer for t in chat] == ["red", "blue"] and not chat[0].tokenized
    assert chat[0].steps[0].result.images[0].size == (40, 40) and len(chat[0].images) == 2
    save_trajectories(tmp_path / "c.jsonl", chat)
    back = load_trajectories(tmp_path / "c.jsonl")
    assert back[0].messages() == chat[0].messages()


def test_chat_engine_stop_string_stripped_by_api_is_restored(pool: Any, task: Task) -> None:

    class Stripping(ScriptedPolicy):
        async def chat(self, messages, images, sampling, context=None):
            out = await super().chat(messages, images, sampling, context)
            out.text = out.text.removesuffix("</code>")  # what OpenAI-style APIs return
            return out

    tr = _run(Stripping(_script("codevl")), task, pool)
    assert tr.finish_reason is FinishReason.ANSWERED and tr.steps[0].result.ok
    assert tr.turns[0].text.endswith("</code>")


class _BuggyEngine(ScriptedTokenEngine):
    """An engine with a bug of our own (not a backend failure): the loop must not hide it as an engine error."""

    async def generate(self, prompt_ids: list[int], images: list[Any], sampling: SamplingParams) -> GenerateOutput:
        raise KeyError("bug in our rendering code")


def test_a_bug_is_not_an_engine_error(processor: Any, pool: Any, task: Task) -> None:
    with pytest.raises(KeyError, match="bug in our rendering code"):
        _run(_BuggyEngine(processor, _script("codevl")), task, pool)


def test_a_task_listed_twice_is_two_groups_with_distinct_ids_and_seeds(processor: Any, pool: Any,
                                                                       task: Task) -> None:
    engine = ScriptedTokenEngine(processor, _script("codevl"))
    out = asyncio.run(run_episodes([task, task], engine, protocol=get_protocol("codevl"), pool=pool,
                                   samples_per_task=2, group_prefix="s1/"))
    assert [t.group_id for t in out] == ["s1/t0", "s1/t0", "s1/t0@1", "s1/t0@1"]
    assert len({t.id for t in out}) == 4
    seeds = {sp.seed for _, _, sp in engine.requests}
    assert len(seeds) == len(engine.requests)  # every request of every episode has its own seed
