"""What the vLLM engines send and how they read what comes back, tested as pure functions without vLLM.

These are NOT tests of vLLM: nothing here runs it (see test_engine_vllm_gpu.py for that). They pin the request
settings that make rollouts token-exact (unexpanded prompts, banned placeholder tokens, per-request seeds, stop
strings kept, logprobs of the sampled token), the server path's expansion (checked against the trainer's own
expansion), and the mapping of vLLM-shaped results onto `GenerateOutput`. The mapping tests feed small dataclasses
shaped like vLLM's `CompletionOutput`/`Logprob`, and dicts shaped like the server's JSON; only the pure mapping
functions see them. Plus the engine registry.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pytest

from rollout.engines.base import EngineError, SamplingParams
from rollout.engines.hf import BANNED_TOKENS
from rollout.engines.registry import ENGINE_KINDS, ENGINE_SPECS, create_engine, engine_spec
from rollout.engines.vllm_requests import (
    BAN_LOGIT_BIAS,
    SampledCompletion,
    TokenLayout,
    build_output,
    check_unexpanded_prompt,
    colocate_llm_kwargs,
    completion_from_json,
    completion_from_vllm,
    expand_for_features,
    expanded_length,
    external_launcher_env,
    processor_image_tokens,
    prompt_inputs,
    request_seed,
    sampling_kwargs,
)
from rollout.engines.vllm_server import (
    ImageFeature,
    generate_request_body,
    image_feature_from_render,
    image_key,
    render_request_body,
    request_features,
)
from rollout.expand import expand_sequence, process_images, tokens_per_image
from rollout.loop import request_seed as loop_request_seed
from rollout.protocols import get_protocol
from rollout.render import ChatRenderer

STOP = ("</code>",)


def _images() -> list[np.ndarray]:
    rng = np.random.RandomState(0)
    return [rng.randint(0, 255, (80, 120, 3), dtype=np.uint8), rng.randint(0, 255, (64, 64, 3), dtype=np.uint8)]


@pytest.fixture(scope="module")
def layout(processor: Any) -> TokenLayout:
    return TokenLayout.from_tokenizer(processor.tokenizer)


@pytest.fixture(scope="module")
def prompt(processor: Any) -> list[int]:
    """A real two-image prompt rendered by the chat template, as the loop builds it (unexpanded)."""
    messages = get_protocol("codevl").initial_messages("What is in the corner?", [(120, 80), (64, 64)])
    return ChatRenderer(processor).prompt_ids(messages)


def _tok(processor: Any, name: str) -> int:
    return int(processor.tokenizer.convert_tokens_to_ids(name))


# ---- prompts -------------------------------------------------------------------------------------------------


def test_unexpanded_prompt_goes_to_llm_generate_as_is(processor: Any, layout: TokenLayout, prompt: list[int]) -> None:
    images = _images()
    positions = check_unexpanded_prompt(prompt, len(images), layout)
    assert [prompt[p] for p in positions] == [layout.image_pad] * 2
    assert all(prompt[p - 1] == layout.vision_start and prompt[p + 1] == layout.vision_end for p in positions)
    req = prompt_inputs(prompt, images)
    assert req["prompt_token_ids"] == prompt and req["prompt_token_ids"].count(layout.image_pad) == 2
    pil = req["multi_modal_data"]["image"]
    assert [im.mode for im in pil] == ["RGB", "RGB"]
    for im, arr in zip(pil, images, strict=True):
        assert np.array_equal(np.asarray(im), arr)
    assert "multi_modal_data" not in prompt_inputs([1, 2, 3], [])


def test_expanded_prompt_is_rejected_with_a_clear_error(processor: Any, layout: TokenLayout, prompt: list[int]) -> None:
    images = _images()
    expanded = expand_sequence(prompt, images, processor).input_ids
    assert expanded.count(layout.image_pad) > 2
    with pytest.raises(EngineError, match="already expanded.*unexpanded prompt"):
        check_unexpanded_prompt(expanded, len(images), layout)


def test_placeholder_count_wrapping_and_video_are_checked(layout: TokenLayout, prompt: list[int]) -> None:
    with pytest.raises(EngineError, match="2 image placeholder.*1 image"):
        check_unexpanded_prompt(prompt, 1, layout)
    bare = [5, layout.image_pad, 6]
    with pytest.raises(EngineError, match="not wrapped"):
        check_unexpanded_prompt(bare, 1, layout)
    assert layout.video_pad is not None
    with pytest.raises(EngineError, match="video"):
        check_unexpanded_prompt([*prompt, layout.video_pad], 2, layout)


# ---- sampling ------------------------------------------------------------------------------------------------


def test_sampling_kwargs_ban_placeholders_keep_stops_and_ask_for_sampled_logprobs(processor: Any,
                                                                                 layout: TokenLayout) -> None:
    banned = {_tok(processor, n) for n in BANNED_TOKENS}
    assert set(layout.banned) == banned and len(banned) == 5
    sp = SamplingParams(max_new_tokens=77, temperature=0.7, top_p=0.9, top_k=0, stop=STOP, seed=123)
    kw = sampling_kwargs(sp, seed=request_seed(0, 0, sp), banned_ids=layout.banned, stop_token_ids=layout.eos)
    assert kw["n"] == 1 and kw["max_tokens"] == 77 and kw["temperature"] == 0.7 and kw["top_p"] == 0.9
    assert kw["top_k"] == 0  # no top-k
    assert kw["stop"] == ["</code>"] and kw["include_stop_str_in_output"] is True
    eos = {_tok(processor, "<|im_end|>"), _tok(processor, "<|endoftext|>")}
    assert eos <= set(kw["stop_token_ids"]) == set(layout.eos)  # the same end of turn for both engines
    assert kw["logprobs"] == 0  # the sampled token's logprob only
    assert kw["seed"] == 123
    assert kw["logit_bias"] == {t: BAN_LOGIT_BIAS for t in banned} and BAN_LOGIT_BIAS <= -100
    assert kw["skip_special_tokens"] is False and kw["spaces_between_special_tokens"] is False
    assert (kw["repetition_penalty"], kw["presence_penalty"], kw["frequency_penalty"], kw["min_p"]) == (1.0, 0.0, 0.0, 0.0)
    json.dumps(kw)  # plain data: also the server's JSON
    assert sampling_kwargs(sp.with_(top_k=20), seed=1, banned_ids=())["top_k"] == 20


def test_every_request_gets_its_own_seed() -> None:
    unseeded = SamplingParams()
    derived = [request_seed(7, k, unseeded) for k in range(2000)]
    assert len(set(derived)) == len(derived) and all(0 <= s < 2**31 for s in derived)
    assert derived == [request_seed(7, k, unseeded) for k in range(2000)]  # reproducible
    assert request_seed(7, 0, unseeded) != request_seed(8, 0, unseeded)
    assert request_seed(7, 5, SamplingParams(seed=42)) == 42  # the loop's seed wins
    # the loop's seeds: distinct for the G rollouts of a group and across turns
    loop_seeds = {loop_request_seed(0, f"task#{g}", turn) for g in range(16) for turn in range(8)}
    assert len(loop_seeds) == 16 * 8


def test_colocate_llm_kwargs_follow_trl_colocate_mode() -> None:
    kw = colocate_llm_kwargs("/ckpt", gpu_memory_utilization=0.4, max_model_len=8192, max_images_per_prompt=12,
                             enable_sleep_mode=True, seed=3, mm_processor_kwargs={"max_pixels": 12845056},
                             extra={"max_num_seqs": 64})
    assert kw["model"] == "/ckpt" and kw["distributed_executor_backend"] == "external_launcher"
    assert kw["logprobs_mode"] == "processed_logprobs" and kw["enable_sleep_mode"] is True
    assert kw["limit_mm_per_prompt"] == {"image": 12, "video": 0}
    assert (kw["gpu_memory_utilization"], kw["max_model_len"], kw["tensor_parallel_size"], kw["seed"]) == (0.4, 8192, 1, 3)
    assert kw["mm_processor_kwargs"] == {"max_pixels": 12845056} and kw["max_num_seqs"] == 64
    assert external_launcher_env({}) == {"RANK": "0", "LOCAL_RANK": "0", "WORLD_SIZE": "1",
                                         "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": "29511"}
    launched = {"RANK": "3", "LOCAL_RANK": "1", "WORLD_SIZE": "8", "MASTER_ADDR": "n0", "MASTER_PORT": "1234"}
    assert external_launcher_env(launched) == {}


# ---- the server path: expansion and features ------------------------------------------------------------------


def test_server_expansion_equals_the_trainers_expansion(processor: Any, layout: TokenLayout, prompt: list[int]) -> None:
    """The server's token endpoint takes expanded ids; expanding with the per-image lengths must give exactly the
    sequence the trainer's forward pass sees (rollout.expand), with the features placed on the image runs."""
    images = _images()
    positions = check_unexpanded_prompt(prompt, 2, layout)
    _, grid = process_images(processor, images)
    lengths = tokens_per_image(processor, grid)
    assert [processor_image_tokens(processor, im) for im in images] == lengths  # the cheap count is exact
    assert expanded_length(prompt, images, processor) == len(expand_sequence(prompt, images, processor).input_ids)
    ids, runs = expand_for_features(prompt, positions, lengths, layout.image_pad)
    assert ids == expand_sequence(prompt, images, processor).input_ids
    for run, n in zip(runs, lengths, strict=True):
        assert run["length"] == n and ids[run["offset"]: run["offset"] + n] == [layout.image_pad] * n
        assert ids[run["offset"] - 1] == layout.vision_start and ids[run["offset"] + n] == layout.vision_end
    feats = [ImageFeature(f"h{i}", n, f"b64-{i}") for i, n in enumerate(lengths)]
    sp = SamplingParams(stop=STOP, seed=9)
    body = generate_request_body("m", ids, request_features(feats, runs),
                                 sampling_kwargs(sp, seed=9, banned_ids=layout.banned), request_id="r1")
    json.dumps(body)
    assert body["token_ids"] == ids and body["model"] == "m" and body["request_id"] == "r1"
    assert body["features"]["mm_hashes"] == {"image": ["h0", "h1"]}
    assert body["features"]["mm_placeholders"] == {"image": runs}
    assert body["features"]["kwargs_data"] == {"image": ["b64-0", "b64-1"]}
    sp_json = body["sampling_params"]
    assert sp_json["output_kind"] == 2 and sp_json["seed"] == 9 and sp_json["stop"] == ["</code>"]
    assert set(sp_json["logit_bias"]) == {str(t) for t in layout.banned}
    with pytest.raises(ValueError):
        request_features(feats, runs[:1])
    assert request_features([], []) is None


def test_render_request_and_answer(processor: Any) -> None:
    """Shapes from vLLM's disagg protocol (MultiModalFeatures); parsing only, no server."""
    body = render_request_body("m", "data:image/png;base64,AAAA")
    assert body["messages"][0]["content"] == [{"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}}]
    answer = {"token_ids": [1, 2], "features": {"mm_hashes": {"image": ["abc"]},
                                                 "mm_placeholders": {"image": [{"offset": 3, "length": 16}]},
                                                 "kwargs_data": {"image": ["QUJD"]}}}
    assert image_feature_from_render(answer) == ImageFeature("abc", 16, "QUJD")
    answer["features"]["kwargs_data"] = None  # metadata only: the server resolves the tensors from its cache
    assert image_feature_from_render(answer).kwargs is None
    with pytest.raises(EngineError, match="no image features"):
        image_feature_from_render({"token_ids": [1]})
    a, b = _images()
    assert image_key(a) == image_key(a.copy()) != image_key(b)
    assert image_key(a) != image_key(a[:, :, ::-1])


# ---- output mapping ------------------------------------------------------------------------------------------


@dataclass
class _Logprob:  # shaped like vllm.logprobs.Logprob
    logprob: float
    rank: int | None = 1
    decoded_token: str | None = None


@dataclass
class _Completion:  # shaped like vllm.outputs.CompletionOutput (the fields the mapping reads)
    token_ids: list[int]
    logprobs: list[dict[int, _Logprob]] | None
    finish_reason: str | None
    stop_reason: str | int | None


def _completion(ids: list[int], finish: str, stop_reason: str | int | None = None) -> _Completion:
    lps = [{t: _Logprob(-0.1 * (k + 1))} for k, t in enumerate(ids)]
    return _Completion(ids, lps, finish, stop_reason)


def _enc(processor: Any, text: str) -> list[int]:
    return list(processor.tokenizer.encode(text, add_special_tokens=False))


def test_stop_string_output_keeps_the_sampled_ids_and_cuts_the_text(processor: Any, layout: TokenLayout) -> None:
    sp = SamplingParams(max_new_tokens=200, stop=STOP)
    body = _enc(processor, "Crop it.\n<code>\nprint(1)\n</code>\n")  # the stop string may end inside a token
    out = build_output(completion_from_vllm(_completion(body, "stop", "</code>")), tokenizer=processor.tokenizer,
                       eos_ids=layout.eos, sampling=sp, metadata={"weights_version": 4})
    assert out.finish_reason == "stop" and out.stop_reason == "</code>"
    assert out.text.endswith("</code>") and out.text == "Crop it.\n<code>\nprint(1)\n</code>"
    assert out.token_ids == body[: len(out.token_ids)] and len(out.logprobs) == len(out.token_ids)
    assert "</code>" in processor.tokenizer.decode(out.token_ids)
    assert "</code>" not in processor.tokenizer.decode(out.token_ids[:-1])  # the last id completed the stop string
    assert out.metadata == {"weights_version": 4}


def test_tokens_after_the_stop_string_are_dropped(processor: Any, layout: TokenLayout) -> None:
    """Multi-token steps (speculative decoding) can return ids past the stop string: the turn ends where it fired."""
    sp = SamplingParams(max_new_tokens=200, stop=STOP)
    head = _enc(processor, "<code>\nx = 1\n</code>")
    ids = head + _enc(processor, " more text")
    c = completion_from_vllm(_completion(ids, "stop", "</code>"))
    out = build_output(c, tokenizer=processor.tokenizer, eos_ids=layout.eos, sampling=sp)
    assert out.token_ids == head and out.logprobs == c.logprobs[: len(head)]
    assert out.text == "<code>\nx = 1\n</code>"


def test_eos_output_keeps_the_eos_id_but_not_in_the_text(processor: Any, layout: TokenLayout) -> None:
    sp = SamplingParams(max_new_tokens=200, stop=STOP)
    im_end = _tok(processor, "<|im_end|>")
    ids = _enc(processor, "<answer>red</answer>") + [im_end]
    out = build_output(completion_from_vllm(_completion(ids, "stop", None)), tokenizer=processor.tokenizer,
                       eos_ids=layout.eos, sampling=sp)
    assert out.token_ids == ids and out.token_ids[-1] == im_end
    assert out.finish_reason == "stop" and out.stop_reason == "<|im_end|>" and out.text == "<answer>red</answer>"


def test_length_abort_and_stop_token_ids(processor: Any, layout: TokenLayout) -> None:
    sp = SamplingParams(max_new_tokens=6, stop=STOP)
    ids = _enc(processor, "the image shows a red square in the corner")[:6]
    out = build_output(completion_from_vllm(_completion(ids, "length")), tokenizer=processor.tokenizer,
                       eos_ids=layout.eos, sampling=sp)
    assert (out.finish_reason, out.stop_reason, out.token_ids) == ("length", None, ids)
    aborted = build_output(completion_from_vllm(_completion(ids[:3], "abort")), tokenizer=processor.tokenizer,
                           eos_ids=layout.eos, sampling=sp)
    assert aborted.finish_reason == "abort"
    stop_id = _tok(processor, "<|endoftext|>")
    other = _tok(processor, "<tool_call>")  # a stop token id the request named: ends the turn like an EOS
    out = build_output(completion_from_vllm(_completion([*ids[:2], other], "stop", other)),
                       tokenizer=processor.tokenizer, eos_ids=layout.eos, sampling=sp)
    assert out.token_ids[-1] == other and out.stop_reason == "<tool_call>" and "<tool_call>" not in out.text
    assert stop_id in layout.eos


def test_errors_and_missing_logprobs_raise(processor: Any, layout: TokenLayout) -> None:
    sp = SamplingParams(stop=STOP)
    ids = _enc(processor, "abc")
    with pytest.raises(EngineError, match="finish_reason='error'"):
        build_output(completion_from_vllm(_completion(ids, "error")), tokenizer=processor.tokenizer,
                     eos_ids=layout.eos, sampling=sp)
    with pytest.raises(EngineError, match="no logprobs"):
        build_output(SampledCompletion(ids, None, "length"), tokenizer=processor.tokenizer, eos_ids=layout.eos,
                     sampling=sp)
    broken = _completion(ids, "length")
    broken.logprobs[1] = {ids[1] + 1: _Logprob(-1.0)}
    with pytest.raises(EngineError, match="no logprob for the sampled token"):
        completion_from_vllm(broken)


def test_server_json_maps_like_the_in_process_output(processor: Any, layout: TokenLayout) -> None:
    """The token endpoint's choice (`token_ids`, `logprobs.content[i].logprob`, no `stop_reason`) gives the same
    GenerateOutput as the in-process CompletionOutput."""
    sp = SamplingParams(max_new_tokens=200, stop=STOP)
    ids = _enc(processor, "Look.\n<code>\nshow(image_clue_0)\n</code>")
    c = _completion(ids, "stop", "</code>")
    choice = {"index": 0, "finish_reason": "stop", "token_ids": ids,
              "logprobs": {"content": [{"token": f"token_id:{t}", "logprob": lp[t].logprob, "bytes": None,
                                        "top_logprobs": []} for t, lp in zip(ids, c.logprobs, strict=True)]}}
    a = build_output(completion_from_vllm(c), tokenizer=processor.tokenizer, eos_ids=layout.eos, sampling=sp)
    b = build_output(completion_from_json(choice), tokenizer=processor.tokenizer, eos_ids=layout.eos, sampling=sp)
    assert (a.token_ids, a.logprobs, a.finish_reason, a.text, a.stop_reason) == \
           (b.token_ids, b.logprobs, b.finish_reason, b.text, b.stop_reason)
    assert b.stop_reason == "</code>"


# ---- registry and construction without vLLM ------------------------------------------------------------------


def test_registry_names_levels_and_errors() -> None:
    assert {"hf", "vllm_colocate", "vllm_server", "openai", "scripted", "scripted_tokens"} == set(ENGINE_KINDS)
    assert not engine_spec("openai").token_level and engine_spec("vllm_server").token_level
    with pytest.raises(ValueError, match="unknown engine 'vlm'.*hf, openai, scripted, scripted_tokens, vllm_colocate, "
                                         "vllm_server"):
        engine_spec("vlm")
    for spec in ENGINE_SPECS.values():  # every class imports on a CPU machine (vLLM is imported lazily)
        cls = spec.load()
        assert cls.token_level is spec.token_level
    scripted = create_engine("scripted", ["<answer>a</answer>"])
    assert type(scripted).__name__ == "ScriptedPolicy"


@pytest.mark.skipif(importlib.util.find_spec("vllm") is not None, reason="vLLM is installed here")
def test_colocate_engine_without_vllm_says_how_to_install(processor: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from rollout.engines.vllm_colocate import VLLMColocateEngine

    for k in ("RANK", "LOCAL_RANK", "WORLD_SIZE", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(k, raising=False)
    with pytest.raises(ImportError, match="CODEVL_EXTRAS=dev,deepspeed,vllm bash scripts/install.sh"):
        VLLMColocateEngine("/nowhere", processor=processor)
    with pytest.raises(NotImplementedError, match="tensor_parallel_size=1"):
        VLLMColocateEngine("/nowhere", processor=processor, tensor_parallel_size=2)
